//! What the API answers about projects, nodes, datastores, sources,
//! policies, tasks, restore points, exports and the audit log.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::ids::{
    AuditId, DatastoreId, ExportId, NodeId, PolicyId, ProjectId, RestorePointId, SourceId, TaskId,
    TokenId,
};
use crate::kinds::{
    AssignedBy, AuditResult, ExportOnStop, ExportProtocol, ExportState, LogLevel, NodeState,
    RestorePointState, SourceKind, TaskKind, TaskState,
};
use crate::task::{BadParams, Retention, TaskSpec};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
}

/// A node: the server's own (embedded) or a remote one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub state: NodeState,
    /// The server's own node.
    pub embedded: bool,
    /// Tasks it runs at once.
    pub max_tasks: i64,
    /// The arca version it reported.
    pub version: String,
    pub last_heartbeat: Option<i64>,
    pub created_at: i64,
    /// Absolute paths under which this node's sources may live. Empty: no
    /// source may be added on the node until an admin sets one.
    pub source_roots: Vec<String>,
    /// Absolute paths under which restores may write, as set. Empty: only
    /// `<data_dir>/restores`.
    pub restore_roots: Vec<String>,
    /// The restore roots in force (`<data_dir>/restores` when none are
    /// set). Left out where a node is shown as just created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_restore_roots: Option<Vec<String>>,
    /// May restores write onto block devices (image restores in place)?
    pub allow_block_devices: bool,
    /// The node's data directory, as it reported it when it registered.
    pub data_dir: String,
}

/// `POST /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedNode {
    pub node: Node,
    /// The node's token (shown once): `arca node --token`.
    pub token: String,
    pub token_id: TokenId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Datastore {
    pub id: DatastoreId,
    pub name: String,
    /// The node that owns it (the only one that writes it).
    pub node_id: NodeId,
    /// Its directory on that node.
    pub path: String,
    /// Bytes on disk.
    pub bytes_used: i64,
    /// Bytes of all its restore points before dedup and compression.
    pub bytes_logical: i64,
    pub created_at: i64,
    /// When gc runs (a schedule expression, or `never`; `daily` by default).
    pub gc_schedule: String,
    /// When verify runs (`weekly` by default).
    pub verify_schedule: String,
    /// Verify re-reads a restore point only when its last verification is
    /// older than this many days.
    pub verify_max_age_days: i64,
}

/// Something to back up: a directory tree or an image on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    pub id: SourceId,
    pub name: String,
    pub kind: SourceKind,
    /// Absolute path on the node.
    pub path: String,
    pub node_id: NodeId,
    pub project_id: ProjectId,
    pub tags: Vec<String>,
    /// Kind-specific settings (`{}` today).
    pub settings: serde_json::Value,
    /// The policy that schedules its backups (null: none).
    pub policy_id: Option<PolicyId>,
    pub assigned_by: AssignedBy,
    pub created_at: i64,
}

/// When and where sources are backed up, and what is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub project_id: ProjectId,
    /// A schedule expression (UTC), in its normal form.
    pub schedule: String,
    /// When backups may start (null: any time).
    pub backup_window: Option<String>,
    pub retention: Retention,
    pub datastore_id: DatastoreId,
    /// Higher runs first; with several matching policies, the highest wins.
    pub priority: i64,
    /// Glob over source names that this policy takes.
    pub match_pattern: Option<String>,
    /// Sources with any of these tags take this policy.
    pub match_tags: Vec<String>,
    /// Recovery point objective: alert when a source's newest restore
    /// point is older.
    pub rpo_seconds: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    /// When its next backup is due to start: the schedule's next slot
    /// (delayed to the window's opening when it has one), as the
    /// scheduler computes it. Null when the policy is disabled or its
    /// schedule has no further slot.
    #[serde(default)]
    pub next_run: Option<i64>,
}

