//! Between the protocol's messages and the types of both sides.

use arca_catalog::{self as catalog, TaskState, VerifyEffects};
use serde_json::Value;

use crate::{pb, DatastoreRef, ExportSpec, Finished, Leased, LEASE_SECS};

pub fn datastore_to_pb(d: &DatastoreRef) -> pb::RegisteredDatastore {
    pb::RegisteredDatastore {
        id: d.id,
        name: d.name.clone(),
        path: d.path.clone(),
    }
}

pub fn datastore_from_pb(d: pb::RegisteredDatastore) -> DatastoreRef {
    DatastoreRef {
        id: d.id,
        name: d.name,
        path: d.path,
    }
}

/// A leased task as the server sends it.
pub fn leased_to_pb(l: &Leased) -> pb::TaskSpec {
    let t = &l.task;
    pb::TaskSpec {
        id: t.id,
        kind: t.kind.clone(),
        params_json: t.params.to_string(),
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        policy_id: t.policy_id,
        project_id: t.project_id,
        source: l.source.as_ref().map(|s| pb::Source {
            id: s.id,
            kind: s.kind.clone(),
            name: s.name.clone(),
            path: s.path.clone(),
            tags: s.tags.clone(),
            project_id: s.project_id,
        }),
        retention_json: l
            .retention
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default()),
        datastore: l.datastore.as_ref().map(datastore_to_pb),
    }
}

/// A leased task as the node receives it (leased by `node_id` now).
pub fn leased_from_pb(t: pb::TaskSpec, node_id: i64) -> Result<Leased, String> {
    let params = serde_json::from_str(&t.params_json).map_err(|e| format!("task params: {e}"))?;
    let retention = match &t.retention_json {
        Some(j) => Some(serde_json::from_str(j).map_err(|e| format!("task retention: {e}"))?),
        None => None,
    };
    let now = catalog::now();
    let task = catalog::Task {
        id: t.id,
        kind: t.kind,
        state: TaskState::Running,
        project_id: t.project_id,
        source_id: t.source.as_ref().map(|s| s.id),
        policy_id: t.policy_id,
        datastore_id: t.datastore.as_ref().map(|d| d.id),
        node_id: Some(node_id),
        params,
        priority: 0,
        slot: None,
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        not_before: now,
        lease_until: Some(now + LEASE_SECS),
        cancel_requested: false,
        bytes_done: 0,
        bytes_total: 0,
        progress: None,
        result: None,
        error: None,
        created_by: String::new(),
        created_at: now,
        started_at: Some(now),
        finished_at: None,
    };
    Ok(Leased {
        source: t.source.map(|s| catalog::Source {
            id: s.id,
            name: s.name,
            kind: s.kind,
            path: s.path,
            node_id,
            project_id: s.project_id,
            tags: s.tags,
            settings: Value::Null,
            policy_id: t.policy_id,
            assigned_by: String::new(),
            created_at: 0,
        }),
        retention,
        datastore: t.datastore.map(datastore_from_pb),
        task,
    })
}

pub fn export_to_pb(e: ExportSpec) -> pb::ExportSpec {
    pb::ExportSpec {
        id: e.id,
        restore_point: e.restore_point,
        datastore: Some(datastore_to_pb(&e.datastore)),
        protocol: e.protocol,
        writable: e.writable,
        name: e.name,
        state: e.state,
        on_stop: e.on_stop,
        secret: e.secret,
    }
}

pub fn export_from_pb(e: pb::ExportSpec) -> Result<ExportSpec, String> {
    let d = e.datastore.ok_or("an export without a datastore")?;
    Ok(ExportSpec {
        id: e.id,
        restore_point: e.restore_point,
        datastore: datastore_from_pb(d),
        protocol: e.protocol,
        writable: e.writable,
        name: e.name,
        state: e.state,
        on_stop: e.on_stop,
        secret: e.secret,
    })
}

/// A task's end as the node sends it, for the lease of `attempt`.
pub fn finished_to_pb(task_id: i64, attempt: i64, f: Finished) -> pb::FinishRequest {
    let (ok, result_json, error) = match f.outcome {
        Ok(v) => (true, v.to_string(), String::new()),
        Err(e) => (false, String::new(), e),
    };
    let fx = f.effects;
    pb::FinishRequest {
        task_id,
        ok,
        result_json,
        error,
        cancelled: f.cancelled,
        restore_point: fx.restore_point.map(|rp| pb::RestorePoint {
            id: rp.id,
            datastore_id: rp.datastore_id,
            source_id: rp.source_id,
            source_name: rp.source_name,
            project_id: rp.project_id,
            kind: rp.kind,
            time: rp.time,
            bytes_total: rp.bytes_total,
            bytes_added: rp.bytes_added,
            files: rp.files,
            hostname: rp.hostname,
        }),
        removed_restore_points: fx.removed_restore_points,
        verify: fx.verify.map(|v| pb::VerifyEffects {
            checked: v.checked,
            damaged: v
                .damaged
                .into_iter()
                .map(|(id, damage)| pb::DamagedRestorePoint { id, damage })
                .collect(),
        }),
        datastore_id: fx.datastore_bytes_used.map(|(d, _)| d),
        datastore_bytes_used: fx.datastore_bytes_used.map(|(_, b)| b),
        attempt,
    }
}

