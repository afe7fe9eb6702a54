//! Browsing restore points for the REST API: the embedded node opens the
//! datastore (with its passphrase); [`arca_node::browse::tree`] lists it
//! and [`arca_node::find::search`] searches it. Datastores of remote
//! nodes are not browsed nor searched (yet): 409 naming the node (a
//! search lists their restore points as skipped with that message).

use std::sync::Arc;

use arca_catalog::{self as catalog, Catalog, NodeId};
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};
use arca_node::browse::TreeError;
use arca_node::{DatastoreRef, Runner};
use arca_web::browse::{Browse, BrowseError};

/// [`Browse`] over the server's embedded node.
pub struct NodeBrowse {
    catalog: Arc<Catalog>,
    node_id: NodeId,
    runner: Arc<Runner>,
}

impl NodeBrowse {
    pub fn new(catalog: Arc<Catalog>, node_id: NodeId, runner: Arc<Runner>) -> Self {
        NodeBrowse {
            catalog,
            node_id,
            runner,
        }
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
            return Err(BrowseError::Conflict(format!(
                "restore point {} is in datastore {:?} of node {:?}: only the datastores of the server's own node can be browsed (restore it on its node instead)",
                rp.short(),
                d.name,
                self.node_name(d)
            )));
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

    /// A remote node's datastore is a 409 naming the node; a path with
    /// `..` a 400 before anything is opened; a restore point its
    /// datastore no longer holds a 404 (skipped, in a search).
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
        match b.tree(&remote, rp, "", false, 0, 10) {
            Err(BrowseError::Conflict(m)) => assert!(m.contains("far-away"), "{m}"),
            r => panic!("{r:?}"),
        }
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
}
