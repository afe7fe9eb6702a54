//! Listings: the keys of a bucket under a prefix, walked through the
//! trees of its restore points, streaming (one directory batch at a time)
//! and resumable from a [`Cursor`].
//!
//! Order: the bucket root lists its restore points by id, then `latest`
//! (S3's byte order of those names); inside a restore point, each
//! directory in the tree's order, depth first. Tokens are positions in
//! that walk, so a page never repeats or skips an entry of an unchanged
//! restore point.

use std::sync::Arc;

use arca_frontends::tree::{Attr, FileTree, Kind, TreeError, TreePath};

use crate::names::Cursor;

/// One thing a listing shows.
pub enum Item {
    /// A file: its full key and attributes.
    Object { key: String, attr: Attr },
    /// A directory (or restore point) when listing with the delimiter:
    /// the key prefix, ending in '/'.
    Prefix(String),
}

/// A restore point in the bucket root: its name there (`latest` or the
/// id) and how to open its tree.
pub struct RootEntry {
    pub name: String,
    pub open: Box<dyn Fn() -> Result<Arc<dyn FileTree>, crate::BackendError> + Send>,
}

/// Why a listing failed.
pub enum ListError {
    /// A stale or foreign continuation token.
    BadToken,
    Tree(TreeError),
    Backend(crate::BackendError),
}

impl From<TreeError> for ListError {
    fn from(e: TreeError) -> Self {
        ListError::Tree(e)
    }
}

/// Entries read from a directory at a time.
const BATCH: usize = 256;

/// List `prefix` of a bucket whose root holds `roots` (sorted by name),
/// from `cursor`, handing items to `emit` until it returns false (then
/// the cursor of the refused item is returned) or the listing ends
/// (`None`). `delimit`: group at '/' (list one level).
pub fn list(
    roots: &[RootEntry],
    prefix: &str,
    delimit: bool,
    cursor: Option<Cursor>,
    emit: &mut dyn FnMut(Item) -> bool,
) -> Result<Option<Cursor>, ListError> {
    // The part of the prefix up to its first '/' names a restore point;
    // without a '/', the prefix filters the root's names.
    let (root_filter, inner) = match prefix.split_once('/') {
        Some((point, rest)) => (Some(point), Some(rest)),
        None => (None, None),
    };
    if delimit && inner.is_none() {
        // The bucket root, one level: a prefix per restore point.
        let start = match &cursor {
            None => 0,
            Some(c) if c.point.is_empty() && c.positions.len() == 1 => c.positions[0],
            Some(_) => return Err(ListError::BadToken),
        };
        for (i, r) in roots.iter().enumerate().skip(start as usize) {
            if !r.name.starts_with(prefix) {
                continue;
            }
            if !emit(Item::Prefix(format!("{}/", r.name))) {
                return Ok(Some(Cursor {
                    point: String::new(),
                    positions: vec![i as u64],
                }));
            }
        }
        return Ok(None);
    }
    // Split the part after the restore point into the directory to list
    // and a filter on its entries' names.
    let (dir, name_filter) = match inner {
        Some(rest) => match rest.rsplit_once('/') {
            Some((d, f)) => (d, f),
            None => ("", rest),
        },
        None => ("", ""),
    };
    let dir_path = match TreePath::parse(dir) {
        Ok(p) => p,
        // No key can have this prefix.
        Err(_) => return Ok(None),
    };
    let first = match &cursor {
        None => 0,
        Some(c) => roots
            .iter()
            .position(|r| r.name == c.point)
            .ok_or(ListError::BadToken)?,
    };
    for (i, r) in roots.iter().enumerate().skip(first) {
        let wanted = match root_filter {
            Some(p) => r.name == p,
            None => r.name.starts_with(prefix),
        };
        if !wanted {
            continue;
        }
        let tree = (r.open)().map_err(ListError::Backend)?;
        let positions = match &cursor {
            Some(c) if i == first => c.positions.clone(),
            _ => Vec::new(),
        };
        let key_base = if dir_path.is_root() {
            format!("{}/", r.name)
        } else {
            format!("{}/{}/", r.name, dir_path)
        };
        let walk = Walk {
            tree: tree.as_ref(),
            key_base: &key_base,
            name_filter: name_filter.as_bytes(),
            delimit,
        };
        if let Some(positions) = walk.run(&dir_path, positions, emit)? {
            return Ok(Some(Cursor {
                point: r.name.clone(),
                positions,
            }));
        }
    }
    Ok(None)
}

/// A depth-first walk of one directory of one tree.
struct Walk<'a> {
    tree: &'a dyn FileTree,
    /// The key of the listed directory, ending in '/'.
    key_base: &'a str,
    /// Names of the listed directory's entries must start with this.
    name_filter: &'a [u8],
    delimit: bool,
}

