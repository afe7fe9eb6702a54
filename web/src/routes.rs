//! Handlers. Each checks the caller's role for the project concerned,
//! validates its input, calls the catalog (or control) and, when it
//! changes something, writes the audit log.

use std::fmt::Write as _;

use arca_catalog::{self as catalog, NewTask, Retention, Role, RoleBinding, TaskState};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;
pub(crate) type Id = Result<Path<i64>, PathRejection>;

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
    let remote = remote.0.clone();
    s.call(move |s| audit_outcome(s, &who, &remote, action, &target, f(s)))
        .await
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
        Ok(_) => ("ok", String::new()),
        Err(e) => (
            if e.status == StatusCode::FORBIDDEN {
                "denied"
            } else {
                "failed"
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
pub(crate) fn visible(p: &Principal, project: i64, what: impl FnOnce() -> String) -> ApiResult<()> {
    if p.can(Action::Read, Some(project)) {
        Ok(())
    } else {
        Err(catalog::Error::NotFound(what()).into())
    }
}

/// The items of the projects the caller may read.
fn readable<T>(p: &Principal, items: Vec<T>, project: impl Fn(&T) -> i64) -> Vec<T> {
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

pub async fn healthz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let v = s.db.call(|c| c.schema_version()).await?;
    Ok(Json(json!({"status": "ok", "catalog_schema": v})))
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
    for st in ["queued", "running", "succeeded", "failed", "cancelled"] {
        let n = counts.iter().find(|(k, _)| k == st).map_or(0, |(_, n)| *n);
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
            u8::from(n.state == "online")
        );
    }
    let _ = writeln!(
        out,
        "# HELP arca_nodes_up Nodes online.\n# TYPE arca_nodes_up gauge\narca_nodes_up {}",
        nodes.iter().filter(|n| n.state == "online").count()
    );
    Ok(out)
}

pub async fn openapi_json() -> Json<Value> {
    Json(crate::openapi::document())
}

// ---- auth (sign-in and passwords: crate::accounts) ----

pub async fn me(p: Principal) -> Json<Value> {
    Json(json!({"user": p.user, "token_id": p.token_id, "token": p.token, "roles": p.roles}))
}

// ---- users and tokens ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    role: String,
    #[serde(default)]
    project: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    roles: Vec<RoleIn>,
}

pub async fn list_users(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(Action::Administer, None)?;
    Ok(Json(json!(s.db.call(|c| c.users()).await?)))
}

pub async fn get_user(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    if p.user.id != id {
        p.require(Action::Administer, None)?;
    }
    Ok(Json(json!(s.db.call(move |c| c.user(id)).await?)))
}

pub async fn add_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    let target = b.name.clone();
    // Argon2 runs on the blocking pool, before the (synchronous) change.
    let (password, generated) = match &b.password {
        Some(pw) => (pw.clone(), false),
        None => (auth::random_password(), true),
    };
    let hash = match auth::check_new_password(&b.name, &password) {
        Ok(()) if p.can(Action::Administer, None) => Some(auth::hash(password.clone()).await),
        _ => None,
    };
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "user.add",
        target,
        move |s| {
            p.require(Action::Administer, None)?;
            check_name("user", &b.name)?;
            let mut roles = Vec::new();
            for r in &b.roles {
                let role = Role::parse(&r.role).ok_or_else(|| {
                    invalid(format!(
                        "unknown role {:?}; roles are admin, operator, restore-only, auditor",
                        r.role
                    ))
                })?;
                roles.push(RoleBinding {
                    role,
                    project_id: r.project,
                });
            }
            auth::check_new_password(&b.name, &password)?;
            let hash = hash.ok_or_else(|| ApiError::internal("the password was not hashed"))??;
            let u = s.catalog.add_user(&b.name, &hash, &roles)?;
            let mut v = json!({"user": u});
            if generated {
                v["password"] = json!(password);
            }
            Ok((StatusCode::CREATED, Json(v)))
        },
    )
    .await
}

