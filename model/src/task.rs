//! What a task does: [`TaskSpec`], one typed payload per [`TaskKind`].
//!
//! The catalog stores a task's kind and its parameters in two columns,
//! `tasks.kind` (text) and `tasks.params` (JSON); the API shows them as the
//! task's `kind` and `params` fields. `TaskSpec` is adjacently tagged with
//! exactly those names, so `{"kind": "restore", "params": {...}}` is both a
//! serialized `TaskSpec` and the two columns side by side: no migration.
//! [`TaskSpec::from_parts`] and [`TaskSpec::params`] convert from and to
//! the columns.
//!
//! The payloads mirror the JSON written today (web/src/routes/,
//! web/src/routes/datastores.rs, control/src/lib.rs, control/src/maintenance.rs)
//! and read by the runner (control/src/runner.rs). Fields the server adds
//! when it leases a task to a node (`confine`, `source_restore_points`,
//! `restore_points`, `verify_max_age_days`: computed at each lease, never
//! stored) are optional and left out of the JSON when absent. Unknown
//! fields are ignored, as the runner ignores them today.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ExportId, RestorePointId};
use crate::kinds::TaskKind;

/// A policy's keep rules (the datastore's `arca_repo::prune::Retention`,
/// with its JSON Schema). Every field is optional (0: that rule keeps
/// nothing) and unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest N restore points.
    pub keep_last: u32,
    /// Keep the newest of each of the last N hours.
    pub keep_hourly: u32,
    /// Keep the newest of each of the last N days.
    pub keep_daily: u32,
    /// Keep the newest of each of the last N weeks.
    pub keep_weekly: u32,
    /// Keep the newest of each of the last N months.
    pub keep_monthly: u32,
    /// Keep the newest of each of the last N years.
    pub keep_yearly: u32,
}

impl Retention {
    /// No rule set: nothing is removed.
    pub fn is_empty(&self) -> bool {
        *self == Retention::default()
    }
}

impl From<arca_repo::prune::Retention> for Retention {
    fn from(r: arca_repo::prune::Retention) -> Self {
        Retention {
            keep_last: r.keep_last,
            keep_hourly: r.keep_hourly,
            keep_daily: r.keep_daily,
            keep_weekly: r.keep_weekly,
            keep_monthly: r.keep_monthly,
            keep_yearly: r.keep_yearly,
        }
    }
}

impl From<Retention> for arca_repo::prune::Retention {
    fn from(r: Retention) -> Self {
        arca_repo::prune::Retention {
            keep_last: r.keep_last,
            keep_hourly: r.keep_hourly,
            keep_daily: r.keep_daily,
            keep_weekly: r.keep_weekly,
            keep_monthly: r.keep_monthly,
            keep_yearly: r.keep_yearly,
        }
    }
}

/// One node's confinement rules, as a backup or restore task carries them
/// (`params.confine`, attached at lease time; control/src/confine.rs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Confinement {
    /// The node's name, for messages.
    pub node: String,
    /// Absolute paths under which the node's sources may live.
    pub source_roots: Vec<String>,
    /// As the admin set them; empty: `<data_dir>/restores`.
    pub restore_roots: Vec<String>,
    /// May restores write onto block devices?
    pub allow_block_devices: bool,
    /// The node's data directory ("" if it never said).
    pub data_dir: String,
    /// The paths of the node's datastores.
    pub datastores: Vec<String>,
}

/// A backup of the task's source into the task's datastore. Queued with
/// no parameters (`{}`) by the scheduler and by `POST .../backup`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupParams {
    /// Lease time: the node's confinement rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confinement>,
    /// Lease time: this source's restore points in the datastore, among
    /// which the parent and retention are chosen (protected ones left
    /// out: a node that does not know `protected` never removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_restore_points: Option<Vec<RestorePointId>>,
    /// Lease time: this source's protected restore points in the
    /// datastore; retention keeps them (they may still be the parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<Vec<RestorePointId>>,
}

