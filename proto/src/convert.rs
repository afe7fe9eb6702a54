//! Between the protocol's messages and the types of both sides. The
//! messages carry ids as integers and kinds, states and restore point ids
//! as the strings the catalog stores; a string that is none of its type's
//! values is an error naming the field.

use std::str::FromStr;

use arca_catalog::{
    self as catalog, AssignedBy, DatastoreId, NodeId, PolicyId, ProjectId, RestorePointId,
    SourceId, TaskId, TaskState, VerifyEffects,
};
use serde_json::Value;

use crate::{pb, DatastoreRef, ExportSpec, Finished, Leased, LEASE_SECS};

/// `s` as a `T`, or an error naming `what`.
fn parse<T: FromStr>(what: &str, s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("{what}: {e}"))
}

pub fn datastore_to_pb(d: &DatastoreRef) -> pb::RegisteredDatastore {
    pb::RegisteredDatastore {
        id: d.id.get(),
        name: d.name.clone(),
        path: d.path.clone(),
    }
}

pub fn datastore_from_pb(d: pb::RegisteredDatastore) -> DatastoreRef {
    DatastoreRef {
        id: DatastoreId(d.id),
        name: d.name,
        path: d.path,
    }
}

/// A leased task as the server sends it.
pub fn leased_to_pb(l: &Leased) -> pb::TaskSpec {
    let t = &l.task;
    pb::TaskSpec {
        id: t.id.get(),
        kind: t.kind.to_string(),
        params_json: t.params.to_string(),
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        policy_id: t.policy_id.map(PolicyId::get),
        project_id: t.project_id.get(),
        source: l.source.as_ref().map(|s| pb::Source {
            id: s.id.get(),
            kind: s.kind.to_string(),
            name: s.name.clone(),
            path: s.path.clone(),
            tags: s.tags.clone(),
            project_id: s.project_id.get(),
        }),
        retention_json: l
            .retention
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default()),
        datastore: l.datastore.as_ref().map(datastore_to_pb),
    }
}

/// A leased task as the node receives it (leased by `node_id` now).
pub fn leased_from_pb(t: pb::TaskSpec, node_id: NodeId) -> Result<Leased, String> {
    let kind = parse("task kind", &t.kind)?;
    let params = serde_json::from_str(&t.params_json).map_err(|e| format!("task params: {e}"))?;
    let source_kind = match &t.source {
        Some(s) => Some(parse("source kind", &s.kind)?),
        None => None,
    };
    let retention = match &t.retention_json {
        Some(j) => Some(serde_json::from_str(j).map_err(|e| format!("task retention: {e}"))?),
        None => None,
    };
    let now = catalog::now();
    let task = catalog::Task {
        id: TaskId(t.id),
        kind,
        state: TaskState::Running,
        project_id: ProjectId(t.project_id),
        source_id: t.source.as_ref().map(|s| SourceId(s.id)),
        policy_id: t.policy_id.map(PolicyId),
        datastore_id: t.datastore.as_ref().map(|d| DatastoreId(d.id)),
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
        source: t.source.zip(source_kind).map(|(s, kind)| catalog::Source {
            id: SourceId(s.id),
            name: s.name,
            kind,
            path: s.path,
            node_id,
            project_id: ProjectId(s.project_id),
            tags: s.tags,
            settings: Value::Null,
            policy_id: t.policy_id.map(PolicyId),
            // Not sent: the node does not need it.
            assigned_by: AssignedBy::None,
            created_at: 0,
        }),
        retention,
        datastore: t.datastore.map(datastore_from_pb),
        task,
    })
}

pub fn export_to_pb(e: ExportSpec) -> pb::ExportSpec {
    pb::ExportSpec {
        id: e.id.get(),
        restore_point: e.restore_point.to_hex(),
        datastore: Some(datastore_to_pb(&e.datastore)),
        protocol: e.protocol.to_string(),
        writable: e.writable,
        name: e.name,
        state: e.state.to_string(),
        on_stop: e.on_stop.to_string(),
        secret: e.secret,
    }
}

pub fn export_from_pb(e: pb::ExportSpec) -> Result<ExportSpec, String> {
    let d = e.datastore.ok_or("an export without a datastore")?;
    Ok(ExportSpec {
        id: catalog::ExportId(e.id),
        restore_point: parse("export restore point", &e.restore_point)?,
        datastore: datastore_from_pb(d),
        protocol: parse("export protocol", &e.protocol)?,
        writable: e.writable,
        name: e.name,
        state: parse("export state", &e.state)?,
        on_stop: parse("export stop mode", &e.on_stop)?,
        secret: e.secret,
    })
}

/// A task's end as the node sends it, for the lease of `attempt`.
pub fn finished_to_pb(task_id: TaskId, attempt: i64, f: Finished) -> pb::FinishRequest {
    let (ok, result_json, error) = match f.outcome {
        Ok(v) => (true, v.to_string(), String::new()),
        Err(e) => (false, String::new(), e),
    };
    let fx = f.effects;
    pb::FinishRequest {
        task_id: task_id.get(),
        ok,
        result_json,
        error,
        cancelled: f.cancelled,
        restore_point: fx.restore_point.map(|rp| pb::RestorePoint {
            id: rp.id.to_hex(),
            datastore_id: rp.datastore_id.get(),
            source_id: rp.source_id.map(SourceId::get),
            source_name: rp.source_name,
            project_id: rp.project_id.get(),
            kind: rp.kind.to_string(),
            time: rp.time,
            bytes_total: rp.bytes_total,
            bytes_added: rp.bytes_added,
            files: rp.files,
            hostname: rp.hostname,
        }),
        removed_restore_points: fx
            .removed_restore_points
            .iter()
            .map(|id| id.to_hex())
            .collect(),
        verify: fx.verify.map(|v| pb::VerifyEffects {
            checked: v.checked.iter().map(|id| id.to_hex()).collect(),
            damaged: v
                .damaged
                .into_iter()
                .map(|(id, damage)| pb::DamagedRestorePoint {
                    id: id.to_hex(),
                    damage,
                })
                .collect(),
        }),
        datastore_id: fx.datastore_bytes_used.map(|(d, _)| d.get()),
        datastore_bytes_used: fx.datastore_bytes_used.map(|(_, b)| b),
        attempt,
    }
}

