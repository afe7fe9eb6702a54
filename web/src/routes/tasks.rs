//! Tasks: list (filtered, paged), show, logs and cancel.

use arca_catalog::{self as catalog, TaskId, TaskKind, TaskState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, page, visible, Id, ListQuery, Remote};
use crate::AppState;

pub async fn list_tasks(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let (limit, offset) = page(&q)?;
    let state = match &q.state {
        Some(st) => Some(
            st.parse::<TaskState>()
                .map_err(|_| ApiError::bad_request(format!("unknown state {st:?}")))?,
        ),
        None => None,
    };
    let visible = p.projects(Action::Read);
    let tasks =
        s.db.call(move |c| c.tasks(state, visible.as_deref(), limit, offset))
            .await?;
    Ok(Json(json!(tasks)))
}

pub async fn get_task(
    State(s): State<AppState>,
    p: Principal,
    id: Id<TaskId>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let t = s.db.call(move |c| c.task(id)).await?;
    visible(&p, t.project_id, || format!("task {id}"))?;
    p.require(Action::Read, Some(t.project_id))?;
    Ok(Json(json!(t)))
}

pub async fn task_logs(
    State(s): State<AppState>,
    p: Principal,
    id: Id<TaskId>,
) -> ApiResult<Json<Value>> {
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
    id: Id<TaskId>,
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
            Ok(Json(json!({"id": id, "state": state})))
        },
    )
    .await
}
