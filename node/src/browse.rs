//! Browsing a tree snapshot: one directory level or everything below a
//! path, a page at a time, as [`api::TreeEntry`]s. The server's
//! `GET /api/v1/restore-points/{id}/tree` and the local `arca ls` both
//! list through [`tree`], so they show the same entries.

use arca_frontends::tree::{Entry, FileTree, Kind, TreePath};
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
    /// A path of an image's file tree could not be read (a damaged file
    /// system inside it, missing chunks).
    Unreadable(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Invalid(m) | TreeError::NotFound(m) | TreeError::Unreadable(m) => {
                f.write_str(m)
            }
            TreeError::Image => f.write_str(
                "an image restore point has disks, not files (browse of image restore points comes with file access)",
            ),
            TreeError::Datastore(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TreeError {}

impl From<arca_repo::Error> for TreeError {
    fn from(e: arca_repo::Error) -> Self {
        TreeError::Datastore(e)
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
/// returned.
pub fn tree(
    ds: &Datastore,
    snap: &Snapshot,
    path: &str,
    recursive: bool,
    offset: u64,
    limit: u32,
) -> Result<api::TreePage, TreeError> {
    if snap.is_image() {
        return Err(TreeError::Image);
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

/// [`tree`] for a restore point read through its file tree
/// ([`arca_frontends::tree::FileTree`]): an image restore point (its disk
/// as `disk.img`, and what the tree shows inside it), with the same
/// entries, paging and depth-first order. Directories are read from
/// positions as the walk goes, never held whole.
pub fn file_tree_page(
    t: &dyn FileTree,
    path: &str,
    recursive: bool,
    offset: u64,
    limit: u32,
) -> Result<api::TreePage, TreeError> {
    let p = TreePath::parse(path).map_err(tree_error)?;
    let shown = p.to_string();
    let attr = t.stat(&p).map_err(tree_error)?;
    if attr.kind != Kind::Dir {
        let entries = if offset == 0 && limit > 0 {
            let name = p.name().unwrap_or_default().to_vec();
            let prefix = p.parent().to_string();
            vec![tree_entry(t, &p, &prefix, Entry { name, attr })]
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
    // (directory, its path as shown, next position).
    let mut stack = vec![(p, shown.clone(), 0u64)];
    'walk: while let Some((dir, prefix, pos)) = stack.last_mut() {
        let mut next = None;
        let mut read = 0u64;
        let mut full = false;
        t.read_dir(dir, *pos, &mut |e| {
            read += 1;
            if skip > 0 {
                skip -= 1;
            } else if entries.len() >= limit as usize {
                full = true;
                return false;
            } else {
                let path = dir.join(&e.name);
                if let Ok(path) = &path {
                    entries.push(tree_entry(t, path, prefix, e.clone()));
                }
            }
            if recursive && e.attr.kind == Kind::Dir {
                next = Some(e.name);
                return false;
            }
            true
        })
        .map_err(tree_error)?;
        if full {
            more = true;
            break 'walk;
        }
        *pos += read;
        match next {
            Some(name) => {
                let child = dir.join(&name).map_err(tree_error)?;
                let shown = join(prefix, &String::from_utf8_lossy(&name));
                stack.push((child, shown, 0));
            }
            None => {
                stack.pop();
            }
        }
    }
    let next_offset = more.then(|| offset + entries.len() as u64);
    Ok(api::TreePage {
        path: shown,
        entries,
        next_offset,
    })
}

fn tree_error(e: arca_frontends::tree::TreeError) -> TreeError {
    use arca_frontends::tree::TreeError as E;
    match e {
        E::Invalid(m) => TreeError::Invalid(m),
        E::NotFound(m) | E::NotADirectory(m) | E::IsADirectory(m) | E::WrongKind(m) => {
            TreeError::NotFound(m)
        }
        E::Io(m) => TreeError::Unreadable(m),
    }
}

/// The API entry of `e` at `path` (shown under `prefix`).
fn tree_entry(t: &dyn FileTree, path: &TreePath, prefix: &str, e: Entry) -> api::TreeEntry {
    use api::TreeEntryKind as K;
    let name = String::from_utf8_lossy(&e.name).into_owned();
    let a = e.attr;
    let kind = match a.kind {
        Kind::File => K::File,
        Kind::Dir => K::Dir,
        Kind::Symlink => K::Symlink,
        Kind::Fifo => K::Fifo,
        Kind::CharDevice => K::Chardev,
        Kind::BlockDevice => K::Blockdev,
        Kind::Socket => K::Socket,
    };
    let link_target = (a.kind == Kind::Symlink).then(|| {
        t.read_link(path)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default()
    });
    api::TreeEntry {
        path: join(prefix, &name),
        name,
        kind,
        size: a.size,
        mode: a.mode,
        mtime: a.mtime_ns.div_euclid(1_000_000_000),
        uid: a.uid,
        gid: a.gid,
        link_target,
    }
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
