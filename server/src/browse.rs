//! Browsing restore points for the REST API: the embedded node opens the
//! datastore (with its passphrase) and [`arca_node::browse::tree`] lists
//! it, and [`arca_node::find::search`] searches it. A search skips
//! datastores of remote nodes for now; a listing of one is read by that node: the query goes
//! through the broker ([`crate::queries`]) and the node answers with the
//! same listing (503 when it is offline or not answering, 504 when it
//! answers too late).

use std::sync::Arc;

use arca_catalog::{self as catalog, Catalog, NodeId, NodeState};
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};
use arca_node::browse::TreeError;
use arca_node::{DatastoreRef, Runner};
use arca_proto::query::{Answer, Query, QueryError, QueryErrorCode, TreeQuery};
use arca_web::browse::{Browse, BrowseError};

use crate::queries::{AskError, Queries};

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

    /// Ask the node that owns datastore `d`: at once 503 when it is
    /// offline, else its answer (or why there is none).
    fn ask(&self, d: &catalog::Datastore, q: Query) -> Result<Answer, BrowseError> {
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
        }
    }
}

/// A node's error answer as the REST API's.
fn failed(node: &str, e: QueryError) -> BrowseError {
    match e.code {
        QueryErrorCode::Invalid => BrowseError::Invalid(e.message),
        QueryErrorCode::NotFound => BrowseError::NotFound(e.message),
        QueryErrorCode::Conflict => BrowseError::Conflict(e.message),
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
        arca_node::browse::tree(&ds, &snap, path, recursive, offset, limit).map_err(map)
    }

    fn find(
        &self,
        d: &catalog::Datastore,
        rps: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
    ) -> Result<api::SearchResult, BrowseError> {
        if d.node_id != self.node_id {
            return Err(BrowseError::Conflict(format!(
                "in datastore {:?} of node {:?}: only the datastores of the server's own node can be searched",
                d.name,
                self.node_name(d)
            )));
        }
        self.find_local(d, rps, pattern, limit)
    }
}

impl NodeBrowse {
    fn node_name(&self, d: &catalog::Datastore) -> String {
        self.catalog
            .node(d.node_id)
            .map(|n| n.name)
            .unwrap_or_else(|_| d.node_id.to_string())
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

    /// Search restore points of a datastore of the embedded node: the one
    /// place that reads the datastore for a search (a datastore of a
    /// remote node is to be searched on that node, through the same
    /// call).
    fn find_local(
        &self,
        d: &catalog::Datastore,
        rps: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
    ) -> Result<api::SearchResult, BrowseError> {
        let ds = self.open(d)?;
        let mut snaps = Vec::with_capacity(rps.len());
        let mut skipped = Vec::new();
        for rp in rps {
            match ds.load_snapshot(&rp.snapshot_id()) {
                Ok(s) => snaps.push(s),
                Err(e) => skipped.push(api::SearchSkipped {
                    restore_point: *rp,
                    reason: match e {
                        arca_repo::Error::NotFound(_) => {
                            format!("no longer in datastore {:?}", d.name)
                        }
                        e => format!("cannot be read: {e}"),
                    },
                }),
            }
        }
        let (mut r, stats) = arca_node::find::search(&ds, &snaps, pattern, limit as usize);
        tracing::debug!(
            datastore = %d.name,
            restore_points = rps.len(),
            trees_read = stats.trees_read,
            trees_remembered = stats.trees_remembered,
            "search"
        );
        r.skipped.extend(skipped);
        Ok(r)
    }
}

fn map(e: TreeError) -> BrowseError {
    match e {
        TreeError::Invalid(m) => BrowseError::Invalid(m),
        TreeError::NotFound(m) => BrowseError::NotFound(m),
        e @ TreeError::Image => BrowseError::Conflict(e.to_string()),
        TreeError::Datastore(e) => BrowseError::Internal(e.to_string()),
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
        // A search: the remote datastore is a 409 for the caller to list
        // as skipped; a missing restore point is skipped, not an error.
        let p = Pattern::new("*", false).unwrap();
        match b.find(&remote, &[rp], &p, 10) {
            Err(BrowseError::Conflict(m)) => assert!(m.contains("far-away"), "{m}"),
            r => panic!("{r:?}"),
        }
        let r = b.find(&mine, &[rp], &p, 10).unwrap();
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
                        let Query::Tree(t) = query.clone();
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
}
