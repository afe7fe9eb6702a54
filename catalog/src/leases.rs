//! Leases: what a node may report about a task.
//!
//! A running task is leased to one node for one attempt until
//! `lease_until` (renewed by progress). Progress, logs and the result of a
//! task are accepted only from the holder of its current lease: the right
//! node, the same attempt, the task still running and the lease not run
//! out. A report from an old attempt (the lease expired and the task was
//! leased again, perhaps to the same node) is refused, so it cannot finish
//! or renew the new one.
//!
//! What a task reports as its effects must stay inside the task: a new
//! restore point in the task's datastore, of its source and project, and
//! only from a task kind that makes restore points; removed restore points
//! of the task's source in the task's datastore (for a forget task: those
//! it names, in its datastore and project); the usage of the task's
//! datastore; verify results only from a verify task and only about
//! restore points of its datastore. Anything else refuses the whole
//! report, and nothing of it is applied. The checks run in the transaction
//! that applies the report.

use rusqlite::{params, Connection, OptionalExtension};

use crate::forget::forget_names;
use crate::{
    now, Catalog, DatastoreId, Error, LogLevel, NodeId, ProjectId, Result, SourceId, TaskEffects,
    TaskId, TaskKind, TaskState,
};

/// Task kinds whose result may list a new restore point.
pub const MAKES_RESTORE_POINTS: &[TaskKind] = &[TaskKind::Backup, TaskKind::CommitExport];

/// A node's claim to a running task: the node and the attempt it leased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub node_id: NodeId,
    pub attempt: i64,
}

/// The parts of a task row the checks need.
pub(crate) struct Held {
    pub kind: TaskKind,
    pub state: TaskState,
    pub project_id: ProjectId,
    pub source_id: Option<SourceId>,
    pub datastore_id: Option<DatastoreId>,
}

