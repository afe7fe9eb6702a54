//! Browsing restore points for the REST API: the embedded node opens the
//! datastore (with its passphrase) and [`arca_node::browse::tree`] lists
//! it, and [`arca_node::find::search_restore_points`] searches it. A
//! datastore of a remote node is read by that node: the query goes
//! through the broker ([`crate::queries`]) and the node answers with the
//! same listing or search (503 when it is offline or not answering, 504
//! when it answers too late; a search lists that datastore's restore
//! points as skipped with that reason). The files of a remote node's
//! restore points (downloads, S3) are read through that node too
//! ([`crate::remote_tree`]).

use std::sync::Arc;

use arca_catalog::{self as catalog, Catalog, NodeId, NodeState};
use arca_frontends::tree::FileTree;
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};
use arca_node::browse::TreeError;
use arca_node::{DatastoreRef, Runner};
use arca_proto::query::{
    Answer, FindQuery, Query, QueryError, QueryErrorCode, TreeQuery, FIND_MAX_RESTORE_POINTS,
};
use arca_web::browse::{Browse, BrowseError};

use crate::queries::{AskError, Queries};
use crate::remote_tree::RemoteTree;

/// [`Browse`] over the server's embedded node, and over remote nodes
/// through the query broker.
pub struct NodeBrowse {
    catalog: Arc<Catalog>,
    node_id: NodeId,
    runner: Arc<Runner>,
    queries: Arc<Queries>,
}

impl NodeBrowse {
    pub fn new(catalog: Arc<Catalog>, node_id: NodeId, runner: Arc<Runner>) -> Self {
        NodeBrowse {
            catalog,
            node_id,
            runner,
            queries: Arc::new(Queries::new()),
        }
    }

    /// Ask remote nodes through this broker (the node service's).
    pub fn with_queries(mut self, queries: Arc<Queries>) -> Self {
        self.queries = queries;
        self
    }

    /// The node that owns datastore `d`; 503 when it is offline.
    fn online(&self, d: &catalog::Datastore) -> Result<catalog::Node, BrowseError> {
        let node = self
            .catalog
            .node(d.node_id)
            .map_err(|e| BrowseError::Internal(e.to_string()))?;
        if node.state != NodeState::Online {
            return Err(BrowseError::Unavailable(format!(
                "node {:?} is offline: datastore {:?} is on it (start the node, then try again)",
                node.name, d.name
            )));
        }
        Ok(node)
    }

    /// Ask the node that owns datastore `d`: at once 503 when it is
    /// offline, else its answer (or why there is none).
    fn ask(&self, d: &catalog::Datastore, q: Query) -> Result<Answer, BrowseError> {
        let node = self.online(d)?;
        self.queries
            .ask(node.id, &node.name, q)
            .map_err(|e| match e {
                AskError::Unavailable(m) => BrowseError::Unavailable(m),
                AskError::Timeout(m) => BrowseError::Timeout(m),
                AskError::Failed(e) => failed(&node.name, e),
            })
    }

    /// A page of a restore point in a remote node's datastore.
    fn remote_tree(
        &self,
        d: &catalog::Datastore,
        rp: RestorePointId,
        path: &str,
        recursive: bool,
        offset: u64,
        limit: u32,
    ) -> Result<api::TreePage, BrowseError> {
        let q = Query::Tree(TreeQuery {
            restore_point: rp,
            datastore: d.name.clone(),
            path: path.to_string(),
            recursive,
            offset,
            limit,
        });
        match self.ask(d, q)? {
            Answer::Tree(page) => Ok(page),
            a => Err(wrong_kind(d, &a)),
        }
    }

