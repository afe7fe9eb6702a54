//! The tree of a file restore point read through [`super::FileTree`]:
//! a real backup of a directory (small chunks, so files span many), and
//! every byte, name, kind and error compared with the original.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use arca_ingest::files::{self, FilesOptions};
use arca_ingest::Progress;
use arca_repo::{Datastore, Encryption, OpenOptions};

use super::*;
use crate::reader::chunk_cache;

fn datastore(dir: &Path) -> Arc<Datastore> {
    let path = dir.join("ds");
    Datastore::init(&path, Encryption::None, None, |c| {
        c.chunker.min_size = 4 << 10;
        c.chunker.avg_size = 16 << 10;
        c.chunker.max_size = 64 << 10;
    })
    .unwrap();
    Datastore::open(&path, &OpenOptions::default()).unwrap()
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn p(s: &str) -> TreePath {
    TreePath::parse(s).unwrap()
}

#[test]
fn a_file_restore_point_reads_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let big = pseudo_random(1_000_003, 7);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("sub/deeper/small.txt"), b"hello").unwrap();
    symlink("../big.bin", src.join("sub/link")).unwrap();
    for i in 0..300 {
        std::fs::write(src.join(format!("sub/f{i:04}")), format!("{i}")).unwrap();
    }
    let out = files::backup(
        &ds,
        &src,
        &FilesOptions {
            source: "t".into(),
            ..Default::default()
        },
        &Progress::default(),
    )
    .unwrap();
    let snap = ds.load_snapshot(&out.snapshot).unwrap();
    let tree = open_tree(ds.clone(), &snap, chunk_cache(64 << 20)).unwrap();

    // The root lists in name order.
    let mut names = Vec::new();
    tree.read_dir(&TreePath::root(), 0, &mut |e| {
        names.push(String::from_utf8(e.name).unwrap());
        true
    })
    .unwrap();
    assert_eq!(names, ["big.bin", "empty", "sub"]);
    assert_eq!(tree.stat(&TreePath::root()).unwrap().kind, Kind::Dir);

    // A listing resumes at a position, and stops when asked.
    let mut from_100 = Vec::new();
    tree.read_dir(&p("sub"), 100, &mut |e| {
        from_100.push(String::from_utf8(e.name).unwrap());
        from_100.len() < 3
    })
    .unwrap();
    // "deeper" comes first, then f0000...
    assert_eq!(from_100, ["f0099", "f0100", "f0101"]);

    // Attributes are the source's.
    let a = tree.stat(&p("/big.bin")).unwrap();
    let md = std::fs::metadata(src.join("big.bin")).unwrap();
    assert_eq!((a.kind, a.size), (Kind::File, big.len() as u64));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(a.mode, md.mode() & 0o7777);
    assert_eq!(a.mtime_ns, md.mtime() * 1_000_000_000 + md.mtime_nsec());
    let l = tree.stat(&p("sub/link")).unwrap();
    assert_eq!((l.kind, l.size), (Kind::Symlink, 10));
    assert_eq!(tree.read_link(&p("sub/link")).unwrap(), b"../big.bin");

    // Every byte, at offsets that cross chunk boundaries.
    let f = tree.open(&p("big.bin")).unwrap();
    assert_eq!(f.size(), big.len() as u64);
    let mut whole = Vec::new();
    let mut buf = vec![0u8; 70_001];
    loop {
        let n = f.read_at(whole.len() as u64, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        whole.extend_from_slice(&buf[..n]);
    }
    assert!(whole == big, "sequential read differs");
    for (off, len) in [
        (0u64, 1usize),
        (65_535, 3),
        (999_000, 5000),
        (12_345, 400_000),
    ] {
        let mut b = vec![0u8; len];
        let n = f.read_at(off, &mut b).unwrap();
        let end = (off as usize + len).min(big.len());
        assert_eq!(n, end - off as usize);
        assert!(b[..n] == big[off as usize..end], "read at {off}+{len}");
    }
    assert_eq!(f.read_at(big.len() as u64, &mut buf).unwrap(), 0);
    let e = tree.open(&p("empty")).unwrap();
    assert_eq!((e.size(), e.read_at(0, &mut buf).unwrap()), (0, 0));
    let s = tree.open(&p("sub/deeper/small.txt")).unwrap();
    let n = s.read_at(1, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"ello");

    // Errors name what is wrong.
    assert!(matches!(tree.stat(&p("nope")), Err(TreeError::NotFound(_))));
    assert!(matches!(
        tree.stat(&p("big.bin/x")),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("sub")),
        Err(TreeError::IsADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("sub/link")),
        Err(TreeError::WrongKind(_))
    ));
    assert!(matches!(
        tree.read_dir(&p("empty"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.read_link(&p("empty")),
        Err(TreeError::WrongKind(_))
    ));
    assert!(matches!(
        TreePath::parse("a/../b"),
        Err(TreeError::Invalid(_))
    ));
    assert!(matches!(TreePath::parse("a\0"), Err(TreeError::Invalid(_))));
}

#[test]
fn paths_parse_and_join() {
    assert_eq!(p("/a//b/./c/").to_string(), "a/b/c");
    assert!(p("/").is_root());
    assert_eq!(p("a/b").parent(), p("a"));
    assert_eq!(p("a").join(b"b").unwrap(), p("a/b"));
    assert!(p("a").join(b"..").is_err());
    assert!(p("a").join(b"x/y").is_err());
    assert_eq!(p("a/b/c").skip(1), p("b/c"));
    assert!(TreePath::parse(&"x".repeat(5000)).is_err());
}

#[test]
fn an_image_shows_its_disk_as_a_file() {
    let data = pseudo_random(3 << 20, 3);
    let disk: Arc<dyn crate::reader::BlockSource> =
        Arc::new(crate::reader::RamDisk::new(data.clone()));
    let tree = image::ImageTree::from_disk(disk, 5);
    let a = tree.stat(&p(image::DISK_FILE)).unwrap();
    assert_eq!((a.kind, a.size), (Kind::File, data.len() as u64));
    let f = tree.open(&p(image::DISK_FILE)).unwrap();
    let mut b = vec![0u8; 4096];
    assert_eq!(f.read_at((3 << 20) - 100, &mut b).unwrap(), 100);
    assert!(b[..100] == data[data.len() - 100..]);
}
