//! Handlers. Each checks the caller's role for the project concerned,
//! validates its input, calls the catalog (or control) and, when it
//! changes something, writes the audit log. One module per resource;
//! this one holds what they share (extractors, the audit wrapper, input
//! checks, visibility, paging) and the few endpoints that belong to none
//! (health, metrics, the OpenAPI document, `me`).

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod datastores;
pub mod download;
pub mod exports;
pub(crate) mod hypervisors;
pub(crate) mod keys;
pub(crate) mod nodes;
pub(crate) mod policies;
pub(crate) mod projects;
pub(crate) mod reports;
pub(crate) mod restore_points;
pub(crate) mod s3_keys;
pub(crate) mod search;
pub(crate) mod sources;
pub(crate) mod tasks;
pub mod tokens;
pub(crate) mod users;

use std::fmt::Write as _;

use arca_catalog::{self as catalog, AuditResult, NodeState, ProjectId, TaskState};
use arca_model::api;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

use crate::auth::{self, Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;
/// A typed id from the path (`SourceId`, `TaskId`...).
pub(crate) type Id<T> = Result<Path<T>, PathRejection>;

/// The caller's IP address, for the audit log.
pub struct Remote(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Remote {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Remote(crate::remote(&parts.extensions)))
    }
}

/// Run a change and write its outcome to the audit log, both on the
/// blocking pool ([`AppState::call`]).
pub(crate) async fn audited<T, F>(
    s: &AppState,
    who: String,
    remote: &Remote,
    action: &'static str,
    target: String,
    f: F,
) -> ApiResult<T>
where
    F: FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    audited_patch(s, who, remote, action, target, false, f).await
}

/// [`audited`] for a PATCH, whose body is a JSON merge patch: when it
/// changes nothing (`unchanged`: `{}`) and succeeds, the handler answers
/// with the resource as it is and no audit record is written (a refusal
/// still is).
pub(crate) async fn audited_patch<T, F>(
    s: &AppState,
    who: String,
    remote: &Remote,
    action: &'static str,
    target: String,
    unchanged: bool,
    f: F,
) -> ApiResult<T>
where
    F: FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    let remote = remote.0.clone();
    s.call(move |s| match f(s) {
        Ok(v) if unchanged => Ok(v),
        r => audit_outcome(s, &who, &remote, action, &target, r),
    })
    .await
}

/// Whether a PATCH body changes nothing: every field absent (`{}`).
pub(crate) fn no_change<T: Default + PartialEq>(body: &T) -> bool {
    *body == T::default()
}

/// Write the outcome `r` of a change to the audit log (on the blocking
/// pool); returns `r`.
fn audit_outcome<T>(
    s: &AppState,
    who: &str,
    remote: &str,
    action: &str,
    target: &str,
    r: ApiResult<T>,
) -> ApiResult<T> {
    let (result, detail) = match &r {
        Ok(_) => (AuditResult::Ok, String::new()),
        Err(e) => (
            if e.status == StatusCode::FORBIDDEN {
                AuditResult::Denied
            } else {
                AuditResult::Failed
            },
            e.message.clone(),
        ),
    };
    if let Err(e) = s
        .catalog
        .audit(who, action, target, remote, result, &detail)
    {
        return Err(ApiError::internal(format!("audit log: {e}")));
    }
    r
}

pub(crate) fn check_name(what: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{what} name {name:?} must be 1-128 letters, digits, '.', '_', '-' or '@', not starting with '.' or '-'"),
        ))
    }
}

pub(crate) fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
}

fn check_tags(tags: &[String]) -> ApiResult<()> {
    if tags.len() > 64 {
        return Err(invalid("at most 64 tags"));
    }
    for t in tags {
        check_name("tag", t)?;
    }
    Ok(())
}

/// 404, exactly as for an object that does not exist, unless the caller
/// may read `project`: objects of other projects are not there for the
/// caller (a 403 would tell that they exist). `what` names the object as
/// the catalog's own "not found" does (`source 5`), from what the caller
/// asked for only.
pub(crate) fn visible(
    p: &Principal,
    project: ProjectId,
    what: impl FnOnce() -> String,
) -> ApiResult<()> {
    if p.can(Action::Read, Some(project)) {
        Ok(())
    } else {
        Err(catalog::Error::NotFound(what()).into())
    }
}

/// The items of the projects the caller may read.
fn readable<T>(p: &Principal, items: Vec<T>, project: impl Fn(&T) -> ProjectId) -> Vec<T> {
    let visible = p.projects(Action::Read);
    items
        .into_iter()
        .filter(|x| visible.as_ref().is_none_or(|v| v.contains(&project(x))))
        .collect()
}

fn changed(s: &AppState) -> ApiResult<()> {
    arca_control::assign_policies(&s.catalog)?;
    s.changed.notify_one();
    Ok(())
}

// ---- health, metrics, openapi ----

pub async fn healthz(State(s): State<AppState>) -> ApiResult<Json<api::Health>> {
    let v = s.db.call(|c| c.schema_version()).await?;
    Ok(Json(api::Health {
        status: "ok".into(),
        catalog_schema: v,
    }))
}

/// Prometheus metrics: any valid token whose scope allows it (full,
/// read-only or metrics); 401 without one.
pub async fn metrics(
    State(s): State<AppState>,
    _caller: auth::MetricsReader,
) -> ApiResult<impl IntoResponse> {
    let out = s.db.call(metrics_text).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    ))
}