pub async fn delete_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "user.delete",
        id.to_string(),
        move |s| {
            p.require(Action::Administer, None)?;
            if id == p.user.id {
                return Err(ApiError::conflict("you cannot delete yourself"));
            }
            s.catalog.delete_user(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

// Tokens and settings: crate::tokens.

// ---- projects, nodes, datastores ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
}

pub async fn list_projects(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    let all = s.db.call(|c| c.projects()).await?;
    Ok(Json(json!(readable(&p, all, |x| x.id))))
}

pub async fn add_project(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewProject>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "project.add",
        b.name.clone(),
        move |s| {
            p.require(Action::Administer, None)?;
            check_name("project", &b.name)?;
            Ok((
                StatusCode::CREATED,
                Json(json!(s.catalog.add_project(&b.name)?)),
            ))
        },
    )
    .await
}

fn any_role(p: &Principal) -> ApiResult<()> {
    if p.roles.is_empty() {
        Err(ApiError::forbidden(format!("{} has no role", p.name())))
    } else {
        Ok(())
    }
}

pub async fn list_nodes(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    any_role(&p)?;
    let nodes = s.db.call(|c| c.nodes()).await?;
    Ok(Json(crate::nodes::nodes_json(&nodes)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    name: String,
    #[serde(default = "two")]
    max_tasks: i64,
}

fn two() -> i64 {
    2
}

/// A remote node and its token (shown once). The node registers with
/// `arca node --server URL --token TOKEN`.
pub async fn add_node(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewNode>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "node.add",
        b.name.clone(),
        move |s| {
            p.require(Action::Administer, None)?;
            check_name("node", &b.name)?;
            if !(1..=64).contains(&b.max_tasks) {
                return Err(invalid("max_tasks must be between 1 and 64"));
            }
            let node = s.catalog.add_node(&b.name, b.max_tasks)?;
            let (secret, hash) = auth::new_secret();
            let t = s
                .catalog
                .add_token(None, Some(node.id), &b.name, "node", &hash, None)?;
            Ok((
                StatusCode::CREATED,
                Json(json!({"node": node, "token": secret, "token_id": t.id})),
            ))
        },
    )
    .await
}

pub async fn list_datastores(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    any_role(&p)?;
    Ok(Json(json!(s.db.call(|c| c.datastores()).await?)))
}

// ---- sources ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSource {
    name: String,
    kind: String,
    path: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    project: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    policy: Option<String>,
}

pub async fn list_sources(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    let all = s.db.call(|c| c.sources()).await?;
    Ok(Json(json!(readable(&p, all, |x| x.project_id))))
}

pub async fn get_source(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let src = s.db.call(move |c| c.source(id)).await?;
    visible(&p, src.project_id, || format!("source {id}"))?;
    p.require(Action::Read, Some(src.project_id))?;
    Ok(Json(json!(src)))
}

fn node_id(s: &AppState, name: Option<&str>) -> ApiResult<i64> {
    let nodes = s.catalog.nodes()?;
    match name {
        Some(n) => nodes
            .iter()
            .find(|x| x.name == n)
            .map(|x| x.id)
            .ok_or_else(|| invalid(format!("unknown node {n:?}"))),
        None => nodes
            .iter()
            .find(|x| x.embedded)
            .or(nodes.first())
            .map(|x| x.id)
            .ok_or_else(|| invalid("no node is registered")),
    }
}

pub async fn add_source(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewSource>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.add",
        b.name.clone(),
        move |s| {
            let project = b.project.unwrap_or(1);
            p.require(Action::Manage, Some(project))?;
            check_name("source", &b.name)?;
            check_tags(&b.tags)?;
            if !matches!(b.kind.as_str(), "files" | "image") {
                return Err(invalid(format!(
                    "kind {:?}: sources are \"files\" or \"image\"",
                    b.kind
                )));
            }
            if !b.path.starts_with('/') || b.path.len() > 4096 || b.path.contains('\0') {
                return Err(invalid("path must be an absolute path on the node"));
            }
            let node = node_id(s, b.node.as_deref())?;
            let path = crate::nodes::check_source(s, node, &b.path)?;
            let policy = match &b.policy {
                Some(name) => {
                    // Only the source's project's policies have names here.
                    let pol = s.catalog.policy_by_name(project, name)?.ok_or_else(|| {
                        invalid(format!("unknown policy {name:?} in project {project}"))
                    })?;
                    Some(pol.id)
                }
                None => None,
            };
            let src = s.catalog.add_source(
                &b.name,
                &b.kind,
                &path,
                node,
                project,
                &b.tags,
                &json!({}),
                policy,
            )?;
            changed(s)?;
            Ok((StatusCode::CREATED, Json(json!(s.catalog.source(src.id)?))))
        },
    )
    .await
}

