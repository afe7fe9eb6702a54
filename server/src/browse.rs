//! Browsing restore points for the REST API: the embedded node opens the
//! datastore (with its passphrase) and [`arca_node::browse::tree`] lists
//! it. Datastores of remote nodes are not browsed (yet): 409 naming the
//! node.

use std::sync::Arc;

use arca_catalog::{self as catalog, Catalog, NodeId};
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
            let node = self
                .catalog
                .node(d.node_id)
                .map(|n| n.name)
                .unwrap_or_else(|_| d.node_id.to_string());
            return Err(BrowseError::Conflict(format!(
                "restore point {} is in datastore {:?} of node {node:?}: only the datastores of the server's own node can be browsed (restore it on its node instead)",
                rp.short(),
                d.name
            )));
        }
        let ds = self
            .runner
            .datastore(&DatastoreRef {
                id: d.id,
                name: d.name.clone(),
                path: d.path.clone(),
            })
            .map_err(BrowseError::Internal)?;
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
    /// datastore no longer holds a 404.
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
    }
}
