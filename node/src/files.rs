//! The node's side of the file queries (docs/node-protocol.md): the
//! server reads a file tree of a restore point in this node's datastore
//! (downloads, S3) one operation at a time, and this answers each from
//! the tree the node keeps open ([`Runner::trees`]), as the server reads
//! its own restore points.
//!
//! A download reads a file in 1 MiB queries, a few in flight: opening the
//! file for each would walk its chunk list each time, so the files read
//! lately stay open ([`OpenFiles`], with their read-ahead).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arca_frontends::tree::{Attr, FileReader, Kind, TreeError, TreePath};
use arca_model::api::TreeEntryKind;
use arca_proto::query::{
    DirEntry, DirPage, FileAttr, FileRef, ListQuery, QueryError, QueryErrorCode, ReadQuery,
    LIST_MAX_LIMIT, READ_MAX_LENGTH,
};
use arca_proto::DatastoreRef;

use crate::Runner;

/// Files kept open for reads.
const OPEN_FILES: usize = 32;
/// Largest directory page answered, in bytes on the wire (about): the
/// server takes messages up to 4 MiB.
const MAX_PAGE_BYTES: usize = crate::queries::MAX_ANSWER_BYTES;

/// The files a node read lately, by datastore, restore point and path
/// (a restore point never changes, so an open file stays right).
#[derive(Default)]
pub struct OpenFiles {
    open: Mutex<VecDeque<(FileRef, Arc<dyn FileReader>)>>,
}

impl OpenFiles {
    fn get(
        &self,
        f: &FileRef,
        open: impl FnOnce() -> Result<Arc<dyn FileReader>, QueryError>,
    ) -> Result<Arc<dyn FileReader>, QueryError> {
        {
            let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = g.iter().position(|(k, _)| k == f) {
                let hit = g.remove(i).expect("position is in range");
                let r = hit.1.clone();
                g.push_front(hit);
                return Ok(r);
            }
        }
        // Opened outside the lock: other reads go on meanwhile.
        let r = open()?;
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if !g.iter().any(|(k, _)| k == f) {
            g.push_front((f.clone(), r.clone()));
            g.truncate(OPEN_FILES);
        }
        Ok(r)
    }
}

/// A tree error as the query's error.
fn tree_error(e: TreeError) -> QueryError {
    let (code, m) = match e {
        TreeError::Invalid(m) => (QueryErrorCode::Invalid, m),
        TreeError::NotFound(m) => (QueryErrorCode::NotFound, m),
        TreeError::NotADirectory(m) => (QueryErrorCode::NotADirectory, m),
        TreeError::IsADirectory(m) => (QueryErrorCode::IsADirectory, m),
        TreeError::WrongKind(m) => (QueryErrorCode::WrongKind, m),
        TreeError::Io(m) | TreeError::Unavailable(m) => (QueryErrorCode::Internal, m),
    };
    QueryError::new(code, m)
}

/// The tree of `f`'s restore point in this node's datastore `f.datastore`
/// (one of `mine`), and the path parsed.
fn open(
    runner: &Runner,
    mine: &[DatastoreRef],
    f: &FileRef,
) -> Result<(Arc<dyn arca_frontends::tree::FileTree>, TreePath), QueryError> {
    let path = TreePath::parse_bytes(&f.path).map_err(tree_error)?;
    let d = crate::queries::own(mine, &f.datastore)?;
    let ds = runner
        .datastore(d)
        .map_err(|m| QueryError::new(QueryErrorCode::Internal, m))?;
    let tree = runner
        .trees()
        .get(&ds, &f.restore_point.snapshot_id())
        .map_err(tree_error)?;
    Ok((tree, path))
}

/// What a path is.
pub fn stat(runner: &Runner, mine: &[DatastoreRef], f: &FileRef) -> Result<FileAttr, QueryError> {
    let (tree, path) = open(runner, mine, f)?;
    tree.stat(&path)
        .map(|a| attr_to_query(&a))
        .map_err(tree_error)
}

