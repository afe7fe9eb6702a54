//! A remote tree against a node played by a thread: reads come back byte
//! for byte whatever their offsets and sizes, a reader going forward has
//! pieces asked for ahead (several in flight), a reader that jumps has
//! none; listings go page by page and are remembered for stats; the node's errors keep their kind, and
//! a node that does not answer is `Unavailable`.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arca_model::api::TreeEntryKind;
use arca_proto::query::{DirEntry, DirPage, FileAttr, QueryError};

use super::*;

const NODE: NodeId = NodeId(3);

fn attr(kind: TreeEntryKind, size: u64) -> FileAttr {
    FileAttr {
        kind,
        size,
        mode: 0o644,
        uid: 1,
        gid: 2,
        nlink: 1,
        mtime_ns: 5,
        atime_ns: 6,
        ctime_ns: 7,
        ino: 8,
        rdev: 0,
    }
}

/// The node: a file `f` of `data`, a directory `d` of `entries` files;
/// records the most read queries it held at once (taken in one poll).
struct FakeNode {
    most_reads_at_once: AtomicUsize,
    reads: AtomicUsize,
    stop: AtomicBool,
}

fn start(
    q: &Arc<Queries>,
    data: Arc<Vec<u8>>,
    entries: usize,
) -> (Arc<FakeNode>, std::thread::JoinHandle<()>) {
    let node = Arc::new(FakeNode {
        most_reads_at_once: AtomicUsize::new(0),
        reads: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let (q, n) = (q.clone(), node.clone());
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        while !n.stop.load(Ordering::Relaxed) {
            let taken = rt.block_on(q.watch(NODE, Duration::from_millis(50)));
            let reads = taken
                .iter()
                .filter(|(_, q)| matches!(q, Query::Read(_)))
                .count();
            n.most_reads_at_once.fetch_max(reads, Ordering::Relaxed);
            for (id, query) in taken {
                let reply = match query {
                    Query::Stat(f) => match &f.path[..] {
                        b"f" => Ok(Answer::Stat(attr(TreeEntryKind::File, data.len() as u64))),
                        b"d" | b"" => Ok(Answer::Stat(attr(TreeEntryKind::Dir, 0))),
                        b"l" => Ok(Answer::Stat(attr(TreeEntryKind::Symlink, 1))),
                        _ => Err(QueryError::new(QueryErrorCode::NotFound, "no such path")),
                    },
                    Query::Read(r) => {
                        n.reads.fetch_add(1, Ordering::Relaxed);
                        let a = (r.offset as usize).min(data.len());
                        let b = (a + r.length as usize).min(data.len());
                        Ok(Answer::Read(data[a..b].to_vec()))
                    }
                    Query::List(l) if l.dir.path == b"d" => {
                        let from = (l.start as usize).min(entries);
                        let to = (from + l.limit as usize).min(entries);
                        Ok(Answer::List(DirPage {
                            entries: (from..to)
                                .map(|i| DirEntry {
                                    name: format!("e{i:05}").into_bytes(),
                                    attr: attr(TreeEntryKind::File, i as u64),
                                })
                                .collect(),
                            end: to == entries,
                        }))
                    }
                    Query::List(_) => Err(QueryError::new(
                        QueryErrorCode::NotADirectory,
                        "not a directory",
                    )),
                    Query::ReadLink(_) => Ok(Answer::ReadLink(b"target".to_vec())),
                    q => panic!("{q:?}"),
                };
                // Given-up queries are taken quietly too.
                q.answer(NODE, id, reply).unwrap();
            }
        }
    });
    (node, h)
}

fn tree(q: &Arc<Queries>) -> RemoteTree {
    RemoteTree::new(
        q.clone(),
        NODE,
        "far",
        "far/default",
        "ab".repeat(32).parse().unwrap(),
    )
}

fn p(s: &str) -> TreePath {
    TreePath::parse(s).unwrap()
}

/// Wait until the node's first poll runs (a node counts as taking
/// queries only then).
fn polling(q: &Arc<Queries>) {
    for _ in 0..200 {
        match tree(q).stat(&p("d")) {
            Err(TreeError::Unavailable(_)) => std::thread::sleep(Duration::from_millis(5)),
            r => return assert!(r.is_ok(), "{r:?}"),
        }
    }
    panic!("the node does not poll");
}