    /// A search of restore points in a remote node's datastore, by that
    /// node, at most [`FIND_MAX_RESTORE_POINTS`] a query. What the node
    /// answers about restore points it was not asked about is dropped.
    fn remote_find(
        &self,
        d: &catalog::Datastore,
        rps: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
        images: bool,
    ) -> Result<api::SearchResult, BrowseError> {
        let mut out = api::SearchResult::default();
        for chunk in rps.chunks(FIND_MAX_RESTORE_POINTS) {
            let left = (limit as usize).saturating_sub(out.matches.len());
            if out.truncated || left == 0 {
                break;
            }
            let q = Query::Find(FindQuery {
                datastore: d.name.clone(),
                restore_points: chunk.to_vec(),
                pattern: pattern.text().to_string(),
                ignore_case: pattern.ignore_case(),
                limit: left as u32,
                images,
            });
            let mut r = match self.ask(d, q)? {
                Answer::Find(r) => r,
                a => return Err(wrong_kind(d, &a)),
            };
            let asked: std::collections::HashSet<_> = chunk.iter().collect();
            r.matches.retain(|m| asked.contains(&m.restore_point));
            r.skipped.retain(|s| asked.contains(&s.restore_point));
            if r.matches.len() > left {
                r.matches.truncate(left);
                r.truncated = true;
            }
            out.matches.extend(r.matches);
            out.truncated |= r.truncated;
            out.searched += r.searched.min(chunk.len() as u64);
            out.skipped.extend(r.skipped);
        }
        Ok(out)
    }
}

/// A node's answer of another kind than the query's (the broker refuses
/// those, so this is a bug).
fn wrong_kind(d: &catalog::Datastore, a: &Answer) -> BrowseError {
    BrowseError::Internal(format!(
        "the node of datastore {:?} answered with a {} answer",
        d.name,
        a.kind()
    ))
}

/// A node's error answer as the REST API's.
fn failed(node: &str, e: QueryError) -> BrowseError {
    match e.code {
        QueryErrorCode::Invalid => BrowseError::Invalid(e.message),
        QueryErrorCode::NotFound => BrowseError::NotFound(e.message),
        QueryErrorCode::Conflict
        | QueryErrorCode::NotADirectory
        | QueryErrorCode::IsADirectory
        | QueryErrorCode::WrongKind => BrowseError::Conflict(e.message),
        QueryErrorCode::Internal => BrowseError::Internal(format!("node {node:?}: {}", e.message)),
    }
}

impl Browse for NodeBrowse {
    fn tree(
        &self,
        d: &catalog::Datastore,
        rp: RestorePointId,
        path: &str,
        recursive: bool,
        offset: u64,
        limit: u32,
    ) -> Result<api::TreePage, BrowseError> {
        // Bad paths are refused before anything is opened.
        arca_node::browse::components(path).map_err(map)?;
        if d.node_id != self.node_id {
            return self.remote_tree(d, rp, path, recursive, offset, limit);
        }
        let ds = self.open(d)?;
        let snap = ds.load_snapshot(&rp.snapshot_id()).map_err(|e| match e {
            arca_repo::Error::NotFound(_) => BrowseError::NotFound(format!(
                "restore point {} is no longer in datastore {:?}",
                rp.short(),
                d.name
            )),
            e => BrowseError::Internal(format!("restore point {}: {e}", rp.short())),
        })?;
        arca_node::browse::tree(
            &ds,
            self.runner.trees(),
            &snap,
            path,
            recursive,
            offset,
            limit,
        )
        .map_err(map)
    }

    fn find(
        &self,
        d: &catalog::Datastore,
        rps: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
        images: bool,
    ) -> Result<api::SearchResult, BrowseError> {
        if d.node_id != self.node_id {
            return self.remote_find(d, rps, pattern, limit, images);
        }
        let ds = self.open(d)?;
        let trees = images.then(|| self.runner.trees().as_ref());
        Ok(arca_node::find::search_restore_points(
            &ds, &d.name, rps, pattern, limit, trees,
        ))
    }

    fn file_tree(
        &self,
        d: &catalog::Datastore,
        rp: RestorePointId,
    ) -> Result<Arc<dyn FileTree>, BrowseError> {
        self.local_file_tree(d, rp)
    }
}

impl NodeBrowse {
    /// The tree of a restore point: of a local datastore, kept open by the
    /// embedded node; of a remote node's, read through that node (503 at
    /// once when it is offline).
    fn local_file_tree(
        &self,
        d: &catalog::Datastore,
        rp: RestorePointId,
    ) -> Result<Arc<dyn FileTree>, BrowseError> {
        if d.node_id != self.node_id {
            let node = self.online(d)?;
            return Ok(Arc::new(RemoteTree::new(
                self.queries.clone(),
                node.id,
                &node.name,
                &d.name,
                rp,
            )));
        }
        let ds = self.open(d)?;
        self.runner
            .trees()
            .get(&ds, &rp.snapshot_id())
            .map_err(arca_web::browse::tree_error)
    }

