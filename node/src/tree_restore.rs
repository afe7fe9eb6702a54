//! `arca restore --path` on an image restore point: a file or directory
//! of its file tree ([`arca_frontends::tree`]: `disk.img`, the partitions
//! and the file systems inside them) written to a target by the same
//! restore as a tree restore point's ([`arca_ingest::restore`]): the same
//! confinement beneath the target, `overwrite` rule, special-file rule,
//! resuming and progress. Only where entries and bytes come from differs
//! ([`TreeSource`]).
//!
//! Hard links inside an image's file system are restored as copies: the
//! tree has no identity of files across directories that a restore could
//! trust (inode numbers are per partition), so every name gets its bytes.

use std::sync::atomic::Ordering;

use arca_frontends::tree::{Attr, Entry, FileTree, Kind, TreeError, TreePath};
use arca_ingest::restore::{self, RestoreOptions, RestoreOutcome, Selection, Source};
use arca_ingest::Progress;
use arca_repo::format::{node_kind, Node, Tree};
use arca_repo::{Error, Result};

/// Bytes read from a file of the tree at a time.
const READ_SIZE: usize = 1 << 20;

/// Entries read from a directory of the tree at a time.
const DIR_BATCH: usize = 1024;

/// A file tree as a restore's source. A [`Node`] it hands out carries
/// the entry's path in the tree in `subtree` ('/'-separated bytes), for
/// directories and files alike; `content` is empty.
pub struct TreeSource<'a> {
    tree: &'a dyn FileTree,
}

impl<'a> TreeSource<'a> {
    pub fn new(tree: &'a dyn FileTree) -> Self {
        TreeSource { tree }
    }

    /// The node of the entry at `path` whose attributes are `attr`.
    fn node(&self, path: &TreePath, attr: &Attr) -> Result<Node> {
        let link_target = if attr.kind == Kind::Symlink {
            self.tree.read_link(path).map_err(to_repo)?
        } else {
            Vec::new()
        };
        Ok(Node {
            name: path.name().unwrap_or_default().to_vec(),
            kind: kind_of(attr.kind),
            mode: attr.mode & 0o7777,
            uid: attr.uid,
            gid: attr.gid,
            mtime_ns: attr.mtime_ns,
            atime_ns: attr.atime_ns,
            ctime_ns: attr.ctime_ns,
            size: if attr.kind == Kind::File {
                attr.size
            } else {
                0
            },
            // Copies, never links (see the module documentation).
            nlink: 1,
            subtree: encode(path),
            link_target,
            rdev: attr.rdev,
            ..Default::default()
        })
    }
}

impl Source for TreeSource<'_> {
    fn children(&self, dir: &Node) -> Result<Tree> {
        let path = decode(&dir.subtree)?;
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let before = entries.len();
            self.tree
                .read_dir(&path, before as u64, &mut |e| {
                    entries.push(e);
                    entries.len() - before < DIR_BATCH
                })
                .map_err(to_repo)?;
            if entries.len() - before < DIR_BATCH {
                break;
            }
        }
        let mut nodes = Vec::with_capacity(entries.len());
        for e in entries {
            let Ok(p) = path.join(&e.name) else {
                // Not a name a file can have here ('/', '.', '..'):
                // skipped as the restore skips unsafe names.
                continue;
            };
            nodes.push(self.node(&p, &e.attr)?);
        }
        Ok(Tree {
            nodes,
            ..Default::default()
        })
    }

    fn content(&self, file: &Node, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let path = decode(&file.subtree)?;
        let r = self.tree.open(&path).map_err(to_repo)?;
        let size = r.size();
        let mut buf = vec![0u8; READ_SIZE.min(size as usize)];
        let mut off = 0u64;
        while off < size {
            let n = r.read_at(off, &mut buf).map_err(to_repo)?;
            if n == 0 {
                return Err(Error::Corrupt(format!(
                    "{path}: the file ends at {off} bytes, not {size}"
                )));
            }
            f(&buf[..n])?;
            off += n as u64;
        }
        Ok(())
    }
}

/// Restore the file or directory `path` of `tree` (the tree of restore
/// point `restore_point`, hex) to `target`: a directory's contents into
/// it, a file (link, special file) as `target/<name>`. `path` is refused
/// with `..` and must exist.
pub fn restore(
    tree: &dyn FileTree,
    restore_point: &str,
    path: &str,
    target: &std::path::Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreOutcome> {
    let p = TreePath::parse(path).map_err(to_repo)?;
    let attr = tree.stat(&p).map_err(to_repo)?;
    let src = TreeSource::new(tree);
    let node = src.node(&p, &attr)?;
    let (node, dir) = match (attr.kind, p.is_root()) {
        // The root is made up by the view: the target keeps its own mode.
        (Kind::Dir, true) => (None, Some(src.children(&node)?)),
        (Kind::Dir, false) => {
            let t = src.children(&node)?;
            (Some(node), Some(t))
        }
        _ => (Some(node), None),
    };
    if let (Some(n), None) = (&node, &dir) {
        progress.total.store(n.size, Ordering::Relaxed);
    } else {
        // Known once the restore has listed the directories.
        progress.total.store(0, Ordering::Relaxed);
    }
    let sel = Selection {
        restore_point: restore_point.to_string(),
        path: Some(p.to_string()),
        node,
        tree: dir,
    };
    restore::restore_from(&src, sel, target, opts, progress)
}

/// A tree error as the restore reports it.
pub fn to_repo(e: TreeError) -> Error {
    match e {
        TreeError::Invalid(m) => Error::InvalidInput(m),
        TreeError::NotFound(m) => Error::NotFound(m),
        TreeError::NotADirectory(m) | TreeError::IsADirectory(m) | TreeError::WrongKind(m) => {
            Error::InvalidInput(m)
        }
        TreeError::Io(m) => Error::Corrupt(m),
        TreeError::Unavailable(m) => Error::io(m.clone(), std::io::Error::other(m)),
    }
}

/// The node kind of a tree entry's kind.
pub fn kind_of(k: Kind) -> u32 {
    match k {
        Kind::File => node_kind::FILE,
        Kind::Dir => node_kind::DIR,
        Kind::Symlink => node_kind::SYMLINK,
        Kind::Fifo => node_kind::FIFO,
        Kind::CharDevice => node_kind::CHARDEV,
        Kind::BlockDevice => node_kind::BLOCKDEV,
        Kind::Socket => node_kind::SOCKET,
    }
}

fn encode(p: &TreePath) -> Vec<u8> {
    p.components().join(&b'/')
}

fn decode(b: &[u8]) -> Result<TreePath> {
    TreePath::parse_bytes(b).map_err(to_repo)
}

#[cfg(test)]
mod tests;
