//! Image restore points read through [`FileTree`]: disks built with the
//! real tools (`tests/images/mkimages.sh`: sfdisk, sgdisk, mkfs.ext4 -d,
//! mkfs.vfat + mtools, mkntfs + ntfs-3g), every file compared with its source, damaged
//! tables and file systems, a 100k-entry directory, and one image backed
//! up into a datastore.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::*;
use crate::reader::{BlockSource, RamDisk};
use crate::tree::Kind;

/// The images, built once and kept in the temporary directory under the
/// hash of the script (building the 100k-entry ext4 directory takes
/// minutes: `mkfs.ext4 -d` links entries one by one).
fn images(bigdir: bool) -> &'static Path {
    static SMALL: OnceLock<PathBuf> = OnceLock::new();
    static BIG: OnceLock<PathBuf> = OnceLock::new();
    let cell = if bigdir { &BIG } else { &SMALL };
    cell.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/mkimages.sh");
        let text = std::fs::read(&script).unwrap();
        use md5::Digest as _;
        let hash: String = md5::Md5::digest(&text)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let kind = if bigdir {
            format!("big{}", big_entries())
        } else {
            "small".to_string()
        };
        let dir = std::env::temp_dir().join(format!("arca-tree-images-{kind}-{}", &hash[..16]));
        if dir.join("DONE").exists() {
            return dir;
        }
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(&script).arg(&tmp);
        if bigdir {
            cmd.arg("bigdir").arg(big_entries().to_string());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "mkimages.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(tmp.join("DONE"), b"").unwrap();
        // Another test process may have won the race: use its copy.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

/// Entries of the big directory: 100000, or `ARCA_BIGDIR_ENTRIES` (a
/// quicker run while working on the code).
fn big_entries() -> u64 {
    std::env::var("ARCA_BIGDIR_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn ram_tree(bytes: Vec<u8>) -> ImageTree {
    let disk: Arc<dyn BlockSource> = Arc::new(RamDisk::new(bytes));
    ImageTree::from_disk(disk, 42)
}

fn p(s: &str) -> TreePath {
    TreePath::parse(s).unwrap()
}

fn names(tree: &dyn FileTree, path: &TreePath) -> Vec<String> {
    let mut out = Vec::new();
    tree.read_dir(path, 0, &mut |e| {
        out.push(String::from_utf8(e.name).unwrap());
        true
    })
    .unwrap();
    out
}

fn read_all(f: &dyn FileReader) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 100_003];
    loop {
        let n = f.read_at(out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fs {
    Ext4,
    Fat,
    Ntfs,
}

/// Every entry of `src` (recursively) against the tree at `at`: kind,
/// size, mode, times, owners, link targets and bytes, as far as `fs`
/// holds them; and the listing has nothing more.
fn compare(tree: &dyn FileTree, at: &TreePath, src: &Path, fs: Fs) -> usize {
    let mut checked = 0;
    let expected: Vec<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut listed: Vec<String> = Vec::new();
    tree.read_dir(at, 0, &mut |e| {
        let name = String::from_utf8(e.name.clone()).unwrap();
        // The listing's attributes are stat's.
        assert_eq!(
            tree.stat(&at.join(&e.name).unwrap()).unwrap(),
            e.attr,
            "{name}"
        );
        listed.push(name);
        true
    })
    .unwrap();
    if fs == Fs::Ext4 {
        listed.retain(|n| n != "lost+found");
    }
    if fs == Fs::Ntfs && at.components().len() == 1 {
        // NTFS only: a compressed file, a junction (see
        // ntfs_files_links_and_holes).
        listed.retain(|n| n != "ntfs-only");
    }
    // FAT: a short name without a long one (mtools writes `é.txt` as the
    // short name `É.TXT` with the lower-case flags, which fatfs applies
    // to ASCII letters only) may differ in case.
    let key = |n: &str| match fs {
        Fs::Ext4 | Fs::Ntfs => n.to_string(),
        Fs::Fat => n.to_lowercase(),
    };
    let by_key: std::collections::HashMap<String, String> =
        listed.iter().map(|n| (key(n), n.clone())).collect();
    let mut want: Vec<String> = expected.iter().map(|n| key(n)).collect();
    let mut got: Vec<String> = listed.iter().map(|n| key(n)).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "listing of {at}");
    for name in expected {
        let path = at.join(by_key[&key(&name)].as_bytes()).unwrap();
        let local = src.join(&name);
        let md = std::fs::symlink_metadata(&local).unwrap();
        let a = tree.stat(&path).unwrap();
        let mtime = md.mtime() * 1_000_000_000 + md.mtime_nsec();
        assert_eq!(a.mtime_ns, mtime, "mtime of {path}");
        let ft = md.file_type();
        match fs {
            Fs::Ext4 => {
                assert_eq!(a.mode, md.mode() & 0o7777, "mode of {path}");
                assert_eq!((a.uid, a.gid), (md.uid(), md.gid()), "owner of {path}");
            }
            Fs::Fat | Fs::Ntfs => {
                let want = match (ft.is_dir(), md.mode() & 0o200 == 0) {
                    _ if ft.is_symlink() => 0o777,
                    (true, _) => 0o755,
                    (false, false) => 0o644,
                    (false, true) => 0o444,
                };
                assert_eq!(a.mode, want, "mode of {path}");
                assert_eq!((a.uid, a.gid), (0, 0), "owner of {path}");
            }
        }
        use std::os::unix::fs::FileTypeExt;
        if ft.is_dir() {
            assert_eq!(a.kind, Kind::Dir, "{path}");
            checked += compare(tree, &path, &local, fs);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&local).unwrap();
            let target = target.as_os_str().as_encoded_bytes();
            assert_eq!(
                (a.kind, a.size),
                (Kind::Symlink, target.len() as u64),
                "{path}"
            );
            assert_eq!(tree.read_link(&path).unwrap(), target, "{path}");
            assert!(matches!(tree.open(&path), Err(TreeError::WrongKind(_))));
        } else if ft.is_fifo() {
            assert_eq!(a.kind, Kind::Fifo, "{path}");
        } else {
            assert_eq!((a.kind, a.size), (Kind::File, md.len()), "{path}");
            let f = tree.open(&path).unwrap();
            assert_eq!(f.size(), md.len());
            let got = read_all(&*f);
            assert!(got == std::fs::read(&local).unwrap(), "bytes of {path}");
            if md.len() > 10 {
                // A read in the middle.
                let mut b = [0u8; 7];
                assert_eq!(f.read_at(3, &mut b).unwrap(), 7);
                assert_eq!(b[..], got[3..10]);
            }
            assert!(matches!(
                tree.read_link(&path),
                Err(TreeError::WrongKind(_))
            ));
        }
        checked += 1;
    }
    checked
}

#[test]
fn an_mbr_disk_shows_its_partitions_and_their_files() {
    let dir = images(false);
    let tree = ram_tree(std::fs::read(dir.join("mbr.img")).unwrap());
    assert_eq!(
        names(&tree, &TreePath::root()),
        [
            "disk.img",
            "part1.img",
            "part1",
            "part2.img",
            "part2",
            "part4.img",
            "part4",
            "part5.img",
            "part5",
            "part6.img",
            "part6"
        ]
    );
    // Partitions as files: the bytes of their ranges.
    let disk = std::fs::read(dir.join("mbr.img")).unwrap();
    let mib = 1 << 20;
    for (name, start, len) in [
        ("part1.img", mib, 24 * mib),
        ("part2.img", 25 * mib, 40 * mib),
        ("part5.img", 66 * mib, 16 * mib),
        ("part6.img", 83 * mib, 4 * mib),
        ("part4.img", 90 * mib, 16 * mib),
    ] {
        let f = tree.open(&p(name)).unwrap();
        assert_eq!(f.size(), len as u64, "{name}");
        let mut b = vec![0u8; 8192];
        f.read_at(0, &mut b).unwrap();
        assert!(b[..] == disk[start..start + 8192], "{name}");
        assert_eq!(tree.stat(&p(name)).unwrap().mode, 0o444);
    }
    assert_eq!(tree.stat(&p("part1")).unwrap().kind, Kind::Dir);
    let n = compare(&tree, &p("part1"), &dir.join("src"), Fs::Ext4);
    assert!(n > 20, "{n} entries compared");
    compare(&tree, &p("part2"), &dir.join("src-fat"), Fs::Fat);
    compare(&tree, &p("part5"), &dir.join("src-fat"), Fs::Fat);
    assert_eq!(names(&tree, &p("part6")), ["twelve.txt"]);
    let n = compare(&tree, &p("part4"), &dir.join("src-ntfs"), Fs::Ntfs);
    assert!(n >= 20, "{n} entries compared");
    // Every file of the partition's NTFS reads (whole-partition restores,
    // tars and S3 copies of it succeed).
    assert_eq!(walk(&tree, &p("part4"), 0), 0);
    let f = tree.open(&p("part6/twelve.txt")).unwrap();
    assert_eq!(read_all(&*f), b"twelve\n");

    // ext4: hard links, fast and slow symlinks, the sparse file's hole.
    assert_eq!(tree.read_link(&p("part1/fastlink")).unwrap(), b"hello.txt");
    let sparse = tree.open(&p("part1/sparse.bin")).unwrap();
    let mut b = vec![1u8; 4096];
    assert_eq!(sparse.read_at(1 << 20, &mut b).unwrap(), 4096);
    assert!(b.iter().all(|&x| x == 0));

    // Errors name what is wrong.
    assert!(matches!(
        tree.stat(&p("part3")),
        Err(TreeError::NotFound(_))
    ));
    assert!(matches!(
        tree.stat(&p("part1/nope")),
        Err(TreeError::NotFound(_))
    ));
    assert!(matches!(
        tree.stat(&p("part2/nope")),
        Err(TreeError::NotFound(_))
    ));
    assert!(matches!(
        tree.read_dir(&p("part1.img"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.stat(&p("part1.img/x")),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("part2")),
        Err(TreeError::IsADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("part2/sub")),
        Err(TreeError::IsADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("part1/sub")),
        Err(TreeError::IsADirectory(_))
    ));
    assert!(matches!(
        tree.read_dir(&p("part2/hello.txt"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.read_dir(&p("part1/hello.txt"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.read_link(&p("part2/hello.txt")),
        Err(TreeError::WrongKind(_))
    ));
    assert!(matches!(
        tree.read_link(&p("disk.img")),
        Err(TreeError::WrongKind(_))
    ));
}

#[test]
fn a_gpt_disk_and_whole_disk_file_systems() {
    let dir = images(false);
    let tree = ram_tree(std::fs::read(dir.join("gpt.img")).unwrap());
    assert_eq!(
        names(&tree, &TreePath::root()),
        [
            "disk.img",
            "part1.img",
            "part1",
            "part2.img",
            "part2",
            "part3.img",
            "part4.img",
            "part4"
        ]
    );
    assert_eq!(tree.stat(&p("part3.img")).unwrap().size, 4 << 20);
    compare(&tree, &p("part1"), &dir.join("src-fat"), Fs::Fat);
    compare(&tree, &p("part2"), &dir.join("src"), Fs::Ext4);
    compare(&tree, &p("part4"), &dir.join("src-ntfs"), Fs::Ntfs);

    for (img, fs, src) in [
        ("fat.img", Fs::Fat, "src-fat"),
        ("ext4.img", Fs::Ext4, "src"),
        ("ntfs.img", Fs::Ntfs, "src-ntfs"),
    ] {
        let tree = ram_tree(std::fs::read(dir.join(img)).unwrap());
        assert_eq!(names(&tree, &TreePath::root()), ["disk.img", "fs"], "{img}");
        compare(&tree, &p("fs"), &dir.join(src), fs);
    }
}

#[test]
fn files_read_from_many_threads_at_once() {
    let dir = images(false);
    let tree: Arc<dyn FileTree> = Arc::new(ram_tree(std::fs::read(dir.join("mbr.img")).unwrap()));
    let want = std::fs::read(dir.join("src/random5m.bin")).unwrap();
    let want = Arc::new(want);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let tree = tree.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                let part = ["part1", "part2", "part5", "part4"][t];
                // NTFS holds the first 3 MiB as random3m.bin.
                let (file, len) = match part {
                    "part4" => ("random3m.bin", 3 << 20),
                    _ => ("random5m.bin", want.len() as u64),
                };
                let f = tree.open(&p(&format!("{part}/{file}"))).unwrap();
                assert_eq!(f.size(), len);
                let mut b = vec![0u8; 65_536];
                for i in 0..40u64 {
                    let off = (i * 131_071 + t as u64 * 7) % (len - 65_536);
                    assert_eq!(f.read_at(off, &mut b).unwrap(), b.len());
                    assert!(b[..] == want[off as usize..off as usize + b.len()]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_100k_entry_ext4_directory_lists_streaming_and_resumes() {
    let dir = images(true);
    let tree = ram_tree(std::fs::read(dir.join("bigdir.img")).unwrap());
    big_listing(&tree);
}

#[test]
fn a_100k_entry_ntfs_directory_lists_streaming_and_resumes() {
    let dir = images(true);
    let tree = ram_tree(std::fs::read(dir.join("bigntfs.img")).unwrap());
    big_listing(&tree);
    // The index is a B-tree: names come sorted.
    let mut prev = Vec::new();
    tree.read_dir(&p("fs/big"), 0, &mut |e| {
        assert!(e.name > prev);
        prev = e.name;
        true
    })
    .unwrap();
}

/// `fs/big` of `tree` holds [`big_entries`] files: listed one at a time,
/// resumed at a position.
fn big_listing(tree: &ImageTree) {
    let n = big_entries();
    let half = n / 2;
    let mut count = 0u64;
    let mut first = Vec::new();
    tree.read_dir(&p("fs/big"), 0, &mut |e| {
        if count < 3 {
            first.push(e.name);
        }
        assert_eq!(e.attr.kind, Kind::File);
        count += 1;
        true
    })
    .unwrap();
    assert_eq!(count, n);
    // Resume at a position: the entries from there, in the same order.
    let mut all = Vec::new();
    tree.read_dir(&p("fs/big"), 0, &mut |e| {
        all.push(e.name);
        all.len() < half as usize + 10
    })
    .unwrap();
    let mut resumed = Vec::new();
    tree.read_dir(&p("fs/big"), half, &mut |e| {
        resumed.push(e.name);
        resumed.len() < 10
    })
    .unwrap();
    assert_eq!(resumed[..], all[half as usize..half as usize + 10]);
    assert_eq!(first[..], all[..3]);
    let mut past = 0;
    tree.read_dir(&p("fs/big"), n, &mut |_| {
        past += 1;
        true
    })
    .unwrap();
    assert_eq!(past, 0);
}

/// Walk everything under `path`, reading every file; errors are fine,
/// panics are not. Returns the number of errors.
fn walk(tree: &dyn FileTree, path: &TreePath, depth: usize) -> usize {
    let mut errors = 0;
    let mut children = Vec::new();
    if tree
        .read_dir(path, 0, &mut |e| {
            children.push(e);
            children.len() < 200
        })
        .is_err()
    {
        return 1;
    }
    for e in children {
        let Ok(c) = path.join(&e.name) else {
            errors += 1;
            continue;
        };
        match e.attr.kind {
            Kind::Dir if depth < 8 => errors += walk(tree, &c, depth + 1),
            Kind::File => match tree.open(&c) {
                Ok(f) => {
                    let mut b = vec![0u8; 1 << 20];
                    if f.read_at(0, &mut b).is_err() {
                        errors += 1;
                    }
                }
                Err(_) => errors += 1,
            },
            Kind::Symlink => errors += tree.read_link(&c).is_err() as usize,
            _ => {}
        }
        errors += tree.stat(&c).is_err() as usize;
    }
    errors
}

#[test]
fn damaged_tables_and_file_systems_fail_alone() {
    let dir = images(false);
    let mbr = std::fs::read(dir.join("mbr.img")).unwrap();
    let mib = 1usize << 20;

    // A damaged MBR: only the disk.
    let mut d = mbr.clone();
    d[510] = 0;
    assert_eq!(names(&ram_tree(d), &TreePath::root()), ["disk.img"]);
    // A partition at sector 0 (mbrman panics on a table whose used
    // entries all start there): only the disk.
    let mut d = mbr.clone();
    for e in 0..4 {
        d[446 + 16 * e + 8..446 + 16 * e + 12].fill(0);
    }
    assert_eq!(names(&ram_tree(d), &TreePath::root()), ["disk.img"]);
    // Both GPT headers damaged: only the disk.
    let mut d = std::fs::read(dir.join("gpt.img")).unwrap();
    d[512 + 20] ^= 0xFF;
    let last = d.len() - 512;
    d[last + 20] ^= 0xFF;
    assert_eq!(names(&ram_tree(d), &TreePath::root()), ["disk.img"]);
    // The primary GPT header damaged: the backup is read.
    let mut d = std::fs::read(dir.join("gpt.img")).unwrap();
    d[512 + 20] ^= 0xFF;
    assert_eq!(names(&ram_tree(d), &TreePath::root()).len(), 8);

    // The ext4 superblock damaged (its magic kept): part1/ fails with Io,
    // the other partitions and the .img files still read.
    let mut d = mbr.clone();
    for b in &mut d[mib + 1024..mib + 1024 + 56] {
        *b ^= 0x5A;
    }
    let tree = ram_tree(d);
    assert!(matches!(
        tree.read_dir(&p("part1"), 0, &mut |_| true),
        Err(TreeError::Io(_))
    ));
    assert!(matches!(
        tree.stat(&p("part1/hello.txt")),
        Err(TreeError::Io(_))
    ));
    assert_eq!(tree.stat(&p("part1.img")).unwrap().size, 24 << 20);
    compare(&tree, &p("part2"), &dir.join("src-fat"), Fs::Fat);

    // The FAT32 boot sector damaged: part2/ fails, part1/ reads.
    let mut d = mbr.clone();
    d[25 * mib + 11] = 3; // bytes per sector
    d[25 * mib + 13] = 0; // sectors per cluster
    let tree = ram_tree(d);
    // No longer recognised as FAT: part2/ is gone, part2.img stays.
    assert!(matches!(
        tree.stat(&p("part2")),
        Err(TreeError::NotFound(_))
    ));
    assert!(tree.stat(&p("part2.img")).is_ok());
    compare(&tree, &p("part1"), &dir.join("src"), Fs::Ext4);

    // Damage inside the file systems (group descriptors and inode table
    // of ext4, the FATs and root directory of FAT32, then every 4 KiB
    // block by turns): errors for what is damaged, never a panic, and
    // the undamaged file system beside it still compares equal.
    let mut d = mbr.clone();
    for b in &mut d[mib + 4096..mib + 4096 + 64] {
        *b ^= 0xA5; // ext4 group descriptors
    }
    let tree = ram_tree(d);
    walk(&tree, &TreePath::root(), 0);
    compare(&tree, &p("part5"), &dir.join("src-fat"), Fs::Fat);

    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..24 {
        let mut d = mbr.clone();
        // Bytes flipped in the first 2 MiB of the ext4 and FAT32
        // partitions (their metadata), a different pattern each round.
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = if round % 2 == 0 { mib } else { 25 * mib };
            let off = base + (x as usize % (2 * mib));
            d[off] ^= (x >> 32) as u8 | 1;
        }
        let tree = ram_tree(d);
        walk(&tree, &TreePath::root(), 0);
        let f = tree.open(&p("part6/twelve.txt")).unwrap();
        assert_eq!(read_all(&*f), b"twelve\n");
    }

    // The FATs of the FAT16 partition zeroed: its root (not in the FAT)
    // lists, a file's data fails with Io, the other partitions read.
    let mut d = mbr.clone();
    let boot = 66 * mib;
    let reserved = u16::from_le_bytes([d[boot + 14], d[boot + 15]]) as usize;
    let fat_sectors = u16::from_le_bytes([d[boot + 22], d[boot + 23]]) as usize;
    let fats = d[boot + 16] as usize;
    let fat_start = boot + reserved * 512;
    d[fat_start..fat_start + fats * fat_sectors * 512].fill(0);
    let tree = ram_tree(d);
    assert!(names(&tree, &p("part5")).contains(&"random5m.bin".to_string()));
    let f = tree.open(&p("part5/random5m.bin")).unwrap();
    let mut b = vec![0u8; 1 << 20];
    assert!(matches!(f.read_at(2 << 20, &mut b), Err(TreeError::Io(_))));
    let f = tree.open(&p("part2/random5m.bin")).unwrap();
    assert_eq!(
        read_all(&*f),
        std::fs::read(dir.join("src/random5m.bin")).unwrap()
    );
}

#[test]
fn ntfs_files_links_and_holes() {
    let dir = images(false);
    let tree = ram_tree(std::fs::read(dir.join("ntfs.img")).unwrap());
    let src = dir.join("src-ntfs");
    // System files are hidden, even when asked for by name; so is the DOS
    // name of "with space.txt".
    let root = names(&tree, &p("fs"));
    assert!(
        !root.iter().any(|n| n.starts_with('$') || n == "."),
        "{root:?}"
    );
    assert!(root.contains(&"ntfs-only".to_string()), "{root:?}");
    for hidden in ["fs/$MFT", "fs/$Bitmap", "fs/$Extend", "fs/WITHSP~1.TXT"] {
        assert!(
            matches!(tree.stat(&p(hidden)), Err(TreeError::NotFound(_))),
            "{hidden}"
        );
    }
    let a = tree.stat(&p("fs/with space.txt")).unwrap();
    assert_eq!((a.kind, a.size, a.nlink), (Kind::File, 6, 1));
    // Names are exact: no case-insensitive match.
    assert!(matches!(
        tree.stat(&p("fs/HELLO.TXT")),
        Err(TreeError::NotFound(_))
    ));

    // A hard link: one file record, the same inode number, two names.
    let a = tree.stat(&p("fs/hello.txt")).unwrap();
    let b = tree.stat(&p("fs/hardlink.txt")).unwrap();
    assert!(a.ino >= 16, "{}", a.ino);
    assert_eq!((a.ino, a.nlink, b.nlink), (b.ino, 2, 2));
    assert_ne!(a.ino, tree.stat(&p("fs/empty")).unwrap().ino);
    // Times: 100 ns since 1601 to ns since 1970 (touch -d 2024-05-06
    // 07:08:10 UTC).
    assert_eq!(a.mtime_ns, 1_714_979_290 * 1_000_000_000);
    assert_eq!(a.atime_ns, 1_714_979_290 * 1_000_000_000);
    assert!(a.ctime_ns > a.mtime_ns);
    // The read-only attribute.
    assert_eq!(tree.stat(&p("fs/readonly.txt")).unwrap().mode, 0o444);
    assert_eq!(tree.stat(&p("fs/sub")).unwrap().mode, 0o755);

    // Links: the Windows symlink (a reparse point) and ntfs-3g's Interix
    // symlink.
    assert_eq!(
        tree.read_link(&p("fs/winlink")).unwrap(),
        b"sub/deeper/deep.txt"
    );
    assert_eq!(tree.read_link(&p("fs/fastlink")).unwrap(), b"hello.txt");
    // A junction: a directory shown as a symlink to its print name.
    let a = tree.stat(&p("fs/ntfs-only/junction")).unwrap();
    assert_eq!((a.kind, a.size, a.mode), (Kind::Symlink, 8, 0o777));
    assert_eq!(
        tree.read_link(&p("fs/ntfs-only/junction")).unwrap(),
        b"C:/Users"
    );
    assert!(matches!(
        tree.read_dir(&p("fs/ntfs-only/junction"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("fs/ntfs-only/junction")),
        Err(TreeError::WrongKind(_))
    ));
    assert!(matches!(
        tree.open(&p("fs/winlink")),
        Err(TreeError::WrongKind(_))
    ));

    // The sparse file: zeros in the holes, its data at 4 MiB.
    let f = tree.open(&p("fs/sparse.bin")).unwrap();
    assert_eq!(f.size(), 8 << 20);
    let mut b = vec![1u8; 65_536];
    assert_eq!(f.read_at(1 << 20, &mut b).unwrap(), b.len());
    assert!(b.iter().all(|&x| x == 0));
    let mut b = vec![1u8; 20];
    assert_eq!(f.read_at((4 << 20) - 3, &mut b).unwrap(), 20);
    assert_eq!(&b[..], b"\0\0\0in the middle\0\0\0\0");
    assert_eq!(
        read_all(&*f),
        std::fs::read(src.join("sparse.bin")).unwrap()
    );
    // Small (resident) and large (non-resident) files, read in pieces.
    let f = tree.open(&p("fs/日本/名前.txt")).unwrap();
    assert_eq!(read_all(&*f), b"nihon\n");
    let f = tree.open(&p("fs/random3m.bin")).unwrap();
    let want = std::fs::read(src.join("random3m.bin")).unwrap();
    let mut b = vec![0u8; 12_345];
    assert_eq!(f.read_at(1_000_001, &mut b).unwrap(), b.len());
    assert!(b[..] == want[1_000_001..1_000_001 + b.len()]);
    assert_eq!(f.read_at(want.len() as u64 - 10, &mut b).unwrap(), 10);
    assert_eq!(f.read_at(want.len() as u64, &mut b).unwrap(), 0);
    let f = tree.open(&p("fs/it's \"odd\" name.txt")).unwrap();
    assert_eq!(read_all(&*f), b"odd\n");

    // A compressed file: listed with its size, its data an Io error that
    // says why.
    let a = tree.stat(&p("fs/ntfs-only/packed/c.txt")).unwrap();
    assert_eq!((a.kind, a.size), (Kind::File, 200_000));
    let f = tree.open(&p("fs/ntfs-only/packed/c.txt")).unwrap();
    match f.read_at(0, &mut b) {
        Err(TreeError::Io(m)) => assert!(m.contains("compressed"), "{m}"),
        r => panic!("{r:?}"),
    }

    // Listings resume at a position.
    let all = names(&tree, &p("fs"));
    let mut from3 = Vec::new();
    tree.read_dir(&p("fs"), 3, &mut |e| {
        from3.push(String::from_utf8(e.name).unwrap());
        true
    })
    .unwrap();
    assert_eq!(from3[..], all[3..]);

    // Errors.
    assert!(matches!(
        tree.read_dir(&p("fs/hello.txt"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.stat(&p("fs/hello.txt/x")),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(
        tree.open(&p("fs/sub")),
        Err(TreeError::IsADirectory(_))
    ));
    assert!(matches!(
        tree.read_link(&p("fs/hello.txt")),
        Err(TreeError::WrongKind(_))
    ));
}

#[test]
fn damaged_ntfs_fails_alone() {
    let dir = images(false);
    let mbr = std::fs::read(dir.join("mbr.img")).unwrap();
    let mib = 1usize << 20;
    let base = 90 * mib;
    let boot = &mbr[base..base + 512];
    let cluster = u16::from_le_bytes([boot[11], boot[12]]) as usize * boot[13] as usize;
    let mft = base + u64::from_le_bytes(boot[48..56].try_into().unwrap()) as usize * cluster;

    // The boot sector's geometry damaged: part4/ fails with Io, the other
    // partitions read.
    let mut d = mbr.clone();
    d[base + 11] = 3;
    let tree = ram_tree(d);
    assert!(matches!(
        tree.read_dir(&p("part4"), 0, &mut |_| true),
        Err(TreeError::Io(_))
    ));
    assert!(matches!(
        tree.stat(&p("part4/hello.txt")),
        Err(TreeError::Io(_))
    ));
    assert!(tree.stat(&p("part4.img")).is_ok());
    compare(&tree, &p("part2"), &dir.join("src-fat"), Fs::Fat);

    // The MFT's records damaged (bytes flipped in its first 128 records,
    // then anywhere in the volume, a different pattern each round):
    // errors, never a panic; the other partitions read.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut errors = 0;
    for round in 0..24 {
        let mut d = mbr.clone();
        for _ in 0..48 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = if round % 3 == 2 {
                base + (x as usize % (16 * mib))
            } else {
                mft + (x as usize % (128 * 1024))
            };
            d[off] ^= (x >> 32) as u8 | 1;
        }
        let tree = ram_tree(d);
        errors += walk(&tree, &p("part4"), 0);
        let f = tree.open(&p("part6/twelve.txt")).unwrap();
        assert_eq!(read_all(&*f), b"twelve\n");
    }
    assert!(errors > 0);
    // Whole records zeroed: the root's ($MFT record 5) and a file's.
    let mut d = mbr.clone();
    d[mft + 5 * 1024..mft + 6 * 1024].fill(0);
    let tree = ram_tree(d);
    assert!(matches!(
        tree.read_dir(&p("part4"), 0, &mut |_| true),
        Err(TreeError::Io(_))
    ));
    compare(&tree, &p("part1"), &dir.join("src"), Fs::Ext4);
    let ino = ram_tree(mbr.clone())
        .stat(&p("part4/random3m.bin"))
        .unwrap()
        .ino as usize;
    let mut d = mbr.clone();
    d[mft + ino * 1024..mft + (ino + 1) * 1024].fill(0);
    let tree = ram_tree(d);
    assert!(matches!(
        tree.stat(&p("part4/random3m.bin")),
        Err(TreeError::Io(_))
    ));
    assert!(matches!(
        tree.open(&p("part4/random3m.bin")),
        Err(TreeError::Io(_))
    ));
    // Still listed, with what the directory's index says of it.
    let mut listed = None;
    tree.read_dir(&p("part4"), 0, &mut |e| {
        if e.name == b"random3m.bin" {
            listed = Some(e.attr);
        }
        true
    })
    .unwrap();
    let a = listed.unwrap();
    assert_eq!((a.kind, a.ino as usize), (Kind::File, ino));
    let f = tree.open(&p("part4/hello.txt")).unwrap();
    assert_eq!(read_all(&*f), b"hello\n");
}

/// A reparse buffer: `tag`, then `data`.
fn reparse(tag: u32, data: &[u8]) -> Vec<u8> {
    let mut b = tag.to_le_bytes().to_vec();
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(data);
    b
}

/// Symlink (flags: Some) or junction (None) data: substitute name, then
/// print name.
fn link_data(sub: &str, print: &str, flags: Option<u32>) -> Vec<u8> {
    let u = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|c| c.to_le_bytes()).collect() };
    let (sub, print) = (u(sub), u(print));
    let mut d = Vec::new();
    for v in [0, sub.len(), sub.len(), print.len()] {
        d.extend_from_slice(&(v as u16).to_le_bytes());
    }
    if let Some(f) = flags {
        d.extend_from_slice(&f.to_le_bytes());
    }
    d.extend_from_slice(&sub);
    d.extend_from_slice(&print);
    d
}

#[test]
fn ntfs_reparse_points_and_interix_links() {
    use super::ntfs::{interix_target, reparse_target};
    // Relative symlink: the substitute name, '\' as '/'.
    let b = reparse(
        0xA000_000C,
        &link_data("..\\a\\b.txt", "..\\a\\b.txt", Some(1)),
    );
    assert_eq!(reparse_target(&b).unwrap(), b"../a/b.txt");
    // Absolute symlink and junction: the print name.
    let b = reparse(
        0xA000_000C,
        &link_data("\\??\\C:\\Users\\ann", "C:\\Users\\ann", Some(0)),
    );
    assert_eq!(reparse_target(&b).unwrap(), b"C:/Users/ann");
    let b = reparse(0xA000_0003, &link_data("\\??\\D:\\data", "D:\\data", None));
    assert_eq!(reparse_target(&b).unwrap(), b"D:/data");
    // A junction without a print name: the substitute name, prefix gone.
    let b = reparse(0xA000_0003, &link_data("\\??\\D:\\data", "", None));
    assert_eq!(reparse_target(&b).unwrap(), b"D:/data");
    // WSL: a version, then UTF-8.
    let b = reparse(0xA000_001D, b"\x02\0\0\0../lib/x.so");
    assert_eq!(reparse_target(&b).unwrap(), b"../lib/x.so");
    // Other tags, truncated or lying lengths, empty targets: not links.
    assert!(reparse_target(&reparse(0x8000_0013, b"dedup")).is_none());
    let good = reparse(0xA000_000C, &link_data("a", "a", Some(1)));
    for n in 0..good.len() {
        assert!(reparse_target(&good[..n]).is_none(), "{n}");
    }
    let mut lying = good.clone();
    lying[10] = 0xFF; // substitute name length
    assert!(reparse_target(&lying).is_none());
    assert!(reparse_target(&reparse(0xA000_000C, &link_data("", "", Some(1)))).is_none());
    // Interix: `IntxLNK\1` and UTF-16.
    let mut b = b"IntxLNK\x01".to_vec();
    b.extend("日本/x".encode_utf16().flat_map(|c| c.to_le_bytes()));
    assert_eq!(interix_target(&b).unwrap(), "日本/x".as_bytes());
    assert!(interix_target(b"IntxLNK\x01").is_none());
    assert!(interix_target(b"IntxLNK\x01a").is_none());
    assert!(interix_target(b"IntxCHR\x01ab").is_none());
    assert!(interix_target(b"IntxLNK\x01a\0\0\0").is_none());
    assert!(reparse_target(&reparse(0xA000_001D, b"\x02\0\0\0a\0b")).is_none());
}

/// Make the leaf index records (`INDX`) of `img` loop: each one's last
/// entry gets a subnode, the record itself. Returns how many were.
fn loop_index_records(img: &mut [u8]) -> usize {
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    let mut n = 0;
    for off in (0..img.len() - 4096).step_by(4096) {
        if &img[off..off + 4] != b"INDX" {
            continue;
        }
        let mut rec = img[off..off + 4096].to_vec();
        // Undo the update sequence (the last 2 bytes of each sector).
        let (usa, count) = (u16_at(&rec, 4), u16_at(&rec, 6));
        let usn = [rec[usa], rec[usa + 1]];
        for i in 1..count {
            let end = i * 512 - 2;
            assert_eq!(rec[end..end + 2], usn);
            rec[end] = rec[usa + 2 * i];
            rec[end + 1] = rec[usa + 2 * i + 1];
        }
        let vcn = rec[0x10..0x18].to_vec();
        let (first, len, alloc) = (u32_at(&rec, 0x18), u32_at(&rec, 0x1C), u32_at(&rec, 0x20));
        let mut p = 0x18 + first;
        while rec[p + 12] & 2 == 0 {
            p += u16_at(&rec, p + 8);
        }
        if rec[p + 12] & 1 != 0 || len + 8 > alloc {
            continue;
        }
        rec[p + 8] = 24;
        rec[p + 12] |= 1;
        rec[p + 16..p + 24].copy_from_slice(&vcn);
        rec[0x1C..0x20].copy_from_slice(&((len + 8) as u32).to_le_bytes());
        for i in 1..count {
            let end = i * 512 - 2;
            rec[usa + 2 * i] = rec[end];
            rec[usa + 2 * i + 1] = rec[end + 1];
            rec[end..end + 2].copy_from_slice(&usn);
        }
        img[off..off + 4096].copy_from_slice(&rec);
        n += 1;
    }
    n
}

#[test]
fn a_looping_ntfs_index_is_an_error_not_a_hang() {
    let dir = images(false);
    let mut d = std::fs::read(dir.join("ntfs.img")).unwrap();
    // The root directory's entries fill one index record.
    assert!(loop_index_records(&mut d) > 0);
    let tree = ram_tree(d);
    let mut listed = 0;
    let r = tree.read_dir(&p("fs"), 0, &mut |_| {
        listed += 1;
        true
    });
    match r {
        Err(TreeError::Io(m)) => assert!(m.contains("out of order"), "{m}"),
        r => panic!("{r:?} after {listed} entries"),
    }
    // A name past the record's last: the lookup descends into the loop.
    assert!(matches!(tree.stat(&p("fs/zzz")), Err(TreeError::Io(_))));
    // What the index root finds still reads.
    let f = tree.open(&p("fs/hello.txt")).unwrap();
    assert_eq!(read_all(&*f), b"hello\n");
}

fn datastore(path: &Path, small_chunks: bool) -> Arc<arca_repo::Datastore> {
    use arca_repo::{Datastore, Encryption, OpenOptions};
    if !path.exists() {
        Datastore::init(path, Encryption::None, None, |c| {
            if small_chunks {
                c.chunker.min_size = 16 << 10;
                c.chunker.avg_size = 64 << 10;
                c.chunker.max_size = 256 << 10;
            }
        })
        .unwrap();
    }
    Datastore::open(path, &OpenOptions::default()).unwrap()
}

fn back_up_image(ds: &Arc<arca_repo::Datastore>, image: &Path) -> arca_repo::Snapshot {
    let out = arca_ingest::image::backup(
        ds,
        image,
        &arca_ingest::image::ImageOptions {
            source: "img".into(),
            ..Default::default()
        },
        &arca_ingest::Progress::default(),
    )
    .unwrap();
    ds.load_snapshot(&out.snapshot).unwrap()
}

#[test]
fn an_image_restore_point_in_a_datastore_shows_its_files() {
    let dir = images(false);
    let tmp = tempfile::tempdir().unwrap();
    let ds = datastore(&tmp.path().join("ds"), true);
    let snap = back_up_image(&ds, &dir.join("mbr.img"));
    let tree = crate::tree::open_tree(ds, &snap, crate::reader::chunk_cache(64 << 20)).unwrap();
    assert_eq!(names(&*tree, &TreePath::root()).len(), 11);
    compare(&*tree, &p("part1"), &dir.join("src"), Fs::Ext4);
    compare(&*tree, &p("part2"), &dir.join("src-fat"), Fs::Fat);
    assert_eq!(
        tree.stat(&TreePath::root()).unwrap().mtime_ns,
        snap.manifest.time_ns
    );
}

#[test]
fn a_closed_image_tree_leaves_no_thread_holding_the_datastore() {
    let dir = images(false);
    let tmp = tempfile::tempdir().unwrap();
    let ds = datastore(&tmp.path().join("ds"), true);
    let snap = back_up_image(&ds, &dir.join("mbr.img"));
    let tree =
        crate::tree::open_tree(ds.clone(), &snap, crate::reader::chunk_cache(64 << 20)).unwrap();
    // A sequential read of 5 MiB of 64 KiB chunks keeps the read-ahead busy.
    let f = tree.open(&p("part2/random5m.bin")).unwrap();
    assert_eq!(read_all(&*f).len(), 5 << 20);
    drop(f);
    drop(tree);
    // The read-ahead threads are joined: none holds the datastore (a
    // process exiting while one is inside RocksDB aborts).
    assert_eq!(Arc::strong_count(&ds), 1);
}

/// Time to first byte and throughput from a 1 GiB ext4 image restore
/// point (docs/benchmarks/2026-12-03-img.md). By hand:
/// `ARCA_IMG_BENCH=/tmp/imgbench cargo test --release --workspace --lib
/// image_bench -- --ignored --nocapture`; the first run builds the image
/// and backs it up, later runs (after dropping the page cache) measure a
/// cold process.
#[test]
#[ignore = "benchmark, run by hand"]
fn image_bench() {
    use std::time::Instant;
    let Ok(base) = std::env::var("ARCA_IMG_BENCH") else {
        return;
    };
    let base = PathBuf::from(base);
    let ds_path = base.join("ds");
    if !ds_path.exists() {
        std::fs::create_dir_all(base.join("src")).unwrap();
        let big = base.join("src/big.bin");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "head -c 536870912 /dev/urandom > {0} && printf hello > {1}/small.txt && \
                 truncate -s 1G {2} && mkfs.ext4 -q -F -b 4096 -d {1} {2}",
                big.display(),
                base.join("src").display(),
                base.join("ext4.img").display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        let ds = datastore(&ds_path, false);
        let t = Instant::now();
        let snap = back_up_image(&ds, &base.join("ext4.img"));
        eprintln!("backup of the 1 GiB image: {:?}", t.elapsed());
        std::fs::write(base.join("snapshot"), snap.id.to_hex()).unwrap();
    }
    let t = Instant::now();
    let ds = datastore(&ds_path, false);
    let id = arca_repo::SnapshotId::from_hex(
        std::fs::read_to_string(base.join("snapshot"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let snap = ds.load_snapshot(&id).unwrap();
    let tree = crate::tree::open_tree(ds, &snap, crate::reader::chunk_cache(256 << 20)).unwrap();
    let f = tree.open(&p("fs/small.txt")).unwrap();
    let mut b = [0u8; 5];
    assert_eq!(f.read_at(0, &mut b).unwrap(), 5);
    assert_eq!(&b, b"hello");
    eprintln!(
        "time to first byte of fs/small.txt (datastore open included): {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let f = tree.open(&p("fs/big.bin")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    let mut h = blake3::Hasher::new();
    while off < f.size() {
        let n = f.read_at(off, &mut buf).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "read fs/big.bin: {off} bytes in {secs:.2} s = {:.1} MB/s (blake3 {})",
        off as f64 / secs / 1e6,
        h.finalize()
    );
}