impl Walk<'_> {
    /// The name of the entry at `pos` of `dir`, if it is a directory.
    fn dir_at(&self, dir: &TreePath, pos: u64) -> Result<Option<Vec<u8>>, TreeError> {
        let mut found = None;
        self.tree.read_dir(dir, pos, &mut |e| {
            if e.attr.kind == Kind::Dir {
                found = Some(e.name);
            }
            false
        })?;
        Ok(found)
    }

    /// Walk `dir` from `positions` (one per level; empty: the start).
    /// Returns the positions of the item `emit` refused, or `None` at the
    /// end.
    fn run(
        &self,
        dir: &TreePath,
        positions: Vec<u64>,
        emit: &mut dyn FnMut(Item) -> bool,
    ) -> Result<Option<Vec<u64>>, ListError> {
        if self.delimit && positions.len() > 1 {
            return Err(ListError::BadToken);
        }
        let mut paths = vec![dir.clone()];
        let mut pos = vec![positions.first().copied().unwrap_or(0)];
        // Find the directories the cursor is in: each is the entry
        // before the position one level up.
        for &p in positions.iter().skip(1) {
            let (Some(parent), Some(&at)) = (paths.last(), pos.last()) else {
                return Err(ListError::BadToken);
            };
            if at == 0 {
                return Err(ListError::BadToken);
            }
            let name = match self.dir_at(parent, at - 1) {
                Ok(Some(n)) => n,
                _ => return Err(ListError::BadToken),
            };
            let next = parent.join(&name).map_err(|_| ListError::BadToken)?;
            paths.push(next);
            pos.push(p);
        }
        let base_depth = dir.components().len();
        let mut batch = Vec::with_capacity(BATCH);
        'walk: while let (Some(path), Some(&start)) = (paths.last().cloned(), pos.last()) {
            let depth = paths.len() - 1;
            batch.clear();
            let r = self.tree.read_dir(&path, start, &mut |e| {
                batch.push(e);
                batch.len() < BATCH
            });
            match r {
                Ok(()) => {}
                // The listed directory is not there: nothing has the prefix.
                Err(TreeError::NotFound(_) | TreeError::NotADirectory(_)) if depth == 0 => {
                    return Ok(None)
                }
                Err(e) if depth == 0 => return Err(e.into()),
                // A damaged directory below: list the rest.
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "s3: directory left out of a listing");
                    batch.clear();
                }
            }
            if batch.is_empty() {
                paths.pop();
                pos.pop();
                continue;
            }
            let rel = path.skip(base_depth);
            let rel = if rel.is_root() {
                String::new()
            } else {
                format!("{rel}/")
            };
            for e in batch.drain(..) {
                let here = pos[depth];
                pos[depth] = here + 1;
                if depth == 0 && !e.name.starts_with(self.name_filter) {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(&e.name) else {
                    continue;
                };
                let key = format!("{}{rel}{name}", self.key_base);
                let item = match e.attr.kind {
                    Kind::File => Item::Object { key, attr: e.attr },
                    Kind::Dir if self.delimit => Item::Prefix(format!("{key}/")),
                    Kind::Dir => {
                        if let Ok(p) = path.join(&e.name) {
                            paths.push(p);
                            pos.push(0);
                        }
                        // Go down; the rest of this batch is read again
                        // when the walk comes back up.
                        continue 'walk;
                    }
                    _ => continue,
                };
                if !emit(item) {
                    pos[depth] = here;
                    return Ok(Some(pos));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_frontends::tree::{Entry, FileReader, Result as TreeResult};

    /// A tree from a list of file paths (directories implied), each
    /// directory's entries in name order.
    struct Fake(Vec<String>);

    impl Fake {
        fn entries(&self, dir: &TreePath) -> Option<Vec<Entry>> {
            let base = if dir.is_root() {
                String::new()
            } else {
                format!("{dir}/")
            };
            let mut out: Vec<(String, Kind)> = Vec::new();
            let mut is_dir = dir.is_root();
            for f in &self.0 {
                let Some(rest) = f.strip_prefix(&base) else {
                    continue;
                };
                is_dir = true;
                let (name, kind) = match rest.split_once('/') {
                    Some((d, _)) => (d.to_string(), Kind::Dir),
                    None => (rest.to_string(), Kind::File),
                };
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, kind));
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            is_dir.then(|| {
                out.into_iter()
                    .map(|(n, k)| Entry {
                        name: n.into_bytes(),
                        attr: Attr {
                            kind: k,
                            ..Attr::synthetic_file(1, 0)
                        },
                    })
                    .collect()
            })
        }
    }

    impl FileTree for Fake {
        fn stat(&self, _: &TreePath) -> TreeResult<Attr> {
            Err(TreeError::NotFound("not used".into()))
        }
        fn read_dir(
            &self,
            path: &TreePath,
            start: u64,
            f: &mut dyn FnMut(Entry) -> bool,
        ) -> TreeResult<()> {
            let e = self
                .entries(path)
                .ok_or_else(|| TreeError::NotFound(path.to_string()))?;
            for x in e.into_iter().skip(start as usize) {
                if !f(x) {
                    break;
                }
            }
            Ok(())
        }
        fn open(&self, _: &TreePath) -> TreeResult<Arc<dyn FileReader>> {
            Err(TreeError::NotFound("not used".into()))
        }
        fn read_link(&self, _: &TreePath) -> TreeResult<Vec<u8>> {
            Err(TreeError::NotFound("not used".into()))
        }
    }

    fn roots(files: &[&str]) -> Vec<RootEntry> {
        let tree: Arc<dyn FileTree> = Arc::new(Fake(files.iter().map(|s| s.to_string()).collect()));
        ["p1", "latest"]
            .into_iter()
            .map(|name| {
                let t = tree.clone();
                RootEntry {
                    name: name.into(),
                    open: Box::new(move || Ok(t.clone())),
                }
            })
            .collect()
    }

    /// Every item of a listing, `per_page` at a time, each page resumed
    /// from the previous one's token (through its text form).
    fn pages(r: &[RootEntry], prefix: &str, delimit: bool, per_page: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut n = 0;
            let next = list(r, prefix, delimit, cursor.take(), &mut |item| {
                if n == per_page {
                    return false;
                }
                n += 1;
                out.push(match item {
                    Item::Object { key, .. } => key,
                    Item::Prefix(p) => p,
                });
                true
            })
            .unwrap_or_else(|_| panic!("listing failed"));
            match next {
                Some(c) => {
                    cursor = Some(Cursor::decode(&c.encode()).unwrap_or_else(|| panic!("token")))
                }
                None => return out,
            }
        }
    }

    const FILES: &[&str] = &["a", "d/b", "d/e/c", "d/e/f/g", "d/h", "z"];

    #[test]
    fn deep_listings_page_through_nested_directories_once_each() {
        let r = roots(FILES);
        let all: Vec<String> = ["p1", "latest"]
            .iter()
            .flat_map(|p| FILES.iter().map(move |f| format!("{p}/{f}")))
            .collect();
        for per_page in [1, 2, 3, 100] {
            assert_eq!(pages(&r, "", false, per_page), all, "{per_page}");
        }
        assert_eq!(
            pages(&r, "latest/d/e/", false, 1),
            ["latest/d/e/c", "latest/d/e/f/g"]
        );
        assert_eq!(pages(&r, "p1/d/", true, 1), ["p1/d/b", "p1/d/e/", "p1/d/h"]);
        assert_eq!(pages(&r, "", true, 1), ["p1/", "latest/"]);
        assert_eq!(pages(&r, "la", true, 1), ["latest/"]);
        assert_eq!(pages(&r, "p1/d/e/f", false, 5), ["p1/d/e/f/g"]);
        // Nothing has these prefixes.
        assert!(pages(&r, "p1/nope/", false, 5).is_empty());
        assert!(pages(&r, "p1/a/", false, 5).is_empty());
        assert!(pages(&r, "p2/", false, 5).is_empty());
    }

    #[test]
    fn tokens_that_do_not_fit_the_listing_are_refused() {
        let r = roots(FILES);
        let mut emit = |_: Item| true;
        for c in [
            // A point that is not there.
            Cursor {
                point: "p9".into(),
                positions: vec![0],
            },
            // The entry before position 1 at the top is "a", a file.
            Cursor {
                point: "p1".into(),
                positions: vec![1, 0],
            },
            // Position 0 has no entry before it.
            Cursor {
                point: "p1".into(),
                positions: vec![0, 0],
            },
        ] {
            assert!(
                matches!(
                    list(&r, "", false, Some(c.clone()), &mut emit),
                    Err(ListError::BadToken)
                ),
                "{c:?}"
            );
        }
        // A root-level token in a deep listing, and the other way round.
        let root = Cursor {
            point: String::new(),
            positions: vec![1],
        };
        assert!(matches!(
            list(&r, "", false, Some(root), &mut emit),
            Err(ListError::BadToken)
        ));
        let deep = Cursor {
            point: "p1".into(),
            positions: vec![2, 1],
        };
        assert!(matches!(
            list(&r, "", true, Some(deep), &mut emit),
            Err(ListError::BadToken)
        ));
    }
}
