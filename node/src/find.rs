//! Finding entries across tree restore points (`arca find` and
//! `GET /api/v1/restore-points/search`): which restore points hold an
//! entry matching an [`arca_model::search::Pattern`], and where.
//!
//! The trees are read as [`crate::browse::tree`] reads them, depth first
//! in name order. Trees are content-addressed, so a directory that did not
//! change between two backups is the same tree blob in both: a [`Search`]
//! remembers, for every directory it has walked to the end, which of its
//! entries match and which of its subdirectories hold matches (only
//! those: a directory with no match below it is one empty record). The
//! next restore point then reads only the directories that changed, and
//! replays the remembered matches of the others without reading them. N
//! mostly unchanged restore points cost about one walk plus the changes
//! (docs/control-plane.md has measurements). For a name pattern the
//! record is per tree id; for a path pattern per tree id and path, since
//! the same tree elsewhere has other paths.
//!
//! Matches are handed to a callback as they are found, which stops the
//! search by returning false (the limit of [`search`]).
//!
//! Image restore points are searched only when asked (`arca find
//! --images`, the API's `images=true`): through their file trees
//! ([`arca_frontends::tree`]), every entry of the file systems of their
//! partitions, depth first in the file systems' order
//! ([`Search::file_tree`]). Nothing is remembered across images (their
//! directories are not content-addressed), so each image costs a walk of
//! its file-system metadata: docs/file-access.md says why it is opt-in.

use std::collections::HashMap;
use std::sync::Arc;

use arca_frontends::tree::{FileTree, TreePath, Trees};
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};
use arca_repo::format::{node_kind, Node};
use arca_repo::{ChunkId, Datastore, Snapshot};

use crate::browse::{entry, file_tree_entry, join, TreeError, TreeWalk};

/// What a search read and what it replayed from memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FindStats {
    /// Tree blobs (directories) read from the datastore.
    pub trees_read: u64,
    /// Directories whose matches were replayed from memory, unread.
    pub trees_remembered: u64,
    /// Entries of image restore points' file trees walked.
    pub entries_walked: u64,
}

/// What a walked directory holds: its matching entries and its
/// subdirectories with matches below them, in walk order.
enum Item {
    /// A matching entry of the directory (`path` is its name).
    Hit(api::TreeEntry),
    /// A subdirectory (its name and tree) with matches below it.
    Below(String, ChunkId),
}

type Key = (ChunkId, String);

/// A directory being walked.
struct Frame {
    id: ChunkId,
    name: String,
    dir: String,
    nodes: std::vec::IntoIter<Node>,
    items: Vec<Item>,
}

/// One search: a pattern and what it has learnt of the trees it walked.
/// Use one per datastore and pattern, for all the restore points searched.
pub struct Search<'p> {
    pattern: &'p Pattern,
    memo: HashMap<Key, Arc<Vec<Item>>>,
    stats: FindStats,
}

impl<'p> Search<'p> {
    /// A search for `pattern` that knows no tree yet.
    pub fn new(pattern: &'p Pattern) -> Self {
        Search {
            pattern,
            memo: HashMap::new(),
            stats: FindStats::default(),
        }
    }

    /// What the search read so far.
    pub fn stats(&self) -> FindStats {
        self.stats
    }

    fn key(&self, id: ChunkId, dir: &str) -> Key {
        if self.pattern.whole_path() {
            (id, dir.to_string())
        } else {
            (id, String::new())
        }
    }

    fn open(
        &mut self,
        ds: &Datastore,
        id: ChunkId,
        name: String,
        dir: String,
    ) -> Result<Frame, TreeError> {
        self.stats.trees_read += 1;
        Ok(Frame {
            id,
            name,
            dir,
            nodes: ds.read_tree(&id)?.nodes.into_iter(),
            items: Vec::new(),
        })
    }

    /// Hand every match in `snap` to `found`, depth first in name order
    /// (paths relative to the root), until it returns false. Ok(true):
    /// the whole restore point was searched; Ok(false): `found` stopped
    /// it. An image restore point is [`TreeError::Image`].
    pub fn snapshot(
        &mut self,
        ds: &Datastore,
        snap: &Snapshot,
        found: &mut dyn FnMut(&api::TreeEntry) -> bool,
    ) -> Result<bool, TreeError> {
        if snap.is_image() {
            return Err(TreeError::Image);
        }
        let root = ChunkId::from_slice(&snap.manifest.tree)?;
        if let Some(items) = self.memo.get(&self.key(root, "")).cloned() {
            self.stats.trees_remembered += 1;
            return Ok(self.replay(items, "", found));
        }
        let mut stack = vec![self.open(ds, root, String::new(), String::new())?];
        while let Some(top) = stack.last_mut() {
            let Some(n) = top.nodes.next() else {
                // Walked to the end: remember it, and tell the parent
                // when something below matched.
                let Some(done) = stack.pop() else { break };
                let key = self.key(done.id, &done.dir);
                let any = !done.items.is_empty();
                self.memo.insert(key, Arc::new(done.items));
                if let (true, Some(parent)) = (any, stack.last_mut()) {
                    parent.items.push(Item::Below(done.name, done.id));
                }
                continue;
            };
            let name = String::from_utf8_lossy(&n.name).into_owned();
            if self.pattern.matches(&top.dir, &name) {
                if !found(&entry(&top.dir, &n)) {
                    return Ok(false);
                }
                top.items.push(Item::Hit(entry("", &n)));
            }
            if n.kind != node_kind::DIR || n.subtree.is_empty() {
                continue;
            }
            let sub = ChunkId::from_slice(&n.subtree)?;
            let sub_dir = join(&top.dir, &name);
            match self.memo.get(&self.key(sub, &sub_dir)).cloned() {
                Some(items) => {
                    self.stats.trees_remembered += 1;
                    if !items.is_empty() {
                        top.items.push(Item::Below(name, sub));
                        if !self.replay(items, &sub_dir, found) {
                            return Ok(false);
                        }
                    }
                }
                None => {
                    let frame = self.open(ds, sub, name, sub_dir)?;
                    stack.push(frame);
                }
            }
        }
        Ok(true)
    }

