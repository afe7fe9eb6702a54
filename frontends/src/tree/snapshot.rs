//! The tree of a file restore point, as stored: directories are tree
//! blobs, files are chunk lists.
//!
//! - Decoded directories are cached per tree (bounded by their entry
//!   count), so a path walk or a paged listing does not decode a
//!   directory again for every step.
//! - A file's chunk lengths come from the index (no chunk is read to
//!   find an offset); a read at any offset decodes only the chunks it
//!   covers. Decoded chunks go through the process's chunk cache (keyed
//!   as whole chunks), and a sequential reader gets the next chunks
//!   loaded in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use arca_repo::format::{node_kind, Node};
use arca_repo::{ChunkId, Datastore, Snapshot};
use crossbeam_channel::{bounded, Sender};

use super::{Attr, Entry, FileReader, FileTree, Kind, Result, TreeError, TreePath};
use crate::reader::{ChunkCache, FrameKey};

/// The cache key of a whole chunk (not a frame of one).
const WHOLE_CHUNK: u32 = u32::MAX;

/// Directories kept decoded per tree, counted in entries.
const DIR_CACHE_ENTRIES: u64 = 400_000;

/// Chunks loaded ahead of a sequential reader.
const READ_AHEAD: usize = 4;

type DirCache = quick_cache::sync::Cache<ChunkId, Arc<Vec<Node>>, DirWeight>;

#[derive(Clone, Copy)]
struct DirWeight;

impl quick_cache::Weighter<ChunkId, Arc<Vec<Node>>> for DirWeight {
    fn weight(&self, _: &ChunkId, v: &Arc<Vec<Node>>) -> u64 {
        v.len() as u64 + 1
    }
}

/// The stored tree of a file restore point.
pub struct SnapshotTree {
    ds: Arc<Datastore>,
    root: ChunkId,
    time_ns: i64,
    dirs: DirCache,
    cache: Arc<ChunkCache>,
}

impl SnapshotTree {
    pub fn open(ds: Arc<Datastore>, snap: &Snapshot, cache: Arc<ChunkCache>) -> Result<Self> {
        let root = ChunkId::from_slice(&snap.manifest.tree).map_err(|e| {
            TreeError::Io(format!("restore point {} has no valid tree: {e}", snap.id))
        })?;
        Ok(SnapshotTree {
            ds,
            root,
            time_ns: snap.manifest.time_ns,
            dirs: DirCache::with_weighter(4096, DIR_CACHE_ENTRIES, DirWeight),
            cache,
        })
    }

    /// The decoded directory `id`.
    fn dir(&self, id: &ChunkId) -> Result<Arc<Vec<Node>>> {
        if let Some(d) = self.dirs.get(id) {
            return Ok(d);
        }
        let d = Arc::new(self.ds.read_tree(id)?.nodes);
        self.dirs.insert(*id, d.clone());
        Ok(d)
    }

    /// The node at `path`, None for the root.
    fn resolve(&self, path: &TreePath) -> Result<Option<Node>> {
        let mut dir = self.root;
        let mut found = None;
        let parts = path.components();
        for (i, part) in parts.iter().enumerate() {
            let nodes = self.dir(&dir)?;
            let n = find(&nodes, part).ok_or_else(|| not_found(path))?;
            if i + 1 < parts.len() {
                if n.kind != node_kind::DIR {
                    return Err(TreeError::NotADirectory(format!(
                        "{} is not a directory",
                        TreePath(parts[..=i].to_vec())
                    )));
                }
                dir = subtree(n, path)?;
            } else {
                found = Some(n.clone());
            }
        }
        Ok(found)
    }
}

fn not_found(path: &TreePath) -> TreeError {
    TreeError::NotFound(format!(
        "no path {:?} in the restore point",
        path.to_string()
    ))
}

/// The node called `name` in a directory (sorted by name as backups
/// write them; a linear search when it is not).
fn find<'a>(nodes: &'a [Node], name: &[u8]) -> Option<&'a Node> {
    match nodes.binary_search_by(|n| n.name.as_slice().cmp(name)) {
        Ok(i) => Some(&nodes[i]),
        Err(_) => nodes.iter().find(|n| n.name == name),
    }
}

