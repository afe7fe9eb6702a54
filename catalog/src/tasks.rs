//! Tasks: the queue (scheduled slots queued once), leasing to nodes,
//! progress, cancellation, retries and the end of a task with its effects
//! (checked against the lease: [`crate::leases`]), and task logs.

use rusqlite::{params, OptionalExtension, Row};

use crate::datastores::update_usage;
use crate::restore_points::insert_restore_point;
use crate::{
    id_list, json_val, leases, maintenance, now, unique, AssignedBy, Catalog, Error, Lease,
    LogLevel, NewTask, NodeId, PolicyId, ProjectId, Result, SourceId, Task, TaskEffects, TaskId,
    TaskKind, TaskLog, TaskState,
};

/// Which tasks [`Catalog::tasks_where`] lists (None: any).
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskFilter {
    pub state: Option<TaskState>,
    pub kind: Option<TaskKind>,
    pub source: Option<SourceId>,
}

pub(crate) const TASK_COLS: &str = "id, kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, attempt, max_attempts, not_before, lease_until, cancel_requested, bytes_done, bytes_total, result, error, created_by, created_at, started_at, finished_at";

pub(crate) fn task_row(r: &Row) -> rusqlite::Result<Task> {
    let bytes_done: i64 = r.get(16)?;
    let bytes_total: i64 = r.get(17)?;
    Ok(Task {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: r.get(2)?,
        project_id: r.get(3)?,
        source_id: r.get(4)?,
        policy_id: r.get(5)?,
        datastore_id: r.get(6)?,
        node_id: r.get(7)?,
        params: json_val(r.get(8)?),
        priority: r.get(9)?,
        slot: r.get(10)?,
        attempt: r.get(11)?,
        max_attempts: r.get(12)?,
        not_before: r.get(13)?,
        lease_until: r.get(14)?,
        cancel_requested: r.get(15)?,
        bytes_done,
        bytes_total,
        progress: (bytes_total > 0)
            .then(|| (bytes_done as f64 * 100.0 / bytes_total as f64).min(100.0)),
        result: r.get::<_, Option<String>>(18)?.map(json_val),
        error: r.get(19)?,
        created_by: r.get(20)?,
        created_at: r.get(21)?,
        started_at: r.get(22)?,
        finished_at: r.get(23)?,
    })
}