pub async fn delete_source(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.delete",
        id.to_string(),
        move |s| {
            let src = s.catalog.source(id)?;
            visible(&p, src.project_id, || format!("source {id}"))?;
            p.require(Action::Manage, Some(src.project_id))?;
            s.catalog.delete_source(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupNow {
    #[serde(default)]
    datastore: Option<String>,
}

pub async fn backup_now(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Path(id) = id?;
    // The body is optional here.
    let b: BackupNow = if body.iter().all(u8::is_ascii_whitespace) {
        BackupNow::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid(format!("body: {e}")))?
    };
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.backup",
        id.to_string(),
        move |s| {
            let src = s.catalog.source(id)?;
            visible(&p, src.project_id, || format!("source {id}"))?;
            p.require(Action::Manage, Some(src.project_id))?;
            let ds = match (&b.datastore, src.policy_id) {
                (Some(name), _) => {
                    s.catalog
                        .datastore_by_name(name)?
                        .ok_or_else(|| invalid(format!("unknown datastore {name:?}")))?
                        .id
                }
                // The policy's datastore, or the first one, as placed on
                // the source's node (that node's datastore of that name).
                (None, pid) => {
                    let all = s.catalog.datastores()?;
                    let want = match pid {
                        Some(pid) => s.catalog.policy(pid)?.datastore_id,
                        None => all
                            .first()
                            .map(|d| d.id)
                            .ok_or_else(|| invalid("no datastore"))?,
                    };
                    arca_control::place(&all, want, src.node_id)
                }
            };
            let t = s.catalog.add_task(&NewTask {
                kind: "backup".into(),
                project_id: src.project_id,
                source_id: Some(src.id),
                datastore_id: Some(ds),
                node_id: Some(src.node_id),
                params: json!({}),
                priority: 10,
                max_attempts: 1,
                not_before: catalog::now(),
                created_by: p.name().to_string(),
                ..Default::default()
            })?;
            s.changed.notify_one();
            Ok((StatusCode::ACCEPTED, Json(json!(t))))
        },
    )
    .await
}

// ---- policies ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    name: String,
    schedule: String,
    #[serde(default)]
    project: Option<i64>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    retention: Retention,
    #[serde(default)]
    datastore: Option<String>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    match_pattern: Option<String>,
    #[serde(default)]
    match_tags: Vec<String>,
    #[serde(default)]
    rpo_s: Option<i64>,
}

pub async fn list_policies(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    let all = s.db.call(|c| c.policies()).await?;
    Ok(Json(json!(readable(&p, all, |x| x.project_id))))
}

pub async fn get_policy(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let pol = s.db.call(move |c| c.policy(id)).await?;
    visible(&p, pol.project_id, || format!("policy {id}"))?;
    p.require(Action::Read, Some(pol.project_id))?;
    Ok(Json(json!(pol)))
}