fn subtree(n: &Node, path: &TreePath) -> Result<ChunkId> {
    ChunkId::from_slice(&n.subtree)
        .map_err(|e| TreeError::Io(format!("directory {path} has a damaged tree id: {e}")))
}

/// The attributes of a stored node.
pub fn attr(n: &Node) -> Attr {
    Attr {
        kind: match n.kind {
            node_kind::DIR => Kind::Dir,
            node_kind::SYMLINK => Kind::Symlink,
            node_kind::FIFO => Kind::Fifo,
            node_kind::CHARDEV => Kind::CharDevice,
            node_kind::BLOCKDEV => Kind::BlockDevice,
            node_kind::SOCKET => Kind::Socket,
            _ => Kind::File,
        },
        size: if n.kind == node_kind::SYMLINK {
            n.link_target.len() as u64
        } else {
            n.size
        },
        mode: n.mode & 0o7777,
        uid: n.uid,
        gid: n.gid,
        nlink: n.nlink.max(1),
        mtime_ns: n.mtime_ns,
        atime_ns: n.atime_ns,
        ctime_ns: n.ctime_ns,
        ino: n.inode,
        rdev: n.rdev,
    }
}

impl FileTree for SnapshotTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        Ok(match self.resolve(path)? {
            Some(n) => attr(&n),
            None => Attr {
                nlink: 2,
                ..Attr::synthetic_dir(self.time_ns)
            },
        })
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let id = match self.resolve(path)? {
            None => self.root,
            Some(n) if n.kind == node_kind::DIR => subtree(&n, path)?,
            Some(_) => {
                return Err(TreeError::NotADirectory(format!(
                    "{path} is not a directory"
                )))
            }
        };
        let nodes = self.dir(&id)?;
        for n in nodes.iter().skip(start.min(usize::MAX as u64) as usize) {
            let e = Entry {
                name: n.name.clone(),
                attr: attr(n),
            };
            if !f(e) {
                break;
            }
        }
        Ok(())
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        let n = match self.resolve(path)? {
            None => return Err(TreeError::IsADirectory("the root is a directory".into())),
            Some(n) => n,
        };
        match n.kind {
            node_kind::FILE => {}
            node_kind::DIR => {
                return Err(TreeError::IsADirectory(format!("{path} is a directory")))
            }
            _ => {
                return Err(TreeError::WrongKind(format!(
                    "{path} is not a regular file"
                )))
            }
        }
        let chunks = n
            .content
            .iter()
            .map(|c| ChunkId::from_slice(c))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| TreeError::Io(format!("{path} has a damaged chunk list: {e}")))?;
        Ok(Arc::new(ChunkFile {
            ds: self.ds.clone(),
            cache: self.cache.clone(),
            path: path.to_string(),
            size: n.size,
            chunks,
            ends: OnceLock::new(),
            last: Mutex::new(usize::MAX),
        }))
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        match self.resolve(path)? {
            Some(n) if n.kind == node_kind::SYMLINK => Ok(n.link_target),
            _ => Err(TreeError::WrongKind(format!("{path} is not a symlink"))),
        }
    }
}

/// A stored file: its chunks, read at any offset.
struct ChunkFile {
    ds: Arc<Datastore>,
    cache: Arc<ChunkCache>,
    path: String,
    size: u64,
    chunks: Vec<ChunkId>,
    /// End offset of each chunk (from the index's lengths), found on the
    /// first read.
    ends: OnceLock<Vec<u64>>,
    /// The chunk the last read ended in (for read-ahead).
    last: Mutex<usize>,
}

impl ChunkFile {
    fn ends(&self) -> Result<&Vec<u64>> {
        if let Some(e) = self.ends.get() {
            return Ok(e);
        }
        let mut ends = Vec::with_capacity(self.chunks.len());
        let mut pos = 0u64;
        for id in &self.chunks {
            pos += chunk_len(&self.ds, id)? as u64;
            ends.push(pos);
        }
        if pos != self.size {
            return Err(TreeError::Io(format!(
                "{}: its chunks hold {pos} bytes, the tree says {}",
                self.path, self.size
            )));
        }
        Ok(self.ends.get_or_init(|| ends))
    }
}