/// A unit of work run by a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub state: TaskState,
    pub project_id: ProjectId,
    pub source_id: Option<SourceId>,
    pub policy_id: Option<PolicyId>,
    pub datastore_id: Option<DatastoreId>,
    pub node_id: Option<NodeId>,
    /// The parameters of its kind: the payload of a [`TaskSpec`] (see
    /// [`Task::spec`]).
    pub params: serde_json::Value,
    pub priority: i64,
    /// The schedule slot it was queued for (scheduled tasks only).
    pub slot: Option<i64>,
    pub attempt: i64,
    pub max_attempts: i64,
    /// It does not start before this time.
    pub not_before: i64,
    /// While running: the node's lease ends then unless renewed.
    pub lease_until: Option<i64>,
    pub cancel_requested: bool,
    pub bytes_done: i64,
    pub bytes_total: i64,
    /// Percent done, when the total is known.
    pub progress: Option<f64>,
    /// What it did, when finished (kind-specific).
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    /// A user name, `policy <name>` or `schedule of datastore <name>`.
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl Task {
    /// The kind and parameters, typed.
    pub fn spec(&self) -> Result<TaskSpec, BadParams> {
        TaskSpec::from_parts(self.kind, &self.params)
    }
}

/// A line of a task's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskLog {
    /// Order within the task.
    pub seq: i64,
    pub time: i64,
    pub level: LogLevel,
    pub message: String,
}

/// `POST /api/v1/tasks/{id}/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cancelled {
    pub id: TaskId,
    /// `cancelled` for a queued task; a running one stays `running` until
    /// its node stops it.
    pub state: TaskState,
}

/// A restore point: a snapshot in a datastore, as the catalog lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestorePoint {
    pub id: RestorePointId,
    pub datastore_id: DatastoreId,
    /// The source it was made of (null: a source the catalog does not
    /// know, e.g. imported from a datastore).
    pub source_id: Option<SourceId>,
    /// The source's name, as the snapshot records it.
    pub source_name: String,
    pub project_id: ProjectId,
    pub kind: SourceKind,
    /// When the snapshot was taken, as its manifest records it: whole
    /// seconds since the Unix epoch, UTC (rounded down; see
    /// [`RestorePoint::time_from_ns`]). The same whether the catalog
    /// learned of it from the backup task or by importing the datastore;
    /// when the catalog listed it is `created_at`.
    pub time: i64,
    /// Bytes read from the source.
    pub bytes_total: i64,
    /// Bytes it added to the datastore (after dedup and compression).
    pub bytes_added: i64,
    pub files: i64,
    /// The host that made it.
    pub hostname: String,
    /// The task that made it (null: imported).
    pub task_id: Option<TaskId>,
    pub created_at: i64,
    pub state: RestorePointState,
    /// What verify found, when damaged.
    pub damage: Option<String>,
    /// When a verify last read all of it.
    pub verified_at: Option<i64>,
    /// Retention never removes it (nor does removing its source) until
    /// it is unprotected (`PATCH /api/v1/restore-points/{id}`).
    #[serde(default)]
    pub protected: bool,
    /// Free text about it (null: none).
    #[serde(default)]
    pub note: Option<String>,
}

impl RestorePoint {
    /// `time` from a snapshot manifest's `time_ns` (nanoseconds since the
    /// epoch): seconds, rounded down (towards the past, also before 1970,
    /// as `chrono`'s `timestamp()`).
    pub fn time_from_ns(time_ns: i64) -> i64 {
        time_ns.div_euclid(1_000_000_000)
    }
}

/// A restore point served by its node: an image as a disk over NBD or
/// iSCSI, or any restore point's files over NFS (read-only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Export {
    pub id: ExportId,
    pub restore_point_id: RestorePointId,
    pub datastore_id: DatastoreId,
    /// The node that serves it (the datastore's).
    pub node_id: NodeId,
    pub project_id: ProjectId,
    pub protocol: ExportProtocol,
    /// Writes go to an overlay, discarded or committed when it stops.
    pub writable: bool,
    /// Its name on its node, `export-<id>` (not secret): the iSCSI target
    /// name and CHAP user are made from it.
    pub name: String,
    pub state: ExportState,
    /// Where clients connect, credentials included
    /// (`nbd[s]://host:port/<name>-<secret>`,
    /// `iscsi://<name>%<secret>@host:port/<iqn>/0`), or for NFS
    /// `nfs://host:port/<source>/<restore point>?version=3&nfsport=P&mountport=P`;
    /// null until served.
    /// Only for users who may restore in the project (absent for others:
    /// `None`; null: `Some(None)`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    pub error: Option<String>,
    pub on_stop: ExportOnStop,
    /// The task that commits the changes, once queued.
    pub commit_task_id: Option<TaskId>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub stopped_at: Option<i64>,
    /// The export's secret (NBD name suffix, iSCSI CHAP secret). Only for
    /// users who may restore in the project (absent for others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// NFS exports: the address blocks of the clients that may mount it
    /// (NFSv3 has no user authentication). Only for users who may restore
    /// in the project; empty (absent) for NBD and iSCSI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// iSCSI CHAP user name (iSCSI exports, for users who may restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chap_user: Option<String>,
    /// Client commands to paste (once served, for users who may restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
}