/// Refuse unless `lease` holds task `id` now. Returns the task's row.
pub(crate) fn check_lease(db: &Connection, id: TaskId, lease: &Lease) -> Result<Held> {
    let row = db
        .query_row(
            "SELECT kind, state, project_id, source_id, datastore_id, node_id, attempt, lease_until
             FROM tasks WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    Held {
                        kind: r.get(0)?,
                        state: r.get(1)?,
                        project_id: r.get(2)?,
                        source_id: r.get(3)?,
                        datastore_id: r.get(4)?,
                    },
                    r.get::<_, Option<NodeId>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
    let (held, node, attempt, until) = row;
    if node != Some(lease.node_id) {
        return Err(Error::Denied(format!(
            "task {id} is not leased to this node"
        )));
    }
    if held.state != TaskState::Running {
        return Err(Error::State(format!(
            "task {id} is {}, not running: its lease ended, and this report is not recorded",
            held.state
        )));
    }
    if attempt != lease.attempt {
        return Err(Error::State(format!(
            "task {id} was leased again (attempt {attempt}); the report of attempt {} is not recorded",
            lease.attempt
        )));
    }
    if until.is_none_or(|u| u < now()) {
        return Err(Error::State(format!(
            "the lease of task {id} ran out; this report is not recorded (the task is requeued or failed)"
        )));
    }
    Ok(held)
}

/// The task's row without a lease check.
pub(crate) fn task_held(db: &Connection, id: TaskId) -> Result<Held> {
    db.query_row(
        "SELECT kind, state, project_id, source_id, datastore_id FROM tasks WHERE id = ?1",
        [id],
        |r| {
            Ok(Held {
                kind: r.get(0)?,
                state: r.get(1)?,
                project_id: r.get(2)?,
                source_id: r.get(3)?,
                datastore_id: r.get(4)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("task {id}")))
}

/// Refuse effects that reach beyond task `id` (see the module doc).
pub(crate) fn check_effects(db: &Connection, id: TaskId, t: &Held, fx: &TaskEffects) -> Result<()> {
    let deny = |what: String| {
        Err(Error::Denied(format!(
            "task {id}: {what}; nothing recorded"
        )))
    };
    let own_ds = |ds: DatastoreId| t.datastore_id == Some(ds);
    if let Some(rp) = &fx.restore_point {
        if !MAKES_RESTORE_POINTS.contains(&t.kind) {
            return deny(format!("a {} task does not make restore points", t.kind));
        }
        if !own_ds(rp.datastore_id) {
            return deny(format!(
                "restore point {} is in datastore {}, not in the task's",
                rp.id, rp.datastore_id
            ));
        }
        if rp.source_id != t.source_id || rp.project_id != t.project_id {
            return deny(format!(
                "restore point {} names another source or project than the task",
                rp.id
            ));
        }
        if rp.task_id.is_some_and(|x| x != id) {
            return deny(format!("restore point {} names another task", rp.id));
        }
    }
    for rp in &fx.removed_restore_points {
        let found: Option<(DatastoreId, Option<SourceId>, ProjectId)> = db
            .query_row(
                "SELECT datastore_id, source_id, project_id FROM restore_points WHERE id = ?1",
                [rp],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        // One the catalog does not list is gone already: nothing to do.
        let Some((ds, source, project)) = found else {
            continue;
        };
        if t.kind == TaskKind::Forget {
            // A forget removes what it names, in its datastore and project
            // (its source may be gone: deleted with restore_points=remove).
            if !own_ds(ds) || project != t.project_id || !forget_names(db, id, *rp)? {
                return deny(format!(
                    "restore point {rp} is not one the forget task names in its datastore"
                ));
            }
        } else if !own_ds(ds) || t.source_id.is_none() || source != t.source_id {
            return deny(format!(
                "restore point {rp} is not one of the task's source in the task's datastore"
            ));
        }
    }
    if let Some((ds, _)) = fx.datastore_bytes_used {
        if !own_ds(ds) {
            return deny(format!("datastore {ds} is not the task's"));
        }
    }
    if let Some(v) = &fx.verify {
        if t.kind != TaskKind::Verify {
            return deny(format!("a {} task does not report verify results", t.kind));
        }
        let named = v.checked.iter().chain(v.damaged.iter().map(|(id, _)| id));
        for rp in named {
            let ds: Option<DatastoreId> = db
                .query_row(
                    "SELECT datastore_id FROM restore_points WHERE id = ?1",
                    [rp],
                    |r| r.get(0),
                )
                .optional()?;
            if ds.is_some_and(|ds| !own_ds(ds)) {
                return deny(format!(
                    "restore point {rp} is not in the verified datastore"
                ));
            }
        }
    }
    Ok(())
}

impl Catalog {
    /// Record progress and renew the lease for `lease_secs`, if `lease`
    /// holds the task now. Returns whether cancellation was requested.
    pub fn task_progress_leased(
        &self,
        id: TaskId,
        lease: &Lease,
        done: i64,
        total: i64,
        lease_secs: i64,
    ) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        check_lease(&tx, id, lease)?;
        tx.execute(
            "UPDATE tasks SET bytes_done = ?2, bytes_total = ?3, lease_until = ?4 WHERE id = ?1",
            params![id, done, total, now() + lease_secs],
        )?;
        let cancel = tx.query_row(
            "SELECT cancel_requested FROM tasks WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(cancel)
    }

    /// Add a log line to a task, if `lease` holds it now.
    pub fn add_task_log_leased(
        &self,
        id: TaskId,
        lease: &Lease,
        level: LogLevel,
        message: &str,
    ) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        check_lease(&tx, id, lease)?;
        tx.execute(
            "INSERT INTO task_logs (task_id, seq, time, level, message)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_logs WHERE task_id = ?1), ?2, ?3, ?4)",
            params![id, now(), level, message],
        )?;
        tx.commit()?;
        Ok(())
    }
}
