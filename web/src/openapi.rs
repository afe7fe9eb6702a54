//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! One table, [`ROUTES`], lists every endpoint with its summary, request
//! body, response and the permission it needs; the paths of the document
//! are derived from it. The in-process tests check that every route in the
//! router is in the table and the other way round. The component schemas
//! are generated from the request and response types of `arca_model::api`
//! (utoipa), so they are the types' own fields, optionality and doc
//! comments.

use arca_model::api;
use serde_json::{json, Map, Value};

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Required permission: "public", "signed-in", or an action name.
    pub permission: &'static str,
    pub request: Option<&'static str>,
    /// Success status and schema (None: no body).
    pub ok: (u16, Option<&'static str>),
    /// Query parameters (name, type).
    pub query: &'static [(&'static str, &'static str)],
}

const TASK_Q: &[(&str, &str)] = &[
    ("state", "string"),
    ("kind", "string"),
    ("source", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const RP_Q: &[(&str, &str)] = &[
    ("source", "string"),
    ("project", "string"),
    ("kind", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];

const TREE_Q: &[(&str, &str)] = &[
    ("path", "string"),
    ("recursive", "boolean"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const FILES_Q: &[(&str, &str)] = &[("path", "string"), ("format", "string")];
const SEARCH_Q: &[(&str, &str)] = &[
    ("pattern", "string"),
    ("source", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("ignore_case", "boolean"),
    ("images", "boolean"),
];
const PROTECTION_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("project", "string"),
    ("format", "string"),
];
const STORAGE_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("datastore", "string"),
    ("format", "string"),
];
const TASK_REPORT_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("kind", "string"),
    ("source", "string"),
    ("format", "string"),
];
const EXPORT_Q: &[(&str, &str)] = &[("all", "boolean")];
const AUDIT_Q: &[(&str, &str)] = &[
    ("actor", "string"),
    ("action", "string"),
    ("result", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const S3_KEY_Q: &[(&str, &str)] = &[("user", "string")];
const DELETE_SOURCE_Q: &[(&str, &str)] = &[("restore_points", "string")];
const STOP_EXPORT_Q: &[(&str, &str)] = &[("commit", "boolean")];

macro_rules! r {
    ($m:literal, $p:literal, $s:literal, $perm:literal, $req:expr, $ok:expr) => {
        r!($m, $p, $s, $perm, $req, $ok, &[])
    };
    ($m:literal, $p:literal, $s:literal, $perm:literal, $req:expr, $ok:expr, $q:expr) => {
        Route {
            method: $m,
            path: $p,
            summary: $s,
            permission: $perm,
            request: $req,
            ok: $ok,
            query: $q,
        }
    };
}

pub const ROUTES: &[Route] = &[
    r!(
        "get",
        "/healthz",
        "Liveness and catalog check",
        "public",
        None,
        (200, Some("Health"))
    ),
    r!(
        "get",
        "/metrics",
        "Prometheus metrics (names nodes and datastores and their sizes): any valid token whose scope allows it (full, read-only or metrics); 401 without one",
        "any role (tokens of scope metrics too)",
        None,
        (200, Some("Text"))
    ),
    r!(
        "get",
        "/api/v1/openapi.json",
        "This document",
        "public",
        None,
        (200, Some("Object"))
    ),
    r!(
        "post",
        "/api/v1/auth/login",
        "Sign in; returns a 12-hour session token. 5 failures per user name or 20 per address within 15 minutes lock further attempts (429 with Retry-After). With cookie: true (the web UI) the token goes to an HttpOnly, SameSite=Strict cookie arca_session instead and the answer carries csrf: requests signed in by the cookie that are not GET or HEAD must send it as X-Arca-CSRF (403 otherwise)",
        "public",
        Some("Login"),
        (200, Some("Session"))
    ),
    r!(
        "post",
        "/api/v1/auth/logout",
        "Sign out: the session or token of the request is revoked and the session cookie removed",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "post",
        "/api/v1/auth/password",
        "Change your password (at least 10 characters, not the user name); your other sessions are signed out",
        "signed-in",
        Some("ChangePassword"),
        (200, Some("PasswordChanged"))
    ),
    r!(
        "get",
        "/api/v1/me",
        "The signed-in user, the token of the request and the roles it may use (the user's, narrowed to the token's projects)",
        "signed-in",
        None,
        (200, Some("Me"))
    ),
    r!(
        "get",
        "/api/v1/users",
        "List users",
        "administer",
        None,
        (200, Some("Users"))
    ),
    r!(
        "post",
        "/api/v1/users",
        "Create a user (a password is generated when none is given)",
        "administer",
        Some("NewUser"),
        (201, Some("CreatedUser"))
    ),
    r!(
        "get",
        "/api/v1/users/{id}",
        "One user (yourself, or any as admin)",
        "signed-in",
        None,
        (200, Some("User"))
    ),
    r!(
        "patch",
        "/api/v1/users/{id}",
        "Replace a user's roles (not your own: 409; an unknown project: 422)",
        "administer",
        Some("UserChange"),
        (200, Some("User"))
    ),
    r!(
        "delete",
        "/api/v1/users/{id}",
        "Delete a user",
        "administer",
        None,
        (204, None)
    ),
    r!(
        "post",
        "/api/v1/users/{id}/password",
        "Set a user's password (generated when none is given); their sessions are signed out",
        "administer",
        Some("ResetPassword"),
        (200, Some("PasswordChanged"))
    ),
    r!(
        "get",
        "/api/v1/tokens",
        "Your API tokens with their scope, projects, expiry, parent and state",
        "signed-in",
        None,
        (200, Some("Tokens"))
    ),
    r!(
        "post",
        "/api/v1/tokens",
        "Create an API token (shown once). It expires after expires_in_s, at most the maximum token lifetime (400 beyond it; the maximum when left out); made with an API token it is that token's child: no longer-lived, no wider scope, no more projects, and revoked with it",
        "signed-in",
        Some("NewToken"),
        (201, Some("CreatedToken"))
    ),
    r!(
        "patch",
        "/api/v1/tokens/{id}",
        "Rename a token (yours, or any as admin); its rights never change",
        "signed-in",
        Some("TokenChange"),
        (200, Some("Token"))
    ),
    r!(
        "delete",
        "/api/v1/tokens/{id}",
        "Revoke a token (yours, or any as admin) and every token made with it",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/s3-keys",
        "S3 access keys: yours; an admin of all projects sees every user's, or one user's with ?user=NAME (404 for an unknown user)",
        "signed-in",
        None,
        (200, Some("S3Keys")),
        S3_KEY_Q
    ),
    r!(
        "post",
        "/api/v1/s3-keys",
        "Create an S3 access key for the S3 gateway (the secret is shown once); it acts as you, reading the sources of the projects where you may restore. Not with a token limited to projects",
        "signed-in",
        Some("NewS3Key"),
        (201, Some("CreatedS3Key"))
    ),
    r!(
        "delete",
        "/api/v1/s3-keys/{id}",
        "Revoke an S3 access key (yours, or any as admin): refused by the gateway at once",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/status",
        "The server's version, its S3 gateway's address and its nodes",
        "signed-in",
        None,
        (200, Some("Status"))
    ),
    r!(
        "get",
        "/api/v1/settings",
        "Server settings: the maximum lifetime of API tokens",
        "administer",
        None,
        (200, Some("Settings"))
    ),
    r!(
        "patch",
        "/api/v1/settings",
        "Change server settings (token_max_lifetime_s: 1 hour to 10 years; existing tokens keep their expiry)",
        "administer",
        Some("SettingsPatch"),
        (200, Some("Settings"))
    ),
    r!(
        "get",
        "/api/v1/projects",
        "Projects you can read",
        "signed-in",
        None,
        (200, Some("Projects"))
    ),
    r!(
        "post",
        "/api/v1/projects",
        "Create a project",
        "administer",
        Some("NewProject"),
        (201, Some("Project"))
    ),
    r!(
        "get",
        "/api/v1/nodes",
        "Nodes",
        "any role",
        None,
        (200, Some("Nodes"))
    ),
    r!(
        "post",
        "/api/v1/nodes",
        "Add a remote node; the answer carries its token, shown once (`arca node --token`)",
        "administer",
        Some("NewNode"),
        (201, Some("CreatedNode"))
    ),
    r!(
        "patch",
        "/api/v1/nodes/{id}",
        "Set where the node's sources may live and its restores may write, and whether restores may write block devices (422 for a bad path)",
        "administer",
        Some("NodeSettings"),
        (200, Some("Node"))
    ),
    r!(
        "delete",
        "/api/v1/nodes/{id}",
        "Remove a node and its tokens (409 for the server's own node, and while it has sources, datastores, or queued or running tasks)",
        "administer",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/datastores",
        "Datastores",
        "any role",
        None,
        (200, Some("Datastores"))
    ),
    r!(
        "patch",
        "/api/v1/datastores/{id}",
        "Change a datastore's gc and verify schedules (`never` turns one off)",
        "administer",
        Some("DatastoreSettings"),
        (200, Some("Datastore"))
    ),
    r!(
        "post",
        "/api/v1/datastores/{id}/gc",
        "Run gc on the datastore now, beside running backups; returns the task",
        "administer",
        Some("GcNow"),
        (202, Some("Task"))
    ),
    r!(
        "post",
        "/api/v1/datastores/{id}/verify",
        "Verify the datastore now (the restore points due, or all); returns the task",
        "administer",
        Some("VerifyNow"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/sources",
        "Sources of the projects you can read",
        "read",
        None,
        (200, Some("Sources"))
    ),
    r!(
        "post",
        "/api/v1/sources",
        "Add a source",
        "manage",
        Some("NewSource"),
        (201, Some("Source"))
    ),
    r!(
        "get",
        "/api/v1/sources/{id}",
        "One source",
        "read",
        None,
        (200, Some("Source"))
    ),
    r!(
        "patch",
        "/api/v1/sources/{id}",
        "Change a source's name, path, tags, settings or policy (null policy: back to the match rules)",
        "manage",
        Some("SourceChange"),
        (200, Some("Source"))
    ),
    r!(
        "delete",
        "/api/v1/sources/{id}",
        "Remove a source. restore_points=keep (default): its restore points stay listed under its name, with a null source_id (204); remove: forget tasks delete them from their datastores (one per datastore, returned with 202; 204 when it had none), and 409 naming how many are protected when any is (the source stays). 409 while a task of it runs",
        "manage",
        None,
        (204, None),
        DELETE_SOURCE_Q
    ),
    r!(
        "post",
        "/api/v1/sources/{id}/backup",
        "Back up now",
        "manage",
        Some("BackupNow"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/policies",
        "Policies",
        "read",
        None,
        (200, Some("Policies"))
    ),
    r!(
        "post",
        "/api/v1/policies",
        "Add a policy",
        "manage",
        Some("NewPolicy"),
        (201, Some("Policy"))
    ),
    r!(
        "get",
        "/api/v1/policies/{id}",
        "One policy",
        "read",
        None,
        (200, Some("Policy"))
    ),
    r!(
        "patch",
        "/api/v1/policies/{id}",
        "Change a policy's schedule, window, retention, datastore, priority, match rules, RPO or enabled (null clears an optional one)",
        "manage",
        Some("PolicyChange"),
        (200, Some("Policy"))
    ),
    r!(
        "delete",
        "/api/v1/policies/{id}",
        "Remove a policy (409 while a task of it, or of a source it is assigned to, runs)",
        "manage",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/policies/{id}/preview",
        "Retention preview: for every source the policy applies to, its restore points newest first, each kept or not and why (the rules that keep it, protected, exported), with counts; from the catalog, as a prune would decide now",
        "read",
        None,
        (200, Some("RetentionPreview"))
    ),
    r!(
        "post",
        "/api/v1/policies/{id}/prune",
        "Prune now: queues a prune task per source the policy applies to (in the datastore its backups go to, with its retention) and returns them ([] for none); what they remove is what the preview shows. 409 while a prune of the policy is queued or running, or when the policy has no retention rule",
        "manage",
        None,
        (202, Some("Tasks"))
    ),
    r!(
        "get",
        "/api/v1/tasks",
        "Tasks, newest first (state, kind, source: a source's id; all optional)",
        "read",
        None,
        (200, Some("Tasks")),
        TASK_Q
    ),
    r!(
        "get",
        "/api/v1/tasks/{id}",
        "One task with its progress",
        "read",
        None,
        (200, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/tasks/{id}/logs",
        "A task's log",
        "read",
        None,
        (200, Some("TaskLogs"))
    ),
    r!(
        "post",
        "/api/v1/tasks/{id}/cancel",
        "Cancel a task",
        "manage (restore for restores)",
        None,
        (200, Some("Cancelled"))
    ),
    r!(
        "post",
        "/api/v1/tasks/{id}/retry",
        "Run a failed or cancelled task again: a new task of the same kind and parameters (a backup on its source's node), due now; 409 for a task that is queued, running or succeeded, a backup whose source was removed, or a gc or verify while another of its datastore is queued or running",
        "manage",
        None,
        (201, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/reports/protection",
        "Protection report over [from, to] (Unix seconds; default the 7 days before to, which defaults to now; 400 when from > to or negative): per source its policy, RPO, newest good restore point, next run, status (rpo_missed, never_backed_up, no_policy, ok: problems first) and RPO compliance (the fraction of the period, from the source's creation and up to now, during which its newest good backup was not older than the RPO); per policy its sources and their mean compliance. project: one project by id or name (404 if unknown or not readable). format=csv: the sources as CSV",
        "read",
        None,
        (200, Some("ProtectionReport")),
        PROTECTION_Q
    ),
    r!(
        "get",
        "/api/v1/reports/storage",
        "Storage report over [from, to] (as for protection): per datastore its numbers now and the samples of the period (bytes used, logical bytes, ratio = logical / used; one per five minutes at most, hourly after two days, daily after 30 days). datastore: one by id or name (404 if unknown). format=csv: the samples as CSV",
        "signed-in with a role",
        None,
        (200, Some("StorageReport")),
        STORAGE_Q
    ),
    r!(
        "get",
        "/api/v1/reports/tasks",
        "Tasks report over [from, to] (as for protection): the tasks of the caller's projects that ended in the period (kind, state, source, node, times, duration, bytes, throughput), the last to end first, and per kind the counts by state and the median and 95th percentile duration and mean throughput of the succeeded ones. kind; source: by id or name (404 if no readable source has it). format=csv: the tasks as CSV",
        "read",
        None,
        (200, Some("TaskReport")),
        TASK_REPORT_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points",
        "Restore points, newest first (project: a project's id or name; 404 if unknown or not readable)",
        "read",
        None,
        (200, Some("RestorePoints")),
        RP_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}",
        "One restore point (id or unique prefix)",
        "read",
        None,
        (200, Some("RestorePoint"))
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}/tree",
        "Browse a restore point: the entries of a directory (path, default the root; recursive: everything below it, depth first), paginated (limit 1..=10000, default 1000; next_offset). 400 for a path with '..', 404 for a path not in it (an image restore point lists its file tree: disk.img, its partitions and their file systems); 503 when the remote node that owns its datastore is offline or not answering, 504 when it answers too late",
        "read",
        None,
        (200, Some("TreePage")),
        TREE_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}/files",
        "Download from a restore point (tree or image; for an image, its disk as disk.img). A file (path): its bytes, streamed, with Content-Length, Content-Type by extension, Content-Disposition (attachment; filename*=UTF-8''...), a strong ETag (the restore point never changes), Last-Modified (the file's mtime) and Accept-Ranges: bytes. Range: one range (bytes=a-b, a-, -n) answers 206 with Content-Range; several ranges answer 200 with the whole file; a range outside the file answers 416 with Content-Range: bytes */size. If-Range with the ETag or Last-Modified; If-None-Match / If-Modified-Since answer 304; If-Match / If-Unmodified-Since that do not match answer 412. HEAD answers the headers alone. A directory needs format=zip or format=tar (409 without): everything below it (files, directories, symlinks; modes and mtimes; special files left out) as one archive named <source>-<short id>-<dir>.<format>, streamed (no Content-Length); zip entries are stored (not compressed), zip64 when needed. A restore point on a remote node's datastore is read through that node. 400 for a path with '..' (percent-encoded too), NUL or over 4096 bytes; 404 for a path not in it; 409 for a symlink or special file; 503 when the remote node that holds the restore point is offline, not answering or too slow (a body already under way then ends early: the connection fails rather than deliver a short file)",
        "read",
        None,
        (200, Some("Binary")),
        FILES_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/search",
        "Find files across the tree restore points the caller may read (those GET /api/v1/restore-points lists for source, since, until), newest first: pattern is a glob matched against each entry's name, or against its whole path relative to the root when it has a '/' ('*.conf', 'etc/*.conf', 'home/**/*.pdf'); ignore_case; at most limit matches (1..=10000, default 1000; truncated says the limit cut the list). A remote node searches its own datastores (asked over the node protocol). images=true searches inside image restore points too (the files of the file systems on their partitions; it reads every image's file-system metadata), otherwise they are skipped. Restore points that cannot be searched (images without images=true, those on a remote node that is offline or does not answer in time) are listed in skipped with the reason; the others are still searched. 400 for a bad pattern",
        "read",
        None,
        (200, Some("SearchResult")),
        SEARCH_Q
    ),
    r!(
        "patch",
        "/api/v1/restore-points/{id}",
        "Protect a restore point (retention never removes it until unprotected) or lift that, and set its note",
        "manage",
        Some("RestorePointChange"),
        (200, Some("RestorePoint"))
    ),
    r!(
        "delete",
        "/api/v1/restore-points/{id}",
        "Delete a restore point: queues a forget task on its datastore's node and returns it; its space comes back at the datastore's next gc. 409 while it is protected (unprotect it first), served by a live export, or being removed already",
        "manage",
        None,
        (202, Some("Task"))
    ),
    r!(
        "post",
        "/api/v1/restore-points/{id}/restore",
        "Restore to a path on the datastore's node",
        "restore",
        Some("RestoreRequest"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/exports",
        "Exports (live ones; all=true adds ended ones), newest first",
        "read",
        None,
        (200, Some("Exports")),
        EXPORT_Q
    ),
    r!(
        "post",
        "/api/v1/exports",
        "Export a restore point on the node that owns its datastore (`arca mount`): an image as a disk over NBD or iSCSI, or any restore point's files over NFS (read-only; allow: the client address blocks, default the caller's address); poll it until active for its address. writable=true needs manage (restore-only users get 403); writable NFS, allow without NFS or a bad address block: 422",
        "restore",
        Some("NewExport"),
        (201, Some("Export"))
    ),
    r!(
        "get",
        "/api/v1/exports/{id}",
        "One export",
        "read",
        None,
        (200, Some("Export"))
    ),
    r!(
        "patch",
        "/api/v1/exports/{id}",
        "Extend a live export: it now ends ttl from now",
        "restore",
        Some("ExtendExport"),
        (200, Some("Export"))
    ),
    r!(
        "delete",
        "/api/v1/exports/{id}",
        "Stop an export; commit=true (needs manage) writes a writable export's changes as a new restore point (a commit-export task), else they are discarded",
        "restore",
        None,
        (200, Some("Export")),
        STOP_EXPORT_Q
    ),
    r!(
        "get",
        "/api/v1/audit",
        "The audit log, newest first; filters: actor (exactly), action (exactly, or a prefix ending in `.` such as `user.`), result (ok, denied, failed), since and until (Unix seconds, inclusive); 422 when since is after until",
        "read-audit",
        None,
        (200, Some("Audit")),
        AUDIT_Q
    ),
];

/// The component schemas, from the arca-model types (their doc comments
/// are the descriptions). Types the routes use are listed here; the types
/// they contain (ids, kinds, states, role bindings...) come along.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    api::ErrorBody,
    api::Health,
    api::Login,
    api::Session,
    api::Me,
    api::User,
    api::NewUser,
    api::UserChange,
    api::CreatedUser,
    api::ChangePassword,
    api::ResetPassword,
    api::PasswordChanged,
    api::Token,
    api::NewToken,
    api::TokenChange,
    api::CreatedToken,
    api::S3Key,
    api::NewS3Key,
    api::CreatedS3Key,
    api::Status,
    api::Settings,
    api::SettingsPatch,
    api::Project,
    api::NewProject,
    api::Node,
    api::NodeSettings,
    api::NewNode,
    api::CreatedNode,
    api::Datastore,
    api::DatastoreSettings,
    api::GcNow,
    api::VerifyNow,
    api::Source,
    api::NewSource,
    api::SourceChange,
    api::RestorePointsOnDelete,
    api::BackupNow,
    api::Policy,
    api::NewPolicy,
    api::PolicyChange,
    api::RetentionPreview,
    api::SourcePreview,
    api::RetentionItem,
    api::Task,
    api::TaskLog,
    api::Cancelled,
    api::RestorePoint,
    api::TreePage,
    api::TreeEntry,
    api::TreeEntryKind,
    api::SearchResult,
    api::SearchMatch,
    api::SearchSkipped,
    api::RestorePointChange,
    api::RestoreRequest,
    api::Export,
    api::NewExport,
    api::ExtendExport,
    api::AuditEntry,
    api::ProtectionReport,
    api::StorageReport,
    api::TaskReport,
)))]
struct Components;

/// Routes with a second success answer: (method, path, status, schema,
/// description).
const OTHER_OK: &[(&str, &str, u16, &str, &str)] = &[(
    "delete",
    "/api/v1/sources/{id}",
    202,
    "Tasks",
    "Removed with restore_points=remove: the forget tasks that delete its restore points",
)];

/// Lists the routes answer: (schema name, item schema).
const LISTS: &[(&str, &str)] = &[
    ("Users", "User"),
    ("Tokens", "Token"),
    ("S3Keys", "S3Key"),
    ("Projects", "Project"),
    ("Nodes", "Node"),
    ("Datastores", "Datastore"),
    ("Sources", "Source"),
    ("Policies", "Policy"),
    ("Tasks", "Task"),
    ("TaskLogs", "TaskLog"),
    ("RestorePoints", "RestorePoint"),
    ("Exports", "Export"),
    ("Audit", "AuditEntry"),
];

fn schemas() -> Value {
    use utoipa::OpenApi as _;
    let components = Components::openapi().components.unwrap_or_default();
    let mut out = Map::new();
    for (name, schema) in components.schemas {
        // Plain data: serializing it cannot fail.
        out.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    for (list, item) in LISTS {
        out.insert(
            list.to_string(),
            json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}}),
        );
    }
    out.insert("Text".into(), json!({"type": "string"}));
    out.insert(
        "Binary".into(),
        json!({"type": "string", "format": "binary"}),
    );
    out.insert("Object".into(), json!({"type": "object"}));
    Value::Object(out)
}

fn error_response(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The headers of a download's answers.
fn download_headers() -> Value {
    let h = |d: &str| json!({"schema": {"type": "string"}, "description": d});
    json!({
        "Content-Length": {"schema": {"type": "integer"}, "description": "bytes of the body (files only; archives are streamed without it)"},
        "Content-Disposition": h("attachment; filename=\"<ASCII fallback>\"; filename*=UTF-8''<percent-encoded name>"),
        "ETag": h("strong tag of the restore point and path"),
        "Last-Modified": h("the file's modification time"),
        "Accept-Ranges": h("bytes"),
    })
}

fn download_ok() -> Value {
    json!({
        "description": "The file's bytes, or the directory as an archive",
        "headers": download_headers(),
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}}
        }
    })
}

