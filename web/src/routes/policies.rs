//! Backup policies: list, show, add and delete.

use arca_catalog::{PolicyId, ProjectId, Retention};
use arca_model::api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::ApiResult;
use crate::routes::{
    audited, changed, check_name, check_tags, invalid, readable, visible, Body, Id, Remote,
};
use crate::AppState;

pub async fn list_policies(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Policy>>> {
    let list = s.db.call(|c| c.policies()).await?;
    Ok(Json(all(readable(&p, list, |x| x.project_id))))
}

pub async fn get_policy(
    State(s): State<AppState>,
    p: Principal,
    id: Id<PolicyId>,
) -> ApiResult<Json<api::Policy>> {
    let Path(id) = id?;
    let pol = s.db.call(move |c| c.policy(id)).await?;
    visible(&p, pol.project_id, || format!("policy {id}"))?;
    p.require(Action::Read, Some(pol.project_id))?;
    Ok(Json(pol.to_api()))
}

pub async fn add_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewPolicy>,
) -> ApiResult<(StatusCode, Json<api::Policy>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "policy.add",
        b.name.clone(),
        move |s| {
            let project = b.project.unwrap_or(ProjectId(1));
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
                &Retention::from(b.retention.clone()),
                ds,
                b.priority,
                b.match_pattern.as_deref(),
                &b.match_tags,
                b.rpo_s,
            )?;
            changed(s)?;
            Ok((StatusCode::CREATED, Json(pol.to_api())))
        },
    )
    .await
}

pub async fn delete_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<PolicyId>,
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
