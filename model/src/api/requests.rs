//! Request bodies of projects, nodes, datastores, sources, policies,
//! restores and exports (those of accounts: `super::accounts`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{AbsPath, Name};
use crate::ids::ProjectId;
use crate::kinds::{ExportProtocol, SourceKind};
use crate::task::Retention;

/// `POST /api/v1/projects`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
}

/// `POST /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
    /// Tasks it runs at once (default 2).
    #[serde(default = "two")]
    #[schema(minimum = 1, maximum = 64, default = 2)]
    pub max_tasks: i64,
}

fn two() -> i64 {
    2
}

/// `PATCH /api/v1/nodes/{id}`: what to change (`{}`: nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Replaces the source roots: absolute directories, not `/` (`[]`: no
    /// source may be added).
    #[serde(default)]
    #[schema(value_type = Option<Vec<AbsPath>>, max_items = 64)]
    pub source_roots: Option<Vec<String>>,
    /// Replaces the restore roots: absolute directories, not `/` (`[]`:
    /// back to `<data_dir>/restores`).
    #[serde(default)]
    #[schema(value_type = Option<Vec<AbsPath>>, max_items = 64)]
    pub restore_roots: Option<Vec<String>>,
    /// May restores write onto block devices?
    #[serde(default)]
    pub allow_block_devices: Option<bool>,
}

/// `PATCH /api/v1/datastores/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatastoreSettings {
    /// daily, weekly, every 6h, Sun 03:00, or never.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub gc_schedule: Option<String>,
    /// A schedule expression, or never.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub verify_schedule: Option<String>,
    /// Verify re-reads a restore point only when its last verification is
    /// older than this many days.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3650)]
    pub verify_max_age_days: Option<i64>,
}

/// `POST /api/v1/datastores/{id}/gc` (the body is optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcNow {
    /// Packs younger than this are left alone (default 3600).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 31622400)]
    pub grace_seconds: Option<u64>,
}

/// `POST /api/v1/datastores/{id}/verify` (the body is optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyNow {
    /// Read every restore point, not only those due.
    #[serde(default)]
    pub all: bool,
    /// Percentage of the packs to read (default 100).
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 100)]
    pub read_data_percent: Option<f64>,
}

/// `POST /api/v1/sources`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
    pub kind: SourceKind,
    /// Absolute path on the node, under its source roots.
    #[schema(pattern = "^/[^\\u0000]*$", max_length = 4096)]
    pub path: String,
    /// The node's name (default: the server's own node).
    #[serde(default)]
    pub node: Option<String>,
    /// Default: project 1.
    #[serde(default)]
    pub project: Option<ProjectId>,
    #[serde(default)]
    #[schema(value_type = Vec<Name>, max_items = 64)]
    pub tags: Vec<String>,
    /// A policy's name in the project (default: one whose rules match).
    #[serde(default)]
    pub policy: Option<String>,
    /// An image source fed by an agent (`arca agent run` on the host
    /// that has the disks): `path` is on that host, not on a node, and
    /// its backups (scheduled or asked for) are run by the agent.
    #[serde(default)]
    pub agent: bool,
}

/// `POST /api/v1/sources/{id}/backup` (the body is optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupNow {
    /// A datastore's name (default: the policy's, or the first).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub datastore: Option<String>,
}

/// `POST /api/v1/policies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
    /// every 15m, hourly, daily, Mon..Fri 22:00, *:0/15 (UTC).
    #[schema(max_length = 256)]
    pub schedule: String,
    /// Default: project 1.
    #[serde(default)]
    pub project: Option<ProjectId>,
    /// When backups may start, e.g. 22:00-06:00 (default: any time).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub window: Option<String>,
    #[serde(default)]
    pub retention: Retention,
    /// A datastore's name (default: the first).
    #[serde(default)]
    pub datastore: Option<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i64,
    /// Glob over source names that this policy takes.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub match_pattern: Option<String>,
    /// Sources with any of these tags take this policy.
    #[serde(default)]
    #[schema(value_type = Vec<Name>, max_items = 64)]
    pub match_tags: Vec<String>,
    /// Recovery point objective in seconds (1 to a year).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31622400)]
    pub rpo_s: Option<i64>,
}

