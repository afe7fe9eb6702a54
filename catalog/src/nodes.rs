//! Nodes: the embedded one and remote ones, their registration and
//! heartbeats; a node's confinement settings (where its sources may live
//! and its restores may write; see `arca_control::confine` for the rules)
//! and the data directory it reported.

use rusqlite::{params, OptionalExtension, Row};

use crate::{json_vec, now, unique, Catalog, Error, Node, NodeId, Result};

pub(crate) fn node_row(r: &Row) -> rusqlite::Result<Node> {
    Ok(Node {
        id: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        embedded: r.get(3)?,
        max_tasks: r.get(4)?,
        version: r.get(5)?,
        last_heartbeat: r.get(6)?,
        created_at: r.get(7)?,
        source_roots: json_vec(r.get(8)?),
        restore_roots: json_vec(r.get(9)?),
        allow_block_devices: r.get(10)?,
        data_dir: r.get(11)?,
    })
}

impl Catalog {
    pub fn upsert_node(
        &self,
        name: &str,
        embedded: bool,
        max_tasks: i64,
        version: &str,
    ) -> Result<Node> {
        let db = self.db();
        db.execute(
            "INSERT INTO nodes (name, state, embedded, max_tasks, version, last_heartbeat, created_at)
             VALUES (?1, 'online', ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (name) DO UPDATE SET state = 'online', embedded = ?2, max_tasks = ?3, version = ?4, last_heartbeat = ?5",
            params![name, embedded, max_tasks, version, now()],
        )?;
        drop(db);
        self.node_by_name(name)?
            .ok_or_else(|| Error::NotFound(format!("node {name:?}")))
    }

    /// Create a remote node's record (offline until it registers).
    pub fn add_node(&self, name: &str, max_tasks: i64) -> Result<Node> {
        let db = self.db();
        db.execute(
            "INSERT INTO nodes (name, state, embedded, max_tasks, created_at) VALUES (?1, 'offline', 0, ?2, ?3)",
            params![name, max_tasks, now()],
        )
        .map_err(unique(format!("node {name:?}")))?;
        let id = NodeId(db.last_insert_rowid());
        drop(db);
        self.node(id)
    }

    /// A remote node came up: online, its version and concurrency limit.
    pub fn register_node(&self, id: NodeId, max_tasks: i64, version: &str) -> Result<Node> {
        self.db().execute(
            "UPDATE nodes SET state = 'online', max_tasks = ?2, version = ?3, last_heartbeat = ?4 WHERE id = ?1",
            params![id, max_tasks, version, now()],
        )?;
        self.node(id)
    }

    const NODE_COLS: &'static str =
        "id, name, state, embedded, max_tasks, version, last_heartbeat, created_at, source_roots, restore_roots, allow_block_devices, data_dir";

    pub fn node_by_name(&self, name: &str) -> Result<Option<Node>> {
        Ok(self
            .rd()
            .query_row(
                &format!("SELECT {} FROM nodes WHERE name = ?1", Self::NODE_COLS),
                [name],
                node_row,
            )
            .optional()?)
    }

    pub fn node(&self, id: NodeId) -> Result<Node> {
        self.rd()
            .query_row(
                &format!("SELECT {} FROM nodes WHERE id = ?1", Self::NODE_COLS),
                [id],
                node_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("node {id}")))
    }

    pub fn nodes(&self) -> Result<Vec<Node>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM nodes ORDER BY id",
            Self::NODE_COLS
        ))?;
        let rows = st.query_map([], node_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn heartbeat(&self, node_id: NodeId) -> Result<()> {
        self.db().execute(
            "UPDATE nodes SET state = 'online', last_heartbeat = ?2 WHERE id = ?1",
            params![node_id, now()],
        )?;
        Ok(())
    }

    /// Mark a remote node offline at once (it stops cleanly and said so);
    /// false if it was not online. The embedded node stays as it is.
    pub fn mark_node_offline(&self, node_id: NodeId) -> Result<bool> {
        let n = self.db().execute(
            "UPDATE nodes SET state = 'offline' WHERE id = ?1 AND state = 'online' AND embedded = 0",
            [node_id],
        )?;
        Ok(n > 0)
    }

    /// Mark nodes without a heartbeat since `before` offline; returns them.
    pub fn mark_stale_nodes_offline(&self, before: i64) -> Result<Vec<NodeId>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "UPDATE nodes SET state = 'offline' WHERE state = 'online' AND embedded = 0 AND (last_heartbeat IS NULL OR last_heartbeat < ?1) RETURNING id",
        )?;
        let rows = st.query_map([before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

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
    pub fn set_node_confinement(&self, id: NodeId, c: &NodeConfinement) -> Result<Node> {
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

    /// What keeps a node from being removed: its sources, its datastores,
    /// and its queued or running tasks (counts).
    pub fn node_usage(&self, id: NodeId) -> Result<(i64, i64, i64)> {
        Ok(self.rd().query_row(
            "SELECT (SELECT COUNT(*) FROM sources WHERE node_id = ?1),
                    (SELECT COUNT(*) FROM datastores WHERE node_id = ?1),
                    (SELECT COUNT(*) FROM tasks WHERE node_id = ?1 AND state IN ('queued', 'running'))",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }

    /// Remove a node that has no sources, datastores or live tasks (the
    /// caller checks with [`Catalog::node_usage`]): its tokens go with it
    /// and its ended tasks forget it. Checked again here, in the same
    /// transaction: `Error::Invalid` when something still uses it.
    pub fn delete_node(&self, id: NodeId) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let used: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM sources WHERE node_id = ?1)
                  + (SELECT COUNT(*) FROM datastores WHERE node_id = ?1)
                  + (SELECT COUNT(*) FROM tasks WHERE node_id = ?1 AND state IN ('queued', 'running'))",
            [id],
            |r| r.get(0),
        )?;
        if used > 0 {
            return Err(Error::Invalid(format!("node {id} is in use")));
        }
        tx.execute("UPDATE tasks SET node_id = NULL WHERE node_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM nodes WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("node {id}")));
        }
        tx.commit()?;
        Ok(())
    }

    /// Record the data directory a node reported (absolute).
    pub fn set_node_data_dir(&self, id: NodeId, data_dir: &str) -> Result<()> {
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