pub async fn add_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewPolicy>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "policy.add",
        b.name.clone(),
        move |s| {
            let project = b.project.unwrap_or(1);
            p.require(Action::Manage, Some(project))?;
            check_name("policy", &b.name)?;
            check_tags(&b.match_tags)?;
            let sched = arca_control::parse_schedule(&b.schedule)?;
            if let Some(w) = &b.window {
                arca_control::parse_window(w)?;
            }
            if let Some(pat) = &b.match_pattern {
                if pat.len() > 256 {
                    return Err(invalid("match_pattern is longer than 256 characters"));
                }
            }
            if !(-1000..=1000).contains(&b.priority) {
                return Err(invalid("priority must be between -1000 and 1000"));
            }
            if b.rpo_s.is_some_and(|r| !(1..=366 * 86_400).contains(&r)) {
                return Err(invalid("rpo_s must be between 1 second and a year"));
            }
            let ds = match &b.datastore {
                Some(n) => {
                    s.catalog
                        .datastore_by_name(n)?
                        .ok_or_else(|| invalid(format!("unknown datastore {n:?}")))?
                        .id
                }
                None => s
                    .catalog
                    .datastores()?
                    .first()
                    .map(|d| d.id)
                    .ok_or_else(|| invalid("no datastore"))?,
            };
            let pol = s.catalog.add_policy(
                &b.name,
                project,
                &sched.to_string(),
                b.window.as_deref(),
                &b.retention,
                ds,
                b.priority,
                b.match_pattern.as_deref(),
                &b.match_tags,
                b.rpo_s,
            )?;
            changed(s)?;
            Ok((StatusCode::CREATED, Json(json!(pol))))
        },
    )
    .await
}

pub async fn delete_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "policy.delete",
        id.to_string(),
        move |s| {
            let pol = s.catalog.policy(id)?;
            visible(&p, pol.project_id, || format!("policy {id}"))?;
            p.require(Action::Manage, Some(pol.project_id))?;
            s.catalog.delete_policy(id)?;
            changed(s)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

// ---- tasks ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    until: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

fn page(q: &ListQuery) -> ApiResult<(i64, i64)> {
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "limit must be 1..=1000 and offset >= 0",
        ));
    }
    Ok((limit, offset))
}

pub async fn list_tasks(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let (limit, offset) = page(&q)?;
    let state = match &q.state {
        Some(st) => Some(
            TaskState::parse(st)
                .ok_or_else(|| ApiError::bad_request(format!("unknown state {st:?}")))?,
        ),
        None => None,
    };
    let visible = p.projects(Action::Read);
    let tasks =
        s.db.call(move |c| c.tasks(state, visible.as_deref(), limit, offset))
            .await?;
    Ok(Json(json!(tasks)))
}

pub async fn get_task(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let t = s.db.call(move |c| c.task(id)).await?;
    visible(&p, t.project_id, || format!("task {id}"))?;
    p.require(Action::Read, Some(t.project_id))?;
    Ok(Json(json!(t)))
}

pub async fn task_logs(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    s.call(move |s| {
        let t = s.catalog.task(id)?;
        visible(&p, t.project_id, || format!("task {id}"))?;
        p.require(Action::Read, Some(t.project_id))?;
        Ok(Json(json!(s.catalog.task_logs(id)?)))
    })
    .await
}

pub async fn cancel_task(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "task.cancel",
        id.to_string(),
        move |s| {
            let t = s.catalog.task(id)?;
            visible(&p, t.project_id, || format!("task {id}"))?;
            let action = if t.kind == "restore" {
                Action::Restore
            } else {
                Action::Manage
            };
            p.require_on(action, t.project_id, &format!("task {id}"))?;
            let state = s.catalog.cancel_task(id).map_err(|e| match e {
                catalog::Error::Invalid(m) => ApiError::conflict(m),
                e => e.into(),
            })?;
            Ok(Json(json!({"id": id, "state": state})))
        },
    )
    .await
}

// ---- restore points ----

pub async fn list_restore_points(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let (limit, offset) = page(&q)?;
    let f = catalog::RestorePointFilter {
        source: q.source.clone(),
        project_ids: p.projects(Action::Read),
        kind: q.kind.clone(),
        since: q.since,
        until: q.until,
        limit,
        offset,
    };
    Ok(Json(json!(s.db.call(move |c| c.restore_points(&f)).await?)))
}

/// A restore point by id or unique prefix among those of the projects the
/// caller may read: one of another project answers exactly as one that
/// does not exist, and does not make a prefix ambiguous.
fn restore_point(s: &AppState, p: &Principal, id: &str) -> ApiResult<catalog::RestorePoint> {
    let projects = p.projects(Action::Read);
    s.catalog
        .restore_point(id, projects.as_deref())
        .map_err(|e| match e {
            catalog::Error::Invalid(m) => ApiError::bad_request(m),
            e => e.into(),
        })
}

