//! Forgetting restore points through the server: the checks that come
//! before a forget task is queued, made in the transaction that queues it.
//!
//! A forget task names restore points of one datastore; its node deletes
//! their snapshot manifests and reports them removed, and the catalog
//! drops them when the task finishes (gc frees their data later). A
//! restore point is not queued for deletion while it is protected, while
//! a live export serves it, or while another forget task that names it is
//! queued or running. The node checks protection and exports again when
//! it runs the task (protection is sent with the lease), since both may
//! change while the task waits.

use rusqlite::{params, Connection, OptionalExtension};

use crate::{
    now, Catalog, Error, ExportId, NewTask, RestorePointId, Result, SourceId, Task, TaskId,
    TaskKind, TaskSpec,
};

/// Why a restore point may not be forgotten now (`None`: it may).
fn refusal(db: &Connection, rp: RestorePointId) -> Result<Option<String>> {
    let protected: Option<bool> = db
        .query_row(
            "SELECT protected FROM restore_points WHERE id = ?1",
            [rp],
            |r| r.get(0),
        )
        .optional()?;
    if protected == Some(true) {
        return Ok(Some(format!(
            "restore point {} is protected: unprotect it first",
            rp.short()
        )));
    }
    let export: Option<ExportId> = db
        .query_row(
            "SELECT id FROM exports WHERE restore_point_id = ?1 AND state IN ('starting', 'active') ORDER BY id LIMIT 1",
            [rp],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(e) = export {
        return Ok(Some(format!(
            "restore point {} is served by export {e}: stop the export first",
            rp.short()
        )));
    }
    // Ids are 64 hex digits: one inside a task's parameters is that id.
    let task: Option<TaskId> = db
        .query_row(
            "SELECT id FROM tasks WHERE kind = ?1 AND state IN ('queued', 'running') AND instr(params, ?2) > 0 ORDER BY id LIMIT 1",
            params![TaskKind::Forget, rp],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(t) = task {
        return Ok(Some(format!(
            "restore point {} is being removed already: task {t}",
            rp.short()
        )));
    }
    Ok(None)
}

/// Whether forget task `id` names `rp` (the restore points it may report
/// removed).
pub(crate) fn forget_names(db: &Connection, id: TaskId, rp: RestorePointId) -> Result<bool> {
    let params: String =
        db.query_row("SELECT params FROM tasks WHERE id = ?1", [id], |r| r.get(0))?;
    let v: serde_json::Value = serde_json::from_str(&params).unwrap_or_default();
    Ok(match TaskSpec::from_parts(TaskKind::Forget, &v) {
        Ok(TaskSpec::Forget(f)) => f.restore_points.contains(&rp),
        _ => false,
    })
}

impl Catalog {
    /// Queue forget tasks (each `spec` a [`TaskSpec::Forget`]) and then
    /// delete `source` if given, all in one transaction: if one of the
    /// restore points named may not be forgotten now (protected, served by
    /// a live export, named by a forget task queued or running), nothing
    /// is queued or deleted and the error ([`Error::State`]) says why.
    pub fn queue_forget(&self, tasks: &[NewTask], source: Option<SourceId>) -> Result<Vec<Task>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(tasks.len());
        for t in tasks {
            let TaskSpec::Forget(f) = &t.spec else {
                return Err(Error::Invalid(format!(
                    "a {} task is not a forget task",
                    t.spec.kind()
                )));
            };
            let mut refused: Vec<String> = Vec::new();
            for rp in &f.restore_points {
                if let Some(why) = refusal(&tx, *rp)? {
                    refused.push(why);
                }
            }
            if let Some(first) = refused.first() {
                return Err(Error::State(if refused.len() == 1 {
                    first.clone()
                } else {
                    format!(
                        "{} of the {} restore points may not be removed now: {}",
                        refused.len(),
                        f.restore_points.len(),
                        refused.join("; ")
                    )
                }));
            }
            tx.execute(
                "INSERT INTO tasks (kind, state, project_id, source_id, datastore_id, node_id, params, priority, max_attempts, not_before, created_by, created_at)
                 VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    t.spec.kind(),
                    t.project_id,
                    t.source_id,
                    t.datastore_id,
                    t.node_id,
                    t.spec.params().to_string(),
                    t.priority,
                    t.max_attempts.max(1),
                    t.not_before,
                    t.created_by,
                    now()
                ],
            )?;
            ids.push(TaskId(tx.last_insert_rowid()));
        }
        if let Some(s) = source {
            let n = tx.execute("DELETE FROM sources WHERE id = ?1", [s])?;
            if n == 0 {
                return Err(Error::NotFound(format!("source {s}")));
            }
        }
        tx.commit()?;
        // The writer is released before reading: an in-memory catalog
        // reads through the same connection.
        drop(db);
        ids.into_iter().map(|id| self.task(id)).collect()
    }

    /// Which of `ids` are protected now (a forget task's lease names them,
    /// and the node keeps them).
    pub fn protected_among(&self, ids: &[RestorePointId]) -> Result<Vec<RestorePointId>> {
        let db = self.rd();
        let mut st = db.prepare_cached("SELECT protected FROM restore_points WHERE id = ?1")?;
        let mut out = Vec::new();
        for id in ids {
            let p: Option<bool> = st.query_row([id], |r| r.get(0)).optional()?;
            if p == Some(true) {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// Every restore point of a source, in any datastore, oldest first:
    /// (id, datastore, protected).
    pub fn restore_points_of_source_everywhere(
        &self,
        source_id: SourceId,
    ) -> Result<Vec<(RestorePointId, crate::DatastoreId, bool)>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT id, datastore_id, protected FROM restore_points WHERE source_id = ?1 ORDER BY time, id",
        )?;
        let rows = st.query_map([source_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests;