/// The Prometheus text of [`metrics`].
fn metrics_text(c: &catalog::Catalog) -> catalog::Result<String> {
    let mut out = String::new();
    out += "# HELP arca_tasks Tasks by state.\n# TYPE arca_tasks gauge\n";
    let counts = c.task_counts()?;
    for &st in TaskState::ALL {
        let n = counts.iter().find(|(k, _)| *k == st).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "arca_tasks{{state=\"{st}\"}} {n}");
    }
    out += "# HELP arca_restore_points Restore points in the catalog.\n# TYPE arca_restore_points gauge\n";
    let _ = writeln!(out, "arca_restore_points {}", c.restore_point_count()?);
    out += "# HELP arca_backup_bytes_added_total Bytes added to datastores by backups (after dedup and compression).\n# TYPE arca_backup_bytes_added_total counter\n";
    let _ = writeln!(
        out,
        "arca_backup_bytes_added_total {}",
        c.bytes_backed_up()?
    );
    out += "# HELP arca_datastore_bytes_used Bytes a datastore uses on disk.\n# TYPE arca_datastore_bytes_used gauge\n";
    let ds = c.datastores()?;
    for d in &ds {
        let _ = writeln!(
            out,
            "arca_datastore_bytes_used{{datastore=\"{}\"}} {}",
            d.name, d.bytes_used
        );
    }
    out += "# HELP arca_datastore_dedup_ratio Logical bytes of all restore points per byte stored.\n# TYPE arca_datastore_dedup_ratio gauge\n";
    for d in &ds {
        let r = if d.bytes_used > 0 {
            d.bytes_logical as f64 / d.bytes_used as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "arca_datastore_dedup_ratio{{datastore=\"{}\"}} {r:.3}",
            d.name
        );
    }
    out += "# HELP arca_node_up Whether a node is online.\n# TYPE arca_node_up gauge\n";
    let nodes = c.nodes()?;
    for n in &nodes {
        let _ = writeln!(
            out,
            "arca_node_up{{node=\"{}\"}} {}",
            n.name,
            u8::from(n.state == NodeState::Online)
        );
    }
    let _ = writeln!(
        out,
        "# HELP arca_nodes_up Nodes online.\n# TYPE arca_nodes_up gauge\narca_nodes_up {}",
        nodes
            .iter()
            .filter(|n| n.state == NodeState::Online)
            .count()
    );
    source_metrics(&mut out, &c.source_freshness()?, catalog::now());
    Ok(out)
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per source: the newest restore point's time and size, and whether the
/// policy's RPO is met (sources whose policy has an RPO only).
fn source_metrics(out: &mut String, all: &[catalog::SourceFreshness], now: i64) {
    let labels = |f: &catalog::SourceFreshness| {
        format!(
            "source=\"{}\",project=\"{}\"",
            label(&f.source),
            label(&f.project)
        )
    };
    *out += "# HELP arca_source_last_success_timestamp_seconds Time of the newest restore point of a source.\n# TYPE arca_source_last_success_timestamp_seconds gauge\n";
    for f in all {
        if let Some(t) = f.last_time {
            let _ = writeln!(
                out,
                "arca_source_last_success_timestamp_seconds{{{}}} {t}",
                labels(f)
            );
        }
    }
    *out += "# HELP arca_source_last_restore_point_bytes Size of the newest restore point of a source.\n# TYPE arca_source_last_restore_point_bytes gauge\n";
    for f in all {
        if let Some(b) = f.last_bytes {
            let _ = writeln!(
                out,
                "arca_source_last_restore_point_bytes{{{}}} {b}",
                labels(f)
            );
        }
    }
    *out += "# HELP arca_source_rpo_met Whether a source's newest restore point is within its policy's RPO (1) or not (0).\n# TYPE arca_source_rpo_met gauge\n";
    for f in all {
        if let Some(met) = f.rpo_met(now) {
            let _ = writeln!(
                out,
                "arca_source_rpo_met{{{}}} {}",
                labels(f),
                u8::from(met)
            );
        }
    }
}

pub async fn openapi_json() -> Json<Value> {
    Json(crate::openapi::document())
}

// ---- auth (sign-in and passwords: accounts) ----

/// What `arca status` shows: the server's version, its S3 gateway's
/// address and its nodes. Any signed-in user.
pub async fn status(State(s): State<AppState>, _p: Principal) -> ApiResult<Json<api::Status>> {
    let s3 = s.s3_endpoint.clone();
    let nodes = s.db.call(|c| c.nodes()).await?;
    Ok(Json(api::Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        s3_endpoint: s3,
        nodes: nodes.len() as u64,
        nodes_online: nodes
            .iter()
            .filter(|n| n.state == NodeState::Online)
            .count() as u64,
    }))
}

pub async fn me(p: Principal) -> Json<api::Me> {
    Json(api::Me {
        token_id: p.token_id,
        user: p.user.to_api(),
        token: p.token.to_api(),
        roles: all(p.roles),
        csrf: p.csrf,
    })
}

pub(crate) fn any_role(p: &Principal) -> ApiResult<()> {
    if p.roles.is_empty() {
        Err(ApiError::forbidden(format!("{} has no role", p.name())))
    } else {
        Ok(())
    }
}

/// A query's `limit` (default 100) and `offset` (default 0), checked.
fn page(limit: Option<i64>, offset: Option<i64>) -> ApiResult<(i64, i64)> {
    let limit = limit.unwrap_or(100);
    let offset = offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "limit must be 1..=1000 and offset >= 0",
        ));
    }
    Ok((limit, offset))
}
