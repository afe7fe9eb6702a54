//! Projects: list and add.

use arca_model::api;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::ApiResult;
use crate::routes::{audited, check_name, readable, Body, Remote};
use crate::AppState;

pub async fn list_projects(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Project>>> {
    let list = s.db.call(|c| c.projects()).await?;
    Ok(Json(all(readable(&p, list, |x| x.id))))
}

pub async fn add_project(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewProject>,
) -> ApiResult<(StatusCode, Json<api::Project>)> {
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
                Json(s.catalog.add_project(&b.name)?.to_api()),
            ))
        },
    )
    .await
}
