//! The audit log (paged).

use arca_model::api;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::all;
use crate::error::ApiResult;
use crate::routes::page;
use crate::AppState;

pub async fn audit_log(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::PageQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::AuditEntry>>> {
    let Query(q) = q?;
    let (limit, offset) = page(q.limit, q.offset)?;
    p.require(Action::ReadAudit, None)?;
    Ok(Json(all(s
        .db
        .call(move |c| c.audit_log(limit, offset))
        .await?)))
}