pub async fn get_restore_point(
    State(s): State<AppState>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    s.call(move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Read, Some(rp.project_id))?;
        Ok(Json(json!(rp)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreReq {
    target: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    node: Option<String>,
    /// Write into a target that holds data (see `arca_ingest::restore`).
    #[serde(default)]
    overwrite: bool,
    /// Recreate device nodes and keep setuid/setgid bits and capabilities
    /// (admins of all projects only: the node restores as root).
    #[serde(default)]
    special_files: bool,
}

pub async fn restore(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Result<Path<String>, PathRejection>,
    body: Body<RestoreReq>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Path(id) = id?;
    let Json(b) = body?;
    audited(&s, p.name().to_string(), &remote, "restore", id.clone(), move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Restore, Some(rp.project_id))?;
        if b.special_files && !p.can(Action::Administer, None) {
            return Err(ApiError::forbidden(format!(
                "{} may not restore special files (device nodes, setuid/setgid bits): only admins of all projects may",
                p.name()
            )));
        }
        if !b.target.starts_with('/') || b.target.len() > 4096 || b.target.contains('\0') {
            return Err(invalid("target must be an absolute path on the node"));
        }
        let ds = s.catalog.datastore(rp.datastore_id)?;
        let node = match &b.node {
            Some(n) => node_id(s, Some(n))?,
            None => ds.node_id,
        };
        if node != ds.node_id {
            return Err(invalid("the restore must run on the node that owns the datastore (copying between nodes comes with replication)"));
        }
        let target = crate::nodes::check_restore(s, node, &b.target)?;
        let t = s.catalog.add_task(&NewTask {
            kind: "restore".into(),
            project_id: rp.project_id,
            source_id: None,
            datastore_id: Some(rp.datastore_id),
            node_id: Some(node),
            params: json!({"restore_point": rp.id, "target": target, "path": b.path, "overwrite": b.overwrite, "special_files": b.special_files}),
            priority: 20,
            max_attempts: 1,
            not_before: catalog::now(),
            created_by: p.name().to_string(),
            ..Default::default()
        })?;
        s.changed.notify_one();
        Ok((StatusCode::ACCEPTED, Json(json!(t))))
    })
    .await
}

// ---- exports (mount) ----

/// Longest export lifetime.
const MAX_TTL: i64 = 30 * 86_400;

const BAD_TTL: &str = "ttl must be like 90s, 30m, 2h or 7d, at most 30d";

/// `90s`, `30m`, `2h`, `7d`, or plain seconds.
pub fn parse_ttl(t: &str) -> Option<i64> {
    let t = t.trim();
    let (n, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: i64 = n.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mul).filter(|s| (1..=MAX_TTL).contains(s))
}

fn default_protocol() -> String {
    "nbd".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExportReq {
    restore_point: String,
    #[serde(default = "default_protocol")]
    protocol: String,
    #[serde(default)]
    writable: bool,
    #[serde(default)]
    ttl: Option<String>,
}

pub async fn add_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewExportReq>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "export.add",
        b.restore_point.clone(),
        move |s| {
            // A field of the body names it: an unknown one is invalid input.
            let rp = restore_point(s, &p, &b.restore_point).map_err(|e| {
                if e.status == axum::http::StatusCode::NOT_FOUND {
                    invalid(e.message)
                } else {
                    e
                }
            })?;
            if p.hides(rp.project_id) {
                // Outside the token's projects: as unknown as a missing one.
                return Err(invalid(format!(
                    "restore point {} not found",
                    b.restore_point
                )));
            }
            p.require(Action::Restore, Some(rp.project_id))?;
            if b.writable {
                crate::exports::require_writable(&p, rp.project_id)?;
            }
            if rp.kind != "image" {
                return Err(invalid(
                "only image restore points can be exported as disks (file restore points come with the NFS and S3 frontends)",
            ));
            }
            if !matches!(b.protocol.as_str(), "nbd" | "iscsi") {
                return Err(invalid("protocol must be nbd or iscsi"));
            }
            let ttl = match &b.ttl {
                None => 2 * 3600,
                Some(t) => parse_ttl(t).ok_or_else(|| invalid(BAD_TTL))?,
            };
            let ds = s.catalog.datastore(rp.datastore_id)?;
            let e = s.catalog.add_export(&catalog::NewExport {
                restore_point_id: rp.id.clone(),
                datastore_id: rp.datastore_id,
                node_id: ds.node_id,
                project_id: rp.project_id,
                protocol: b.protocol.clone(),
                writable: b.writable,
                ttl_seconds: ttl,
                created_by: p.name().to_string(),
            })?;
            Ok((StatusCode::CREATED, Json(crate::exports::view(&p, &e))))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportsQuery {
    /// Also the ended exports (default: live ones only).
    #[serde(default)]
    all: bool,
}

pub async fn list_exports(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ExportsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let projects = p.projects(Action::Read);
    let list =
        s.db.call(move |c| c.exports(!q.all, projects.as_deref()))
            .await?;
    Ok(Json(crate::exports::view_all(&p, &list)))
}

pub async fn get_export(State(s): State<AppState>, p: Principal, id: Id) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let e = s.db.call(move |c| c.export(id)).await?;
    crate::exports::visible(&p, &e)?;
    Ok(Json(crate::exports::view(&p, &e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendExportReq {
    ttl: String,
}

pub async fn extend_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
    body: Body<ExtendExportReq>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "export.extend",
        id.to_string(),
        move |s| {
            let e = s.catalog.export(id)?;
            crate::exports::visible(&p, &e)?;
            p.require(Action::Restore, Some(e.project_id))?;
            let ttl = parse_ttl(&b.ttl).ok_or_else(|| invalid(BAD_TTL))?;
            let e = s.catalog.extend_export(id, ttl)?;
            Ok(Json(crate::exports::view(&p, &e)))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopExportQuery {
    /// Commit a writable export's overlay as a new restore point.
    #[serde(default)]
    commit: bool,
}

pub async fn stop_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id,
    q: Result<Query<StopExportQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let Query(q) = q?;
    let action = if q.commit {
        "export.commit"
    } else {
        "export.stop"
    };
    audited(&s, p.name().to_string(), &remote, action, id.to_string(), move |s| {
        let e = s.catalog.export(id)?;
        crate::exports::visible(&p, &e)?;
        p.require(Action::Restore, Some(e.project_id))?;
        if q.commit {
            crate::exports::require_writable(&p, e.project_id)?;
        }
        if !e.is_live() {
            return Err(ApiError::conflict(format!(
                "export {id} is already {}",
                e.state
            )));
        }
        let mut commit_task = None;
        if q.commit {
            if !e.writable {
                return Err(invalid("only a writable export has changes to commit"));
            }
            // The export's restore point, in the export's project.
            let rp = s
                .catalog
                .restore_point(&e.restore_point_id, Some(&[e.project_id]))
                .ok();
            let source_id = rp.as_ref().and_then(|rp| rp.source_id);
            let source_name = rp.map(|rp| rp.source_name).unwrap_or_default();
            let t = s.catalog.add_task(&NewTask {
                kind: "commit-export".into(),
                project_id: e.project_id,
                source_id,
                datastore_id: Some(e.datastore_id),
                node_id: Some(e.node_id),
                params: json!({"export": e.id, "restore_point": e.restore_point_id, "source": source_name}),
                priority: 20,
                max_attempts: 1,
                not_before: catalog::now(),
                created_by: p.name().to_string(),
                ..Default::default()
            })?;
            let t = t.ok_or_else(|| ApiError::conflict("the commit task could not be queued"))?;
            commit_task = Some(t.id);
        }
        let e = s.catalog.stop_export(id, commit_task)?;
        s.changed.notify_one();
        Ok(Json(crate::exports::view(&p, &e)))
    })
    .await
}

// ---- audit ----

pub async fn audit_log(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let (limit, offset) = page(&q)?;
    p.require(Action::ReadAudit, None)?;
    Ok(Json(json!(
        s.db.call(move |c| c.audit_log(limit, offset)).await?
    )))
}
