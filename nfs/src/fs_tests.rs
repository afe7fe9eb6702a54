//! The NFS file system over a real backup: names, attributes, contents,
//! paging, errors, handles across a restart, allow lists.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::os::unix::fs::symlink;
use std::path::Path;

use arca_frontends::tree::Trees;
use arca_ingest::files::{self, FilesOptions};
use arca_ingest::Progress;
use arca_repo::{Datastore, Encryption, OpenOptions};
use nfsserve::nfs::nfsstat3;

use super::*;
use crate::namespace::{Cidr, DatastoreNamespace};

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

fn backup(ds: &Arc<Datastore>, src: &Path) -> arca_repo::SnapshotId {
    files::backup(
        ds,
        src,
        &FilesOptions {
            source: "web01".into(),
            ..Default::default()
        },
        &Progress::default(),
    )
    .unwrap()
    .snapshot
}

const LOCAL: &str = "127.0.0.1";

fn view(ds: &Arc<Datastore>, state: &Path, client: &str) -> ArcaFs {
    let trees = Arc::new(Trees::new(arca_frontends::chunk_cache(16 << 20), 8));
    let ns = Arc::new(DatastoreNamespace::new(
        ds.clone(),
        trees,
        vec![Cidr::parse("127.0.0.1/32").unwrap()],
    ));
    let table = Arc::new(HandleTable::open(state).unwrap());
    ArcaFs::new(ns, table, client.parse::<IpAddr>().unwrap())
}

fn name(s: &str) -> filename3 {
    nfsstring(s.as_bytes().to_vec())
}

async fn walk(fs: &ArcaFs, path: &str) -> Result<u64, nfsstat3> {
    fs.path_to_id(path.as_bytes()).await
}