/// A restore of a restore point (or a path in it) to a target on the
/// node that owns its datastore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestoreParams {
    pub restore_point: RestorePointId,
    /// Absolute target path on the node (checked against its restore roots).
    pub target: String,
    /// A path inside the restore point (null: all of it).
    #[serde(default)]
    pub path: Option<String>,
    /// Write into a target that holds data.
    #[serde(default)]
    pub overwrite: bool,
    /// Recreate device nodes and keep setuid/setgid bits and capabilities.
    #[serde(default)]
    pub special_files: bool,
    /// Lease time: the node's confinement rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confine: Option<Confinement>,
    /// Restore a libvirt VM as an *import* on a hypervisor (then `target`
    /// is empty): its disks recreated there and its domain defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<VmImport>,
}

/// Where and how a VM restore point is imported (see
/// `POST /restore-points/{id}/import`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VmImport {
    pub hypervisor_id: crate::HypervisorId,
    /// The new domain's name (default: the original's; refused while a
    /// domain of that name exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absolute directory on the host for the disk files.
    pub dir: String,
    /// `qcow2` (default) or `raw`.
    pub format: String,
    /// Start the domain once defined.
    #[serde(default)]
    pub start: bool,
}

/// A verify of the task's datastore: the restore points due, or all.
/// Scheduled verifies are queued with `{}`; `POST .../verify` writes
/// `all` (false and absent mean the same).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerifyParams {
    /// Read every restore point, not only those due.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    /// Percentage of the packs to read (absent: 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_data_percent: Option<f64>,
    /// Lease time, unless `all`: the restore points due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_points: Option<Vec<RestorePointId>>,
    /// Lease time, with `restore_points`: the datastore's age limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_max_age_days: Option<i64>,
}

/// Retention applied to one source's restore points in the task's
/// datastore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PruneParams {
    pub retention: Retention,
    /// The source's name in the datastore.
    pub source: String,
    /// Lease time: this source's restore points (by id, not by name),
    /// protected ones left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_restore_points: Option<Vec<RestorePointId>>,
    /// Lease time: this source's protected restore points, which
    /// retention keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<Vec<RestorePointId>>,
}

/// Garbage collection of the task's datastore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GcParams {
    /// Packs younger than this are left alone (absent: 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u64>,
}

/// Write a stopped writable export's overlay as a new restore point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitExportParams {
    pub export: ExportId,
    /// The exported restore point: the parent of the new one.
    pub restore_point: RestorePointId,
    /// The source name for the new restore point ("": the parent's).
    #[serde(default)]
    pub source: String,
}

/// Delete restore points from the task's datastore (their snapshot
/// manifests; gc frees their data later). Queued by
/// `DELETE /restore-points/{id}` and by deleting a source with
/// `restore_points=remove`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForgetParams {
    /// The restore points to delete, all in the task's datastore.
    pub restore_points: Vec<RestorePointId>,
    /// Lease time: those of them that are protected now; the node keeps
    /// them (and the task fails saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<Vec<RestorePointId>>,
}

/// What a task does, with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "params", rename_all = "kebab-case")]
pub enum TaskSpec {
    Backup(BackupParams),
    Restore(RestoreParams),
    Verify(VerifyParams),
    Prune(PruneParams),
    Gc(GcParams),
    CommitExport(CommitExportParams),
    Forget(ForgetParams),
}

/// Parameters that do not fit their task kind.
#[derive(Debug)]
pub struct BadParams {
    pub kind: TaskKind,
    pub error: serde_json::Error,
}

impl std::fmt::Display for BadParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parameters of a {} task: {}", self.kind, self.error)
    }
}

impl std::error::Error for BadParams {}