/// An entry of the audit log: who changed what, from where, and how it
/// went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    pub time: i64,
    /// A user name (or `arca server` for the command line).
    pub actor: String,
    /// `user.add`, `source.backup`, `export.commit`...
    pub action: String,
    pub target: String,
    /// The caller's address ("" for the command line).
    pub remote: String,
    pub result: AuditResult,
    /// The error message, when it failed or was denied.
    pub detail: String,
}

/// A field that is absent (`None`, through `default`) or present, null or
/// not (`Some`).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn restore_point_time_rounds_down() {
        assert_eq!(
            RestorePoint::time_from_ns(1_700_000_000_999_999_999),
            1_700_000_000
        );
        assert_eq!(RestorePoint::time_from_ns(-1), -1);
        assert_eq!(RestorePoint::time_from_ns(0), 0);
    }

    /// A restore point as the API sent it before protection reads, and
    /// writes back unchanged but for the two added keys (`protected`,
    /// `note`: issue 13); with them it reads and writes back unchanged.
    #[test]
    fn restore_point_json_is_today_s() {
        let mut v = json!({"id": "ab".repeat(32), "datastore_id": 1, "source_id": null, "source_name": "vm", "project_id": 1, "kind": "image", "time": 1700000000, "bytes_total": 10, "bytes_added": 5, "files": 1, "hostname": "h", "task_id": 4, "created_at": 1700000001, "state": "ok", "damage": null, "verified_at": null});
        let rp: RestorePoint = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(rp.kind, SourceKind::Image);
        assert_eq!(rp.task_id, Some(TaskId(4)));
        assert_eq!((rp.protected, rp.note.as_deref()), (false, None));
        v["protected"] = json!(false);
        v["note"] = json!(null);
        assert_eq!(serde_json::to_value(&rp).unwrap(), v);
        v["protected"] = json!(true);
        v["note"] = json!("keep");
        let rp: RestorePoint = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&rp).unwrap(), v);
    }

    #[test]
    fn task_json_is_today_s_and_its_spec_is_typed() {
        let v = json!({"id": 9, "kind": "gc", "state": "queued", "project_id": 1, "source_id": null, "policy_id": null, "datastore_id": 1, "node_id": 1, "params": {"grace_seconds": 5}, "priority": -1, "slot": null, "attempt": 0, "max_attempts": 1, "not_before": 0, "lease_until": null, "cancel_requested": false, "bytes_done": 0, "bytes_total": 0, "progress": null, "result": null, "error": null, "created_by": "admin", "created_at": 0, "started_at": null, "finished_at": null});
        let t: Task = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&t).unwrap(), v);
        assert_eq!(
            t.spec().unwrap(),
            TaskSpec::Gc(crate::task::GcParams {
                grace_seconds: Some(5)
            })
        );
    }

    /// An export without credentials (as an auditor sees it) has no
    /// `address` or `secret` keys at all.
    #[test]
    fn export_credentials_are_left_out_when_absent() {
        let v = json!({"id": 1, "restore_point_id": "cd".repeat(32), "datastore_id": 1, "node_id": 1, "project_id": 2, "protocol": "iscsi", "writable": false, "name": "export-1", "state": "active", "error": null, "on_stop": "discard", "commit_task_id": null, "created_by": "op", "created_at": 1, "expires_at": 2, "stopped_at": null});
        let e: Export = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(e.address, None);
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }

    /// A user who may restore sees `address` even before the export is
    /// served: null, as today.
    #[test]
    fn an_unserved_export_s_address_is_null_for_those_who_may_restore() {
        let mut v = json!({"id": 1, "restore_point_id": "cd".repeat(32), "datastore_id": 1, "node_id": 1, "project_id": 2, "protocol": "nbd", "writable": false, "name": "export-1", "state": "starting", "error": null, "on_stop": "discard", "commit_task_id": null, "created_by": "op", "created_at": 1, "expires_at": 2, "stopped_at": null, "secret": "AbCdEfGh12345678"});
        v["address"] = json!(null);
        let e: Export = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(e.address, Some(None));
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
        v["address"] = json!("nbd://h:1/export-1-AbCdEfGh12345678");
        let e: Export = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }
}
