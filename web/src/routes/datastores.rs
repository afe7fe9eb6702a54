//! Datastores through the API: the list (`GET /api/v1/datastores`), and
//! maintenance: gc and verify schedules
//! (`PATCH /api/v1/datastores/{id}`) and runs on demand
//! (`POST /api/v1/datastores/{id}/gc`, `/verify`), each a task on the node
//! that owns the datastore. See control/src/maintenance.rs.

use arca_catalog::{DatastoreId, TaskSpec};
use arca_model::{api, GcParams, VerifyParams};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{any_role, audited, audited_patch, invalid, no_change, Body, Id, Remote};
use crate::AppState;

/// A schedule expression, or `never`.
fn check_schedule(what: &str, s: &str) -> ApiResult<()> {
    if s == "never" {
        return Ok(());
    }
    arca_control::parse_schedule(s)
        .map(|_| ())
        .map_err(|e| invalid(format!("{what}: {e} (or \"never\")")))
}

/// Change a datastore's gc and verify schedules.
pub async fn update_datastore(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<DatastoreId>,
    body: Body<api::DatastoreSettings>,
) -> ApiResult<Json<api::Datastore>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "datastore.update",
        id.to_string(),
        unchanged,
        move |s| {
            p.require(Action::Administer, None)?;
            let d = s.catalog.datastore(id)?;
            if unchanged {
                return Ok(Json(d.to_api()));
            }
            if let Some(g) = &b.gc_schedule {
                check_schedule("gc_schedule", g)?;
            }
            if let Some(v) = &b.verify_schedule {
                check_schedule("verify_schedule", v)?;
            }
            if b.verify_max_age_days
                .is_some_and(|d| !(0..=3650).contains(&d))
            {
                return Err(invalid("verify_max_age_days must be between 0 and 3650"));
            }
            let d = s.catalog.set_datastore_maintenance(
                id,
                b.gc_schedule.as_deref(),
                b.verify_schedule.as_deref(),
                b.verify_max_age_days,
            )?;
            s.changed.notify_one();
            Ok(Json(d.to_api()))
        },
    )
    .await
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: Default + serde::de::DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        serde_json::from_slice(b).map_err(|e| invalid(format!("body: {e}")))
    }
}

fn queue(
    s: &AppState,
    p: &Principal,
    id: DatastoreId,
    spec: TaskSpec,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    p.require(Action::Administer, None)?;
    let kind = spec.kind();
    let d = s.catalog.datastore(id)?;
    if let Some(t) = s.catalog.active_maintenance_task(id, kind)? {
        return Err(ApiError::conflict(format!(
            "a {kind} of datastore {} is already queued or running: task {t}",
            d.name
        )));
    }
    let t = arca_control::maintenance::maintenance_task(&s.catalog, id, spec, None, p.name())?;
    let t = s
        .catalog
        .add_task(&t)?
        .ok_or_else(|| ApiError::conflict(format!("a {kind} task exists already")))?;
    s.changed.notify_one();
    Ok((StatusCode::ACCEPTED, Json(t.to_api())))
}

/// Run gc on a datastore now (beside running backups).
pub async fn gc_now(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<DatastoreId>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    let b: api::GcNow = optional_body(&body)?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "datastore.gc",
        id.to_string(),
        move |s| {
            let spec = TaskSpec::Gc(GcParams {
                grace_seconds: b.grace_seconds,
            });
            queue(s, &p, id, spec)
        },
    )
    .await
}

/// Verify a datastore now: the restore points due (or all).
pub async fn verify_now(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<DatastoreId>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    let b: api::VerifyNow = optional_body(&body)?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "datastore.verify",
        id.to_string(),
        move |s| {
            if let Some(pct) = b.read_data_percent {
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(invalid("read_data_percent must be in (0, 100]"));
                }
            }
            let spec = TaskSpec::Verify(VerifyParams {
                all: b.all,
                read_data_percent: b.read_data_percent,
                ..Default::default()
            });
            queue(s, &p, id, spec)
        },
    )
    .await
}

pub async fn list_datastores(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Datastore>>> {
    any_role(&p)?;
    Ok(Json(all(s.db.call(|c| c.datastores()).await?)))
}
