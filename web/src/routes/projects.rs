//! Projects: list and add.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::routes::{audited, check_name, readable, Body, Remote};
use crate::AppState;

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