/// A reported restore point as the catalog lists it, made by `task_id`
/// (the server checks its datastore and id first).
pub fn restore_point_from_pb(rp: pb::RestorePoint, task_id: i64) -> catalog::RestorePoint {
    catalog::RestorePoint {
        id: rp.id,
        datastore_id: rp.datastore_id,
        source_id: rp.source_id,
        source_name: rp.source_name,
        project_id: rp.project_id,
        kind: rp.kind,
        time: rp.time,
        bytes_total: rp.bytes_total,
        bytes_added: rp.bytes_added,
        files: rp.files,
        hostname: rp.hostname,
        task_id: Some(task_id),
        created_at: catalog::now(),
        ..Default::default()
    }
}

pub fn verify_from_pb(v: pb::VerifyEffects) -> VerifyEffects {
    VerifyEffects {
        checked: v.checked,
        damaged: v.damaged.into_iter().map(|d| (d.id, d.damage)).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds() -> DatastoreRef {
        DatastoreRef {
            id: 3,
            name: "alpha/default".into(),
            path: "/var/lib/arca/datastores/default".into(),
        }
    }

    #[test]
    fn a_leased_task_crosses_the_wire_with_what_the_node_needs() {
        let spec = pb::TaskSpec {
            id: 7,
            kind: "backup".into(),
            params_json: json!({"source_restore_points": ["ab"]}).to_string(),
            attempt: 2,
            max_attempts: 3,
            policy_id: Some(4),
            source: Some(pb::Source {
                id: 5,
                kind: "files".into(),
                name: "web".into(),
                path: "/srv/www".into(),
                tags: vec!["prod".into()],
                project_id: 1,
            }),
            retention_json: Some(
                r#"{"keep_last":3,"keep_hourly":0,"keep_daily":0,"keep_weekly":0,"keep_monthly":0,"keep_yearly":0}"#.into(),
            ),
            datastore: Some(datastore_to_pb(&ds())),
            project_id: 1,
        };
        let l = leased_from_pb(spec.clone(), 9).unwrap();
        assert_eq!(l.task.node_id, Some(9));
        assert_eq!(l.task.params["source_restore_points"], json!(["ab"]));
        assert_eq!(l.source.as_ref().unwrap().node_id, 9);
        assert_eq!(l.datastore, Some(ds()));
        assert_eq!(leased_to_pb(&l), spec);
        let bad = pb::TaskSpec {
            params_json: "{".into(),
            ..spec
        };
        assert!(leased_from_pb(bad, 9)
            .unwrap_err()
            .starts_with("task params"));
    }

    #[test]
    fn exports_and_results_cross_the_wire_unchanged() {
        let e = ExportSpec {
            id: 1,
            restore_point: "ab".repeat(32),
            datastore: ds(),
            protocol: "nbd".into(),
            writable: true,
            name: "export-1".into(),
            state: "active".into(),
            on_stop: "commit".into(),
            secret: "AbCdEfGh12345678".into(),
        };
        assert_eq!(export_from_pb(export_to_pb(e.clone())).unwrap(), e);
        assert!(!format!("{e:?}").contains("AbCdEfGh12345678"));
        let no_ds = pb::ExportSpec {
            datastore: None,
            ..export_to_pb(e)
        };
        assert!(export_from_pb(no_ds).is_err());

        let f = Finished {
            outcome: Err("interrupted by shutdown".into()),
            cancelled: true,
            effects: catalog::TaskEffects {
                datastore_bytes_used: Some((3, 100)),
                verify: Some(VerifyEffects {
                    checked: vec!["a".into()],
                    damaged: vec![("a".into(), "bad".into())],
                }),
                ..Default::default()
            },
        };
        let r = finished_to_pb(7, 2, f);
        assert!(!r.ok && r.cancelled && r.error == "interrupted by shutdown");
        assert_eq!((r.task_id, r.attempt), (7, 2));
        assert_eq!(
            (r.datastore_id, r.datastore_bytes_used),
            (Some(3), Some(100))
        );
        let v = verify_from_pb(r.verify.unwrap());
        assert_eq!(v.damaged, vec![("a".to_string(), "bad".to_string())]);
    }
}