    /// [`Search::snapshot`] of a file tree (an image restore point's):
    /// every entry, a directory before what it holds, in the tree's
    /// order (files such as `disk.img` are entries like any other).
    pub fn file_tree(
        &mut self,
        t: &dyn FileTree,
        found: &mut dyn FnMut(&api::TreeEntry) -> bool,
    ) -> Result<bool, TreeError> {
        let mut walk = TreeWalk::new(TreePath::root());
        while let Some((path, attr)) = walk.next(t, true)? {
            self.stats.entries_walked += 1;
            let dir = path.parent().to_string();
            let name = String::from_utf8_lossy(path.name().unwrap_or_default());
            if self.pattern.matches(&dir, &name) && !found(&file_tree_entry(t, &path, &attr)?) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Hand the remembered matches below `dir` to `found`; false when it
    /// stopped.
    fn replay(
        &self,
        items: Arc<Vec<Item>>,
        dir: &str,
        found: &mut dyn FnMut(&api::TreeEntry) -> bool,
    ) -> bool {
        let mut stack = vec![(items, 0usize, dir.to_string())];
        while let Some((items, i, dir)) = stack.last_mut() {
            let Some(item) = items.get(*i) else {
                stack.pop();
                continue;
            };
            *i += 1;
            match item {
                Item::Hit(e) => {
                    let mut e = e.clone();
                    e.path = join(dir, &e.name);
                    if !found(&e) {
                        return false;
                    }
                }
                Item::Below(name, id) => {
                    let sub = join(dir, name);
                    // Always there: a directory is remembered before its
                    // parent names it.
                    if let Some(below) = self.memo.get(&self.key(*id, &sub)).cloned() {
                        stack.push((below, 0, sub));
                    }
                }
            }
        }
        true
    }
}

/// The matches of `pattern` in the tree restore points `snaps` (searched
/// in the order given, newest first by convention), as the API answers
/// them: at most `limit` (`truncated` when there were more). Image
/// restore points (unless `images` gives the trees to read them through)
/// and those whose trees cannot be read are listed in `skipped` with the
/// reason; the others are searched all the same.
pub fn search(
    ds: &Arc<Datastore>,
    snaps: &[Snapshot],
    pattern: &Pattern,
    limit: usize,
    images: Option<&Trees>,
) -> (api::SearchResult, FindStats) {
    let mut out = api::SearchResult::default();
    let mut s = Search::new(pattern);
    for snap in snaps {
        if out.truncated {
            break;
        }
        let time = api::RestorePoint::time_from_ns(snap.manifest.time_ns);
        let mut found = |e: &api::TreeEntry| {
            if out.matches.len() >= limit {
                out.truncated = true;
                return false;
            }
            out.matches.push(api::SearchMatch {
                restore_point: snap.id.into(),
                time,
                source: snap.manifest.source.clone(),
                path: e.path.clone(),
                kind: e.kind,
                size: e.size,
                mtime: e.mtime,
            });
            true
        };
        let r = match (snap.is_image(), images) {
            (true, Some(trees)) => trees
                .get(ds, &snap.id)
                .map_err(TreeError::from)
                .and_then(|t| s.file_tree(t.as_ref(), &mut found)),
            _ => s.snapshot(ds, snap, &mut found),
        };
        out.searched += 1;
        let reason = match r {
            Ok(_) => continue,
            Err(TreeError::Image) => {
                out.searched -= 1;
                api::IMAGES_NOT_SEARCHED.to_string()
            }
            Err(e) => format!("searched in part: its trees could not be read: {e}"),
        };
        out.skipped.push(api::SearchSkipped {
            restore_point: snap.id.into(),
            reason,
        });
    }
    (out, s.stats())
}

/// Search the restore points `rps` of datastore `ds` (the catalog
/// calls it `name`), newest first: [`search`] over those the datastore
/// still holds (images through `images`, when given), and those it no
/// longer holds (or cannot read) listed in `skipped`. What both the
/// server's embedded node and a remote node (answering the server's find
/// query) run.
pub fn search_restore_points(
    ds: &Arc<Datastore>,
    name: &str,
    rps: &[RestorePointId],
    pattern: &Pattern,
    limit: u32,
    images: Option<&Trees>,
) -> api::SearchResult {
    let mut snaps = Vec::with_capacity(rps.len());
    let mut skipped = Vec::new();
    for rp in rps {
        match ds.load_snapshot(&rp.snapshot_id()) {
            Ok(s) => snaps.push(s),
            Err(e) => skipped.push(api::SearchSkipped {
                restore_point: *rp,
                reason: match e {
                    arca_repo::Error::NotFound(_) => format!("no longer in datastore {name:?}"),
                    e => format!("cannot be read: {e}"),
                },
            }),
        }
    }
    let (mut r, stats) = search(ds, &snaps, pattern, limit as usize, images);
    tracing::debug!(
        datastore = %name,
        restore_points = rps.len(),
        trees_read = stats.trees_read,
        trees_remembered = stats.trees_remembered,
        entries_walked = stats.entries_walked,
        "search"
    );
    r.skipped.extend(skipped);
    r
}

#[cfg(test)]
mod tests;
