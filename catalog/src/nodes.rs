//! A node's confinement settings (where its sources may live and its
//! restores may write; see `arca_control::confine` for the rules) and the
//! data directory it reported.

use rusqlite::params;

use crate::{Catalog, Error, Node, Result};

/// A change of a node's confinement; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConfinement {
    pub source_roots: Option<Vec<String>>,
    pub restore_roots: Option<Vec<String>>,
    pub allow_block_devices: Option<bool>,
}

impl Catalog {
    /// Change a node's roots and block-device permission (the caller has
    /// validated the paths). Returns the node as it is now.
    pub fn set_node_confinement(&self, id: i64, c: &NodeConfinement) -> Result<Node> {
        let json =
            |v: &Vec<String>| serde_json::to_string(v).map_err(|e| Error::Invalid(e.to_string()));
        let sources = c.source_roots.as_ref().map(json).transpose()?;
        let restores = c.restore_roots.as_ref().map(json).transpose()?;
        let n = self.db().execute(
            "UPDATE nodes SET source_roots = COALESCE(?2, source_roots),
                              restore_roots = COALESCE(?3, restore_roots),
                              allow_block_devices = COALESCE(?4, allow_block_devices)
             WHERE id = ?1",
            params![id, sources, restores, c.allow_block_devices],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("node {id}")));
        }
        self.node(id)
    }

    /// Record the data directory a node reported (absolute).
    pub fn set_node_data_dir(&self, id: i64, data_dir: &str) -> Result<()> {
        let n = self.db().execute(
            "UPDATE nodes SET data_dir = ?2 WHERE id = ?1",
            params![id, data_dir],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("node {id}")));
        }
        Ok(())
    }
}