impl TaskSpec {
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskSpec::Backup(_) => TaskKind::Backup,
            TaskSpec::Restore(_) => TaskKind::Restore,
            TaskSpec::Verify(_) => TaskKind::Verify,
            TaskSpec::Prune(_) => TaskKind::Prune,
            TaskSpec::Gc(_) => TaskKind::Gc,
            TaskSpec::CommitExport(_) => TaskKind::CommitExport,
            TaskSpec::Forget(_) => TaskKind::Forget,
        }
    }

    /// From the catalog's two columns (or the API's `kind` and `params`).
    /// A `null` parameter value reads as `{}`, as the runner reads it.
    pub fn from_parts(kind: TaskKind, params: &serde_json::Value) -> Result<TaskSpec, BadParams> {
        let empty = serde_json::Value::Object(Default::default());
        let p = if params.is_null() { &empty } else { params };
        fn read<T: serde::de::DeserializeOwned>(
            p: &serde_json::Value,
        ) -> Result<T, serde_json::Error> {
            T::deserialize(p)
        }
        let r = match kind {
            TaskKind::Backup => read(p).map(TaskSpec::Backup),
            TaskKind::Restore => read(p).map(TaskSpec::Restore),
            TaskKind::Verify => read(p).map(TaskSpec::Verify),
            TaskKind::Prune => read(p).map(TaskSpec::Prune),
            TaskKind::Gc => read(p).map(TaskSpec::Gc),
            TaskKind::CommitExport => read(p).map(TaskSpec::CommitExport),
            TaskKind::Forget => read(p).map(TaskSpec::Forget),
        };
        r.map_err(|error| BadParams { kind, error })
    }

    /// The parameters, as the catalog stores them.
    pub fn params(&self) -> serde_json::Value {
        let v = match self {
            TaskSpec::Backup(p) => serde_json::to_value(p),
            TaskSpec::Restore(p) => serde_json::to_value(p),
            TaskSpec::Verify(p) => serde_json::to_value(p),
            TaskSpec::Prune(p) => serde_json::to_value(p),
            TaskSpec::Gc(p) => serde_json::to_value(p),
            TaskSpec::CommitExport(p) => serde_json::to_value(p),
            TaskSpec::Forget(p) => serde_json::to_value(p),
        };
        // Plain structs of strings, numbers and lists: this cannot fail.
        v.unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn rp(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// `params` as stored today reads as `want`, and writes back as
    /// `stored` (the same JSON, or its canonical form).
    fn check(kind: &str, params: Value, want: &TaskSpec, stored: Value) {
        let kind: TaskKind = kind.parse().unwrap();
        let spec = TaskSpec::from_parts(kind, &params).unwrap();
        assert_eq!(&spec, want, "{params}");
        assert_eq!(spec.kind(), kind);
        assert_eq!(spec.params(), stored, "{params}");
        // The two columns side by side are the serialized spec.
        let both = json!({"kind": kind, "params": params});
        let spec2: TaskSpec = serde_json::from_value(both).unwrap();
        assert_eq!(&spec2, want);
        assert_eq!(
            serde_json::to_value(&spec2).unwrap(),
            json!({"kind": kind, "params": stored})
        );
    }

    #[test]
    fn today_s_params_round_trip() {
        // Scheduler and "back up now": control/src/lib.rs, web routes.
        check(
            "backup",
            json!({}),
            &TaskSpec::Backup(BackupParams::default()),
            json!({}),
        );
        // POST /restore-points/{id}/restore (web/src/routes/restore_points.rs).
        let restore = json!({"restore_point": rp('a'), "target": "/srv/restores/x", "path": null, "overwrite": false, "special_files": false});
        let want = TaskSpec::Restore(RestoreParams {
            restore_point: rp('a').parse().unwrap(),
            target: "/srv/restores/x".into(),
            path: None,
            overwrite: false,
            special_files: false,
            confine: None,
            import: None,
        });
        check("restore", restore.clone(), &want, restore);
        let restore = json!({"restore_point": rp('b'), "target": "/t", "path": "etc/hosts", "overwrite": true, "special_files": true});
        let spec = TaskSpec::from_parts(TaskKind::Restore, &restore).unwrap();
        assert_eq!(spec.params(), restore);
        // Scheduled verify, and POST /datastores/{id}/verify.
        check(
            "verify",
            json!({}),
            &TaskSpec::Verify(VerifyParams::default()),
            json!({}),
        );
        check(
            "verify",
            json!({"all": true, "read_data_percent": 12.5}),
            &TaskSpec::Verify(VerifyParams {
                all: true,
                read_data_percent: Some(12.5),
                ..Default::default()
            }),
            json!({"all": true, "read_data_percent": 12.5}),
        );
        // {"all": false} means {}: written back without it.
        check(
            "verify",
            json!({"all": false}),
            &TaskSpec::Verify(VerifyParams::default()),
            json!({}),
        );
        // gc: POST /datastores/{id}/gc, with and without grace_seconds.
        check(
            "gc",
            json!({}),
            &TaskSpec::Gc(GcParams::default()),
            json!({}),
        );
        check(
            "gc",
            json!({"grace_seconds": 60}),
            &TaskSpec::Gc(GcParams {
                grace_seconds: Some(60),
            }),
            json!({"grace_seconds": 60}),
        );
        // DELETE /exports/{id}?commit=true.
        let commit = json!({"export": 3, "restore_point": rp('c'), "source": "vm"});
        check(
            "commit-export",
            commit.clone(),
            &TaskSpec::CommitExport(CommitExportParams {
                export: ExportId(3),
                restore_point: rp('c').parse().unwrap(),
                source: "vm".into(),
            }),
            commit,
        );
        // DELETE /restore-points/{id}: a forget of one restore point.
        let forget = json!({"restore_points": [rp('f')]});
        check(
            "forget",
            forget.clone(),
            &TaskSpec::Forget(ForgetParams {
                restore_points: vec![rp('f').parse().unwrap()],
                protected: None,
            }),
            forget,
        );
        // prune, as the runner reads it.
        let prune = json!({"retention": {"keep_last": 2, "keep_daily": 7}, "source": "web"});
        let spec = TaskSpec::from_parts(TaskKind::Prune, &prune).unwrap();
        let TaskSpec::Prune(p) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!((p.retention.keep_last, p.retention.keep_daily), (2, 7));
        assert_eq!(
            spec.params(),
            json!({"retention": {"keep_last": 2, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0}, "source": "web"})
        );
    }

    #[test]
    fn lease_time_fields_are_read_and_kept() {
        // What the server hands a node for a backup and a verify.
        let confine = json!({"node": "n1", "source_roots": ["/srv"], "restore_roots": [], "allow_block_devices": false, "data_dir": "/var/lib/arca", "datastores": ["/var/lib/arca/datastores/default"]});
        let backup = json!({"confine": confine, "source_restore_points": [rp('d')]});
        let spec = TaskSpec::from_parts(TaskKind::Backup, &backup).unwrap();
        let TaskSpec::Backup(b) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(b.confine.as_ref().unwrap().source_roots, ["/srv"]);
        assert_eq!(spec.params(), backup);
        let verify = json!({"restore_points": [rp('e')], "verify_max_age_days": 30});
        let spec = TaskSpec::from_parts(TaskKind::Verify, &verify).unwrap();
        assert_eq!(spec.params(), verify);
        let forget = json!({"restore_points": [rp('a'), rp('b')], "protected": [rp('b')]});
        let spec = TaskSpec::from_parts(TaskKind::Forget, &forget).unwrap();
        assert_eq!(spec.params(), forget);
    }

    #[test]
    fn bad_params_say_what_is_wrong() {
        assert!(TaskSpec::from_parts(TaskKind::Backup, &Value::Null).is_ok());
        let e = TaskSpec::from_parts(TaskKind::Restore, &json!({"target": "/t"})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parameters of a restore task: missing field `restore_point`"),
            "{e}"
        );
        let e = TaskSpec::from_parts(
            TaskKind::CommitExport,
            &json!({"export": 1, "restore_point": "abc"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a restore point id"), "{e}");
        let e = serde_json::from_value::<TaskSpec>(json!({"kind": "snapshot", "params": {}}))
            .unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn retention_converts_both_ways() {
        let r = Retention {
            keep_last: 1,
            keep_yearly: 9,
            ..Default::default()
        };
        let repo: arca_repo::prune::Retention = r.clone().into();
        assert_eq!(Retention::from(repo.clone()), r);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::to_value(&repo).unwrap()
        );
        assert!(serde_json::from_value::<Retention>(json!({"keep_forever": 1})).is_err());
    }
}