    /// The datastore, opened by the embedded node.
    fn open(&self, d: &catalog::Datastore) -> Result<Arc<arca_repo::Datastore>, BrowseError> {
        self.runner
            .datastore(&DatastoreRef {
                id: d.id,
                name: d.name.clone(),
                path: d.path.clone(),
            })
            .map_err(BrowseError::Internal)
    }
}

fn map(e: TreeError) -> BrowseError {
    match e {
        TreeError::Invalid(m) => BrowseError::Invalid(m),
        TreeError::NotFound(m) => BrowseError::NotFound(m),
        e @ TreeError::Image => BrowseError::Conflict(e.to_string()),
        TreeError::Datastore(e) => BrowseError::Internal(e.to_string()),
        TreeError::Io(m) => BrowseError::Internal(m),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arca_node::Passphrases;

    fn browse(c: &Arc<Catalog>, node: NodeId) -> NodeBrowse {
        let runner = Runner::new(
            Arc::new(crate::Local::new(c.clone(), node)),
            Passphrases::new(),
        );
        NodeBrowse::new(c.clone(), node, Arc::new(runner))
    }

    /// A remote node's datastore: 503 at once when the node is offline or
    /// not polling for queries; a path with `..` a 400 before anything is
    /// opened or asked; a restore point its datastore no longer holds a
    /// 404.
    #[test]
    fn remote_datastores_bad_paths_and_missing_restore_points() {
        let dir = tempfile::tempdir().unwrap();
        let ds_path = dir.path().join("ds");
        arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
        let c = Arc::new(Catalog::open_in_memory().unwrap());
        let local = c.upsert_node("local", true, 2, "t").unwrap().id;
        let far = c.upsert_node("far-away", false, 2, "t").unwrap().id;
        let remote = c.add_datastore("remote", far, "/elsewhere").unwrap();
        let mine = c
            .add_datastore("mine", local, ds_path.to_str().unwrap())
            .unwrap();
        let b = browse(&c, local);
        let rp: RestorePointId = "ab".repeat(32).parse().unwrap();
        let t = std::time::Instant::now();
        match b.tree(&remote, rp, "", false, 0, 10) {
            Err(BrowseError::Unavailable(m)) => {
                assert!(m.contains("\"far-away\" is not answering"), "{m}")
            }
            r => panic!("{r:?}"),
        }
        c.mark_node_offline(far).unwrap();
        match b.tree(&remote, rp, "", false, 0, 10) {
            Err(BrowseError::Unavailable(m)) => {
                assert!(m.contains("\"far-away\" is offline"), "{m}")
            }
            r => panic!("{r:?}"),
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert!(matches!(
            b.tree(&remote, rp, "a/../b", false, 0, 10),
            Err(BrowseError::Invalid(_))
        ));
        assert!(matches!(
            b.tree(&mine, rp, "a/../b", false, 0, 10),
            Err(BrowseError::Invalid(_))
        ));
        match b.tree(&mine, rp, "", false, 0, 10) {
            Err(BrowseError::NotFound(m)) => assert!(m.contains("no longer"), "{m}"),
            r => panic!("{r:?}"),
        }
        // A search: the offline node's datastore is a 503 for the caller
        // to list as skipped; a missing restore point is skipped, not an
        // error.
        let p = Pattern::new("*", false).unwrap();
        match b.find(&remote, &[rp], &p, 10, false) {
            Err(BrowseError::Unavailable(m)) => {
                assert!(m.contains("node \"far-away\" is offline"), "{m}")
            }
            r => panic!("{r:?}"),
        }
        let r = b.find(&mine, &[rp], &p, 10, false).unwrap();
        assert!(r.matches.is_empty());
        assert_eq!(r.skipped.len(), 1, "{r:?}");
        assert_eq!(r.skipped[0].restore_point, rp);
        assert!(r.skipped[0].reason.contains("no longer"), "{r:?}");
    }

    /// A remote node's datastore is asked of that node, by the catalog's
    /// name of the datastore; its answers and errors are the API's.
    #[test]
    fn remote_datastores_are_asked_of_their_node() {
        let c = Arc::new(Catalog::open_in_memory().unwrap());
        let local = c.upsert_node("local", true, 2, "t").unwrap().id;
        let far = c.upsert_node("far", false, 2, "t").unwrap().id;
        let remote = c.add_datastore("far/default", far, "/elsewhere").unwrap();
        let queries = Arc::new(Queries::new());
        let b = browse(&c, local).with_queries(queries.clone());
        // The node: takes two queries, answers a page, then an error.
        let node = {
            let q = queries.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut asked = Vec::new();
                while asked.len() < 2 {
                    for (id, query) in rt.block_on(q.watch(far, std::time::Duration::from_secs(1)))
                    {
                        let Query::Tree(t) = query.clone() else {
                            panic!("{query:?}")
                        };
                        let reply = if t.path == "dir" {
                            Ok(Answer::Tree(api::TreePage {
                                path: t.path.clone(),
                                entries: Vec::new(),
                                next_offset: Some(t.offset + 5),
                            }))
                        } else {
                            Err(QueryError::new(QueryErrorCode::NotFound, "no path \"x\""))
                        };
                        q.answer(far, id, reply).unwrap();
                        asked.push(t);
                    }
                }
                asked
            })
        };
        // The node's first poll has started when it is taking queries.
        let rp: RestorePointId = "cd".repeat(32).parse().unwrap();
        let page = loop {
            match b.tree(&remote, rp, "dir", true, 3, 7) {
                Err(BrowseError::Unavailable(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => break r.unwrap(),
            }
        };
        assert_eq!(page.path, "dir");
        assert_eq!(page.next_offset, Some(8));
        match b.tree(&remote, rp, "x", false, 0, 7) {
            Err(BrowseError::NotFound(m)) => assert_eq!(m, "no path \"x\""),
            r => panic!("{r:?}"),
        }
        let asked = node.join().unwrap();
        assert_eq!(
            asked[0],
            TreeQuery {
                restore_point: rp,
                datastore: "far/default".into(),
                path: "dir".into(),
                recursive: true,
                offset: 3,
                limit: 7,
            }
        );
    }

    /// A search of a remote node's datastore is asked of that node with
    /// the pattern's text; what it answers about restore points it was
    /// not asked about is dropped, and matches over the limit are cut.
    #[test]
    fn remote_searches_are_asked_of_their_node() {
        let c = Arc::new(Catalog::open_in_memory().unwrap());
        let local = c.upsert_node("local", true, 2, "t").unwrap().id;
        let far = c.upsert_node("far", false, 2, "t").unwrap().id;
        let remote = c.add_datastore("far/default", far, "/elsewhere").unwrap();
        let queries = Arc::new(Queries::new());
        let b = browse(&c, local).with_queries(queries.clone());
        let rp: RestorePointId = "cd".repeat(32).parse().unwrap();
        let other: RestorePointId = "ef".repeat(32).parse().unwrap();
        let m = |rp: RestorePointId, path: &str| api::SearchMatch {
            restore_point: rp,
            time: 1,
            source: "s".into(),
            path: path.into(),
            kind: api::TreeEntryKind::File,
            size: 3,
            mtime: 0,
        };
        let node = {
            let q = queries.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let taken = rt.block_on(q.watch(far, std::time::Duration::from_secs(1)));
                    if let Some((id, query)) = taken.into_iter().next() {
                        let r = api::SearchResult {
                            matches: vec![m(other, "x.conf"), m(rp, "a.conf"), m(rp, "b.conf")],
                            truncated: false,
                            searched: 1,
                            skipped: vec![api::SearchSkipped {
                                restore_point: other,
                                reason: "not asked".into(),
                            }],
                        };
                        q.answer(far, id, Ok(Answer::Find(r))).unwrap();
                        return query;
                    }
                }
            })
        };
        let p = Pattern::new("*.CONF", true).unwrap();
        let r = loop {
            match b.find(&remote, &[rp], &p, 1, false) {
                Err(BrowseError::Unavailable(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => break r.unwrap(),
            }
        };
        assert_eq!(r.matches, vec![m(rp, "a.conf")]);
        assert!(r.truncated);
        assert_eq!(r.searched, 1);
        assert!(r.skipped.is_empty(), "{r:?}");
        assert_eq!(
            node.join().unwrap(),
            Query::Find(FindQuery {
                datastore: "far/default".into(),
                restore_points: vec![rp],
                pattern: "*.CONF".into(),
                ignore_case: true,
                limit: 1,
                images: false,
            })
        );
    }
}
