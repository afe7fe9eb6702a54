//! The read-only file tree of a restore point: one view that every file
//! access path reads through (the download API and `arca ls`/`find`/
//! `restore --path` on images, the S3 gateway, the NFS export).
//!
//! - A tree restore point is its stored tree ([`snapshot::SnapshotTree`]):
//!   directories are tree blobs (cached decoded), files are their chunk
//!   lists, read at any offset through the datastore with read-ahead.
//! - An image restore point ([`image::ImageTree`]) shows its disk as a
//!   file (`disk.img`), read through the shared restore-point reader
//!   ([`crate::reader::ImageReader`], frames and chunk cache), and the
//!   partitions and file systems found on it.
//!
//! Paths are byte components ([`TreePath`]), parsed from the '/'-separated
//! strings clients send with the same rules everywhere (no `..`, no NUL).
//! Directory listings stream: [`FileTree::read_dir`] hands out entries
//! one at a time from a position, so a 100k-entry directory is never held
//! as a list of entries by this layer.

pub mod image;
pub mod snapshot;

use std::sync::Arc;

use arca_repo::{Datastore, Snapshot};

use crate::reader::ChunkCache;

/// Why a path of a tree cannot be read. Consumers map these to their
/// protocol's errors: HTTP 400/404/409/500/503, S3 `NoSuchKey`,
/// `ServiceUnavailable`, NFS `NOENT`, `NOTDIR`, `IO`.
#[derive(Debug)]
pub enum TreeError {
    /// The path is not acceptable (`..`, NUL, too long).
    Invalid(String),
    /// No such path.
    NotFound(String),
    /// A component before the last, or a listed path, is not a directory.
    NotADirectory(String),
    /// A path that must be a file (open) is a directory.
    IsADirectory(String),
    /// The path is neither a file nor a symlink where one is needed.
    WrongKind(String),
    /// The data could not be read: a damaged file system inside an image,
    /// a damaged or missing chunk. Only the affected paths fail; the rest
    /// of the tree stays readable.
    Io(String),
    /// The tree is read through a remote node that is offline, not
    /// answering or too slow (a tree of a remote node's restore point,
    /// read through the server): try again later.
    Unavailable(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Invalid(m)
            | TreeError::NotFound(m)
            | TreeError::NotADirectory(m)
            | TreeError::IsADirectory(m)
            | TreeError::WrongKind(m)
            | TreeError::Io(m)
            | TreeError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TreeError {}

impl From<arca_repo::Error> for TreeError {
    fn from(e: arca_repo::Error) -> Self {
        TreeError::Io(format!("I/O error: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, TreeError>;

/// The kind of a tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// What a `stat` of an entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    /// Bytes of a file; the target's length for a symlink; 0 otherwise
    /// (or what the file system says for directories).
    pub size: u64,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    /// Times in nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: i64,
    pub atime_ns: i64,
    pub ctime_ns: i64,
    /// The file system's number for the entry (hard links share it; 0
    /// when the file system has none). Not unique across partitions.
    pub ino: u64,
    /// Device number of a device node.
    pub rdev: u64,
}

impl Attr {
    /// A directory made up by the view (the root of an image's tree, a
    /// partition's mount point): mode 0555, times of the restore point.
    pub fn synthetic_dir(time_ns: i64) -> Attr {
        Attr {
            kind: Kind::Dir,
            size: 0,
            mode: 0o555,
            uid: 0,
            gid: 0,
            nlink: 2,
            mtime_ns: time_ns,
            atime_ns: time_ns,
            ctime_ns: time_ns,
            ino: 0,
            rdev: 0,
        }
    }

    /// A file made up by the view (a disk or a partition as a file):
    /// mode 0444.
    pub fn synthetic_file(size: u64, time_ns: i64) -> Attr {
        Attr {
            kind: Kind::File,
            size,
            mode: 0o444,
            nlink: 1,
            ..Attr::synthetic_dir(time_ns)
        }
    }
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name (raw bytes; not necessarily UTF-8).
    pub name: Vec<u8>,
    pub attr: Attr,
}

/// A path inside a tree: its components, none empty, `.` or `..`. The
/// root is the empty path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreePath(Vec<Vec<u8>>);

/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 4096;

impl TreePath {
    /// The root.
    pub fn root() -> TreePath {
        TreePath(Vec::new())
    }

    /// Parse a '/'-separated path (a leading '/' is optional; empty and
    /// `.` components are skipped). `..`, NUL and paths over
    /// [`MAX_PATH`] bytes are refused.
    pub fn parse(path: &str) -> Result<TreePath> {
        Self::parse_bytes(path.as_bytes())
    }

    /// [`TreePath::parse`] for a path that is not necessarily UTF-8.
    pub fn parse_bytes(path: &[u8]) -> Result<TreePath> {
        if path.len() > MAX_PATH || path.contains(&0) {
            return Err(TreeError::Invalid(format!(
                "path must be at most {MAX_PATH} bytes, without NUL"
            )));
        }
        let mut out = Vec::new();
        for c in path.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    return Err(TreeError::Invalid(format!(
                        "path {:?} has a '..' component: give a path inside the restore point",
                        String::from_utf8_lossy(path)
                    )))
                }
                c => out.push(c.to_vec()),
            }
        }
        Ok(TreePath(out))
    }

    /// The components.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component (None for the root).
    pub fn name(&self) -> Option<&[u8]> {
        self.0.last().map(|c| c.as_slice())
    }

    /// The path one level up (the root's parent is the root).
    pub fn parent(&self) -> TreePath {
        let mut p = self.0.clone();
        p.pop();
        TreePath(p)
    }

    /// This path with `name` appended. `name` must be one component (no
    /// '/', not empty, `.` or `..`); otherwise `Invalid`.
    pub fn join(&self, name: &[u8]) -> Result<TreePath> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(TreeError::Invalid(format!(
                "{:?} is not a file name",
                String::from_utf8_lossy(name)
            )));
        }
        let mut p = self.0.clone();
        p.push(name.to_vec());
        Ok(TreePath(p))
    }

