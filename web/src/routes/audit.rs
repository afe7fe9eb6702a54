//! The audit log (paged).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::routes::{page, ListQuery};
use crate::AppState;

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
