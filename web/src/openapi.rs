//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! One table, [`ROUTES`], lists every endpoint with its summary, request
//! body, response and the permission it needs; the document and
//! docs/api.md are both derived from it, so they cannot drift apart from
//! each other. The in-process tests check that every route in the router
//! is in the table and the other way round.

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

const LIST_Q: &[(&str, &str)] = &[("limit", "integer"), ("offset", "integer")];
const TASK_Q: &[(&str, &str)] = &[
    ("state", "string"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const RP_Q: &[(&str, &str)] = &[
    ("source", "string"),
    ("kind", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];

const EXPORT_Q: &[(&str, &str)] = &[("all", "boolean")];
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
        "Sign in; returns a 12-hour session token. 5 failures per user name or 20 per address within 15 minutes lock further attempts (429 with Retry-After)",
        "public",
        Some("Login"),
        (200, Some("Session"))
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
        "delete",
        "/api/v1/tokens/{id}",
        "Revoke a token (yours, or any as admin) and every token made with it",
        "signed-in",
        None,
        (204, None)
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
        "delete",
        "/api/v1/sources/{id}",
        "Remove a source (its restore points stay)",
        "manage",
        None,
        (204, None)
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
        "delete",
        "/api/v1/policies/{id}",
        "Remove a policy",
        "manage",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/tasks",
        "Tasks, newest first",
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
        "get",
        "/api/v1/restore-points",
        "Restore points, newest first",
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
        "Export an image restore point over NBD or iSCSI on the node that owns its datastore (`arca mount`); poll it until active for its address. writable=true needs manage (restore-only users get 403)",
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
        "The audit log, newest first",
        "read-audit",
        None,
        (200, Some("Audit")),
        LIST_Q
    ),
];

fn obj(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props, "additionalProperties": false})
}

fn open_obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

fn arr(item: &str) -> Value {
    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}})
}

