//! The audit log (paged, with filters).

use arca_catalog::AuditFilter;
use arca_model::api;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::all;
use crate::error::{ApiError, ApiResult};
use crate::routes::page;
use crate::AppState;

pub async fn audit_log(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::AuditQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::AuditEntry>>> {
    let Query(q) = q?;
    let (limit, offset) = page(q.limit, q.offset)?;
    p.require(Action::ReadAudit, None)?;
    if let (Some(a), Some(b)) = (q.since, q.until) {
        if a > b {
            return Err(ApiError::invalid("since is after until"));
        }
    }
    for (name, v) in [("actor", &q.actor), ("action", &q.action)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 256) {
            return Err(ApiError::invalid(format!(
                "{name} must be 1 to 256 characters"
            )));
        }
    }
    let f = AuditFilter {
        actor: q.actor,
        action: q.action,
        result: q.result,
        since: q.since,
        until: q.until,
    };
    Ok(Json(all(s
        .db
        .call(move |c| c.audit_log_filtered(&f, limit, offset))
        .await?)))
}