/// A reported restore point as the catalog lists it, made by `task_id`
/// (the server checks its datastore first). Its `time` is the node's: the
/// snapshot manifest's.
pub fn restore_point_from_pb(
    rp: pb::RestorePoint,
    task_id: TaskId,
) -> Result<catalog::RestorePoint, String> {
    Ok(catalog::RestorePoint {
        id: parse("restore point id", &rp.id)?,
        datastore_id: DatastoreId(rp.datastore_id),
        source_id: rp.source_id.map(SourceId),
        source_name: rp.source_name,
        project_id: ProjectId(rp.project_id),
        kind: parse("restore point kind", &rp.kind)?,
        time: rp.time,
        bytes_total: rp.bytes_total,
        bytes_added: rp.bytes_added,
        files: rp.files,
        hostname: rp.hostname,
        task_id: Some(task_id),
        created_at: catalog::now(),
        ..Default::default()
    })
}

/// Restore point ids as a message lists them.
pub fn restore_point_ids_from_pb(ids: &[String]) -> Result<Vec<RestorePointId>, String> {
    ids.iter().map(|id| parse("restore point id", id)).collect()
}

pub fn verify_from_pb(v: pb::VerifyEffects) -> Result<VerifyEffects, String> {
    Ok(VerifyEffects {
        checked: restore_point_ids_from_pb(&v.checked)?,
        damaged: v
            .damaged
            .into_iter()
            .map(|d| Ok((parse("restore point id", &d.id)?, d.damage)))
            .collect::<Result<_, String>>()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds() -> DatastoreRef {
        DatastoreRef {
            id: DatastoreId(3),
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
        let l = leased_from_pb(spec.clone(), NodeId(9)).unwrap();
        assert_eq!(l.task.node_id, Some(NodeId(9)));
        assert_eq!(l.task.kind, catalog::TaskKind::Backup);
        assert_eq!(l.task.params["source_restore_points"], json!(["ab"]));
        assert_eq!(l.source.as_ref().unwrap().node_id, NodeId(9));
        assert_eq!(l.source.as_ref().unwrap().kind, catalog::SourceKind::Files);
        assert_eq!(l.datastore, Some(ds()));
        assert_eq!(leased_to_pb(&l), spec);
        let bad = pb::TaskSpec {
            params_json: "{".into(),
            ..spec.clone()
        };
        assert!(leased_from_pb(bad, NodeId(9))
            .unwrap_err()
            .starts_with("task params"));
        let bad = pb::TaskSpec {
            kind: "snapshot".into(),
            ..spec
        };
        assert!(leased_from_pb(bad, NodeId(9))
            .unwrap_err()
            .starts_with("task kind: unknown task kind \"snapshot\""));
    }

    #[test]
    fn exports_and_results_cross_the_wire_unchanged() {
        let e = ExportSpec {
            id: catalog::ExportId(1),
            restore_point: "ab".repeat(32).parse().unwrap(),
            datastore: ds(),
            protocol: catalog::ExportProtocol::Nbd,
            writable: true,
            name: "export-1".into(),
            state: catalog::ExportState::Active,
            on_stop: catalog::ExportOnStop::Commit,
            secret: "AbCdEfGh12345678".into(),
        };
        assert_eq!(export_from_pb(export_to_pb(e.clone())).unwrap(), e);
        assert!(!format!("{e:?}").contains("AbCdEfGh12345678"));
        let wire = export_to_pb(e.clone());
        assert_eq!(
            (
                wire.protocol.as_str(),
                wire.state.as_str(),
                wire.on_stop.as_str()
            ),
            ("nbd", "active", "commit")
        );
        let no_ds = pb::ExportSpec {
            datastore: None,
            ..export_to_pb(e.clone())
        };
        assert!(export_from_pb(no_ds).is_err());
        let smb = pb::ExportSpec {
            protocol: "smb".into(),
            ..export_to_pb(e)
        };
        assert!(export_from_pb(smb).unwrap_err().contains("export protocol"));
        let rp: RestorePointId = "cd".repeat(32).parse().unwrap();

        let f = Finished {
            outcome: Err("interrupted by shutdown".into()),
            cancelled: true,
            effects: catalog::TaskEffects {
                datastore_bytes_used: Some((DatastoreId(3), 100)),
                verify: Some(VerifyEffects {
                    checked: vec![rp],
                    damaged: vec![(rp, "bad".into())],
                }),
                ..Default::default()
            },
        };
        let r = finished_to_pb(TaskId(7), 2, f);
        assert!(!r.ok && r.cancelled && r.error == "interrupted by shutdown");
        assert_eq!((r.task_id, r.attempt), (7, 2));
        assert_eq!(
            (r.datastore_id, r.datastore_bytes_used),
            (Some(3), Some(100))
        );
        let v = r.verify.unwrap();
        assert_eq!(v.checked, vec!["cd".repeat(32)]);
        let v = verify_from_pb(v).unwrap();
        assert_eq!(v.damaged, vec![(rp, "bad".to_string())]);
        let bad = pb::VerifyEffects {
            checked: vec!["a".into()],
            damaged: vec![],
        };
        assert!(verify_from_pb(bad).is_err());
    }
}
