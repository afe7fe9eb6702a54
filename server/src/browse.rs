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