/// A symlink's target.
pub fn read_link(
    runner: &Runner,
    mine: &[DatastoreRef],
    f: &FileRef,
) -> Result<Vec<u8>, QueryError> {
    let (tree, path) = open(runner, mine, f)?;
    tree.read_link(&path).map_err(tree_error)
}

/// A page of a directory: at most `limit` entries and about
/// [`MAX_PAGE_BYTES`] (at least one entry).
pub fn list(runner: &Runner, mine: &[DatastoreRef], q: &ListQuery) -> Result<DirPage, QueryError> {
    if !(1..=LIST_MAX_LIMIT).contains(&q.limit) {
        return Err(QueryError::new(
            QueryErrorCode::Invalid,
            format!("limit must be 1..={LIST_MAX_LIMIT}"),
        ));
    }
    let (tree, path) = open(runner, mine, &q.dir)?;
    let mut entries = Vec::new();
    let mut bytes = 0;
    let mut end = true;
    tree.read_dir(&path, q.start, &mut |e| {
        if entries.len() >= q.limit as usize || (bytes >= MAX_PAGE_BYTES && !entries.is_empty()) {
            end = false;
            return false;
        }
        bytes += e.name.len() + 80;
        entries.push(DirEntry {
            name: e.name,
            attr: attr_to_query(&e.attr),
        });
        true
    })
    .map_err(tree_error)?;
    Ok(DirPage { entries, end })
}

/// Up to `q.length` bytes of a file from `q.offset`; fewer only at its end.
pub fn read(
    runner: &Runner,
    mine: &[DatastoreRef],
    files: &OpenFiles,
    q: &ReadQuery,
) -> Result<Vec<u8>, QueryError> {
    if !(1..=READ_MAX_LENGTH).contains(&q.length) {
        return Err(QueryError::new(
            QueryErrorCode::Invalid,
            format!("length must be 1..={READ_MAX_LENGTH}"),
        ));
    }
    let f = files.get(&q.file, || {
        let (tree, path) = open(runner, mine, &q.file)?;
        tree.open(&path).map_err(tree_error)
    })?;
    let want = (q.length as u64).min(f.size().saturating_sub(q.offset)) as usize;
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        let n = f
            .read_at(q.offset + got as u64, &mut buf[got..])
            .map_err(tree_error)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// An attribute as a query answers it.
pub fn attr_to_query(a: &Attr) -> FileAttr {
    FileAttr {
        kind: match a.kind {
            Kind::File => TreeEntryKind::File,
            Kind::Dir => TreeEntryKind::Dir,
            Kind::Symlink => TreeEntryKind::Symlink,
            Kind::Fifo => TreeEntryKind::Fifo,
            Kind::CharDevice => TreeEntryKind::Chardev,
            Kind::BlockDevice => TreeEntryKind::Blockdev,
            Kind::Socket => TreeEntryKind::Socket,
        },
        size: a.size,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        mtime_ns: a.mtime_ns,
        atime_ns: a.atime_ns,
        ctime_ns: a.ctime_ns,
        ino: a.ino,
        rdev: a.rdev,
    }
}

/// An answered attribute as the tree's (None: a kind the tree has not).
pub fn attr_from_query(a: &FileAttr) -> Option<Attr> {
    Some(Attr {
        kind: match a.kind {
            TreeEntryKind::File => Kind::File,
            TreeEntryKind::Dir => Kind::Dir,
            TreeEntryKind::Symlink => Kind::Symlink,
            TreeEntryKind::Fifo => Kind::Fifo,
            TreeEntryKind::Chardev => Kind::CharDevice,
            TreeEntryKind::Blockdev => Kind::BlockDevice,
            TreeEntryKind::Socket => Kind::Socket,
            TreeEntryKind::Other => return None,
        },
        size: a.size,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        mtime_ns: a.mtime_ns,
        atime_ns: a.atime_ns,
        ctime_ns: a.ctime_ns,
        ino: a.ino,
        rdev: a.rdev,
    })
}
