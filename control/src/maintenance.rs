//! Datastore maintenance on schedules: gc and verify, as in Proxmox Backup
//! Server. Every datastore has a gc schedule (default daily) and a verify
//! schedule (default weekly); the server queues one task per slot on the
//! node that owns the datastore, where it runs beside backups (gc's lock
//! and the sessions' references keep running backups safe: DESIGN §3).
//! On-demand runs (`POST /api/v1/datastores/{id}/gc|verify`) queue the same
//! tasks without a slot.

use std::str::FromStr;

use arca_calendar::Schedule;
use arca_catalog::{Catalog, DatastoreId, NewTask, ProjectId, TaskId, TaskSpec};

use crate::{at, ts, Result};

/// Maintenance tasks are system tasks, listed in the default project.
pub const SYSTEM_PROJECT: ProjectId = ProjectId(1);

/// A maintenance task (a gc or a verify: `spec`) for a datastore.
pub fn maintenance_task(
    c: &Catalog,
    datastore_id: DatastoreId,
    spec: TaskSpec,
    slot: Option<i64>,
    created_by: &str,
) -> Result<NewTask> {
    let d = c.datastore(datastore_id)?;
    Ok(NewTask {
        spec,
        project_id: SYSTEM_PROJECT,
        source_id: None,
        policy_id: None,
        datastore_id: Some(d.id),
        node_id: Some(d.node_id),
        // Below backups of default priority: maintenance waits its turn.
        priority: -1,
        slot,
        // A failed gc or verify is reported, not retried: the next slot
        // (or an admin) runs it again.
        max_attempts: 1,
        not_before: crate::catalog::now(),
        created_by: created_by.into(),
    })
}

/// Queue the gc and verify tasks due at `now` (one per datastore, kind and
/// slot; none while one of the same kind is queued or running). Returns
/// the new task ids.
pub fn schedule_maintenance(c: &Catalog, now: i64) -> Result<Vec<TaskId>> {
    let mut due = Vec::new();
    for d in c.datastores()? {
        let kinds = [
            (TaskSpec::Gc(Default::default()), &d.gc_schedule),
            (TaskSpec::Verify(Default::default()), &d.verify_schedule),
        ];
        for (spec, expr) in kinds {
            let kind = spec.kind();
            if expr.is_empty() || expr == "never" {
                continue;
            }
            let Ok(sched) = Schedule::from_str(expr) else {
                continue;
            };
            let Some(slot) = sched.last_at_or_before(at(now)).map(ts) else {
                continue;
            };
            if slot < d.created_at
                || c.last_maintenance_slot(d.id, kind)?
                    .is_some_and(|last| last >= slot)
                || c.active_maintenance_task(d.id, kind)?.is_some()
            {
                continue;
            }
            due.push(maintenance_task(
                c,
                d.id,
                spec,
                Some(slot),
                &format!("schedule of datastore {}", d.name),
            )?);
        }
    }
    Ok(c.add_tasks(&due)?.into_iter().flatten().collect())
}