/// A chunk's length from the index, looking again after a refresh of
/// the index view (a chunk written since the datastore was opened).
fn chunk_len(ds: &Datastore, id: &ChunkId) -> Result<u32> {
    match ds.locate(id) {
        Ok(l) => Ok(l.raw_length),
        Err(_) => {
            ds.refresh_index()?;
            Ok(ds.locate(id)?.raw_length)
        }
    }
}

/// The decoded chunk `id`, through the cache.
fn load(ds: &Datastore, cache: &ChunkCache, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
    let key: FrameKey = (*id, WHOLE_CHUNK);
    let v = cache.get_or_insert_with(&key, || ds.read_blob(id).map(Arc::new))?;
    Ok(v)
}

impl FileReader for ChunkFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let ends = self.ends()?;
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        let mut i = ends.partition_point(|&e| e <= offset);
        let mut done = 0;
        while done < want && i < self.chunks.len() {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            let data = load(&self.ds, &self.cache, &self.chunks[i])?;
            if data.len() as u64 != ends[i] - start {
                return Err(TreeError::Io(format!(
                    "{}: chunk {} decoded to {} bytes, the index says {}",
                    self.path,
                    i,
                    data.len(),
                    ends[i] - start
                )));
            }
            let from = (offset + done as u64 - start) as usize;
            let n = (data.len() - from).min(want - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
            if done < want {
                i += 1;
            }
        }
        self.read_ahead(i);
        Ok(done)
    }
}

impl ChunkFile {
    /// After a read that ended in chunk `i`: when the previous read ended
    /// in `i` or `i - 1` (a sequential reader), load the next chunks in
    /// the background.
    fn read_ahead(&self, i: usize) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let sequential = *last == i || last.checked_add(1) == Some(i);
        let moved = *last != i;
        *last = i;
        drop(last);
        if !(sequential && moved) {
            return;
        }
        for id in self.chunks.iter().skip(i + 1).take(READ_AHEAD) {
            let key: FrameKey = (*id, WHOLE_CHUNK);
            if self.cache.get(&key).is_some() {
                continue;
            }
            if STOPPING.load(Ordering::SeqCst) {
                return;
            }
            let job = Prefetch::new(self.ds.clone(), self.cache.clone(), *id);
            let _ = prefetcher().try_send(job);
        }
    }
}

/// A chunk to load in the background. It counts in [`PENDING`] from
/// before it is queued until it is dropped (with its datastore handle).
struct Prefetch {
    /// `Some` until dropped: the handles go before the count does.
    handles: Option<(Arc<Datastore>, Arc<ChunkCache>)>,
    id: ChunkId,
}

impl Prefetch {
    fn new(ds: Arc<Datastore>, cache: Arc<ChunkCache>, id: ChunkId) -> Prefetch {
        *PENDING.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Prefetch {
            handles: Some((ds, cache)),
            id,
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        drop(self.handles.take());
        let (count, idle) = &PENDING;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            idle.notify_all();
        }
    }
}

/// Prefetches queued or being loaded, and the signal that there are none.
static PENDING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
/// Set by [`quiesce`]: nothing more is queued, queued loads are skipped.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Stop the background chunk loads and wait (at most 10 s) until no
/// prefetch holds a datastore. A process calls this before it exits: a
/// thread still inside RocksDB while the process runs its exit handlers
/// aborts it ("pthread lock: Invalid argument").
pub fn quiesce() {
    STOPPING.store(true, Ordering::SeqCst);
    let (count, idle) = &PENDING;
    let n = count.lock().unwrap_or_else(|e| e.into_inner());
    let _ = idle.wait_timeout_while(n, std::time::Duration::from_secs(10), |n| *n > 0);
}

/// The process's chunk prefetch threads (two), fed through a bounded
/// queue; a full queue drops the request (the reader then loads the
/// chunk itself).
fn prefetcher() -> &'static Sender<Prefetch> {
    static TX: OnceLock<Sender<Prefetch>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = bounded::<Prefetch>(64);
        for _ in 0..2 {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name("tree-read-ahead".into())
                .spawn(move || {
                    for job in rx {
                        match &job.handles {
                            Some((ds, cache)) if !STOPPING.load(Ordering::SeqCst) => {
                                let _ = load(ds, cache, &job.id);
                            }
                            _ => {}
                        }
                    }
                });
        }
        tx
    })
}
