//! Directory-tree source.
//!
//! The calling thread walks the tree depth first (entries sorted by name),
//! reads and cuts changed files, and hands chunks to the session's workers.
//! A second thread, the assembler, waits for chunk ids in order, builds the
//! tree blobs bottom-up and writes the file catalog. Neither waits for the
//! other except through bounded channels, so reading, hashing, compressing
//! and writing overlap.
//!
//! Incremental: a regular file whose (size, mtime, ctime, inode) equal those
//! of the same path in the parent snapshot is not read; its chunk list is
//! reused. A directory whose entries all equal the parent's (same names,
//! metadata, chunk lists and subtrees) would encode to the parent's tree
//! blob byte for byte: the parent's tree id is taken as it is, without
//! encoding, hashing or storing it again.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arca_repo::catalog::CatalogWriter;
use arca_repo::chunker::Chunker;
use arca_repo::format::{node_kind, CatalogEntry, Manifest, Node, Stats, Tree, Xattr};
use arca_repo::{
    BackupSession, BlobKind, ChunkId, Datastore, Error, PendingChunk, Result, Snapshot,
};
use crossbeam_channel::{bounded, Receiver};

use crate::prefetch::Prefetch;
use crate::{BackupOutcome, Progress};

#[derive(Clone, Debug, Default)]
pub struct FilesOptions {
    pub source: String,
    /// Snapshot to compare against; files unchanged since are not read.
    pub parent: Option<Snapshot>,
    pub tags: Vec<String>,
}

enum Event {
    /// A non-directory entry, or a directory's own node when `Leave` follows.
    Entry(Node, Vec<PendingChunk>),
    Enter(Node),
    Leave,
    /// Like `Leave`, for a directory whose tree is the parent snapshot's
    /// (same entries, every one equal): its id and encoded length, reused
    /// as they are instead of encoding and storing the same bytes again.
    Same(ChunkId, usize),
}

/// Back up the directory `root` into a new snapshot, with a metadata
/// read-ahead that also sizes the tree for `progress`.
pub fn backup(
    ds: &Arc<Datastore>,
    root: &Path,
    opts: &FilesOptions,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let prefetch = Prefetch::start(root);
    backup_with(ds, root, opts, progress, &prefetch)
}

/// [`backup`] with a read-ahead the caller started earlier (before opening
/// the datastore, to overlap the key derivation).
pub fn backup_with(
    ds: &Arc<Datastore>,
    root: &Path,
    opts: &FilesOptions,
    progress: &Progress,
    prefetch: &Prefetch,
) -> Result<BackupOutcome> {
    let start = Instant::now();
    let md = fs::metadata(root).map_err(|e| Error::io(format!("{}", root.display()), e))?;
    if !md.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let session = ds.begin_session()?;
    let parent_tree = match &opts.parent {
        Some(p) if !p.is_image() && !p.manifest.tree.is_empty() => {
            let id = ChunkId::from_slice(&p.manifest.tree)?;
            session.add_root(id);
            Some((id, ds.read_tree(&id)?))
        }
        _ => None,
    };
    // The parent's size is the first estimate; the read-ahead's sum
    // replaces it (see `Walker::size_total`).
    if let Some(p) = &opts.parent {
        progress.total.fetch_max(
            p.manifest.stats.as_ref().map_or(0, |s| s.bytes_total),
            Ordering::Relaxed,
        );
    }
    let (tx, rx) = bounded::<Event>(4096);
    let mut walker = Walker {
        session: &session,
        chunker: Chunker::new(&ds.config().chunker, ds.keys().chunker_seed()),
        progress,
        prefetch,
        preopened: None,
        total_final: false,
        tx,
        warnings: Vec::new(),
        stats: Stats::default(),
        // Chunks verify found damaged: files that reference them are read
        // again instead of being taken from the parent.
        quarantined: if opts.parent.is_some() {
            ds.quarantined_ids()?
        } else {
            Default::default()
        },
    };
    let (walk_result, assembled) = std::thread::scope(|scope| {
        let assembler = scope.spawn(|| assemble(&session, &rx));
        let r = walker
            .walk_dir(
                root,
                &md,
                None,
                parent_tree.as_ref().map(|(id, t)| (*id, t)),
            )
            .map(|_| ());
        // Closing the channel lets the assembler finish.
        drop(std::mem::replace(&mut walker.tx, bounded(0).0));
        let a = assembler
            .join()
            .unwrap_or_else(|_| Err(Error::Poisoned("tree assembler panicked".into())));
        (r, a)
    });
    // The first error is the one to report: a failed pack write poisons
    // the session, and the walker and the assembler then fail only with
    // echoes of it ("a previous write failed", "backup ended before ...").
    let (root_id, root_node, catalog) = match (walk_result, assembled) {
        (Ok(()), Ok(a)) => a,
        (Err(Error::Poisoned(_)), Err(e)) | (Err(e), _) | (Ok(()), Err(e)) => {
            return Err(session.cause(e))
        }
    };
    let mut stats = walker.stats;
    let warnings = walker.warnings;
    stats.duration_s = start.elapsed().as_secs_f64();
    let manifest = Manifest {
        source_kind: "files".into(),
        source: opts.source.clone(),
        time_ns: crate::now_ns(),
        parent: opts
            .parent
            .as_ref()
            .map(|p| p.id.0.to_vec())
            .unwrap_or_default(),
        tags: opts.tags.clone(),
        tree: root_id.0.to_vec(),
        root: Some(root_node),
        catalog: catalog.iter().map(|c| c.0.to_vec()).collect(),
        hostname: crate::hostname(),
        backup_mode: match &opts.parent {
            Some(p) => format!(
                "incremental (unchanged files taken from parent {})",
                p.id.short()
            ),
            None => "full (no parent snapshot)".into(),
        },
        path: fs::canonicalize(root)
            .unwrap_or(root.to_path_buf())
            .display()
            .to_string(),
        stats: Some(stats),
        ..Default::default()
    };
    crate::commit(session, manifest, start, warnings)
}

