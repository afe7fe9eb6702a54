//! Browsing a restore point: one directory level or everything below a
//! path, a page at a time, as [`api::TreeEntry`]s. The server's
//! `GET /api/v1/restore-points/{id}/tree` and the local `arca ls` both
//! list through [`tree`], so they show the same entries. A tree restore
//! point is listed from its stored trees (in name order); an image
//! restore point through its file tree ([`arca_frontends::tree`]:
//! `disk.img`, the partitions and their file systems, in the file
//! systems' order) by [`file_tree_page`].

use std::sync::Arc;

use arca_frontends::tree::{self as ft, FileTree, Trees};
use arca_model::api;
use arca_repo::format::{node_kind, Node};
use arca_repo::{ChunkId, Datastore, Snapshot};

/// Why a tree cannot be listed.
#[derive(Debug)]
pub enum TreeError {
    /// The path is not acceptable (`..`, NUL, too long).
    Invalid(String),
    /// No such path in the snapshot.
    NotFound(String),
    /// An image snapshot: it has disks, not files.
    Image,
    /// Reading the datastore failed.
    Datastore(arca_repo::Error),
    /// Reading an image's file tree failed (a damaged file system, a
    /// damaged chunk).
    Io(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Invalid(m) | TreeError::NotFound(m) => f.write_str(m),
            TreeError::Image => f.write_str(
                "an image restore point has disks, not files (browse of image restore points comes with file access)",
            ),
            TreeError::Datastore(e) => write!(f, "{e}"),
            TreeError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TreeError {}

impl From<arca_repo::Error> for TreeError {
    fn from(e: arca_repo::Error) -> Self {
        TreeError::Datastore(e)
    }
}

impl From<ft::TreeError> for TreeError {
    fn from(e: ft::TreeError) -> Self {
        match e {
            ft::TreeError::Invalid(m) => TreeError::Invalid(m),
            // As for a stored tree: a path through a file is not there.
            ft::TreeError::NotFound(m) | ft::TreeError::NotADirectory(m) => TreeError::NotFound(m),
            ft::TreeError::IsADirectory(m)
            | ft::TreeError::WrongKind(m)
            | ft::TreeError::Io(m)
            | ft::TreeError::Unavailable(m) => TreeError::Io(m),
        }
    }
}

/// The components of `path` (relative to the snapshot root; a leading
/// '/' is optional, empty and `.` components are skipped). `..`, NUL and
/// paths over 4096 bytes are refused.
pub fn components(path: &str) -> Result<Vec<&str>, TreeError> {
    if path.len() > 4096 || path.contains('\0') {
        return Err(TreeError::Invalid(
            "path must be at most 4096 bytes, without NUL".into(),
        ));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(TreeError::Invalid(format!(
                    "path {path:?} has a '..' component: give a path inside the restore point"
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// One page of the entries below `path` in `snap`: the children of a
/// directory (all its descendants, depth first, when `recursive`), or the
/// file itself when `path` names one. Entries are in name order (bytewise)
/// within a directory; `offset` skips that many, at most `limit` are
/// returned. An image restore point is listed through its file tree,
/// kept open in `trees`.
pub fn tree(
    ds: &Arc<Datastore>,
    trees: &Trees,
    snap: &Snapshot,
    path: &str,
    recursive: bool,
    offset: u64,
    limit: u32,
) -> Result<api::TreePage, TreeError> {
    if snap.is_image() {
        components(path)?;
        let t = trees.get(ds, &snap.id)?;
        return file_tree_page(t.as_ref(), path, recursive, offset, limit);
    }
    let parts = components(path)?;
    let shown = parts.join("/");
    let not_found = || {
        TreeError::NotFound(format!(
            "no path {:?} in restore point {}",
            shown,
            snap.id.short()
        ))
    };
    let mut dir = ChunkId::from_slice(&snap.manifest.tree)?;
    let mut prefix = String::new();
    for (i, part) in parts.iter().enumerate() {
        let t = ds.read_tree(&dir)?;
        let n = t
            .nodes
            .into_iter()
            .find(|n| n.name == part.as_bytes())
            .ok_or_else(not_found)?;
        if n.kind != node_kind::DIR {
            if i + 1 < parts.len() {
                return Err(not_found());
            }
            // A file (or other non-directory): itself.
            let entries = if offset == 0 && limit > 0 {
                vec![entry(&prefix, &n)]
            } else {
                Vec::new()
            };
            return Ok(api::TreePage {
                path: shown,
                entries,
                next_offset: None,
            });
        }
        dir = ChunkId::from_slice(&n.subtree)?;
        prefix = join(&prefix, part);
    }
    let mut page = Page {
        skip: offset,
        limit: limit as usize,
        entries: Vec::new(),
        more: false,
    };
    walk(ds, &dir, &prefix, recursive, &mut page)?;
    let next_offset = page.more.then(|| offset + page.entries.len() as u64);
    Ok(api::TreePage {
        path: shown,
        entries: page.entries,
        next_offset,
    })
}

/// [`tree`] of any file tree: entries within a directory in the tree's
/// order. Directories are read [`DIR_BATCH`] entries at a time, so a
/// page of a huge directory does not hold all of it.
pub fn file_tree_page(
    t: &dyn FileTree,
    path: &str,
    recursive: bool,
    offset: u64,
    limit: u32,
) -> Result<api::TreePage, TreeError> {
    let p = ft::TreePath::parse(path)?;
    let shown = p.to_string();
    let attr = t.stat(&p)?;
    if attr.kind != ft::Kind::Dir {
        let entries = if offset == 0 && limit > 0 {
            vec![file_tree_entry(t, &p, &attr)?]
        } else {
            Vec::new()
        };
        return Ok(api::TreePage {
            path: shown,
            entries,
            next_offset: None,
        });
    }
    let mut skip = offset;
    let mut entries = Vec::new();
    let mut more = false;
    let mut walk = TreeWalk::new(p);
    while let Some((path, attr)) = walk.next(t, recursive)? {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if entries.len() >= limit as usize {
            more = true;
            break;
        }
        entries.push(file_tree_entry(t, &path, &attr)?);
    }
    let next_offset = more.then(|| offset + entries.len() as u64);
    Ok(api::TreePage {
        path: shown,
        entries,
        next_offset,
    })
}

/// Entries read from a directory of a file tree at a time.
pub const DIR_BATCH: usize = 256;

/// A depth-first walk of a file tree below a directory: each entry with
/// its path, a directory before what it holds. Reads [`DIR_BATCH`]
/// entries of a directory at a time; the stack is as deep as the tree.
pub struct TreeWalk {
    /// Directories being walked: path, position of the next batch, and
    /// the entries read but not handed out yet.
    stack: Vec<(ft::TreePath, u64, std::collections::VecDeque<ft::Entry>)>,
}

impl TreeWalk {
    /// A walk of the directory `dir`.
    pub fn new(dir: ft::TreePath) -> Self {
        TreeWalk {
            stack: vec![(dir, 0, Default::default())],
        }
    }

    /// The next entry; with `descend`, a directory's entries follow it.
    /// None when the walk is over.
    pub fn next(
        &mut self,
        t: &dyn FileTree,
        descend: bool,
    ) -> Result<Option<(ft::TreePath, ft::Attr)>, TreeError> {
        while let Some((dir, pos, buf)) = self.stack.last_mut() {
            if buf.is_empty() {
                t.read_dir(dir, *pos, &mut |e| {
                    buf.push_back(e);
                    buf.len() < DIR_BATCH
                })?;
                *pos += buf.len() as u64;
            }
            let Some(e) = buf.pop_front() else {
                self.stack.pop();
                continue;
            };
            // A name that cannot be a component ('/') is not listed.
            let Ok(path) = dir.join(&e.name) else {
                continue;
            };
            if descend && e.attr.kind == ft::Kind::Dir {
                self.stack.push((path.clone(), 0, Default::default()));
            }
            return Ok(Some((path, e.attr)));
        }
        Ok(None)
    }
}

/// The API's entry of `path` in a file tree.
pub(crate) fn file_tree_entry(
    t: &dyn FileTree,
    path: &ft::TreePath,
    a: &ft::Attr,
) -> Result<api::TreeEntry, TreeError> {
    use api::TreeEntryKind as K;
    let link_target = match a.kind {
        ft::Kind::Symlink => Some(String::from_utf8_lossy(&t.read_link(path)?).into_owned()),
        _ => None,
    };
    Ok(api::TreeEntry {
        path: path.to_string(),
        name: String::from_utf8_lossy(path.name().unwrap_or_default()).into_owned(),
        kind: match a.kind {
            ft::Kind::File => K::File,
            ft::Kind::Dir => K::Dir,
            ft::Kind::Symlink => K::Symlink,
            ft::Kind::Fifo => K::Fifo,
            ft::Kind::CharDevice => K::Chardev,
            ft::Kind::BlockDevice => K::Blockdev,
            ft::Kind::Socket => K::Socket,
        },
        size: a.size,
        mode: a.mode,
        mtime: a.mtime_ns.div_euclid(1_000_000_000),
        uid: a.uid,
        gid: a.gid,
        link_target,
    })
}

struct Page {
    skip: u64,
    limit: usize,
    entries: Vec<api::TreeEntry>,
    more: bool,
}

impl Page {
    /// Take one entry; false once the page is full (and one more exists).
    fn push(&mut self, prefix: &str, n: &Node) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        if self.entries.len() >= self.limit {
            self.more = true;
            return false;
        }
        self.entries.push(entry(prefix, n));
        true
    }
}

/// Visit the directory `id` (at `prefix`), depth first, until the page is
/// full. A stack, not recursion: the depth of a tree is the datastore's.
fn walk(
    ds: &Datastore,
    id: &ChunkId,
    prefix: &str,
    recursive: bool,
    page: &mut Page,
) -> Result<(), TreeError> {
    let mut stack = vec![(ds.read_tree(id)?.nodes.into_iter(), prefix.to_string())];
    while let Some((nodes, prefix)) = stack.last_mut() {
        let Some(n) = nodes.next() else {
            stack.pop();
            continue;
        };
        if !page.push(prefix, &n) {
            break;
        }
        if recursive && n.kind == node_kind::DIR && !n.subtree.is_empty() {
            let sub = ChunkId::from_slice(&n.subtree)?;
            let path = join(prefix, &String::from_utf8_lossy(&n.name));
            stack.push((ds.read_tree(&sub)?.nodes.into_iter(), path));
        }
    }
    Ok(())
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

pub(crate) fn entry(prefix: &str, n: &Node) -> api::TreeEntry {
    let name = String::from_utf8_lossy(&n.name).into_owned();
    api::TreeEntry {
        path: join(prefix, &name),
        name,
        kind: kind(n.kind),
        size: n.size,
        mode: n.mode,
        mtime: n.mtime_ns.div_euclid(1_000_000_000),
        uid: n.uid,
        gid: n.gid,
        link_target: (n.kind == node_kind::SYMLINK)
            .then(|| String::from_utf8_lossy(&n.link_target).into_owned()),
    }
}

fn kind(k: u32) -> api::TreeEntryKind {
    use api::TreeEntryKind as K;
    match k {
        node_kind::FILE => K::File,
        node_kind::DIR => K::Dir,
        node_kind::SYMLINK => K::Symlink,
        node_kind::FIFO => K::Fifo,
        node_kind::CHARDEV => K::Chardev,
        node_kind::BLOCKDEV => K::Blockdev,
        node_kind::SOCKET => K::Socket,
        _ => K::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_skip_empty_and_dot_and_refuse_dotdot() {
        assert_eq!(components("/a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert!(components("").unwrap().is_empty());
        assert!(components("/").unwrap().is_empty());
        assert!(matches!(components("a/../b"), Err(TreeError::Invalid(_))));
        assert!(matches!(components("a\0b"), Err(TreeError::Invalid(_))));
        assert!(matches!(
            components(&"x".repeat(5000)),
            Err(TreeError::Invalid(_))
        ));
    }

    #[test]
    fn entries_are_named_by_their_path() {
        let n = Node {
            name: b"l".to_vec(),
            kind: node_kind::SYMLINK,
            mode: 0o777,
            link_target: b"../t".to_vec(),
            mtime_ns: -1,
            ..Default::default()
        };
        let e = entry("a/b", &n);
        assert_eq!(e.path, "a/b/l");
        assert_eq!(e.name, "l");
        assert_eq!(e.kind, api::TreeEntryKind::Symlink);
        assert_eq!(e.link_target.as_deref(), Some("../t"));
        assert_eq!(e.mtime, -1);
        assert_eq!(entry("", &n).path, "l");
    }
}