fn schemas() -> Value {
    let int = json!({"type": "integer"});
    let oint = json!({"type": ["integer", "null"]});
    let s = json!({"type": "string"});
    let os = json!({"type": ["string", "null"]});
    let strs = json!({"type": "array", "items": {"type": "string"}});
    // Request-side constraints, the same as the handlers check.
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$"});
    let tags = json!({"type": "array", "maxItems": 64, "items": name});
    let abs_path = json!({"type": "string", "pattern": "^/[^\\u0000]*$", "maxLength": 4096});
    let oname = json!({"anyOf": [name, {"type": "null"}]});
    let roots = json!({"type": "array", "maxItems": 64, "items": abs_path, "description": "absolute directories, not /"});
    let password = json!({"type": "string", "minLength": 10, "maxLength": 1024, "description": "at least 10 characters, not the user name"});
    let count = json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64});
    let retention = obj(
        &[],
        json!({
            "keep_last": count, "keep_hourly": count, "keep_daily": count,
            "keep_weekly": count, "keep_monthly": count, "keep_yearly": count,
        }),
    );
    let role = json!({"type": "object", "properties": {"role": {"type": "string", "enum": ["admin", "operator", "restore-only", "auditor"]}, "project_id": oint}});
    let user = open_obj(
        json!({"id": int, "name": s, "disabled": {"type": "boolean"}, "roles": {"type": "array", "items": role}, "created_at": int}),
    );
    let scope = json!({"type": "string", "enum": ["full", "read-only", "metrics"]});
    let token = open_obj(
        json!({"id": int, "user_id": oint, "node_id": oint, "name": s, "kind": s, "created_at": int, "expires_at": oint, "revoked_at": oint, "last_used_at": oint,
            "parent_token_id": {"type": ["integer", "null"], "description": "the token this one was made with (null: made with a sign-in session)"},
            "scope": scope, "projects": {"type": ["array", "null"], "items": int, "description": "the projects the token is limited to (null: all of the user's)"},
            "state": {"type": "string", "enum": ["active", "revoked", "expired", "parent-revoked", "parent-expired"]}}),
    );
    let source = open_obj(
        json!({"id": int, "name": s, "kind": s, "path": s, "node_id": int, "project_id": int, "tags": strs, "settings": {}, "policy_id": oint, "assigned_by": s, "created_at": int}),
    );
    let policy = open_obj(
        json!({"id": int, "name": s, "project_id": int, "schedule": s, "backup_window": os, "retention": {"$ref": "#/components/schemas/Retention"}, "datastore_id": int, "priority": int, "match_pattern": os, "match_tags": strs, "rpo_seconds": oint, "enabled": {"type": "boolean"}, "created_at": int}),
    );
    let task = open_obj(
        json!({"id": int, "kind": s, "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]}, "project_id": int, "source_id": oint, "policy_id": oint, "datastore_id": oint, "node_id": oint, "params": {}, "priority": int, "slot": oint, "attempt": int, "max_attempts": int, "not_before": int, "lease_until": oint, "cancel_requested": {"type": "boolean"}, "bytes_done": int, "bytes_total": int, "progress": {"type": ["number", "null"]}, "result": {}, "error": os, "created_by": s, "created_at": int, "started_at": oint, "finished_at": oint}),
    );
    let rp = open_obj(
        json!({"id": s, "datastore_id": int, "source_id": oint, "source_name": s, "project_id": int, "kind": s, "time": int, "bytes_total": int, "bytes_added": int, "files": int, "hostname": s, "task_id": oint, "created_at": int, "state": {"type": "string", "enum": ["ok", "damaged"]}, "damage": os, "verified_at": oint}),
    );
    let paths = json!({"type": "array", "items": s});
    let node = open_obj(
        json!({"id": int, "name": s, "state": s, "embedded": {"type": "boolean"}, "max_tasks": int, "version": s, "last_heartbeat": oint, "created_at": int,
            "source_roots": paths, "restore_roots": paths, "effective_restore_roots": paths, "allow_block_devices": {"type": "boolean"}, "data_dir": s}),
    );
    let ds = open_obj(
        json!({"id": int, "name": s, "node_id": int, "path": s, "bytes_used": int, "bytes_logical": int, "created_at": int, "gc_schedule": s, "verify_schedule": s, "verify_max_age_days": int}),
    );
    let project = open_obj(json!({"id": int, "name": s}));
    let export = open_obj(
        json!({"id": int, "restore_point_id": s, "datastore_id": int, "node_id": int, "project_id": int, "protocol": {"type": "string", "enum": ["nbd", "iscsi"]}, "writable": {"type": "boolean"}, "name": s, "state": {"type": "string", "enum": ["starting", "active", "failed", "stopped", "expired"]}, "address": {"type": ["string", "null"], "description": "Where clients connect, credentials included (nbd[s]://host:port/<name>-<secret>, iscsi://<name>%<secret>@host:port/<iqn>/0); only for users who may restore in the project"}, "secret": {"type": "string", "description": "The export's secret (NBD name suffix, iSCSI CHAP secret); only for users who may restore in the project"}, "chap_user": {"type": "string", "description": "iSCSI CHAP user name"}, "commands": {"type": "array", "items": s, "description": "Client commands to paste"}, "error": os, "on_stop": s, "commit_task_id": oint, "created_by": s, "created_at": int, "expires_at": int, "stopped_at": oint}),
    );
    let log = open_obj(json!({"seq": int, "time": int, "level": s, "message": s}));
    let audit = open_obj(
        json!({"id": int, "time": int, "actor": s, "action": s, "target": s, "remote": s, "result": s, "detail": s}),
    );
    let error = json!({"type": "object", "required": ["error", "message"], "properties": {"error": s, "message": s}});
    json!({
        "Error": error,
        "Health": open_obj(json!({"status": s, "catalog_schema": int})),
        "Text": s,
        "Object": {"type": "object"},
        "Login": obj(&["username", "password"], json!({"username": s, "password": s})),
        "Session": open_obj(json!({"token": s, "token_id": int, "expires_at": int, "user": {"$ref": "#/components/schemas/User"}})),
        "Me": open_obj(json!({"user": {"$ref": "#/components/schemas/User"}, "token_id": int, "token": {"$ref": "#/components/schemas/Token"}, "roles": {"type": "array", "items": role}})),
        "User": user,
        "Users": arr("User"),
        "NewUser": obj(&["name"], json!({"name": name, "password": password, "roles": {"type": "array", "items": obj(&["role"], json!({"role": {"type": "string", "enum": ["admin", "operator", "restore-only", "auditor"]}, "project": {"type": ["integer", "null"], "minimum": 1}}))}})),
        "CreatedUser": open_obj(json!({"user": {"$ref": "#/components/schemas/User"}, "password": s})),
        "ChangePassword": obj(&["current_password", "new_password"], json!({"current_password": s, "new_password": password, "revoke_api_tokens": {"type": "boolean", "description": "also revoke your API tokens (default: only your other sessions)"}})),
        "ResetPassword": obj(&[], json!({"new_password": password, "revoke_api_tokens": {"type": "boolean"}})),
        "PasswordChanged": open_obj(json!({"user": {"$ref": "#/components/schemas/User"}, "signed_out": open_obj(json!({"sessions": int, "api_tokens": int})), "password": {"type": "string", "description": "the generated password, when none was given"}})),
        "Token": token,
        "Tokens": arr("Token"),
        "NewToken": obj(&["name"], json!({"name": name,
            "expires_in_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 316224000, "description": "at most the maximum token lifetime (GET /api/v1/settings; 90 days by default); left out: the maximum"},
            "scope": {"anyOf": [scope, {"type": "null"}], "description": "full (the user's rights), read-only (GET requests only) or metrics (GET /metrics only); default: the scope of the token making it"},
            "projects": {"type": ["array", "null"], "minItems": 1, "maxItems": 64, "items": {"type": "integer", "minimum": 1}, "description": "limit the token to these projects; default: those of the token making it"}})),
        "Settings": open_obj(json!({"token_max_lifetime_s": int})),
        "SettingsPatch": obj(&[], json!({"token_max_lifetime_s": {"type": ["integer", "null"], "minimum": 3600, "maximum": 316224000, "description": "the longest lifetime of new API tokens, in seconds (default 7776000, 90 days)"}})),
        "CreatedToken": open_obj(json!({"token": s, "info": {"$ref": "#/components/schemas/Token"}})),
        "Project": project,
        "Projects": arr("Project"),
        "NewProject": obj(&["name"], json!({"name": name})),
        "Node": node,
        "Nodes": arr("Node"),
        "NodeSettings": obj(&[], json!({"source_roots": roots, "restore_roots": roots, "allow_block_devices": {"type": "boolean"}})),
        "NewNode": obj(&["name"], json!({"name": name, "max_tasks": {"type": "integer", "minimum": 1, "maximum": 64}})),
        "CreatedNode": open_obj(json!({"node": {"$ref": "#/components/schemas/Node"}, "token": s, "token_id": int})),
        "Datastore": ds,
        "Datastores": arr("Datastore"),
        "DatastoreSettings": obj(&[], json!({"gc_schedule": {"type": "string", "maxLength": 256, "description": "daily, weekly, every 6h, Sun 03:00, or never"}, "verify_schedule": {"type": "string", "maxLength": 256}, "verify_max_age_days": {"type": "integer", "minimum": 0, "maximum": 3650}})),
        "GcNow": obj(&[], json!({"grace_seconds": {"type": "integer", "minimum": 0, "maximum": 31622400}})),
        "VerifyNow": obj(&[], json!({"all": {"type": "boolean"}, "read_data_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}})),
        "Source": source,
        "Sources": arr("Source"),
        "NewSource": obj(&["name", "kind", "path"], json!({"name": name, "kind": {"type": "string", "enum": ["files", "image"]}, "path": abs_path, "node": os, "project": {"type": ["integer", "null"], "minimum": 1}, "tags": tags, "policy": os})),
        "BackupNow": obj(&[], json!({"datastore": oname})),
        "Retention": retention,
        "Policy": policy,
        "Policies": arr("Policy"),
        "NewPolicy": obj(&["name", "schedule"], json!({"name": name, "schedule": {"type": "string", "maxLength": 256, "description": "every 15m, hourly, daily, Mon..Fri 22:00, *:0/15 (UTC)"}, "project": {"type": ["integer", "null"], "minimum": 1}, "window": {"type": ["string", "null"], "maxLength": 256}, "retention": {"$ref": "#/components/schemas/Retention"}, "datastore": os, "priority": {"type": "integer", "minimum": -1000, "maximum": 1000}, "match_pattern": {"type": ["string", "null"], "maxLength": 256}, "match_tags": tags, "rpo_s": {"type": ["integer", "null"], "minimum": 1, "maximum": 31622400}})),
        "Task": task,
        "Tasks": arr("Task"),
        "TaskLog": log,
        "TaskLogs": arr("TaskLog"),
        "Cancelled": open_obj(json!({"id": int, "state": s})),
        "RestorePoint": rp,
        "RestorePoints": arr("RestorePoint"),
        "RestoreRequest": obj(&["target"], json!({"target": abs_path, "path": os, "node": os, "overwrite": {"type": "boolean", "description": "write into a target that holds data"}, "special_files": {"type": "boolean", "description": "recreate device nodes and keep setuid/setgid bits and file capabilities (admins of all projects only; without it they are skipped or cleared and the task log says so)"}})),
        "Export": export,
        "Exports": arr("Export"),
        "ExtendExport": obj(&["ttl"], json!({"ttl": {"type": "string", "pattern": "^[0-9]{1,7}[smhd]?$", "description": "90s, 30m, 2h, 7d; at most 30d"}})),
        "NewExport": obj(&["restore_point"], json!({"restore_point": {"type": "string", "pattern": "^[0-9a-f]{1,64}$"}, "protocol": {"type": "string", "enum": ["nbd", "iscsi"]}, "writable": {"type": "boolean"}, "ttl": {"type": ["string", "null"], "pattern": "^[0-9]{1,7}[smhd]?$", "description": "90s, 30m, 2h (default), 7d; at most 30d"}})),
        "AuditEntry": audit,
        "Audit": arr("AuditEntry"),
    })
}

fn error_response(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
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
                json!({"name": name, "in": "query", "required": false, "schema": {"type": t}}),
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
            Some(schema) => {
                json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
            }
            None => json!({"description": "Done"}),
        };
        responses.insert(r.ok.0.to_string(), ok);
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
        if r.path.contains("{id}") {
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