/// `PATCH /api/v1/sources/{id}`: what to change (absent fields stay as
/// they are; `{}` changes nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceChange {
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: Option<String>,
    /// Absolute path on the node, under its source roots.
    #[serde(default)]
    #[schema(pattern = "^/[^\\u0000]*$", max_length = 4096)]
    pub path: Option<String>,
    /// Replaces the tags.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Name>>, max_items = 64)]
    pub tags: Option<Vec<String>>,
    /// Replaces the kind-specific settings (an object). The keys the
    /// server owns (`hypervisor_id`, `uuid`, `removed`, `agent`) are kept
    /// as they are; another value for one of them is refused.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// A libvirt source's pre/post commands (kept in its settings under
    /// `hooks`). Null: none. Absent: unchanged.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::records::present"
    )]
    #[schema(value_type = Option<super::VmHooks>, nullable)]
    pub hooks: Option<Option<super::VmHooks>>,
    /// A policy's name in the source's project: assigned explicitly. Null:
    /// back to the policies' match rules. Absent: unchanged.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::records::present"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub policy: Option<Option<String>>,
}

/// What becomes of a removed source's restore points
/// (`DELETE /api/v1/sources/{id}?restore_points=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestorePointsOnDelete {
    /// They stay listed, under the source's name, without a source id.
    #[default]
    Keep,
    /// They go too: forget tasks delete them from their datastores (409
    /// when one is protected; the source then stays).
    Remove,
}

/// The query of `DELETE /api/v1/sources/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteSourceQuery {
    #[serde(default)]
    pub restore_points: RestorePointsOnDelete,
}

/// `PATCH /api/v1/policies/{id}`: what to change (absent fields stay as
/// they are; null clears an optional one; `{}` changes nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    /// every 15m, hourly, daily, Mon..Fri 22:00, *:0/15 (UTC).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub schedule: Option<String>,
    /// When backups may start, e.g. 22:00-06:00 (null: any time).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::records::present"
    )]
    #[schema(value_type = Option<String>, nullable, max_length = 256)]
    pub window: Option<Option<String>>,
    /// Replaces the retention.
    #[serde(default)]
    pub retention: Option<Retention>,
    /// A datastore's name.
    #[serde(default)]
    pub datastore: Option<String>,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i64>,
    /// Glob over source names that this policy takes (null: none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::records::present"
    )]
    #[schema(value_type = Option<String>, nullable, max_length = 256)]
    pub match_pattern: Option<Option<String>>,
    /// Replaces the tags whose sources take this policy.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Name>>, max_items = 64)]
    pub match_tags: Option<Vec<String>>,
    /// Recovery point objective in seconds (null: none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::records::present"
    )]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 31622400)]
    pub rpo_s: Option<Option<i64>>,
    /// A disabled policy schedules no backups.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /api/v1/restore-points/{id}` (`{}` changes nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestorePointChange {
    /// Protected: retention never removes it, nor does removing its
    /// source, until it is unprotected.
    #[serde(default)]
    pub protected: Option<bool>,
    /// Free text, at most 1024 characters ("": none).
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub note: Option<String>,
}

/// `POST /api/v1/restore-points/{id}/restore`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Absolute path on the node, under its restore roots.
    #[schema(pattern = "^/[^\\u0000]*$", max_length = 4096)]
    pub target: String,
    /// A path inside the restore point (default: all of it).
    #[serde(default)]
    pub path: Option<String>,
    /// The node's name; it must own the datastore (the default).
    #[serde(default)]
    pub node: Option<String>,
    /// Write into a target that holds data.
    #[serde(default)]
    pub overwrite: bool,
    /// Recreate device nodes and keep setuid/setgid bits and file
    /// capabilities (admins of all projects only; without it they are
    /// skipped or cleared and the task log says so).
    #[serde(default)]
    pub special_files: bool,
}