async fn list_all(fs: &ArcaFs, dir: u64, page: usize) -> Vec<(String, fattr3)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let r = fs.readdir(dir, after, page).await.unwrap();
        assert!(r.entries.len() <= page);
        for e in &r.entries {
            out.push((String::from_utf8(e.name.0.clone()).unwrap(), e.attr));
            after = e.fileid;
        }
        if r.end {
            return out;
        }
        assert!(
            !r.entries.is_empty(),
            "a page without entries that is not the end"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_point_reads_over_the_nfs_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let big: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    symlink("../big.bin", src.join("sub/link")).unwrap();
    for i in 0..250 {
        std::fs::write(src.join(format!("sub/f{i:04}")), format!("{i}")).unwrap();
    }
    let snap = backup(&ds, &src);
    let state = dir.path().join("state");
    let fs = view(&ds, &state, LOCAL);

    // The root lists the source; the source its point and `latest`.
    let root = list_all(&fs, ROOT_ID, 10).await;
    assert_eq!(
        root.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["web01"]
    );
    let source = walk(&fs, "/web01").await.unwrap();
    let points = list_all(&fs, source, 10).await;
    let names: Vec<_> = points.iter().map(|e| e.0.clone()).collect();
    assert_eq!(names, [snap.to_hex(), "latest".to_string()]);

    // Attributes come from the tree.
    let big_id = walk(&fs, &format!("/web01/{}/big.bin", snap.to_hex()))
        .await
        .unwrap();
    let a = fs.getattr(big_id).await.unwrap();
    let meta = std::fs::metadata(src.join("big.bin")).unwrap();
    assert_eq!(a.size, big.len() as u64);
    assert!(matches!(a.ftype, ftype3::NF3REG));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(a.mode, meta.mode() & 0o7777);
    assert_eq!(a.uid, meta.uid());
    assert_eq!(a.mtime.seconds as i64, meta.mtime());
    assert_eq!(a.mtime.nseconds as i64, meta.mtime_nsec());
    assert_eq!(a.fileid, big_id);

    // Contents, in odd-sized reads, with EOF on the last.
    let mut got = Vec::new();
    loop {
        let (b, eof) = fs.read(big_id, got.len() as u64, 65_537).await.unwrap();
        got.extend_from_slice(&b);
        if eof {
            break;
        }
        assert!(!b.is_empty());
    }
    assert_eq!(got, big);
    let (b, eof) = fs.read(big_id, 10 << 20, 10).await.unwrap();
    assert!(b.is_empty() && eof, "past the end");
    let empty = walk(&fs, "/web01/latest/empty").await.unwrap();
    assert_eq!(fs.read(empty, 0, 100).await.unwrap(), (Vec::new(), true));

    // `latest` is the same tree; a symlink reads as its target.
    let link = walk(&fs, "/web01/latest/sub/link").await.unwrap();
    assert_eq!(fs.readlink(link).await.unwrap().0, b"../big.bin");
    assert!(matches!(
        fs.getattr(link).await.unwrap().ftype,
        ftype3::NF3LNK
    ));

    // A 250-entry directory in pages of 7: every entry once, in order.
    let sub = walk(&fs, "/web01/latest/sub").await.unwrap();
    let all = list_all(&fs, sub, 7).await;
    let mut expect: Vec<String> = (0..250).map(|i| format!("f{i:04}")).collect();
    expect.push("link".into());
    let mut names: Vec<String> = all.iter().map(|e| e.0.clone()).collect();
    names.sort();
    assert_eq!(names, expect);
    let f7 = all.iter().find(|e| e.0 == "f0007").unwrap();
    assert_eq!(f7.1.size, 1);

    // Errors.
    assert_eq!(
        fs.lookup(sub, &name("nope")).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_NOENT as u32
    );
    assert_eq!(
        fs.read(sub, 0, 10).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ISDIR as u32
    );
    assert_eq!(
        fs.lookup(big_id, &name("x")).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_NOTDIR as u32
    );
    assert_eq!(
        fs.write(big_id, 0, b"x").await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ROFS as u32
    );
    assert_eq!(
        fs.remove(sub, &name("f0001")).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ROFS as u32
    );
    assert_eq!(
        fs.mkdir(sub, &name("d")).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ROFS as u32
    );

    // Handles: a forged one is refused, a real one survives a restart of
    // the server (a new table read from the state directory), without a
    // lookup first.
    let fh = fs.id_to_fh(big_id);
    let mut forged = fh.clone();
    forged.data[3] ^= 0x40;
    assert_eq!(
        fs.fh_to_id(&forged).unwrap_err() as u32,
        nfsstat3::NFS3ERR_BADHANDLE as u32
    );
    let sub_fh = fs.id_to_fh(sub);
    drop(fs);
    let fs = view(&ds, &state, LOCAL);
    let id = fs.fh_to_id(&fh).unwrap();
    assert_eq!(fs.getattr(id).await.unwrap().size, big.len() as u64);
    let (b, _) = fs.read(id, 1000, 100).await.unwrap();
    assert_eq!(b, big[1000..1100]);
    // A listing resumed from a cookie of before the restart.
    let sub = fs.fh_to_id(&sub_fh).unwrap();
    let first = fs.readdir(sub, 0, 5).await.unwrap();
    let cookie = first.entries[4].fileid;
    drop(fs);
    let fs = view(&ds, &state, LOCAL);
    let rest = fs.readdir(sub, cookie, 3).await.unwrap();
    let names: Vec<_> = rest.entries.iter().map(|e| e.name.0.clone()).collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names[0], all[5].0.as_bytes());
    assert_eq!(names[2], all[7].0.as_bytes());

    // Another client address sees nothing and reads nothing.
    let other = view(&ds, &state, "127.0.0.2");
    assert!(list_all(&other, ROOT_ID, 10).await.is_empty());
    assert_eq!(
        other.getattr(id).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ACCES as u32
    );
    assert_eq!(
        other.read(id, 0, 10).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ACCES as u32
    );
    assert!(other.path_to_id(b"/web01").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_show_only_to_their_allow_lists_and_end_with_them() {
    use crate::namespace::{ExportsNamespace, NfsExport};
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"one").unwrap();
    let first = backup(&ds, &src);
    std::fs::write(src.join("a.txt"), b"two!").unwrap();
    let second = backup(&ds, &src);
    let time = |id: &arca_repo::SnapshotId| ds.load_snapshot(id).unwrap().manifest.time_ns;
    let trees = Arc::new(Trees::new(arca_frontends::chunk_cache(16 << 20), 8));
    let ns = Arc::new(ExportsNamespace::new(trees));
    let export = |snap: arca_repo::SnapshotId, allow: &str| NfsExport {
        source: "web01".into(),
        snap,
        time_ns: time(&snap),
        ds: ds.clone(),
        allow: vec![Cidr::parse(allow).unwrap()],
    };
    ns.set(vec![
        export(first, "127.0.0.1"),
        export(second, "10.0.0.0/8"),
    ]);
    let table = Arc::new(HandleTable::in_memory().unwrap());
    let local = ArcaFs::new(ns.clone(), table.clone(), LOCAL.parse().unwrap());
    let lan = ArcaFs::new(ns.clone(), table.clone(), "10.1.2.3".parse().unwrap());
    assert!(!ns.admits("192.168.0.1".parse().unwrap()));

    // Each client sees its own export only; `latest` is the newest it sees.
    let source = walk(&local, "/web01").await.unwrap();
    let names: Vec<_> = list_all(&local, source, 10)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, [first.to_hex(), "latest".to_string()]);
    let a = walk(&local, "/web01/latest/a.txt").await.unwrap();
    assert_eq!(local.read(a, 0, 10).await.unwrap().0, b"one");
    let b = walk(&lan, "/web01/latest/a.txt").await.unwrap();
    assert_eq!(lan.read(b, 0, 10).await.unwrap().0, b"two!");
    assert!(walk(&local, &format!("/web01/{}", second.to_hex()))
        .await
        .is_err());
    // A handle of the other client's export does not read either.
    assert_eq!(
        local.read(b, 0, 10).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ACCES as u32
    );

    // Unmounted (or expired): the next request fails.
    ns.set(vec![export(second, "10.0.0.0/8")]);
    assert_eq!(
        local.read(a, 0, 10).await.unwrap_err() as u32,
        nfsstat3::NFS3ERR_ACCES as u32
    );
    assert!(list_all(&local, ROOT_ID, 10).await.is_empty());
    assert!(!ns.admits(LOCAL.parse().unwrap()));
    assert_eq!(lan.read(b, 0, 10).await.unwrap().0, b"two!");
}