struct Walker<'a> {
    session: &'a BackupSession,
    chunker: Chunker,
    progress: &'a Progress,
    /// Sizes the tree ahead of the walk.
    prefetch: &'a Prefetch,
    /// The read-ahead has sized the whole tree and `progress.total` is set.
    total_final: bool,
    tx: crossbeam_channel::Sender<Event>,
    warnings: Vec<String>,
    stats: Stats,
    /// The descriptor the read-ahead opened for the entry being stored.
    preopened: Option<File>,
    quarantined: std::collections::HashSet<ChunkId>,
}

impl Walker<'_> {
    /// Raise the progress total to what the read-ahead has sized; once the
    /// whole tree is sized, that sum is the total (smaller than the
    /// parent's when the tree shrank).
    fn size_total(&mut self) {
        if self.total_final {
            return;
        }
        let s = self.prefetch.scanned();
        if s.complete {
            self.progress.total.store(s.bytes, Ordering::Relaxed);
            self.total_final = true;
        } else {
            self.progress.total.fetch_max(s.bytes, Ordering::Relaxed);
        }
    }
}

fn time_ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

/// A tree node from `lstat` data (content and subtree filled in later).
pub fn node_from_metadata(name: &[u8], md: &Metadata) -> Node {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        node_kind::DIR
    } else if ft.is_symlink() {
        node_kind::SYMLINK
    } else if ft.is_fifo() {
        node_kind::FIFO
    } else if ft.is_char_device() {
        node_kind::CHARDEV
    } else if ft.is_block_device() {
        node_kind::BLOCKDEV
    } else if ft.is_socket() {
        node_kind::SOCKET
    } else {
        node_kind::FILE
    };
    Node {
        name: name.to_vec(),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: time_ns(md.mtime(), md.mtime_nsec()),
        // atime is not recorded: reading a file changes it, which would make
        // every tree blob differ and defeat the Merkle dedup of unchanged
        // directories. Restore sets atime to mtime.
        atime_ns: 0,
        ctime_ns: time_ns(md.ctime(), md.ctime_nsec()),
        size: if kind == node_kind::FILE {
            md.size()
        } else {
            0
        },
        inode: md.ino(),
        dev: md.dev(),
        nlink: md.nlink() as u32,
        rdev: md.rdev(),
        ..Default::default()
    }
}

fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let v = xattr::get(path, &n).ok().flatten()?;
            Some(Xattr {
                name: n.as_bytes().to_vec(),
                value: v,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Extended attributes: taken from the parent snapshot when the inode's
/// ctime has not moved (setting an xattr updates ctime), else read.
fn xattrs_for(path: impl FnOnce() -> PathBuf, node: &Node, old: Option<&Node>) -> Vec<Xattr> {
    match old {
        Some(o) if o.kind == node.kind && o.inode == node.inode && o.ctime_ns == node.ctime_ns => {
            o.xattrs.clone()
        }
        _ => read_xattrs(&path()),
    }
}

fn unchanged(new: &Node, old: &Node) -> bool {
    old.kind == node_kind::FILE
        && new.size == old.size
        && new.mtime_ns == old.mtime_ns
        && new.ctime_ns == old.ctime_ns
        && new.inode == old.inode
}

/// A symbolic link whose inode, target length, mtime and ctime equal the
/// parent's: its target is the parent's (a link's target cannot be changed
/// in place; replacing the link makes a new inode and a new ctime), so it
/// is not read again.
fn same_link(new: &Node, md: &Metadata, old: &Node) -> bool {
    old.kind == node_kind::SYMLINK
        && new.kind == node_kind::SYMLINK
        && new.inode == old.inode
        && new.mtime_ns == old.mtime_ns
        && new.ctime_ns == old.ctime_ns
        && md.len() == old.link_target.len() as u64
}

/// Bytes and files of a directory the walker asks the kernel to read ahead.
const READ_AHEAD_BYTES: u64 = 32 << 20;
const READ_AHEAD_FILES: usize = 64;

/// Asks the kernel to start reading the next files of a directory while
/// the current one is chunked. Without it every small file costs one disk
/// wait, one after another, and the workers starve. The window is bounded
/// in bytes and files, so the page cache is never flooded.
///
/// The descriptor opened for the advice is kept and handed to the walker
/// ([`ReadAhead::take`]), so that a file is opened once, not twice. At most
/// `READ_AHEAD_FILES` are open; [`ReadAhead::release`] closes them before
/// the walker descends into a subdirectory, so that deep trees do not pile
/// up descriptors (the advice stays in effect after the close).
#[derive(Default)]
struct ReadAhead {
    /// (entry index, size, path, descriptor opened for the advice) of the
    /// files that will be read.
    files: Vec<(usize, u64, std::path::PathBuf, Option<File>)>,
    /// First file not yet reached by the walker.
    start: usize,
    /// First file not yet advised.
    next: usize,
    /// Bytes advised and not yet reached.
    window: u64,
}

impl ReadAhead {
    fn cost(size: u64) -> u64 {
        size.min(READ_AHEAD_BYTES)
    }

    /// The walker is at entry `entry`: slide the window.
    fn advance(&mut self, entry: usize) {
        while self.start < self.files.len() && self.files[self.start].0 < entry {
            if self.start < self.next {
                self.window -= Self::cost(self.files[self.start].1);
            }
            self.files[self.start].3 = None;
            self.start += 1;
        }
        self.next = self.next.max(self.start);
        while self.next < self.files.len()
            && self.next - self.start < READ_AHEAD_FILES
            && self.window < READ_AHEAD_BYTES
        {
            let (_, size, path, file) = &mut self.files[self.next];
            // Advice only: a file that cannot be opened here fails later,
            // when it is read, with a proper warning.
            if let Ok(f) = open_for_read(path) {
                let _ = nix::fcntl::posix_fadvise(
                    &f,
                    0,
                    Self::cost(*size) as i64,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
                );
                *file = Some(f);
            }
            self.window += Self::cost(*size);
            self.next += 1;
        }
    }

    /// The descriptor opened for entry `entry` (after `advance(entry)`).
    fn take(&mut self, entry: usize) -> Option<File> {
        match self.files.get_mut(self.start) {
            Some((i, _, _, file)) if *i == entry => file.take(),
            _ => None,
        }
    }

    /// Close every descriptor held (the files are opened again when read).
    fn release(&mut self) {
        for (_, _, _, file) in &mut self.files {
            *file = None;
        }
    }
}

/// Open a file to read its content, without updating its atime when the
/// kernel allows it (the owner or root).
fn open_for_read(path: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
        .or_else(|_| File::open(path))
}

impl Walker<'_> {
    fn send(&self, e: Event) -> Result<()> {
        self.tx
            .send(e)
            .map_err(|_| Error::Poisoned("tree assembler stopped".into()))
    }

    /// Walk `dir`, whose tree in the parent snapshot is `parent` (its id and
    /// contents). Returns whether the directory's node, subtree included,
    /// equals `old_node`: then the parent's directory holds it unchanged.
    fn walk_dir(
        &mut self,
        dir: &Path,
        md: &Metadata,
        old_node: Option<&Node>,
        parent: Option<(ChunkId, &Tree)>,
    ) -> Result<bool> {
        self.progress.check_cancel()?;
        let name = dir
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let mut node = node_from_metadata(&name, md);
        node.xattrs = xattrs_for(|| dir.to_path_buf(), &node, old_node);
        // The node as the parent has it, its subtree aside (set on `Leave`).
        let node_same = old_node.is_some_and(|o| {
            node.subtree.clone_from(&o.subtree);
            let same = node == *o;
            node.subtree.clear();
            same
        });
        self.stats.dirs += 1;
        self.send(Event::Enter(node))?;
        let (parent_id, parent) = match parent {
            Some((id, t)) => (Some(id), Some(t)),
            None => (None, None),
        };
        let mut stated = match self.prefetch.take(dir) {
            // The read-ahead listed and stat-ed it already (warm caches:
            // it runs ahead), so nothing is listed or stat-ed twice.
            Some(l) => l
                .into_iter()
                .map(|(name, md)| (name.into_vec(), md))
                .collect(),
            None => self.list_dir(dir),
        };
        stated.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let listed: Vec<_> = stated
            .into_iter()
            .map(|(name, md)| {
                let old = parent.and_then(|t| {
                    t.nodes
                        .binary_search_by(|n| n.name.as_slice().cmp(&name))
                        .ok()
                        .map(|i| &t.nodes[i])
                });
                (name, md, old)
            })
            .collect();
        // Files of this directory that will be read, for the read-ahead.
        let mut ahead = ReadAhead {
            files: listed
                .iter()
                .enumerate()
                .filter(|(_, (_, md, old))| {
                    md.is_file() && !old.is_some_and(|o| unchanged(&node_from_metadata(b"", md), o))
                })
                .map(|(i, (name, md, _))| (i, md.len(), dir.join(OsStr::from_bytes(name)), None))
                .collect(),
            ..Default::default()
        };
        // The tree comes out byte for byte the parent's when it has as many
        // entries, each equal to the parent's of the same name (both sorted
        // by name), and the same format version.
        let mut tree_same = parent.is_some_and(|t| {
            t.version == arca_repo::format::STRUCT_VERSION && t.nodes.len() == listed.len()
        });
        for (i, (name, md, old)) in listed.into_iter().enumerate() {
            ahead.advance(i);
            if md.is_dir() {
                let path = dir.join(OsStr::from_bytes(&name));
                let sub = match old {
                    Some(o) if o.kind == node_kind::DIR => ChunkId::from_slice(&o.subtree)
                        .and_then(|id| Ok((id, self.session.datastore().read_tree(&id)?)))
                        .ok(),
                    _ => None,
                };
                ahead.release();
                let same = self.walk_dir(&path, &md, old, sub.as_ref().map(|(id, t)| (*id, t)))?;
                tree_same &= same;
                continue;
            }
            self.preopened = ahead.take(i);
            let r = self.entry(&name, dir, &md, old);
            self.preopened = None;
            match r {
                Ok(same) => tree_same &= same,
                Err(e) if matches!(e, Error::Io { .. }) => {
                    tree_same = false;
                    let path = dir.join(OsStr::from_bytes(&name));
                    self.warnings.push(format!("{}: {e}", path.display()));
                }
                Err(e) => return Err(e),
            }
        }
        match (parent_id, parent) {
            (Some(id), Some(t)) if tree_same => {
                self.send(Event::Same(id, prost::Message::encoded_len(t)))?;
                Ok(node_same)
            }
            _ => {
                self.send(Event::Leave)?;
                Ok(false)
            }
        }
    }

    /// The entries of `dir` with their `lstat`; what cannot be read
    /// becomes a warning.
    fn list_dir(&mut self, dir: &Path) -> Vec<(Vec<u8>, Metadata)> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.warnings.push(format!("{}: {e}", dir.display()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for e in rd {
            let e = match e {
                Ok(e) => e,
                Err(e) => {
                    self.warnings.push(format!("{}: {e}", dir.display()));
                    continue;
                }
            };
            // `lstat` relative to the open directory (`fstatat`): one name
            // looked up, not the whole path.
            match e.metadata() {
                Ok(md) => out.push((e.file_name().into_vec(), md)),
                Err(err) => self.warnings.push(format!("{}: {err}", e.path().display())),
            }
        }
        out
    }

    /// Back up the entry `name` of `dir`, other than a directory. Returns
    /// whether its node equals `old` (the parent snapshot's), content
    /// included.
    fn entry(
        &mut self,
        name: &[u8],
        dir: &Path,
        md: &Metadata,
        old: Option<&Node>,
    ) -> Result<bool> {
        // The path only for what needs one (an unchanged entry does not).
        let path = || dir.join(OsStr::from_bytes(name));
        let mut node = node_from_metadata(name, md);
        node.xattrs = xattrs_for(path, &node, old);
        let mut content = Vec::new();
        match node.kind {
            node_kind::SYMLINK => {
                node.link_target = match old {
                    Some(o) if same_link(&node, md, o) => o.link_target.clone(),
                    _ => fs::read_link(path())
                        .map_err(|e| Error::io("readlink", e))?
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                };
            }
            node_kind::FILE => {
                self.stats.files += 1;
                self.stats.bytes_total += node.size;
                self.progress.files.fetch_add(1, Ordering::Relaxed);
                self.size_total();
                let reusable = |o: &Node| {
                    unchanged(&node, o)
                        && (self.quarantined.is_empty()
                            || !o.content.iter().any(|c| {
                                ChunkId::from_slice(c).is_ok_and(|c| self.quarantined.contains(&c))
                            }))
                };
                match old {
                    Some(o) if reusable(o) => {
                        // The parent's chunk list as it is, once every id
                        // in it is known to be one.
                        for c in &o.content {
                            ChunkId::from_slice(c)?;
                        }
                        node.content.clone_from(&o.content);
                        self.progress.add(node.size);
                    }
                    _ => {
                        let f = match self.preopened.take() {
                            Some(f) => f,
                            None => open_for_read(&path()).map_err(|e| Error::io("open", e))?,
                        };
                        let (session, progress) = (self.session, self.progress);
                        let n = self.chunker.chunk(f, |chunk| {
                            progress.check_cancel()?;
                            progress.add(chunk.len() as u64);
                            content.push(session.submit(BlobKind::Data, chunk)?);
                            Ok(())
                        })?;
                        self.stats.bytes_read += n;
                        // A file that changed size while being read keeps what was read.
                        node.size = n;
                    }
                }
            }
            _ => {}
        }
        // A file read again has its chunks pending: not compared (a tree
        // holding it is encoded and stored, which dedups if it is the same).
        let same = content.is_empty() && old.is_some_and(|o| node == *o);
        self.send(Event::Entry(node, content))?;
        Ok(same)
    }
}

/// Builds tree blobs bottom-up and the catalog. Returns the root tree id,
/// the root directory's node and the catalog blob ids.
fn assemble(
    session: &BackupSession,
    rx: &Receiver<Event>,
) -> Result<(ChunkId, Node, Vec<ChunkId>)> {
    let mut stack: Vec<(Node, Vec<Node>)> = Vec::new();
    let mut path: Vec<u8> = Vec::new();
    let mut path_lens: Vec<usize> = Vec::new();
    let mut catalog = CatalogWriter::default();
    let mut root = None;
    let entry = |path: &[u8], n: &Node| CatalogEntry {
        path: path.to_vec(),
        kind: n.kind,
        mode: n.mode,
        size: n.size,
        mtime_ns: n.mtime_ns,
    };
    for ev in rx {
        match ev {
            Event::Enter(node) => {
                path_lens.push(path.len());
                if !stack.is_empty() {
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(&node.name);
                    catalog.push(session, entry(&path, &node))?;
                }
                stack.push((node, Vec::new()));
            }
            Event::Entry(mut node, content) => {
                for p in content {
                    node.content.push(p.wait()?.0.to_vec());
                }
                // The entry's path built on the directory's, then cut back.
                let len = path.len();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&node.name);
                catalog.push(session, entry(&path, &node))?;
                path.truncate(len);
                if let Some((_, children)) = stack.last_mut() {
                    children.push(node);
                }
            }
            Event::Leave | Event::Same(..) => {
                let (mut dir, children) = stack
                    .pop()
                    .ok_or_else(|| Error::Poisoned("unbalanced tree events".into()))?;
                path.truncate(path_lens.pop().unwrap_or(0));
                let id = match ev {
                    Event::Same(id, len) => {
                        session.reuse(id, len)?;
                        id
                    }
                    _ => {
                        let tree = Tree {
                            version: arca_repo::format::STRUCT_VERSION,
                            nodes: children,
                        };
                        session.store(BlobKind::Tree, &prost::Message::encode_to_vec(&tree))?
                    }
                };
                dir.subtree = id.0.to_vec();
                match stack.last_mut() {
                    Some((_, siblings)) => siblings.push(dir),
                    None => root = Some((id, dir)),
                }
            }
        }
    }
    let (root, mut node) = root.ok_or_else(|| {
        Error::Poisoned("backup ended before the root directory was complete".into())
    })?;
    // The name is where it was backed up from, not part of the content.
    node.name.clear();
    Ok((root, node, catalog.finish(session)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_window_stays_bounded() {
        const MIB: u64 = 1 << 20;
        // Entries 0..200; every other one is a file to read; sizes 10 MiB,
        // then small ones. The paths do not exist: advice is best effort.
        let files: Vec<_> = (0..100)
            .map(|k| {
                (
                    2 * k,
                    if k < 5 { 10 * MIB } else { 1024 },
                    format!("/nonexistent/{k}").into(),
                    None,
                )
            })
            .collect();
        let mut ra = ReadAhead {
            files,
            ..Default::default()
        };
        ra.advance(0);
        // 10+10+10+10 MiB reaches 32 MiB after the fourth file.
        assert_eq!((ra.start, ra.next, ra.window), (0, 4, 40 * MIB));
        ra.advance(7); // files at entries 0, 2, 4, 6 are passed
        assert_eq!(ra.start, 4);
        assert_eq!(ra.next, 4 + READ_AHEAD_FILES.min(96));
        assert!(ra.window <= 10 * MIB + READ_AHEAD_FILES as u64 * 1024);
        ra.advance(1000);
        assert_eq!((ra.start, ra.next, ra.window), (100, 100, 0));
    }

    #[test]
    fn read_ahead_hands_over_its_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let held = |ra: &ReadAhead| ra.files.iter().filter(|f| f.3.is_some()).count();
        // Entries 0..300, all files of 3 bytes.
        let files: Vec<_> = (0..300)
            .map(|k| {
                let p = dir.path().join(format!("f{k}"));
                std::fs::write(&p, format!("{k:03}")).unwrap();
                (k, 3, p, None)
            })
            .collect();
        let mut ra = ReadAhead {
            files,
            ..Default::default()
        };
        ra.advance(0);
        assert_eq!(held(&ra), READ_AHEAD_FILES);
        let mut f = ra.take(0).expect("descriptor of entry 0");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "000");
        // Taken once only; another entry's descriptor is not handed out.
        assert!(ra.take(0).is_none());
        assert!(ra.take(1).is_none());
        ra.advance(150);
        assert!(held(&ra) <= READ_AHEAD_FILES);
        let mut f = ra.take(150).expect("descriptor of entry 150");
        s.clear();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "150");
        // Passed entries closed theirs; release closes the rest.
        assert!(ra.files[..150].iter().all(|f| f.3.is_none()));
        ra.release();
        assert_eq!(held(&ra), 0);
    }
}