/// The other answers of a download: a range, not modified, a failed
/// precondition, a range outside the file, a directory without format.
fn download_responses(responses: &mut Map<String, Value>) {
    let mut partial = download_headers();
    partial["Content-Range"] =
        json!({"schema": {"type": "string"}, "description": "bytes a-b/size"});
    responses.insert("206".into(), json!({
        "description": "One range of the file (Range: bytes=a-b, a- or -n; If-Range matched)",
        "headers": partial,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    }));
    responses.insert(
        "304".into(),
        json!({"description": "Not modified (If-None-Match or If-Modified-Since)"}),
    );
    responses.insert(
        "409".into(),
        error_response("A directory without format, or a symlink or special file"),
    );
    responses.insert(
        "503".into(),
        error_response("The remote node that holds the restore point is offline, not answering or too slow; try again later"),
    );
    responses.insert(
        "412".into(),
        error_response("If-Match or If-Unmodified-Since does not match"),
    );
    let mut e = error_response("The range is outside the file");
    e["headers"] =
        json!({"Content-Range": {"schema": {"type": "string"}, "description": "bytes */size"}});
    responses.insert("416".into(), e);
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "description".into(),
            json!(format!("Permission: {}.", r.permission)),
        );
        let mut params = Vec::new();
        if r.path.contains("{id}") {
            let t = if r.path.starts_with("/api/v1/restore-points") {
                "string"
            } else {
                "integer"
            };
            params
                .push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": t}}));
        }
        for (name, t) in r.query {
            params.push(
                json!({"name": name, "in": "query", "required": false, "schema": reports::param(r, name, t)}),
            );
        }
        if !params.is_empty() {
            op.insert("parameters".into(), json!(params));
        }
        if let Some(req) = r.request {
            op.insert("requestBody".into(), json!({
                "required": !matches!(req, "BackupNow" | "GcNow" | "VerifyNow"),
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{req}")}}}
            }));
        }
        if r.permission != "public" {
            op.insert("security".into(), json!([{"bearer": []}]));
        }
        let mut responses = Map::new();
        let ok = match r.ok.1 {
            Some("Text") => {
                json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            Some("Binary") => download_ok(),
            Some(schema) if r.path.starts_with("/api/v1/reports/") => reports::ok(schema),
            Some(schema) => {
                json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
            }
            None => json!({"description": "Done"}),
        };
        responses.insert(r.ok.0.to_string(), ok);
        if r.ok.1 == Some("Binary") {
            download_responses(&mut responses);
        }
        for (m, p, code, schema, desc) in OTHER_OK {
            if (*m, *p) == (r.method, r.path) {
                responses.insert(
                    code.to_string(),
                    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
                );
            }
        }
        responses.insert("400".into(), error_response("Malformed request"));
        if r.permission != "public" {
            responses.insert(
                "401".into(),
                error_response("Not signed in, or the token is unknown, expired or revoked"),
            );
            responses.insert("403".into(), error_response("The role does not allow this"));
        } else if r.path.ends_with("/login") {
            responses.insert("401".into(), error_response("Wrong user name or password"));
        }
        if r.path.starts_with("/api/v1/auth/") {
            let mut e = error_response(
                "Too many failed sign-ins for the user name or from the address; try again after Retry-After seconds",
            );
            e["headers"] =
                json!({"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}});
            responses.insert("429".into(), e);
        }
        // A `project` filter names an object too (restore points), as does
        // a `user` filter (S3 keys).
        if r.path.contains("{id}")
            || r.query
                .iter()
                .any(|(n, _)| *n == "project" || (*n == "user" && r.path.ends_with("/s3-keys")))
            || reports::names_object(r)
        {
            responses.insert("404".into(), error_response(
                "No such object (an object of a project the caller cannot read answers the same)",
            ));
        }
        if r.request.is_some() || r.method != "get" {
            responses.insert(
                "409".into(),
                error_response("Conflicts with existing state"),
            );
            responses.insert("413".into(), error_response("Body larger than 1 MiB"));
            responses.insert("415".into(), error_response("Body is not JSON"));
            responses.insert("422".into(), error_response("Invalid values"));
        }
        // The audit log's filters are checked (lengths, since <= until).
        if r.path == "/api/v1/audit" {
            responses.insert("422".into(), error_response("Invalid filter values"));
        }
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(r.method.into(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Arca API", "version": env!("CARGO_PKG_VERSION"), "description": "Backup and recovery control plane. Sign in with POST /api/v1/auth/login, then send Authorization: Bearer <token>."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

mod reports;
#[cfg(test)]
mod tests;