#[test]
fn reads_come_back_whole_and_forward_readers_read_ahead() {
    let q = Arc::new(Queries::new());
    let data: Arc<Vec<u8>> = Arc::new(
        (0..9 * PIECE + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect(),
    );
    let (node, h) = start(&q, data.clone(), 0);
    polling(&q);
    let t = tree(&q);
    let f = t.open(&p("f")).unwrap();
    assert_eq!(f.size(), data.len() as u64);
    // A reader going forward in 1 MiB steps from an odd offset.
    let mut off = 1000u64;
    let mut buf = vec![0u8; PIECE as usize];
    while off < f.size() {
        let n = f.read_at(off, &mut buf).unwrap();
        assert!(n > 0);
        assert!(buf[..n] == data[off as usize..off as usize + n], "at {off}");
        off += n as u64;
    }
    assert_eq!(f.read_at(off, &mut buf).unwrap(), 0);
    // Read-ahead: more than one read in flight at once, and each piece
    // read about once.
    assert!(node.most_reads_at_once.load(Ordering::Relaxed) > 1);
    let reads = node.reads.load(Ordering::Relaxed);
    assert!(reads <= 11, "{reads} reads of 10 pieces");

    // A reader that jumps: right bytes, small reads, no read-ahead.
    let f = t.open(&p("f")).unwrap();
    let before = node.reads.load(Ordering::Relaxed);
    for off in [5 * PIECE - 3, 17, 8 * PIECE + 100] {
        let mut b = [0u8; 10];
        assert_eq!(f.read_at(off, &mut b).unwrap(), 10);
        assert!(b[..] == data[off as usize..off as usize + 10]);
    }
    let reads = node.reads.load(Ordering::Relaxed) - before;
    assert!(reads <= 4, "{reads} reads for 3 small jumps");
    // A read to the end is short only there.
    let mut b = vec![0u8; 100];
    assert_eq!(f.read_at(f.size() - 10, &mut b).unwrap(), 10);

    node.stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn listings_page_and_errors_keep_their_kind() {
    let q = Arc::new(Queries::new());
    let (node, h) = start(&q, Arc::new(vec![1, 2, 3]), 2500);
    polling(&q);
    let t = tree(&q);
    let mut names = Vec::new();
    t.read_dir(&p("d"), 10, &mut |e| {
        names.push(String::from_utf8(e.name).unwrap());
        true
    })
    .unwrap();
    assert_eq!(names.len(), 2490);
    assert_eq!(names[0], "e00010");
    assert_eq!(names[2489], "e02499");
    // What was listed needs no stat query (this node answers none for
    // these paths): an archive opens each file it lists.
    let a = t.stat(&p("d/e02000")).unwrap();
    assert_eq!((a.kind, a.size), (Kind::File, 2000));
    assert!(matches!(t.stat(&p("e02000")), Err(TreeError::NotFound(_))));
    // Stopped early by the caller.
    let mut n = 0;
    t.read_dir(&p("d"), 0, &mut |_| {
        n += 1;
        n < 3
    })
    .unwrap();
    assert_eq!(n, 3);
    let a = t.stat(&p("d")).unwrap();
    assert_eq!((a.kind, a.uid, a.gid, a.ino), (Kind::Dir, 1, 2, 8));
    assert!(matches!(t.stat(&p("x")), Err(TreeError::NotFound(_))));
    assert!(matches!(
        t.read_dir(&p("f"), 0, &mut |_| true),
        Err(TreeError::NotADirectory(_))
    ));
    assert!(matches!(t.open(&p("d")), Err(TreeError::IsADirectory(_))));
    assert!(matches!(t.open(&p("l")), Err(TreeError::WrongKind(_))));
    assert_eq!(t.read_link(&p("l")).unwrap(), b"target");

    // The node stops polling: within the pickup time, Unavailable.
    node.stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let q2 = Arc::new(Queries::with_limits(
        Duration::from_millis(200),
        Duration::from_millis(400),
        32,
    ));
    let t = tree(&q2);
    match t.stat(&p("f")) {
        Err(TreeError::Unavailable(m)) => assert!(m.contains("\"far\""), "{m}"),
        r => panic!("{r:?}"),
    }
}