impl Catalog {
    /// Queue many tasks in one transaction (the scheduler's tick); tasks
    /// whose (policy, source, slot) exists already are skipped. Returns the
    /// ids of the new ones, in order (`None` for skipped).
    pub fn add_tasks(&self, tasks: &[NewTask]) -> Result<Vec<Option<TaskId>>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(tasks.len());
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO tasks (kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, max_attempts, not_before, created_by, created_at)
                 VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (policy_id, source_id, slot) DO NOTHING",
            )?;
            let now = now();
            for t in tasks {
                let n = st
                    .execute(params![
                        t.spec.kind(),
                        t.project_id,
                        t.source_id,
                        t.policy_id,
                        t.datastore_id,
                        t.node_id,
                        t.spec.params().to_string(),
                        t.priority,
                        t.slot,
                        t.max_attempts.max(1),
                        t.not_before,
                        t.created_by,
                        now
                    ])
                    .map_err(unique("task"))?;
                out.push((n > 0).then(|| TaskId(tx.last_insert_rowid())));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Set many policy assignments in one transaction.
    pub fn assign_policies_many(
        &self,
        changes: &[(SourceId, Option<PolicyId>, AssignedBy)],
    ) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE sources SET policy_id = ?2, assigned_by = ?3 WHERE id = ?1",
            )?;
            for (source, policy, by) in changes {
                let by = if policy.is_some() {
                    *by
                } else {
                    AssignedBy::None
                };
                st.execute(params![source, policy, by])
                    .map_err(unique("policy assignment"))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Queue a task. A scheduled task whose (policy, source, slot) exists
    /// already is not queued again: returns `Ok(None)`.
    pub fn add_task(&self, t: &NewTask) -> Result<Option<Task>> {
        match self.add_tasks(std::slice::from_ref(t))?.first() {
            Some(Some(id)) => self.task(*id).map(Some),
            _ => Ok(None),
        }
    }

    /// Queue a failed or cancelled task again, as a new task of the same
    /// kind, parameters, project, source, policy, datastore, priority and
    /// attempts, due now, by `by`; a line in its log names the task it
    /// retries. A backup runs on its source's node (as the source is now).
    /// `State` (409) for a task that is queued, running or succeeded, or a
    /// backup whose source was removed.
    pub fn retry_task(&self, id: TaskId, by: &str) -> Result<Task> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = tx
            .query_row(
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"),
                [id],
                task_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        if !matches!(t.state, TaskState::Failed | TaskState::Cancelled) {
            return Err(Error::State(format!(
                "task {id} is {}: only a failed or cancelled task can be retried",
                t.state
            )));
        }
        let node = match (t.kind, t.source_id) {
            (crate::TaskKind::Backup, None) => {
                return Err(Error::State(format!(
                    "task {id} backed up a source that has been removed"
                )))
            }
            (crate::TaskKind::Backup, Some(s)) => tx
                .query_row("SELECT node_id FROM sources WHERE id = ?1", [s], |r| {
                    r.get(0)
                })
                .optional()?,
            _ => t.node_id,
        };
        let now = now();
        tx.execute(
            "INSERT INTO tasks (kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, max_attempts, not_before, created_by, created_at)
             VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10)",
            params![
                t.kind,
                t.project_id,
                t.source_id,
                t.policy_id,
                t.datastore_id,
                node,
                t.params.to_string(),
                t.priority,
                t.max_attempts.max(1),
                now,
                by
            ],
        )
        .map_err(unique("task"))?;
        let new = TaskId(tx.last_insert_rowid());
        tx.execute(
            "INSERT INTO task_logs (task_id, seq, time, level, message) VALUES (?1, 1, ?2, ?3, ?4)",
            params![
                new,
                now,
                LogLevel::Info,
                format!("retry of task {id} ({}), by {by}", t.state)
            ],
        )?;
        tx.commit()?;
        drop(db);
        self.task(new)
    }

    pub fn task(&self, id: TaskId) -> Result<Task> {
        self.rd()
            .query_row(
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"),
                [id],
                task_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))
    }

    /// Tasks, newest first, optionally filtered by state and projects.
    pub fn tasks(
        &self,
        state: Option<TaskState>,
        projects: Option<&[ProjectId]>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Task>> {
        let f = TaskFilter {
            state,
            ..Default::default()
        };
        self.tasks_where(&f, projects, limit, offset)
    }

    /// Tasks matching `f` (every field set must match), in `projects`
    /// (None: all), newest first.
    pub fn tasks_where(
        &self,
        f: &TaskFilter,
        projects: Option<&[ProjectId]>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Task>> {
        let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = f.state {
            args.push(Box::new(s));
            sql += &format!(" AND state = ?{}", args.len());
        }
        if let Some(k) = f.kind {
            args.push(Box::new(k));
            sql += &format!(" AND kind = ?{}", args.len());
        }
        if let Some(src) = f.source {
            args.push(Box::new(src));
            sql += &format!(" AND source_id = ?{}", args.len());
        }
        if let Some(p) = projects {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        args.push(Box::new(limit.clamp(1, 10_000)));
        sql += &format!(" ORDER BY id DESC LIMIT ?{}", args.len());
        args.push(Box::new(offset.max(0)));
        sql += &format!(" OFFSET ?{}", args.len());
        let db = self.rd();
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Lease the next runnable task for `node_id`: queued, due, on this
    /// node (or on no particular node and on no other node's datastore),
    /// highest priority first. The node
    /// must renew the lease; an expired lease means the task is requeued.
    pub fn lease_task(&self, node_id: NodeId, now: i64, lease_secs: i64) -> Result<Option<Task>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<TaskId> = tx
            .query_row(
                "SELECT id FROM tasks WHERE state = 'queued' AND not_before <= ?2
                 AND (node_id = ?1 OR (node_id IS NULL AND (datastore_id IS NULL OR datastore_id IN (SELECT id FROM datastores WHERE node_id = ?1))))
                 AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.source_id IS NOT NULL AND r.source_id = tasks.source_id)
                 AND NOT (kind = 'backup' AND source_id IN (SELECT id FROM sources WHERE json_extract(settings, '$.agent') = 1))
                 ORDER BY priority DESC, not_before, id LIMIT 1",
                params![node_id, now],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        run_leased(&tx, id, node_id, now, lease_secs)?;
        tx.commit()?;
        drop(db);
        self.task(id).map(Some)
    }

    /// Claim the next queued, due backup task of one of `sources` (agent-fed
    /// sources, which no node leases): it runs from now on, leased to
    /// `node_id` (the node whose datastore the agent writes to) as if that
    /// node had leased it. The agent's session renews the lease.
    pub fn claim_agent_task(
        &self,
        sources: &[crate::SourceId],
        node_id: NodeId,
        lease_secs: i64,
    ) -> Result<Option<Task>> {
        if sources.is_empty() {
            return Ok(None);
        }
        let now = now();
        let list = sources
            .iter()
            .map(|s| s.get().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<TaskId> = tx
            .query_row(
                &format!(
                    "SELECT id FROM tasks WHERE state = 'queued' AND kind = 'backup' AND not_before <= ?1
                     AND source_id IN ({list})
                     AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.source_id = tasks.source_id)
                     ORDER BY priority DESC, not_before, id LIMIT 1"
                ),
                params![now],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        run_leased(&tx, id, node_id, now, lease_secs)?;
        tx.commit()?;
        drop(db);
        self.task(id).map(Some)
    }

    /// Record a task that starts now on `node_id`, leased to it for its
    /// first attempt, instead of queueing it: a backup an agent pushes
    /// (docs/vm-ingest.md, "Agent") runs while the agent's session is
    /// open, and no node may lease it to run it another way. Refused
    /// (`State`) while another task of the same source runs, as leasing
    /// refuses a second task of one source. The holder renews the lease
    /// with [`Catalog::task_progress_leased`] and ends the task with
    /// [`Catalog::finish_task_leased`].
    pub fn start_task(&self, t: &NewTask, node_id: NodeId, lease_secs: i64) -> Result<Task> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(src) = t.source_id {
            let running: Option<TaskId> = tx
                .query_row(
                    "SELECT id FROM tasks WHERE state = 'running' AND source_id = ?1 LIMIT 1",
                    [src],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = running {
                return Err(Error::State(format!(
                    "task {id} of this source is running; try again when it has ended"
                )));
            }
        }
        let now = now();
        tx.execute(
            "INSERT INTO tasks (kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, attempt, max_attempts, not_before, lease_until, created_by, created_at, started_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, 1, ?9, ?10, ?11, ?12, ?10, ?10)",
            params![
                t.spec.kind(),
                t.project_id,
                t.source_id,
                t.policy_id,
                t.datastore_id,
                node_id,
                t.spec.params().to_string(),
                t.priority,
                t.max_attempts.max(1),
                now,
                now + lease_secs,
                t.created_by,
            ],
        )?;
        let id = TaskId(tx.last_insert_rowid());
        tx.commit()?;
        drop(db);
        self.task(id)
    }

    /// A running task that uses `source` (its own), or `policy` (its own,
    /// or that of a source the policy is assigned to), if any: such a
    /// source or policy may not be removed now.
    pub fn running_task_using(
        &self,
        source: Option<SourceId>,
        policy: Option<PolicyId>,
    ) -> Result<Option<TaskId>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT id FROM tasks WHERE state = 'running' AND (
                     (?1 IS NOT NULL AND source_id = ?1)
                  OR (?2 IS NOT NULL AND (policy_id = ?2
                      OR source_id IN (SELECT id FROM sources WHERE policy_id = ?2))))
                 ORDER BY id LIMIT 1",
                params![source, policy],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn running_on_node(&self, node_id: NodeId) -> Result<i64> {
        Ok(self.rd().query_row(
            "SELECT COUNT(*) FROM tasks WHERE state = 'running' AND node_id = ?1",
            [node_id],
            |r| r.get(0),
        )?)
    }

    /// Extend a running task's lease and record its progress. Returns
    /// whether cancellation was requested.
    pub fn task_progress(
        &self,
        id: TaskId,
        done: i64,
        total: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let db = self.db();
        db.execute(
            "UPDATE tasks SET bytes_done = ?2, bytes_total = ?3, lease_until = ?4 WHERE id = ?1 AND state = 'running'",
            params![id, done, total, lease_until],
        )?;
        Ok(db.query_row(
            "SELECT cancel_requested FROM tasks WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Finish a running task. A failure with attempts left is requeued
    /// after `retry_at` instead. Returns the task's new state.
    pub fn finish_task(
        &self,
        id: TaskId,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
    ) -> Result<TaskState> {
        self.finish_task_with(id, outcome, cancelled, retry_at, &TaskEffects::default())
    }

    /// [`Catalog::finish_task`] together with what the task changed in its
    /// datastore, in one transaction: a backup's restore point is listed
    /// exactly when its task's result is recorded. The effects describe
    /// the datastore as it is (the snapshot is committed, pruned ones are
    /// gone), so they are recorded even when the task is no longer
    /// running here (its lease expired); the state change then fails.
    /// Effects beyond the task are refused (`Denied`), nothing recorded.
    pub fn finish_task_with(
        &self,
        id: TaskId,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
        fx: &TaskEffects,
    ) -> Result<TaskState> {
        self.finish_task_leased(id, None, outcome, cancelled, retry_at, fx)
    }

    /// [`Catalog::finish_task_with`] for the holder of the task's lease:
    /// refused (with nothing recorded) unless `lease` holds the task now,
    /// and in any case unless the effects stay inside the task (the task's
    /// datastore, source and project: catalog/src/leases.rs); both checked
    /// in the transaction that records them.
    pub fn finish_task_leased(
        &self,
        id: TaskId,
        lease: Option<&Lease>,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
        fx: &TaskEffects,
    ) -> Result<TaskState> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held = match lease {
            Some(l) => leases::check_lease(&tx, id, l)?,
            None => leases::task_held(&tx, id)?,
        };
        leases::check_effects(&tx, id, &held, fx)?;
        if let Some(rp) = &fx.restore_point {
            insert_restore_point(&tx, rp)?;
        }
        for rp in &fx.removed_restore_points {
            tx.execute("DELETE FROM restore_points WHERE id = ?1", [rp])?;
        }
        if let Some((ds, used)) = fx.datastore_bytes_used {
            update_usage(&tx, ds, used, now())?;
        }
        let (attempt, max_attempts, state, task_ds): (i64, i64, TaskState, Option<_>) = tx
            .query_row(
                "SELECT attempt, max_attempts, state, datastore_id FROM tasks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        if state != TaskState::Running {
            tx.commit()?;
            return Err(Error::Invalid(format!("task {id} is {state}, not running")));
        }
        if let (Some(v), Some(ds)) = (&fx.verify, task_ds) {
            maintenance::record_verify(&tx, ds, v)?;
        }
        let t = now();
        let new_state = match (&outcome, cancelled) {
            (_, true) => TaskState::Cancelled,
            (Ok(_), false) => TaskState::Succeeded,
            (Err(_), false) if attempt < max_attempts && retry_at.is_some() => TaskState::Queued,
            (Err(_), false) => TaskState::Failed,
        };
        match &outcome {
            Ok(v) => tx.execute(
                "UPDATE tasks SET state = ?2, result = ?3, error = NULL, finished_at = ?4, lease_until = NULL WHERE id = ?1",
                params![id, new_state, v.to_string(), t],
            )?,
            Err(e) if new_state == TaskState::Queued => tx.execute(
                "UPDATE tasks SET state = 'queued', error = ?2, not_before = ?3, lease_until = NULL, started_at = NULL WHERE id = ?1",
                params![id, e, retry_at.unwrap_or(t)],
            )?,
            Err(e) => tx.execute(
                "UPDATE tasks SET state = ?2, error = ?3, finished_at = ?4, lease_until = NULL WHERE id = ?1",
                params![id, new_state, e, t],
            )?,
        };
        tx.commit()?;
        Ok(new_state)
    }

    /// Request cancellation: a queued task is cancelled at once, a running
    /// one is told through `task_progress`. Returns the resulting state.
    pub fn cancel_task(&self, id: TaskId) -> Result<TaskState> {
        let db = self.db();
        let state: TaskState = db
            .query_row("SELECT state FROM tasks WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        match state {
            TaskState::Queued => {
                db.execute(
                    "UPDATE tasks SET state = 'cancelled', cancel_requested = 1, finished_at = ?2 WHERE id = ?1",
                    params![id, now()],
                )?;
                Ok(TaskState::Cancelled)
            }
            TaskState::Running => {
                db.execute("UPDATE tasks SET cancel_requested = 1 WHERE id = ?1", [id])?;
                Ok(TaskState::Running)
            }
            s => Err(Error::Invalid(format!("task {id} is already {s}"))),
        }
    }

    /// Running tasks whose lease ran out (their node died or lost contact)
    /// or that run on the given offline nodes: requeued while attempts
    /// remain, else failed, with `reason`. Returns the ids.
    pub fn expire_leases(
        &self,
        now: i64,
        offline_nodes: &[NodeId],
        reason: &str,
    ) -> Result<Vec<TaskId>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<TaskId> = {
            let mut st = tx.prepare(&format!(
                "SELECT id FROM tasks WHERE state = 'running' AND (lease_until < ?1 OR node_id IN ({}))",
                id_list(offline_nodes)
            ))?;
            let rows = st.query_map([now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in &ids {
            tx.execute(
                "UPDATE tasks SET
                   state = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN 'queued' ELSE 'failed' END,
                   finished_at = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN NULL ELSE ?2 END,
                   started_at = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN NULL ELSE started_at END,
                   error = ?3, lease_until = NULL, not_before = ?2
                 WHERE id = ?1",
                params![id, now, reason],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    pub fn add_task_log(&self, task_id: TaskId, level: LogLevel, message: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO task_logs (task_id, seq, time, level, message)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_logs WHERE task_id = ?1), ?2, ?3, ?4)",
            params![task_id, now(), level, message],
        )?;
        Ok(())
    }

    pub fn task_logs(&self, task_id: TaskId) -> Result<Vec<TaskLog>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT seq, time, level, message FROM task_logs WHERE task_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([task_id], |r| {
            Ok(TaskLog {
                seq: r.get(0)?,
                time: r.get(1)?,
                level: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest slot already queued for (policy, source), if any.
    pub fn last_slot(&self, policy_id: PolicyId, source_id: SourceId) -> Result<Option<i64>> {
        Ok(self.rd().query_row(
            "SELECT MAX(slot) FROM tasks WHERE policy_id = ?1 AND source_id = ?2",
            params![policy_id, source_id],
            |r| r.get(0),
        )?)
    }

    /// The newest queued slot of every (policy, source) pair, in one query
    /// (the scheduler's per-tick read; served from the unique index).
    pub fn last_slots(&self) -> Result<std::collections::HashMap<(PolicyId, SourceId), i64>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT policy_id, source_id, MAX(slot) FROM tasks
             WHERE policy_id IS NOT NULL AND source_id IS NOT NULL AND slot IS NOT NULL
             GROUP BY policy_id, source_id",
        )?;
        let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Task counts by state, for metrics.
    pub fn task_counts(&self) -> Result<Vec<(TaskState, i64)>> {
        let db = self.rd();
        let mut st = db.prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Start queued task `id` on `node_id`, leased for `lease_secs` from `now`:
/// its next attempt (a node's lease, or an agent's claim).
fn run_leased(
    tx: &rusqlite::Transaction,
    id: TaskId,
    node_id: NodeId,
    now: i64,
    lease_secs: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE tasks SET state = 'running', node_id = ?2, attempt = attempt + 1, started_at = ?3, lease_until = ?4, error = NULL WHERE id = ?1",
        params![id, node_id, now, now + lease_secs],
    )?;
    Ok(())
}