/// The most address blocks an NFS export's `allow` list may have.
pub const MAX_ALLOW: usize = 32;

/// `POST /api/v1/exports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    /// The restore point: its id or a unique prefix of it (an image for
    /// NBD and iSCSI; any kind for NFS).
    #[schema(pattern = "^[0-9a-f]{1,64}$")]
    pub restore_point: String,
    #[serde(default)]
    pub protocol: ExportProtocol,
    /// Writes go to an overlay (needs the operator or admin role).
    #[serde(default)]
    pub writable: bool,
    /// 90s, 30m, 2h (default), 7d; at most 30d.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{1,7}[smhd]?$")]
    pub ttl: Option<String>,
    /// NFS only: the address blocks (`10.0.0.0/24`, `::1`, at most 32)
    /// whose clients may mount the export. Default: the caller's address
    /// as the API sees it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 32)]
    pub allow: Vec<String>,
}

/// `PATCH /api/v1/exports/{id}`: the export now ends `ttl` from now
/// (`{}`: unchanged, as every PATCH).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendExport {
    /// 90s, 30m, 2h, 7d; at most 30d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{1,7}[smhd]?$")]
    pub ttl: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Bodies the CLI and the tests send today are taken; unknown fields
    /// are not.
    #[test]
    fn today_s_bodies() {
        let e: NewExport = serde_json::from_value(json!({"restore_point": "ab12"})).unwrap();
        assert_eq!(
            (e.protocol, e.writable, e.ttl, e.allow.len()),
            (ExportProtocol::Nbd, false, None, 0)
        );
        let e: NewExport = serde_json::from_value(
            json!({"restore_point": "ab12", "protocol": "nfs", "allow": ["10.0.0.0/8"]}),
        )
        .unwrap();
        assert_eq!(
            (e.protocol, e.allow),
            (ExportProtocol::Nfs, vec!["10.0.0.0/8".to_string()])
        );
        let n: NewNode = serde_json::from_value(json!({"name": "n2"})).unwrap();
        assert_eq!(n.max_tasks, 2);
        let s: NewSource = serde_json::from_value(
            json!({"name": "web", "kind": "files", "path": "/srv/web", "tags": ["a"]}),
        )
        .unwrap();
        assert_eq!(s.kind, SourceKind::Files);
        let p: NewPolicy = serde_json::from_value(
            json!({"name": "gold", "schedule": "daily", "retention": {"keep_last": 3}}),
        )
        .unwrap();
        assert_eq!(p.retention.keep_last, 3);
        assert!(serde_json::from_value::<NewProject>(json!({"name": "p", "x": 1})).is_err());
        assert!(serde_json::from_value::<NewSource>(
            json!({"name": "web", "kind": "vm", "path": "/srv/web"})
        )
        .is_err());
        let b: BackupNow = serde_json::from_value(json!({})).unwrap();
        assert_eq!(b, BackupNow::default());
    }

    /// A PATCH body tells an absent field (unchanged) from a null one
    /// (cleared); unknown fields are refused.
    #[test]
    fn patch_bodies() {
        let p: PolicyChange =
            serde_json::from_value(json!({"window": null, "priority": 5})).unwrap();
        assert_eq!(p.window, Some(None));
        assert_eq!(p.match_pattern, None);
        assert_eq!(p.priority, Some(5));
        let s: SourceChange = serde_json::from_value(json!({"policy": "gold"})).unwrap();
        assert_eq!(s.policy, Some(Some("gold".into())));
        let s: SourceChange = serde_json::from_value(json!({"policy": null})).unwrap();
        assert_eq!(s.policy, Some(None));
        assert!(serde_json::from_value::<SourceChange>(json!({"kind": "image"})).is_err());
        assert!(serde_json::from_value::<RestorePointChange>(json!({"protected": "yes"})).is_err());
        let q: DeleteSourceQuery = serde_json::from_value(json!({})).unwrap();
        assert_eq!(q.restore_points, RestorePointsOnDelete::Keep);
    }
}
