//! The catalog's records: one struct per table row, the kinds and states
//! they carry, and the inputs of the calls that make them.

pub use arca_model::api::Hypervisor;
pub use arca_model::{
    AssignedBy, AuditId, AuditResult, BadParams, DatastoreId, ExportId, ExportOnStop,
    ExportProtocol, ExportState, HypervisorId, LogLevel, NodeId, NodeState, PolicyId, ProjectId,
    RestorePointId, RestorePointState, Role, SourceId, SourceKind, TaskId, TaskKind, TaskSpec,
    TaskState, TokenId, TokenKind, TokenScope, UserId,
};

use crate::VerifyEffects;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
}

/// A role in one project, or in every project (`project_id: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleBinding {
    pub role: Role,
    pub project_id: Option<ProjectId>,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub password_hash: String,
    pub disabled: bool,
    pub roles: Vec<RoleBinding>,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub id: TokenId,
    pub user_id: Option<UserId>,
    pub node_id: Option<NodeId>,
    pub name: String,
    pub kind: TokenKind,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The token whose request minted this one; `None` for roots (sign-in
    /// sessions, node tokens, tokens minted by a session).
    pub parent_token_id: Option<TokenId>,
    pub scope: TokenScope,
    /// The projects the token is limited to; `None`: all of the user's.
    pub projects: Option<Vec<ProjectId>>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub state: NodeState,
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

#[derive(Clone, Debug)]
pub struct Datastore {
    pub id: DatastoreId,
    pub name: String,
    pub node_id: NodeId,
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

#[derive(Clone, Debug)]
pub struct Source {
    pub id: SourceId,
    pub name: String,
    pub kind: SourceKind,
    pub path: String,
    pub node_id: NodeId,
    pub project_id: ProjectId,
    pub tags: Vec<String>,
    pub settings: serde_json::Value,
    pub policy_id: Option<PolicyId>,
    pub assigned_by: AssignedBy,
    pub created_at: i64,
}

/// A policy's keep rules: the datastore's own type.
pub use arca_repo::prune::Retention;

#[derive(Clone, Debug)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub project_id: ProjectId,
    pub schedule: String,
    pub backup_window: Option<String>,
    pub retention: Retention,
    pub datastore_id: DatastoreId,
    pub priority: i64,
    pub match_pattern: Option<String>,
    pub match_tags: Vec<String>,
    pub rpo_seconds: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub state: TaskState,
    pub project_id: ProjectId,
    pub source_id: Option<SourceId>,
    pub policy_id: Option<PolicyId>,
    pub datastore_id: Option<DatastoreId>,
    pub node_id: Option<NodeId>,
    /// The parameters as stored: rows written by older versions stay
    /// loadable even if they no longer parse (see [`Task::spec`]).
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

impl Task {
    /// The kind and parameters, typed.
    pub fn spec(&self) -> Result<TaskSpec, BadParams> {
        TaskSpec::from_parts(self.kind, &self.params)
    }
}

/// What a finished task changed in its datastore (recorded together with
/// its result by [`Catalog::finish_task_with`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskEffects {
    /// A backup's committed snapshot.
    pub restore_point: Option<RestorePoint>,
    /// Snapshots that retention removed.
    pub removed_restore_points: Vec<RestorePointId>,
    /// (datastore id, bytes on disk) after the task.
    pub datastore_bytes_used: Option<(DatastoreId, i64)>,
    /// What a verify of the task's datastore found. Recorded whether the
    /// task succeeded or not (a verify that finds damage fails).
    pub verify: Option<VerifyEffects>,
}

/// What to queue: a task's kind and parameters are a [`TaskSpec`].
#[derive(Clone, Debug)]
pub struct NewTask {
    pub spec: TaskSpec,
    pub project_id: ProjectId,
    pub source_id: Option<SourceId>,
    pub policy_id: Option<PolicyId>,
    pub datastore_id: Option<DatastoreId>,
    pub node_id: Option<NodeId>,
    pub priority: i64,
    pub slot: Option<i64>,
    pub max_attempts: i64,
    pub not_before: i64,
    pub created_by: String,
}

/// A backup with no parameters in project 1, to be filled in with
/// `..Default::default()`.
impl Default for NewTask {
    fn default() -> Self {
        NewTask {
            spec: TaskSpec::Backup(Default::default()),
            project_id: ProjectId(1),
            source_id: None,
            policy_id: None,
            datastore_id: None,
            node_id: None,
            priority: 0,
            slot: None,
            max_attempts: 0,
            not_before: 0,
            created_by: String::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TaskLog {
    pub seq: i64,
    pub time: i64,
    pub level: LogLevel,
    pub message: String,
}

/// A restore point: a snapshot in a datastore, as the catalog lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorePoint {
    pub id: RestorePointId,
    pub datastore_id: DatastoreId,
    pub source_id: Option<SourceId>,
    pub source_name: String,
    pub project_id: ProjectId,
    pub kind: SourceKind,
    /// When the snapshot was taken, as its manifest says (seconds; see
    /// [`arca_model::api::RestorePoint::time_from_ns`]), wherever the
    /// catalog learns of it: the backup, a commit, an import.
    pub time: i64,
    pub bytes_total: i64,
    pub bytes_added: i64,
    pub files: i64,
    pub hostname: String,
    pub task_id: Option<TaskId>,
    pub created_at: i64,
    pub state: RestorePointState,
    /// What verify found, when damaged.
    pub damage: Option<String>,
    /// When a verify last read all of it.
    pub verified_at: Option<i64>,
    /// Never removed by retention (nor with its source) until unprotected.
    pub protected: bool,
    /// Free text about it (why it is protected, say).
    pub note: Option<String>,
}

impl RestorePoint {
    /// `time` from a snapshot manifest's `time_ns`: whole seconds, rounded
    /// down (every place that lists a restore point uses this).
    pub fn time_from_ns(time_ns: i64) -> i64 {
        arca_model::api::RestorePoint::time_from_ns(time_ns)
    }
}

/// An `ok` files restore point of project 1 with zero everywhere, to be
/// filled in with `..Default::default()`.
impl Default for RestorePoint {
    fn default() -> Self {
        RestorePoint {
            id: RestorePointId::default(),
            datastore_id: DatastoreId(0),
            source_id: None,
            source_name: String::new(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time: 0,
            bytes_total: 0,
            bytes_added: 0,
            files: 0,
            hostname: String::new(),
            task_id: None,
            created_at: 0,
            state: RestorePointState::Ok,
            damage: None,
            verified_at: None,
            protected: false,
            note: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RestorePointFilter {
    pub source: Option<String>,
    pub project_ids: Option<Vec<ProjectId>>,
    pub kind: Option<SourceKind>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub id: AuditId,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub remote: String,
    pub result: AuditResult,
    pub detail: String,
}
