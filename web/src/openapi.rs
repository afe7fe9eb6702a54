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

pub use routes::ROUTES;

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
    api::KeyRotation,
    api::RestorePointsOnDelete,
    api::BackupNow,
    api::Hypervisor,
    api::NewHypervisor,
    api::SyncReport,
    api::ImportRequest,
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
    ("Hypervisors", "Hypervisor"),
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
        if r.path.contains("{name}") {
            params.push(json!({"name": "name", "in": "path", "required": true,
                "schema": {"type": "string", "enum": ["credentials", "s3"]}}));
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
            || r.path.contains("{name}")
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
        if r.path.ends_with("/sync") {
            responses.insert(
                "502".into(),
                error_response(
                    "The hypervisor could not be reached, or its SSH login or inventory failed",
                ),
            );
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
mod routes;
#[cfg(test)]
mod tests;
