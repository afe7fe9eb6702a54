//! The Arca catalog: everything the control plane knows, in one SQLite
//! database (WAL mode, versioned migrations in [`schema`]).
//!
//! The catalog is an index of the datastores plus the control plane's own
//! state (users, policies, tasks, audit). Restore points can always be
//! re-imported from the datastores, which describe themselves.
//!
//! One connection behind a mutex serves the whole process: SQLite
//! serialises writers anyway, every query here is short, and WAL lets the
//! `arca` CLI read the same file at the same time. Times are Unix seconds
//! (UTC) throughout.

mod accounts;
mod exports;
mod leases;
mod maintenance;
mod nodes;
pub mod schema;
mod tokens;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("catalog at {path} has schema version {found}, newer than this arca ({supported}); upgrade arca")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The object is not in a state that allows this (HTTP 409).
    #[error("{0}")]
    State(String),
    /// The caller may not do this to the object (a node reporting on
    /// another node's task, or beyond its task).
    #[error("{0}")]
    Denied(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Map a UNIQUE violation to `Conflict(what)`.
fn unique(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
    let what = what.into();
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Conflict(what)
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Error::Invalid(format!("{what}: refers to something that does not exist"))
        }
        _ => Error::Sql(e),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---- records ----

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

// ---- the catalog ----

pub struct Catalog {
    conn: Mutex<Connection>,
    /// Bumped on every change of exports (see [`Catalog::wait_exports`]).
    exports_gen: (Mutex<u64>, std::sync::Condvar),
}

pub use accounts::SignedOut;
pub use exports::{Export, NewExport, LIVE as LIVE_EXPORT_STATES};
pub use leases::{Lease, MAKES_RESTORE_POINTS};
pub use maintenance::{VerifyEffects, MAINTENANCE_KINDS};
pub use nodes::NodeConfinement;
pub use tokens::{
    NewApiToken, Settings, TokenScope, DEFAULT_TOKEN_MAX_LIFETIME_S, TOKEN_MAX_LIFETIME_RANGE,
};

fn json_vec(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

fn json_val(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

const TASK_COLS: &str = "id, kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, attempt, max_attempts, not_before, lease_until, cancel_requested, bytes_done, bytes_total, result, error, created_by, created_at, started_at, finished_at";

fn task_row(r: &Row) -> rusqlite::Result<Task> {
    let state: String = r.get(2)?;
    let bytes_done: i64 = r.get(16)?;
    let bytes_total: i64 = r.get(17)?;
    Ok(Task {
        id: r.get(0)?,
        kind: r.get(1)?,
        state: TaskState::parse(&state).unwrap_or(TaskState::Failed),
        project_id: r.get(3)?,
        source_id: r.get(4)?,
        policy_id: r.get(5)?,
        datastore_id: r.get(6)?,
        node_id: r.get(7)?,
        params: json_val(r.get(8)?),
        priority: r.get(9)?,
        slot: r.get(10)?,
        attempt: r.get(11)?,
        max_attempts: r.get(12)?,
        not_before: r.get(13)?,
        lease_until: r.get(14)?,
        cancel_requested: r.get(15)?,
        bytes_done,
        bytes_total,
        progress: (bytes_total > 0)
            .then(|| (bytes_done as f64 * 100.0 / bytes_total as f64).min(100.0)),
        result: r.get::<_, Option<String>>(18)?.map(json_val),
        error: r.get(19)?,
        created_by: r.get(20)?,
        created_at: r.get(21)?,
        started_at: r.get(22)?,
        finished_at: r.get(23)?,
    })
}

const SOURCE_COLS: &str =
    "id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at";

fn source_row(r: &Row) -> rusqlite::Result<Source> {
    Ok(Source {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        path: r.get(3)?,
        node_id: r.get(4)?,
        project_id: r.get(5)?,
        tags: json_vec(r.get(6)?),
        settings: json_val(r.get(7)?),
        policy_id: r.get(8)?,
        assigned_by: r.get(9)?,
        created_at: r.get(10)?,
    })
}

const POLICY_COLS: &str = "id, name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, enabled, created_at";

fn policy_row(r: &Row) -> rusqlite::Result<Policy> {
    Ok(Policy {
        id: r.get(0)?,
        name: r.get(1)?,
        project_id: r.get(2)?,
        schedule: r.get(3)?,
        backup_window: r.get(4)?,
        retention: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        datastore_id: r.get(6)?,
        priority: r.get(7)?,
        match_pattern: r.get(8)?,
        match_tags: json_vec(r.get(9)?),
        rpo_seconds: r.get(10)?,
        enabled: r.get(11)?,
        created_at: r.get(12)?,
    })
}

const RP_COLS: &str = "id, datastore_id, source_id, source_name, project_id, kind, time, bytes_total, bytes_added, files, hostname, task_id, created_at, state, damage, verified_at";

fn rp_row(r: &Row) -> rusqlite::Result<RestorePoint> {
    Ok(RestorePoint {
        id: r.get(0)?,
        datastore_id: r.get(1)?,
        source_id: r.get(2)?,
        source_name: r.get(3)?,
        project_id: r.get(4)?,
        kind: r.get(5)?,
        time: r.get(6)?,
        bytes_total: r.get(7)?,
        bytes_added: r.get(8)?,
        files: r.get(9)?,
        hostname: r.get(10)?,
        task_id: r.get(11)?,
        created_at: r.get(12)?,
        state: RestorePointState::parse(&r.get::<_, String>(13)?).unwrap_or_default(),
        damage: r.get(14)?,
        verified_at: r.get(15)?,
    })
}

fn node_row(r: &Row) -> rusqlite::Result<Node> {
    Ok(Node {
        id: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        embedded: r.get(3)?,
        max_tasks: r.get(4)?,
        version: r.get(5)?,
        last_heartbeat: r.get(6)?,
        created_at: r.get(7)?,
        source_roots: json_vec(r.get(8)?),
        restore_roots: json_vec(r.get(9)?),
        allow_block_devices: r.get(10)?,
        data_dir: r.get(11)?,
    })
}

fn datastore_row(r: &Row) -> rusqlite::Result<Datastore> {
    Ok(Datastore {
        id: r.get(0)?,
        name: r.get(1)?,
        node_id: r.get(2)?,
        path: r.get(3)?,
        bytes_used: r.get(4)?,
        bytes_logical: r.get(5)?,
        created_at: r.get(6)?,
        gc_schedule: r.get(7)?,
        verify_schedule: r.get(8)?,
        verify_max_age_days: r.get(9)?,
    })
}

impl Catalog {
    /// Open (creating if needed) the catalog at `path` and migrate it.
    pub fn open(path: &Path) -> Result<Catalog> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::setup(conn, &path.display().to_string())
    }

    pub fn open_in_memory() -> Result<Catalog> {
        Self::setup(Connection::open_in_memory()?, ":memory:")
    }

    fn setup(mut conn: Connection, name: &str) -> Result<Catalog> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = schema::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(Error::TooNew {
                path: name.to_string(),
                found: version,
                supported,
            });
        }
        if version < supported {
            // Foreign keys off while migrating (the pragma is a no-op inside
            // a transaction): a table rebuild drops the old table, and
            // DROP TABLE would run the ON DELETE actions of the tables that
            // refer to it. Each migration checks them before it commits.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            let r = Self::migrate(&mut conn, version);
            conn.pragma_update(None, "foreign_keys", "ON")?;
            r?;
        }
        Ok(Catalog {
            conn: Mutex::new(conn),
            exports_gen: Default::default(),
        })
    }

    /// Apply the migrations after `version`, each in its own transaction
    /// with its version bump. Runs with foreign keys off; a migration that
    /// leaves a row referring to nothing is rolled back.
    fn migrate(conn: &mut Connection, version: i64) -> Result<()> {
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            let broken: Vec<String> = {
                let mut st = tx.prepare("PRAGMA foreign_key_check")?;
                let rows = st.query_map([], |r| {
                    Ok(format!(
                        "{} row {} -> {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                        r.get::<_, String>(2)?
                    ))
                })?;
                rows.take(10).collect::<rusqlite::Result<_>>()?
            };
            if !broken.is_empty() {
                // Dropping the transaction rolls it back.
                return Err(Error::Invalid(format!(
                    "catalog migration {} would leave rows referring to nothing: {}",
                    i + 1,
                    broken.join(", ")
                )));
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .db()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- projects ----

    pub fn projects(&self) -> Result<Vec<Project>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT id, name FROM projects ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(Project {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn project_by_name(&self, name: &str) -> Result<Project> {
        self.db()
            .query_row(
                "SELECT id, name FROM projects WHERE name = ?1",
                [name],
                |r| {
                    Ok(Project {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("project {name:?}")))
    }

    pub fn add_project(&self, name: &str) -> Result<Project> {
        let db = self.db();
        db.execute(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2)",
            params![name, now()],
        )
        .map_err(unique(format!("project {name:?}")))?;
        Ok(Project {
            id: db.last_insert_rowid(),
            name: name.to_string(),
        })
    }

    // ---- users, roles, tokens ----

    pub fn add_user(&self, name: &str, password_hash: &str, roles: &[RoleBinding]) -> Result<User> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3)",
            params![name, password_hash, now()],
        )
        .map_err(unique(format!("user {name:?}")))?;
        let id = tx.last_insert_rowid();
        for b in roles {
            tx.execute(
                "INSERT INTO role_bindings (user_id, role, project_id) VALUES (?1, ?2, ?3)",
                params![id, b.role.as_str(), b.project_id],
            )
            .map_err(unique("role binding"))?;
        }
        tx.commit()?;
        drop(db);
        self.user(id)
    }

    fn roles_of(db: &Connection, user_id: i64) -> Result<Vec<RoleBinding>> {
        let mut st = db.prepare_cached(
            "SELECT role, project_id FROM role_bindings WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([user_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (role, project_id) = row?;
            if let Some(role) = Role::parse(&role) {
                out.push(RoleBinding { role, project_id });
            }
        }
        Ok(out)
    }

    fn user_where(&self, clause: &str, arg: &dyn rusqlite::ToSql) -> Result<Option<User>> {
        let db = self.db();
        let u = db
            .query_row(
                &format!(
                    "SELECT id, name, password_hash, disabled, created_at FROM users WHERE {clause}"
                ),
                [arg],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                        disabled: r.get(3)?,
                        roles: Vec::new(),
                        created_at: r.get(4)?,
                    })
                },
            )
            .optional()?;
        match u {
            Some(mut u) => {
                u.roles = Self::roles_of(&db, u.id)?;
                Ok(Some(u))
            }
            None => Ok(None),
        }
    }

    pub fn user(&self, id: i64) -> Result<User> {
        self.user_where("id = ?1", &id)?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.user_where("name = ?1", &name)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let ids: Vec<i64> = {
            let db = self.db();
            let mut st = db.prepare_cached("SELECT id FROM users ORDER BY id")?;
            let ids = st.query_map([], |r| r.get(0))?;
            ids.collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter().map(|id| self.user(id)).collect()
    }

    pub fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<()> {
        let n = self.db().execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![id, disabled],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    pub fn set_password_hash(&self, id: i64, hash: &str) -> Result<()> {
        let n = self.db().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    pub fn delete_user(&self, id: i64) -> Result<()> {
        let n = self.db().execute("DELETE FROM users WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    /// Store a token; `secret_sha256` is the SHA-256 of the secret.
    #[allow(clippy::too_many_arguments)]
    pub fn add_token(
        &self,
        user_id: Option<i64>,
        node_id: Option<i64>,
        name: &str,
        kind: &str,
        secret_sha256: &[u8],
        expires_at: Option<i64>,
    ) -> Result<Token> {
        let db = self.db();
        db.execute(
            "INSERT INTO tokens (user_id, node_id, name, kind, secret_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![user_id, node_id, name, kind, secret_sha256, now(), expires_at],
        )
        .map_err(unique("token"))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.token(id)
    }

    const TOKEN_COLS: &'static str =
        "id, user_id, node_id, name, kind, created_at, expires_at, revoked_at, last_used_at, parent_token_id, scope, projects";

    fn token_row(r: &Row) -> rusqlite::Result<Token> {
        Ok(Token {
            id: r.get(0)?,
            user_id: r.get(1)?,
            node_id: r.get(2)?,
            name: r.get(3)?,
            kind: r.get(4)?,
            created_at: r.get(5)?,
            expires_at: r.get(6)?,
            revoked_at: r.get(7)?,
            last_used_at: r.get(8)?,
            parent_token_id: r.get(9)?,
            scope: tokens::scope_column(r, 10)?,
            projects: tokens::projects_column(r, 11)?,
        })
    }

    pub fn token(&self, id: i64) -> Result<Token> {
        self.db()
            .query_row(
                &format!("SELECT {} FROM tokens WHERE id = ?1", Self::TOKEN_COLS),
                [id],
                Self::token_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("token {id}")))
    }

    /// The token with this secret hash, if it exists (valid or not).
    pub fn token_by_secret(&self, secret_sha256: &[u8]) -> Result<Option<Token>> {
        Ok(self
            .db()
            .query_row(
                &format!(
                    "SELECT {} FROM tokens WHERE secret_sha256 = ?1",
                    Self::TOKEN_COLS
                ),
                [secret_sha256],
                Self::token_row,
            )
            .optional()?)
    }

    /// The token with this secret hash if it can be used now; otherwise
    /// why not (unknown, revoked, expired), for the caller's 401.
    pub fn live_token(
        &self,
        secret_sha256: &[u8],
    ) -> Result<std::result::Result<Token, &'static str>> {
        let Some(t) = self.token_by_secret(secret_sha256)? else {
            return Ok(Err("unknown token"));
        };
        Ok(match self.token_problem(&t)? {
            Some(why) => Err(why),
            None => Ok(t),
        })
    }

    pub fn tokens_of_user(&self, user_id: i64) -> Result<Vec<Token>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM tokens WHERE user_id = ?1 AND kind = 'api' ORDER BY id",
            Self::TOKEN_COLS
        ))?;
        let rows = st.query_map([user_id], Self::token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn touch_token(&self, id: i64) -> Result<()> {
        self.db().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Revoke a token and every token minted from it, at any depth.
    /// Returns how many descendants were revoked with it.
    pub fn revoke_token(&self, id: i64) -> Result<usize> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        let n = tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, t],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("active token {id}")));
        }
        let descendants = tokens::revoke_descendants(&tx, &[id], t)?;
        tx.commit()?;
        Ok(descendants)
    }

    // ---- nodes and datastores ----

    pub fn upsert_node(
        &self,
        name: &str,
        embedded: bool,
        max_tasks: i64,
        version: &str,
    ) -> Result<Node> {
        let db = self.db();
        db.execute(
            "INSERT INTO nodes (name, state, embedded, max_tasks, version, last_heartbeat, created_at)
             VALUES (?1, 'online', ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (name) DO UPDATE SET state = 'online', embedded = ?2, max_tasks = ?3, version = ?4, last_heartbeat = ?5",
            params![name, embedded, max_tasks, version, now()],
        )?;
        drop(db);
        self.node_by_name(name)?
            .ok_or_else(|| Error::NotFound(format!("node {name:?}")))
    }

    /// Create a remote node's record (offline until it registers).
    pub fn add_node(&self, name: &str, max_tasks: i64) -> Result<Node> {
        let db = self.db();
        db.execute(
            "INSERT INTO nodes (name, state, embedded, max_tasks, created_at) VALUES (?1, 'offline', 0, ?2, ?3)",
            params![name, max_tasks, now()],
        )
        .map_err(unique(format!("node {name:?}")))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.node(id)
    }

    /// A remote node came up: online, its version and concurrency limit.
    pub fn register_node(&self, id: i64, max_tasks: i64, version: &str) -> Result<Node> {
        self.db().execute(
            "UPDATE nodes SET state = 'online', max_tasks = ?2, version = ?3, last_heartbeat = ?4 WHERE id = ?1",
            params![id, max_tasks, version, now()],
        )?;
        self.node(id)
    }

    const NODE_COLS: &'static str =
        "id, name, state, embedded, max_tasks, version, last_heartbeat, created_at, source_roots, restore_roots, allow_block_devices, data_dir";

    pub fn node_by_name(&self, name: &str) -> Result<Option<Node>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {} FROM nodes WHERE name = ?1", Self::NODE_COLS),
                [name],
                node_row,
            )
            .optional()?)
    }

    pub fn node(&self, id: i64) -> Result<Node> {
        self.db()
            .query_row(
                &format!("SELECT {} FROM nodes WHERE id = ?1", Self::NODE_COLS),
                [id],
                node_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("node {id}")))
    }

    pub fn nodes(&self) -> Result<Vec<Node>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM nodes ORDER BY id",
            Self::NODE_COLS
        ))?;
        let rows = st.query_map([], node_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn heartbeat(&self, node_id: i64) -> Result<()> {
        self.db().execute(
            "UPDATE nodes SET state = 'online', last_heartbeat = ?2 WHERE id = ?1",
            params![node_id, now()],
        )?;
        Ok(())
    }

    /// Mark nodes without a heartbeat since `before` offline; returns them.
    pub fn mark_stale_nodes_offline(&self, before: i64) -> Result<Vec<i64>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "UPDATE nodes SET state = 'offline' WHERE state = 'online' AND embedded = 0 AND (last_heartbeat IS NULL OR last_heartbeat < ?1) RETURNING id",
        )?;
        let rows = st.query_map([before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_datastore(&self, name: &str, node_id: i64, path: &str) -> Result<Datastore> {
        let db = self.db();
        db.execute(
            "INSERT INTO datastores (name, node_id, path, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, node_id, path, now()],
        )
        .map_err(unique(format!("datastore {name:?}")))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.datastore(id)
    }

    const DS_COLS: &'static str = "id, name, node_id, path, bytes_used, bytes_logical, created_at, gc_schedule, verify_schedule, verify_max_age_days";

    pub fn datastore(&self, id: i64) -> Result<Datastore> {
        self.db()
            .query_row(
                &format!("SELECT {} FROM datastores WHERE id = ?1", Self::DS_COLS),
                [id],
                datastore_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("datastore {id}")))
    }

    pub fn datastore_by_name(&self, name: &str) -> Result<Option<Datastore>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {} FROM datastores WHERE name = ?1", Self::DS_COLS),
                [name],
                datastore_row,
            )
            .optional()?)
    }

    pub fn datastores(&self) -> Result<Vec<Datastore>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {} FROM datastores ORDER BY id",
            Self::DS_COLS
        ))?;
        let rows = st.query_map([], datastore_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Record bytes on disk; the logical size is the sum over the
    /// datastore's restore points.
    pub fn refresh_datastore_usage(&self, id: i64, used: i64) -> Result<()> {
        update_usage(&self.db(), id, used)
    }

    // ---- sources ----

    #[allow(clippy::too_many_arguments)]
    pub fn add_source(
        &self,
        name: &str,
        kind: &str,
        path: &str,
        node_id: i64,
        project_id: i64,
        tags: &[String],
        settings: &serde_json::Value,
        policy_id: Option<i64>,
    ) -> Result<Source> {
        let db = self.db();
        db.execute(
            "INSERT INTO sources (name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                name,
                kind,
                path,
                node_id,
                project_id,
                serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()),
                settings.to_string(),
                policy_id,
                if policy_id.is_some() { "explicit" } else { "none" },
                now()
            ],
        )
        .map_err(unique(format!("source {name:?} in project {project_id}")))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.source(id)
    }

    pub fn source(&self, id: i64) -> Result<Source> {
        self.db()
            .query_row(
                &format!("SELECT {SOURCE_COLS} FROM sources WHERE id = ?1"),
                [id],
                source_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("source {id}")))
    }

    /// The source of this name in `project_id` (names are unique per
    /// project, not across projects).
    pub fn source_by_name(&self, project_id: i64, name: &str) -> Result<Option<Source>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {SOURCE_COLS} FROM sources WHERE project_id = ?1 AND name = ?2"),
                params![project_id, name],
                source_row,
            )
            .optional()?)
    }

    /// The sources of this name, in every project, oldest first.
    pub fn sources_named(&self, name: &str) -> Result<Vec<Source>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {SOURCE_COLS} FROM sources WHERE name = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([name], source_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn sources(&self) -> Result<Vec<Source>> {
        let db = self.db();
        let mut st =
            db.prepare_cached(&format!("SELECT {SOURCE_COLS} FROM sources ORDER BY id"))?;
        let rows = st.query_map([], source_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_source(&self, id: i64) -> Result<()> {
        let n = self
            .db()
            .execute("DELETE FROM sources WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("source {id}")));
        }
        Ok(())
    }

    /// Assign a policy (`assigned_by`: explicit or rule; `None` clears).
    pub fn assign_policy(
        &self,
        source_id: i64,
        policy_id: Option<i64>,
        assigned_by: &str,
    ) -> Result<()> {
        let by = if policy_id.is_some() {
            assigned_by
        } else {
            "none"
        };
        let n = self
            .db()
            .execute(
                "UPDATE sources SET policy_id = ?2, assigned_by = ?3 WHERE id = ?1",
                params![source_id, policy_id, by],
            )
            .map_err(unique("policy assignment"))?;
        if n == 0 {
            return Err(Error::NotFound(format!("source {source_id}")));
        }
        Ok(())
    }

    // ---- policies ----

    #[allow(clippy::too_many_arguments)]
    pub fn add_policy(
        &self,
        name: &str,
        project_id: i64,
        schedule: &str,
        backup_window: Option<&str>,
        retention: &Retention,
        datastore_id: i64,
        priority: i64,
        match_pattern: Option<&str>,
        match_tags: &[String],
        rpo_seconds: Option<i64>,
    ) -> Result<Policy> {
        let db = self.db();
        db.execute(
            "INSERT INTO policies (name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                name,
                project_id,
                schedule,
                backup_window,
                serde_json::to_string(retention).unwrap_or_else(|_| "{}".into()),
                datastore_id,
                priority,
                match_pattern,
                serde_json::to_string(match_tags).unwrap_or_else(|_| "[]".into()),
                rpo_seconds,
                now()
            ],
        )
        .map_err(unique(format!("policy {name:?} in project {project_id}")))?;
        let id = db.last_insert_rowid();
        drop(db);
        self.policy(id)
    }

    pub fn policy(&self, id: i64) -> Result<Policy> {
        self.db()
            .query_row(
                &format!("SELECT {POLICY_COLS} FROM policies WHERE id = ?1"),
                [id],
                policy_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("policy {id}")))
    }

    /// The policy of this name in `project_id` (names are unique per
    /// project, not across projects).
    pub fn policy_by_name(&self, project_id: i64, name: &str) -> Result<Option<Policy>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {POLICY_COLS} FROM policies WHERE project_id = ?1 AND name = ?2"),
                params![project_id, name],
                policy_row,
            )
            .optional()?)
    }

    pub fn policies(&self) -> Result<Vec<Policy>> {
        let db = self.db();
        let mut st =
            db.prepare_cached(&format!("SELECT {POLICY_COLS} FROM policies ORDER BY id"))?;
        let rows = st.query_map([], policy_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_policy(&self, id: i64) -> Result<()> {
        let n = self
            .db()
            .execute("DELETE FROM policies WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("policy {id}")));
        }
        Ok(())
    }

    // ---- tasks ----

    /// Queue many tasks in one transaction (the scheduler's tick); tasks
    /// whose (policy, source, slot) exists already are skipped. Returns the
    /// ids of the new ones, in order (`None` for skipped).
    pub fn add_tasks(&self, tasks: &[NewTask]) -> Result<Vec<Option<i64>>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(tasks.len());
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO tasks (kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, max_attempts, not_before, created_by, created_at)
                 VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (policy_id, source_id, slot) DO NOTHING",
            )?;
            let now = now();
            for t in tasks {
                let n = st
                    .execute(params![
                        t.kind,
                        t.project_id,
                        t.source_id,
                        t.policy_id,
                        t.datastore_id,
                        t.node_id,
                        t.params.to_string(),
                        t.priority,
                        t.slot,
                        t.max_attempts.max(1),
                        t.not_before,
                        t.created_by,
                        now
                    ])
                    .map_err(unique("task"))?;
                out.push((n > 0).then(|| tx.last_insert_rowid()));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Set many policy assignments in one transaction.
    pub fn assign_policies_many(&self, changes: &[(i64, Option<i64>, &str)]) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE sources SET policy_id = ?2, assigned_by = ?3 WHERE id = ?1",
            )?;
            for (source, policy, by) in changes {
                let by = if policy.is_some() { *by } else { "none" };
                st.execute(params![source, policy, by])
                    .map_err(unique("policy assignment"))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Queue a task. A scheduled task whose (policy, source, slot) exists
    /// already is not queued again: returns `Ok(None)`.
    pub fn add_task(&self, t: &NewTask) -> Result<Option<Task>> {
        match self.add_tasks(std::slice::from_ref(t))?.first() {
            Some(Some(id)) => self.task(*id).map(Some),
            _ => Ok(None),
        }
    }

    pub fn task(&self, id: i64) -> Result<Task> {
        self.db()
            .query_row(
                &format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"),
                [id],
                task_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))
    }

    /// Tasks, newest first, optionally filtered by state and projects.
    pub fn tasks(
        &self,
        state: Option<TaskState>,
        projects: Option<&[i64]>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Task>> {
        let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = state {
            args.push(Box::new(s.as_str()));
            sql += &format!(" AND state = ?{}", args.len());
        }
        if let Some(p) = projects {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        args.push(Box::new(limit.clamp(1, 10_000)));
        sql += &format!(" ORDER BY id DESC LIMIT ?{}", args.len());
        args.push(Box::new(offset.max(0)));
        sql += &format!(" OFFSET ?{}", args.len());
        let db = self.db();
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Lease the next runnable task for `node_id`: queued, due, on this
    /// node (or on no particular node and on no other node's datastore),
    /// highest priority first. The node
    /// must renew the lease; an expired lease means the task is requeued.
    pub fn lease_task(&self, node_id: i64, now: i64, lease_secs: i64) -> Result<Option<Task>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM tasks WHERE state = 'queued' AND not_before <= ?2
                 AND (node_id = ?1 OR (node_id IS NULL AND (datastore_id IS NULL OR datastore_id IN (SELECT id FROM datastores WHERE node_id = ?1))))
                 AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.source_id IS NOT NULL AND r.source_id = tasks.source_id)
                 ORDER BY priority DESC, not_before, id LIMIT 1",
                params![node_id, now],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        tx.execute(
            "UPDATE tasks SET state = 'running', node_id = ?2, attempt = attempt + 1, started_at = ?3, lease_until = ?4, error = NULL WHERE id = ?1",
            params![id, node_id, now, now + lease_secs],
        )?;
        tx.commit()?;
        drop(db);
        self.task(id).map(Some)
    }

    pub fn running_on_node(&self, node_id: i64) -> Result<i64> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM tasks WHERE state = 'running' AND node_id = ?1",
            [node_id],
            |r| r.get(0),
        )?)
    }

    /// Extend a running task's lease and record its progress. Returns
    /// whether cancellation was requested.
    pub fn task_progress(&self, id: i64, done: i64, total: i64, lease_until: i64) -> Result<bool> {
        let db = self.db();
        db.execute(
            "UPDATE tasks SET bytes_done = ?2, bytes_total = ?3, lease_until = ?4 WHERE id = ?1 AND state = 'running'",
            params![id, done, total, lease_until],
        )?;
        Ok(db.query_row(
            "SELECT cancel_requested FROM tasks WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Finish a running task. A failure with attempts left is requeued
    /// after `retry_at` instead. Returns the task's new state.
    pub fn finish_task(
        &self,
        id: i64,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
    ) -> Result<TaskState> {
        self.finish_task_with(id, outcome, cancelled, retry_at, &TaskEffects::default())
    }

    /// [`Catalog::finish_task`] together with what the task changed in its
    /// datastore, in one transaction: a backup's restore point is listed
    /// exactly when its task's result is recorded. The effects describe
    /// the datastore as it is (the snapshot is committed, pruned ones are
    /// gone), so they are recorded even when the task is no longer
    /// running here (its lease expired); the state change then fails.
    /// Effects beyond the task are refused (`Denied`), nothing recorded.
    pub fn finish_task_with(
        &self,
        id: i64,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
        fx: &TaskEffects,
    ) -> Result<TaskState> {
        self.finish_task_leased(id, None, outcome, cancelled, retry_at, fx)
    }

    /// [`Catalog::finish_task_with`] for the holder of the task's lease:
    /// refused (with nothing recorded) unless `lease` holds the task now,
    /// and in any case unless the effects stay inside the task (the task's
    /// datastore, source and project: catalog/src/leases.rs); both checked
    /// in the transaction that records them.
    pub fn finish_task_leased(
        &self,
        id: i64,
        lease: Option<&Lease>,
        outcome: std::result::Result<serde_json::Value, String>,
        cancelled: bool,
        retry_at: Option<i64>,
        fx: &TaskEffects,
    ) -> Result<TaskState> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held = match lease {
            Some(l) => leases::check_lease(&tx, id, l)?,
            None => leases::task_held(&tx, id)?,
        };
        leases::check_effects(&tx, id, &held, fx)?;
        if let Some(rp) = &fx.restore_point {
            insert_restore_point(&tx, rp)?;
        }
        for rp in &fx.removed_restore_points {
            tx.execute("DELETE FROM restore_points WHERE id = ?1", [rp])?;
        }
        if let Some((ds, used)) = fx.datastore_bytes_used {
            update_usage(&tx, ds, used)?;
        }
        let (attempt, max_attempts, state, task_ds): (i64, i64, String, Option<i64>) = tx
            .query_row(
                "SELECT attempt, max_attempts, state, datastore_id FROM tasks WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        if state != "running" {
            tx.commit()?;
            return Err(Error::Invalid(format!("task {id} is {state}, not running")));
        }
        if let (Some(v), Some(ds)) = (&fx.verify, task_ds) {
            maintenance::record_verify(&tx, ds, v)?;
        }
        let t = now();
        let new_state = match (&outcome, cancelled) {
            (_, true) => TaskState::Cancelled,
            (Ok(_), false) => TaskState::Succeeded,
            (Err(_), false) if attempt < max_attempts && retry_at.is_some() => TaskState::Queued,
            (Err(_), false) => TaskState::Failed,
        };
        match &outcome {
            Ok(v) => tx.execute(
                "UPDATE tasks SET state = ?2, result = ?3, error = NULL, finished_at = ?4, lease_until = NULL WHERE id = ?1",
                params![id, new_state.as_str(), v.to_string(), t],
            )?,
            Err(e) if new_state == TaskState::Queued => tx.execute(
                "UPDATE tasks SET state = 'queued', error = ?2, not_before = ?3, lease_until = NULL, started_at = NULL WHERE id = ?1",
                params![id, e, retry_at.unwrap_or(t)],
            )?,
            Err(e) => tx.execute(
                "UPDATE tasks SET state = ?2, error = ?3, finished_at = ?4, lease_until = NULL WHERE id = ?1",
                params![id, new_state.as_str(), e, t],
            )?,
        };
        tx.commit()?;
        Ok(new_state)
    }

    /// Request cancellation: a queued task is cancelled at once, a running
    /// one is told through `task_progress`. Returns the resulting state.
    pub fn cancel_task(&self, id: i64) -> Result<TaskState> {
        let db = self.db();
        let state: String = db
            .query_row("SELECT state FROM tasks WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        match TaskState::parse(&state) {
            Some(TaskState::Queued) => {
                db.execute(
                    "UPDATE tasks SET state = 'cancelled', cancel_requested = 1, finished_at = ?2 WHERE id = ?1",
                    params![id, now()],
                )?;
                Ok(TaskState::Cancelled)
            }
            Some(TaskState::Running) => {
                db.execute("UPDATE tasks SET cancel_requested = 1 WHERE id = ?1", [id])?;
                Ok(TaskState::Running)
            }
            Some(s) => Err(Error::Invalid(format!(
                "task {id} is already {}",
                s.as_str()
            ))),
            None => Err(Error::Invalid(format!("task {id} has an unknown state"))),
        }
    }

    /// Running tasks whose lease ran out (their node died or lost contact)
    /// or that run on the given offline nodes: requeued while attempts
    /// remain, else failed, with `reason`. Returns the ids.
    pub fn expire_leases(&self, now: i64, offline_nodes: &[i64], reason: &str) -> Result<Vec<i64>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut st = tx.prepare(&format!(
                "SELECT id FROM tasks WHERE state = 'running' AND (lease_until < ?1 OR node_id IN ({}))",
                id_list(offline_nodes)
            ))?;
            let rows = st.query_map([now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in &ids {
            tx.execute(
                "UPDATE tasks SET
                   state = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN 'queued' ELSE 'failed' END,
                   finished_at = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN NULL ELSE ?2 END,
                   started_at = CASE WHEN attempt < max_attempts AND cancel_requested = 0 THEN NULL ELSE started_at END,
                   error = ?3, lease_until = NULL, not_before = ?2
                 WHERE id = ?1",
                params![id, now, reason],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    pub fn add_task_log(&self, task_id: i64, level: &str, message: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO task_logs (task_id, seq, time, level, message)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_logs WHERE task_id = ?1), ?2, ?3, ?4)",
            params![task_id, now(), level, message],
        )?;
        Ok(())
    }

    pub fn task_logs(&self, task_id: i64) -> Result<Vec<TaskLog>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT seq, time, level, message FROM task_logs WHERE task_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([task_id], |r| {
            Ok(TaskLog {
                seq: r.get(0)?,
                time: r.get(1)?,
                level: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest slot already queued for (policy, source), if any.
    pub fn last_slot(&self, policy_id: i64, source_id: i64) -> Result<Option<i64>> {
        Ok(self.db().query_row(
            "SELECT MAX(slot) FROM tasks WHERE policy_id = ?1 AND source_id = ?2",
            params![policy_id, source_id],
            |r| r.get(0),
        )?)
    }

    /// The newest queued slot of every (policy, source) pair, in one query
    /// (the scheduler's per-tick read; served from the unique index).
    pub fn last_slots(&self) -> Result<std::collections::HashMap<(i64, i64), i64>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT policy_id, source_id, MAX(slot) FROM tasks
             WHERE policy_id IS NOT NULL AND source_id IS NOT NULL AND slot IS NOT NULL
             GROUP BY policy_id, source_id",
        )?;
        let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Task counts by state, for metrics.
    pub fn task_counts(&self) -> Result<Vec<(String, i64)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- restore points ----

    /// Record a committed snapshot; re-adding the same id is a no-op.
    pub fn add_restore_point(&self, rp: &RestorePoint) -> Result<()> {
        insert_restore_point(&self.db(), rp)
    }

    pub fn restore_points(&self, f: &RestorePointFilter) -> Result<Vec<RestorePoint>> {
        let mut sql = format!("SELECT {RP_COLS} FROM restore_points WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = &f.source {
            args.push(Box::new(s.clone()));
            sql += &format!(" AND source_name = ?{}", args.len());
        }
        if let Some(k) = &f.kind {
            args.push(Box::new(k.clone()));
            sql += &format!(" AND kind = ?{}", args.len());
        }
        if let Some(t) = f.since {
            args.push(Box::new(t));
            sql += &format!(" AND time >= ?{}", args.len());
        }
        if let Some(t) = f.until {
            args.push(Box::new(t));
            sql += &format!(" AND time <= ?{}", args.len());
        }
        if let Some(p) = &f.project_ids {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        args.push(Box::new(f.limit.clamp(1, 10_000)));
        sql += &format!(" ORDER BY time DESC, id LIMIT ?{}", args.len());
        args.push(Box::new(f.offset.max(0)));
        sql += &format!(" OFFSET ?{}", args.len());
        let db = self.db();
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), rp_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A restore point by full id or unique prefix, among the restore
    /// points of `projects` (`None`: all projects). Restore points of
    /// other projects do not exist for this lookup: a prefix that matches
    /// only there is not found, and one that matches one restore point
    /// here and others there is not ambiguous. So the answer (and its
    /// message, which names only what the caller asked for) is the same
    /// as if the other projects had no restore points at all.
    pub fn restore_point(
        &self,
        id_or_prefix: &str,
        projects: Option<&[i64]>,
    ) -> Result<RestorePoint> {
        if id_or_prefix.is_empty()
            || id_or_prefix.len() > 64
            || !id_or_prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "restore point id {id_or_prefix:?} is not a hex id or prefix"
            )));
        }
        let mut sql =
            format!("SELECT {RP_COLS} FROM restore_points WHERE id >= ?1 AND id < ?1 || 'g'");
        if let Some(p) = projects {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        sql += " ORDER BY id LIMIT 2";
        let db = self.db();
        let mut st = db.prepare_cached(&sql)?;
        let found: Vec<RestorePoint> = st
            .query_map([id_or_prefix.to_ascii_lowercase()], rp_row)?
            .collect::<rusqlite::Result<_>>()?;
        match found.len() {
            1 => Ok(found
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound(format!("restore point {id_or_prefix}")))?),
            0 => Err(Error::NotFound(format!("restore point {id_or_prefix}"))),
            _ => Err(Error::Invalid(format!(
                "restore point prefix {id_or_prefix} is ambiguous"
            ))),
        }
    }

    pub fn delete_restore_point(&self, id: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM restore_points WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn restore_point_count(&self) -> Result<i64> {
        Ok(self
            .db()
            .query_row("SELECT COUNT(*) FROM restore_points", [], |r| r.get(0))?)
    }

    /// Bytes read by succeeded backups, and restore-point time of the
    /// newest restore point per source (for RPO checks).
    /// Ids of a source's restore points in one datastore.
    pub fn restore_point_ids_of_source(
        &self,
        source_id: i64,
        datastore_id: i64,
    ) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT id FROM restore_points WHERE source_id = ?1 AND datastore_id = ?2 ORDER BY time",
        )?;
        let rows = st.query_map(params![source_id, datastore_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn newest_restore_point_time(&self, source_id: i64) -> Result<Option<i64>> {
        Ok(self.db().query_row(
            "SELECT MAX(time) FROM restore_points WHERE source_id = ?1",
            [source_id],
            |r| r.get(0),
        )?)
    }

    pub fn bytes_backed_up(&self) -> Result<i64> {
        Ok(self.db().query_row(
            "SELECT COALESCE(SUM(bytes_added), 0) FROM restore_points",
            [],
            |r| r.get(0),
        )?)
    }

    /// Move every policy's and source's creation time `secs` into the past
    /// (benchmarks and tests of schedules that started earlier).
    pub fn backdate_for_bench(&self, secs: i64) -> Result<()> {
        let db = self.db();
        db.execute("UPDATE policies SET created_at = created_at - ?1", [secs])?;
        db.execute("UPDATE sources SET created_at = created_at - ?1", [secs])?;
        Ok(())
    }

    // ---- audit ----

    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        remote: &str,
        result: &str,
        detail: &str,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO audit (time, actor, action, target, remote, result, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![now(), actor, action, target, remote, result, detail],
        )?;
        Ok(())
    }

    pub fn audit_log(&self, limit: i64, offset: i64) -> Result<Vec<AuditEntry>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT id, time, actor, action, target, remote, result, detail FROM audit ORDER BY id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = st.query_map(params![limit.clamp(1, 10_000), offset.max(0)], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                time: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                remote: r.get(5)?,
                result: r.get(6)?,
                detail: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// A comma-separated list of integers for `IN (...)` (never empty).
fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "NULL".into();
    }
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn insert_restore_point(db: &Connection, rp: &RestorePoint) -> Result<()> {
    db.execute(
        &format!("INSERT INTO restore_points ({RP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (id) DO NOTHING"),
        params![
            rp.id,
            rp.datastore_id,
            rp.source_id,
            rp.source_name,
            rp.project_id,
            rp.kind,
            rp.time,
            rp.bytes_total,
            rp.bytes_added,
            rp.files,
            rp.hostname,
            rp.task_id,
            rp.created_at,
            rp.state.as_str(),
            rp.damage,
            rp.verified_at
        ],
    )
    .map_err(unique("restore point"))?;
    Ok(())
}

fn update_usage(db: &Connection, id: i64, used: i64) -> Result<()> {
    db.execute(
        "UPDATE datastores SET bytes_used = ?2,
           bytes_logical = (SELECT COALESCE(SUM(bytes_total), 0) FROM restore_points WHERE datastore_id = ?1)
         WHERE id = ?1",
        params![id, used],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
