//! Datastore maintenance: gc and verify schedules, and what verify found.
//!
//! Each datastore has a gc schedule (default `daily`) and a verify schedule
//! (default `weekly`); the server queues one task per schedule slot (the
//! slot is stored on the task, so a slot runs once whatever restarts
//! happen). Verify re-reads only restore points whose last verification is
//! older than `verify_max_age_days` (or that were never verified), and
//! records per restore point whether it is damaged; a later verify that
//! finds it whole again (the damaged chunks were stored again by a new
//! backup) marks it `ok`.

use rusqlite::{params, OptionalExtension};

use crate::{
    now, Catalog, Datastore, DatastoreId, Error, PolicyId, RestorePointId, Result, TaskId, TaskKind,
};

/// What a verify task found, recorded with its result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyEffects {
    /// Restore points whose blobs were all read and checked (damaged or not).
    pub checked: Vec<RestorePointId>,
    /// Restore points found damaged: (id, what is wrong).
    pub damaged: Vec<(RestorePointId, String)>,
}

/// The maintenance kinds that have a schedule per datastore.
pub const MAINTENANCE_KINDS: [TaskKind; 2] = [TaskKind::Gc, TaskKind::Verify];

impl Catalog {
    /// Change a datastore's maintenance settings (each `None` keeps the
    /// current value). Schedules must have been validated by the caller.
    pub fn set_datastore_maintenance(
        &self,
        id: DatastoreId,
        gc_schedule: Option<&str>,
        verify_schedule: Option<&str>,
        verify_max_age_days: Option<i64>,
    ) -> Result<Datastore> {
        if verify_max_age_days.is_some_and(|d| d < 0) {
            return Err(Error::Invalid(
                "verify_max_age_days must be 0 or more".into(),
            ));
        }
        let n = self.db().execute(
            "UPDATE datastores SET gc_schedule = COALESCE(?2, gc_schedule),
                 verify_schedule = COALESCE(?3, verify_schedule),
                 verify_max_age_days = COALESCE(?4, verify_max_age_days)
             WHERE id = ?1",
            params![id, gc_schedule, verify_schedule, verify_max_age_days],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("datastore {id}")));
        }
        self.datastore(id)
    }

    /// The newest schedule slot that produced a `kind` task on a datastore.
    pub fn last_maintenance_slot(
        &self,
        datastore_id: DatastoreId,
        kind: TaskKind,
    ) -> Result<Option<i64>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT MAX(slot) FROM tasks WHERE datastore_id = ?1 AND kind = ?2 AND slot IS NOT NULL",
                params![datastore_id, kind],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// A queued or running task of `kind` on the datastore, if any.
    pub fn active_maintenance_task(
        &self,
        datastore_id: DatastoreId,
        kind: TaskKind,
    ) -> Result<Option<TaskId>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT id FROM tasks WHERE datastore_id = ?1 AND kind = ?2 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                params![datastore_id, kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A queued or running task of `kind` of the policy (a prune on
    /// demand), if any.
    pub fn active_policy_task(
        &self,
        policy_id: PolicyId,
        kind: TaskKind,
    ) -> Result<Option<TaskId>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT id FROM tasks WHERE policy_id = ?1 AND kind = ?2 AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
                params![policy_id, kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Restore points of a datastore that verify should read now: never
    /// verified, verified before `verified_before`, or damaged (so that a
    /// repair is noticed).
    pub fn restore_points_to_verify(
        &self,
        datastore_id: DatastoreId,
        verified_before: i64,
    ) -> Result<Vec<RestorePointId>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT id FROM restore_points WHERE datastore_id = ?1
               AND (verified_at IS NULL OR verified_at < ?2 OR state = 'damaged') ORDER BY time",
        )?;
        let rows = st.query_map(params![datastore_id, verified_before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Record what verify found (inside the task's finishing transaction).
pub(crate) fn record_verify(
    tx: &rusqlite::Transaction,
    datastore_id: DatastoreId,
    v: &VerifyEffects,
) -> Result<()> {
    let t = now();
    for id in &v.checked {
        tx.execute(
            "UPDATE restore_points SET state = 'ok', damage = NULL, verified_at = ?2 WHERE id = ?1 AND datastore_id = ?3",
            params![id, t, datastore_id],
        )?;
    }
    for (id, why) in &v.damaged {
        tx.execute(
            "UPDATE restore_points SET state = 'damaged', damage = ?2, verified_at = ?3 WHERE id = ?1 AND datastore_id = ?4",
            params![id, why, t, datastore_id],
        )?;
    }
    Ok(())
}
