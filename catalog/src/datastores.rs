//! Datastores: where each one lives (node and path) and how much it holds.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{now, unique, Catalog, Datastore, DatastoreId, Error, NodeId, Result};

fn datastore_row(r: &Row) -> rusqlite::Result<Datastore> {
    Ok(Datastore {
        id: r.get(0)?,
        name: r.get(1)?,
        node_id: r.get(2)?,
        path: r.get(3)?,
        bytes_used: r.get(4)?,
        bytes_logical: r.get(5)?,
        created_at: r.get(6)?,
        gc_schedule: r.get(7)?,
        verify_schedule: r.get(8)?,
        verify_max_age_days: r.get(9)?,
    })
}

impl Catalog {
    pub fn add_datastore(&self, name: &str, node_id: NodeId, path: &str) -> Result<Datastore> {
        let db = self.db();
        db.execute(
            "INSERT INTO datastores (name, node_id, path, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, node_id, path, now()],
        )
        .map_err(unique(format!("datastore {name:?}")))?;
        let id = DatastoreId(db.last_insert_rowid());
        crate::reports::record_usage(&db, id, now())?;
        drop(db);
        self.datastore(id)
    }

    const DS_COLS: &'static str = "id, name, node_id, path, bytes_used, bytes_logical, created_at, gc_schedule, verify_schedule, verify_max_age_days";

    pub fn datastore(&self, id: DatastoreId) -> Result<Datastore> {
        self.rd()
            .query_row(
                &format!("SELECT {} FROM datastores WHERE id = ?1", Self::DS_COLS),
                [id],
                datastore_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("datastore {id}")))
    }

    pub fn datastore_by_name(&self, name: &str) -> Result<Option<Datastore>> {
        Ok(self
            .rd()
            .query_row(
                &format!("SELECT {} FROM datastores WHERE name = ?1", Self::DS_COLS),
                [name],
                datastore_row,
            )
            .optional()?)
    }

    pub fn datastores(&self) -> Result<Vec<Datastore>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM datastores ORDER BY id",
            Self::DS_COLS
        ))?;
        let rows = st.query_map([], datastore_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Record bytes on disk; the logical size is the sum over the
    /// datastore's restore points.
    pub fn refresh_datastore_usage(&self, id: DatastoreId, used: i64) -> Result<()> {
        update_usage(&self.db(), id, used, now())
    }
}

/// Set a datastore's numbers and write them as a use sample at `now`
/// (catalog/src/reports.rs).
pub(crate) fn update_usage(db: &Connection, id: DatastoreId, used: i64, now: i64) -> Result<()> {
    db.execute(
        "UPDATE datastores SET bytes_used = ?2,
           bytes_logical = (SELECT COALESCE(SUM(bytes_total), 0) FROM restore_points WHERE datastore_id = ?1)
         WHERE id = ?1",
        params![id, used],
    )?;
    crate::reports::record_usage(db, id, now)
}
