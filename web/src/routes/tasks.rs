//! Tasks: list (filtered, paged), show, logs, cancel and retry.

use arca_catalog::{self as catalog, TaskId, TaskKind};
use arca_model::api;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, page, visible, Id, Remote};
use crate::AppState;

pub async fn list_tasks(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::TaskQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::Task>>> {
    let Query(q) = q?;
    let (limit, offset) = page(q.limit, q.offset)?;
    let visible = p.projects(Action::Read);
    let f = catalog::TaskFilter {
        state: q.state,
        kind: q.kind,
        source: q.source,
    };
    let tasks =
        s.db.call(move |c| c.tasks_where(&f, visible.as_deref(), limit, offset))
            .await?;
    Ok(Json(all(tasks)))
}

pub async fn get_task(
    State(s): State<AppState>,
    p: Principal,
    id: Id<TaskId>,
) -> ApiResult<Json<api::Task>> {
    let Path(id) = id?;
    let t = s.db.call(move |c| c.task(id)).await?;
    visible(&p, t.project_id, || format!("task {id}"))?;
    p.require(Action::Read, Some(t.project_id))?;
    Ok(Json(t.to_api()))
}

pub async fn task_logs(
    State(s): State<AppState>,
    p: Principal,
    id: Id<TaskId>,
) -> ApiResult<Json<Vec<api::TaskLog>>> {
    let Path(id) = id?;
    s.call(move |s| {
        let t = s.catalog.task(id)?;
        visible(&p, t.project_id, || format!("task {id}"))?;
        p.require(Action::Read, Some(t.project_id))?;
        Ok(Json(all(s.catalog.task_logs(id)?)))
    })
    .await
}

pub async fn cancel_task(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<TaskId>,
) -> ApiResult<Json<api::Cancelled>> {
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
            let action = if t.kind == TaskKind::Restore {
                Action::Restore
            } else {
                Action::Manage
            };
            p.require_on(action, t.project_id, &format!("task {id}"))?;
            let state = s.catalog.cancel_task(id).map_err(|e| match e {
                catalog::Error::Invalid(m) => ApiError::conflict(m),
                e => e.into(),
            })?;
            Ok(Json(api::Cancelled { id, state }))
        },
    )
    .await
}

/// Run a failed or cancelled task again as a new task (201 with it); 409
/// for one that is queued, running or succeeded. Manage in its project,
/// whatever its kind (restore-only users cannot retry).
pub async fn retry_task(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<TaskId>,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "task.retry",
        id.to_string(),
        move |s| {
            let t = s.catalog.task(id)?;
            visible(&p, t.project_id, || format!("task {id}"))?;
            p.require_on(Action::Manage, t.project_id, &format!("task {id}"))?;
            if let (Some(ds), true) = (t.datastore_id, catalog::MAINTENANCE_KINDS.contains(&t.kind))
            {
                if let Some(other) = s.catalog.active_maintenance_task(ds, t.kind)? {
                    return Err(ApiError::conflict(format!(
                        "{} task {other} of this datastore is queued or running",
                        t.kind
                    )));
                }
            }
            let new = s.catalog.retry_task(id, p.name())?;
            s.changed.notify_one();
            Ok((StatusCode::CREATED, Json(new.to_api())))
        },
    )
    .await
}
