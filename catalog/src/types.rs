//! The catalog's records: one struct per table row, the kinds and states
//! they carry, and the inputs of the calls that make them.

use serde::Serialize;

use crate::{TokenScope, VerifyEffects};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Admin,
    Operator,
    RestoreOnly,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Operator,
        Role::RestoreOnly,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::RestoreOnly => "restore-only",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A role in one project, or in every project (`project_id: None`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RoleBinding {
    pub role: Role,
    pub project_id: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub roles: Vec<RoleBinding>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Token {
    pub id: i64,
    pub user_id: Option<i64>,
    pub node_id: Option<i64>,
    pub name: String,
    pub kind: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The token whose request minted this one; `None` for roots (sign-in
    /// sessions, node tokens, tokens minted by a session).
    pub parent_token_id: Option<i64>,
    pub scope: TokenScope,
    /// The projects the token is limited to; `None`: all of the user's.
    pub projects: Option<Vec<i64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub embedded: bool,
    pub max_tasks: i64,
    pub version: String,
    pub last_heartbeat: Option<i64>,
    pub created_at: i64,
    /// Absolute paths under which this node's sources may live. Empty:
    /// no source may be added on the node until an admin sets one.
    pub source_roots: Vec<String>,
    /// Absolute paths under which restores may write. Empty: only
    /// `<data_dir>/restores`.
    pub restore_roots: Vec<String>,
    /// May restores write onto block devices (image restores in place)?
    pub allow_block_devices: bool,
    /// The node's data directory, as it reported it when it registered.
    pub data_dir: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Datastore {
    pub id: i64,
    pub name: String,
    pub node_id: i64,
    pub path: String,
    pub bytes_used: i64,
    pub bytes_logical: i64,
    pub created_at: i64,
    /// When gc runs (a schedule expression; `daily` by default).
    pub gc_schedule: String,
    /// When verify runs (`weekly` by default).
    pub verify_schedule: String,
    /// Verify re-reads a restore point only when its last verification is
    /// older than this many days.
    pub verify_max_age_days: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub path: String,
    pub node_id: i64,
    pub project_id: i64,
    pub tags: Vec<String>,
    pub settings: serde_json::Value,
    pub policy_id: Option<i64>,
    pub assigned_by: String,
    pub created_at: i64,
}

/// A policy's keep rules: the datastore's own type.
pub use arca_repo::prune::Retention;

#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    pub schedule: String,
    pub backup_window: Option<String>,
    pub retention: Retention,
    pub datastore_id: i64,
    pub priority: i64,
    pub match_pattern: Option<String>,
    pub match_tags: Vec<String>,
    pub rpo_seconds: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<TaskState> {
        [
            TaskState::Queued,
            TaskState::Running,
            TaskState::Succeeded,
            TaskState::Failed,
            TaskState::Cancelled,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub id: i64,
    pub kind: String,
    pub state: TaskState,
    pub project_id: i64,
    pub source_id: Option<i64>,
    pub policy_id: Option<i64>,
    pub datastore_id: Option<i64>,
    pub node_id: Option<i64>,
    pub params: serde_json::Value,
    pub priority: i64,
    pub slot: Option<i64>,
    pub attempt: i64,
    pub max_attempts: i64,
    pub not_before: i64,
    pub lease_until: Option<i64>,
    pub cancel_requested: bool,
    pub bytes_done: i64,
    pub bytes_total: i64,
    /// Percent done, when the total is known.
    pub progress: Option<f64>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// What a finished task changed in its datastore (recorded together with
/// its result by [`Catalog::finish_task_with`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskEffects {
    /// A backup's committed snapshot.
    pub restore_point: Option<RestorePoint>,
    /// Snapshots that retention removed.
    pub removed_restore_points: Vec<String>,
    /// (datastore id, bytes on disk) after the task.
    pub datastore_bytes_used: Option<(i64, i64)>,
    /// What a verify of the task's datastore found. Recorded whether the
    /// task succeeded or not (a verify that finds damage fails).
    pub verify: Option<VerifyEffects>,
}

/// What to queue.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    pub kind: String,
    pub project_id: i64,
    pub source_id: Option<i64>,
    pub policy_id: Option<i64>,
    pub datastore_id: Option<i64>,
    pub node_id: Option<i64>,
    pub params: serde_json::Value,
    pub priority: i64,
    pub slot: Option<i64>,
    pub max_attempts: i64,
    pub not_before: i64,
    pub created_by: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskLog {
    pub seq: i64,
    pub time: i64,
    pub level: String,
    pub message: String,
}

/// What the last verify that read a restore point found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestorePointState {
    /// Not known to be damaged.
    #[default]
    Ok,
    /// Verify found chunks of it missing or corrupt (see `damage`).
    Damaged,
}

impl RestorePointState {
    pub fn as_str(self) -> &'static str {
        match self {
            RestorePointState::Ok => "ok",
            RestorePointState::Damaged => "damaged",
        }
    }

    pub fn parse(s: &str) -> Option<RestorePointState> {
        match s {
            "ok" => Some(RestorePointState::Ok),
            "damaged" => Some(RestorePointState::Damaged),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RestorePoint {
    pub id: String,
    pub datastore_id: i64,
    pub source_id: Option<i64>,
    pub source_name: String,
    pub project_id: i64,
    pub kind: String,
    pub time: i64,
    pub bytes_total: i64,
    pub bytes_added: i64,
    pub files: i64,
    pub hostname: String,
    pub task_id: Option<i64>,
    pub created_at: i64,
    pub state: RestorePointState,
    /// What verify found, when damaged.
    pub damage: Option<String>,
    /// When a verify last read all of it.
    pub verified_at: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct RestorePointFilter {
    pub source: Option<String>,
    pub project_ids: Option<Vec<i64>>,
    pub kind: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub remote: String,
    pub result: String,
    pub detail: String,
}
