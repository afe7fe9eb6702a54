//! The reports (`GET /api/v1/reports/...`): protection (RPO compliance per
//! source and policy), storage (datastore use over time) and tasks
//! (durations and throughput), over a period `[from, to]` (Unix seconds;
//! by default the last 7 days). Each is JSON, or CSV with `format=csv`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{DatastoreId, NodeId, PolicyId, ProjectId, RestorePointId, SourceId, TaskId};
use crate::kinds::{TaskKind, TaskState};

/// How a report is sent: `json` (the default) or `csv` (text/csv, a
/// header row, RFC 4180 quoting; cells starting with `=`, `+`, `-` or `@`
/// get a leading `'`, so that spreadsheets do not run them as formulas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
}

/// Query of `GET /api/v1/reports/protection`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionQuery {
    #[serde(default)]
    pub from: Option<i64>,
    #[serde(default)]
    pub to: Option<i64>,
    /// A project, by id or name (404 if unknown or not readable).
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub format: Option<ReportFormat>,
}

/// Query of `GET /api/v1/reports/storage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageQuery {
    #[serde(default)]
    pub from: Option<i64>,
    #[serde(default)]
    pub to: Option<i64>,
    /// A datastore, by id or name (404 if unknown).
    #[serde(default)]
    pub datastore: Option<String>,
    #[serde(default)]
    pub format: Option<ReportFormat>,
}

/// Query of `GET /api/v1/reports/tasks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReportQuery {
    #[serde(default)]
    pub from: Option<i64>,
    #[serde(default)]
    pub to: Option<i64>,
    #[serde(default)]
    pub kind: Option<TaskKind>,
    /// A source, by id or name (404 if no readable source has it).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub format: Option<ReportFormat>,
}

/// Where a source stands now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionStatus {
    /// Its policy has an RPO and its newest good restore point is older.
    RpoMissed,
    /// It has a policy but no good restore point.
    NeverBackedUp,
    /// No policy protects it.
    NoPolicy,
    Ok,
}

impl ProtectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionStatus::RpoMissed => "rpo_missed",
            ProtectionStatus::NeverBackedUp => "never_backed_up",
            ProtectionStatus::NoPolicy => "no_policy",
            ProtectionStatus::Ok => "ok",
        }
    }
}

impl std::fmt::Display for ProtectionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy, by id and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRef {
    pub id: PolicyId,
    pub name: String,
}

/// A restore point, by id and time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestorePointRef {
    pub id: RestorePointId,
    pub time: i64,
}

/// One source of the protection report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProtectionRow {
    pub source_id: SourceId,
    pub source: String,
    pub project_id: ProjectId,
    pub project: String,
    /// The policy the source is assigned to (explicitly or by its rules).
    pub policy: Option<PolicyRef>,
    /// The policy's RPO; null without one, or when the policy is disabled.
    pub rpo_seconds: Option<i64>,
    /// Its newest restore point that is not damaged.
    pub last_good: Option<RestorePointRef>,
    /// When the policy's next backup is due (its `next_run`).
    pub next_run: Option<i64>,
    pub status: ProtectionStatus,
    /// The fraction (0 to 1) of the period, from the source's creation on
    /// and up to now, during which its newest good backup was not older
    /// than the RPO; null without an RPO.
    pub compliance: Option<f64>,
}

/// One policy of the protection report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyCompliance {
    pub policy_id: PolicyId,
    pub policy: String,
    pub project_id: ProjectId,
    pub project: String,
    pub rpo_seconds: Option<i64>,
    /// Sources assigned to it.
    pub sources: u64,
    /// Of those, the ones whose status is not `ok`.
    pub problems: u64,
    /// The mean of its sources' compliance; null when none has one.
    pub compliance: Option<f64>,
}

/// `GET /api/v1/reports/protection`: problems first (rpo_missed,
/// never_backed_up, no_policy, then ok; lowest compliance first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProtectionReport {
    pub from: i64,
    pub to: i64,
    pub sources: Vec<ProtectionRow>,
    /// Lowest compliance first.
    pub policies: Vec<PolicyCompliance>,
}

/// A datastore's numbers at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StorageSample {
    pub time: i64,
    /// Bytes on disk.
    pub bytes_used: i64,
    /// Bytes of all its restore points as backed up.
    pub bytes_logical: i64,
    /// bytes_logical / bytes_used: what deduplication and compression
    /// save; null when nothing is stored.
    pub ratio: Option<f64>,
}

/// One datastore of the storage report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatastoreStorage {
    pub datastore_id: DatastoreId,
    pub datastore: String,
    /// Now.
    pub bytes_used: i64,
    pub bytes_logical: i64,
    pub ratio: Option<f64>,
    /// The samples of the period, oldest first (one per five minutes at
    /// most; hourly after two days, daily after 30).
    pub samples: Vec<StorageSample>,
}

/// `GET /api/v1/reports/storage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StorageReport {
    pub from: i64,
    pub to: i64,
    pub datastores: Vec<DatastoreStorage>,
}

/// One finished task of the tasks report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskReportRow {
    pub id: TaskId,
    pub kind: TaskKind,
    pub state: TaskState,
    pub source_id: Option<SourceId>,
    /// Its source's name (null without one, or once removed).
    pub source: Option<String>,
    pub node_id: Option<NodeId>,
    pub node: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
    /// finished_at - started_at (null when it never started).
    pub duration_s: Option<i64>,
    pub bytes_done: i64,
    /// bytes_done / duration_s (null for a task that took no time).
    pub throughput: Option<f64>,
}

/// The tasks of one kind in the tasks report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskKindSummary {
    pub kind: TaskKind,
    pub count: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Of the succeeded tasks (nearest rank).
    pub median_duration_s: Option<i64>,
    pub p95_duration_s: Option<i64>,
    /// The mean of the succeeded tasks' throughputs, bytes per second.
    pub mean_throughput: Option<f64>,
}

/// `GET /api/v1/reports/tasks`: the tasks that ended in the period, the
/// last to end first, and a summary per kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskReport {
    pub from: i64,
    pub to: i64,
    pub tasks: Vec<TaskReportRow>,
    pub kinds: Vec<TaskKindSummary>,
}