    /// The components from `n` on (a path relative to the `n`th level).
    pub fn skip(&self, n: usize) -> TreePath {
        TreePath(self.0.get(n..).unwrap_or_default().to_vec())
    }
}

impl std::fmt::Display for TreePath {
    /// '/'-separated, no leading '/', names shown lossily.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(&String::from_utf8_lossy(c))?;
        }
        Ok(())
    }
}

/// Positioned reads of one file of a tree. Shared by the threads of a
/// consumer (NFS answers READs concurrently).
pub trait FileReader: Send + Sync {
    /// The file's length in bytes.
    fn size(&self) -> u64;
    /// Read up to `buf.len()` bytes at `offset`; fewer only at the end of
    /// the file (0 at or past it).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;
}

/// The read-only file tree of one restore point.
pub trait FileTree: Send + Sync {
    /// What `path` is (symlinks are not followed).
    fn stat(&self, path: &TreePath) -> Result<Attr>;

    /// The entries of the directory `path`, in the file system's order,
    /// from the `start`th on (0: the first), handed to `f` one at a time
    /// until `f` returns false or the directory ends. `.` and `..` are not
    /// entries. The same tree lists a directory in the same order every
    /// time, so a position is a cursor.
    fn read_dir(&self, path: &TreePath, start: u64, f: &mut dyn FnMut(Entry) -> bool)
        -> Result<()>;

    /// Open the file `path` for reading.
    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>>;

    /// The target of the symlink `path`.
    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>>;
}

/// The tree of `snap`: its stored tree, or for an image its disk, its
/// partitions and their file systems. `cache` holds decoded frames and
/// chunks for every reader of the process.
pub fn open_tree(
    ds: Arc<Datastore>,
    snap: &Snapshot,
    cache: Arc<ChunkCache>,
) -> Result<Arc<dyn FileTree>> {
    if snap.is_image() {
        Ok(Arc::new(image::ImageTree::open(ds, snap, cache)?))
    } else {
        Ok(Arc::new(snapshot::SnapshotTree::open(ds, snap, cache)?))
    }
}

/// A file whose bytes are a range of a block source: a disk, or a
/// partition of one.
pub struct BlockFile {
    src: Arc<dyn crate::reader::BlockSource>,
    start: u64,
    len: u64,
}

impl BlockFile {
    /// The bytes `[start, start + len)` of `src`, clamped to its size.
    pub fn new(src: Arc<dyn crate::reader::BlockSource>, start: u64, len: u64) -> BlockFile {
        let size = src.size();
        let start = start.min(size);
        let len = len.min(size - start);
        BlockFile { src, start, len }
    }
}

impl FileReader for BlockFile {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        self.src.read_at(self.start + offset, &mut buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;

/// The open trees of a process, by snapshot id (a snapshot never
/// changes, so an open tree stays right): repeated requests for one
/// restore point (an S3 listing, NFS lookups, a download's ranges) do not
/// load its snapshot, chunk table and file systems again. At most
/// `max_open` trees are kept, the least recently used dropped first.
pub struct Trees {
    cache: Arc<ChunkCache>,
    open: quick_cache::sync::Cache<arca_repo::SnapshotId, Arc<dyn FileTree>>,
}

impl Trees {
    pub fn new(cache: Arc<ChunkCache>, max_open: usize) -> Trees {
        Trees {
            cache,
            open: quick_cache::sync::Cache::new(max_open.max(1)),
        }
    }

    /// The chunk cache the trees read through.
    pub fn chunk_cache(&self) -> &Arc<ChunkCache> {
        &self.cache
    }

    /// The tree of snapshot `id` of `ds`. A snapshot that is not in `ds`
    /// is `NotFound`.
    pub fn get(
        &self,
        ds: &Arc<Datastore>,
        id: &arca_repo::SnapshotId,
    ) -> Result<Arc<dyn FileTree>> {
        self.open.get_or_insert_with(id, || {
            let snap = ds.load_snapshot(id).map_err(|e| match e {
                arca_repo::Error::NotFound(_) => TreeError::NotFound(format!(
                    "restore point {} is not in the datastore",
                    id.short()
                )),
                e => TreeError::Io(format!("restore point {}: {e}", id.short())),
            })?;
            open_tree(ds.clone(), &snap, self.cache.clone())
        })
    }
}