/// A tree that counts the entries its listings hand out.
struct Counting {
    inner: Arc<dyn FileTree>,
    listed: std::sync::atomic::AtomicU64,
}

impl FileTree for Counting {
    fn stat(&self, path: &TreePath) -> arca_frontends::tree::Result<Attr> {
        self.inner.stat(path)
    }
    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> arca_frontends::tree::Result<()> {
        self.inner.read_dir(path, start, &mut |e| {
            self.listed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f(e)
        })
    }
    fn open(&self, path: &TreePath) -> arca_frontends::tree::Result<Arc<dyn FileReader>> {
        self.inner.open(path)
    }
    fn read_link(&self, path: &TreePath) -> arca_frontends::tree::Result<Vec<u8>> {
        self.inner.read_link(path)
    }
}

/// One restore point, its tree counted.
struct OnePoint {
    snap: arca_repo::SnapshotId,
    tree: Arc<Counting>,
}

impl Namespace for OnePoint {
    fn admits(&self, _: IpAddr) -> bool {
        true
    }
    fn sources(&self, _: IpAddr) -> Vec<String> {
        vec!["web01".into()]
    }
    fn points(&self, _: &str, _: IpAddr) -> Vec<Point> {
        vec![Point {
            id: self.snap,
            time_ns: 1,
        }]
    }
    fn tree(&self, _: &arca_repo::SnapshotId) -> Result<Arc<dyn FileTree>, TreeError> {
        Ok(self.tree.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_a_big_directory_lists_each_entry_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("big/{i:05}")), b"").unwrap();
    }
    let snap = backup(&ds, &src);
    let inner = open_tree_of(&ds, &snap);
    let tree = Arc::new(Counting {
        inner,
        listed: Default::default(),
    });
    let ns = Arc::new(OnePoint {
        snap,
        tree: tree.clone(),
    });
    let fs = ArcaFs::new(
        ns,
        Arc::new(HandleTable::in_memory().unwrap()),
        LOCAL.parse().unwrap(),
    );
    let big = walk(&fs, "/web01/latest/big").await.unwrap();
    let before = tree.listed.load(std::sync::atomic::Ordering::Relaxed);
    let all = list_all(&fs, big, 100).await;
    assert_eq!(all.len(), 3000);
    let listed = tree.listed.load(std::sync::atomic::Ordering::Relaxed) - before;
    // Each page reads its 100 entries and one more (to know whether the
    // directory ends): 30 pages, 3030 entries; from the start each time
    // it would be ~150,000.
    assert!(listed <= 3000 + 30, "{listed} entries listed for 3000");
}

fn open_tree_of(ds: &Arc<Datastore>, snap: &arca_repo::SnapshotId) -> Arc<dyn FileTree> {
    let s = ds.load_snapshot(snap).unwrap();
    arca_frontends::tree::open_tree(ds.clone(), &s, arca_frontends::chunk_cache(16 << 20)).unwrap()
}
