//! Backup policies: list, show, add, change and delete, and the preview
//! of their retention.

use arca_catalog::{DatastoreId, PolicyId, ProjectId, Retention, TaskKind};
use arca_model::api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{
    audited, audited_patch, changed, check_name, check_tags, invalid, no_change, readable, visible,
    Body, Id, Remote,
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
            check_pattern(b.match_pattern.as_deref())?;
            check_priority(b.priority)?;
            check_rpo(b.rpo_s)?;
            let ds = match &b.datastore {
                Some(n) => datastore_named(s, n)?,
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

fn check_pattern(pat: Option<&str>) -> ApiResult<()> {
    if pat.is_some_and(|p| p.len() > 256) {
        return Err(invalid("match_pattern is longer than 256 characters"));
    }
    Ok(())
}

fn check_priority(priority: i64) -> ApiResult<()> {
    if !(-1000..=1000).contains(&priority) {
        return Err(invalid("priority must be between -1000 and 1000"));
    }
    Ok(())
}

fn check_rpo(rpo_s: Option<i64>) -> ApiResult<()> {
    if rpo_s.is_some_and(|r| !(1..=366 * 86_400).contains(&r)) {
        return Err(invalid("rpo_s must be between 1 second and a year"));
    }
    Ok(())
}

fn datastore_named(s: &AppState, name: &str) -> ApiResult<DatastoreId> {
    Ok(s.catalog
        .datastore_by_name(name)?
        .ok_or_else(|| invalid(format!("unknown datastore {name:?}")))?
        .id)
}

/// Change a policy's schedule, window, retention, datastore, priority,
/// match rules, RPO or whether it is enabled. The new retention applies
/// from the next backup or prune on; sources are assigned again by the
/// (new) match rules.
pub async fn update_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<PolicyId>,
    body: Body<api::PolicyChange>,
) -> ApiResult<Json<api::Policy>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "policy.update",
        id.to_string(),
        unchanged,
        move |s| {
            let mut pol = s.catalog.policy(id)?;
            visible(&p, pol.project_id, || format!("policy {id}"))?;
            p.require(Action::Manage, Some(pol.project_id))?;
            if unchanged {
                return Ok(Json(pol.to_api()));
            }
            if let Some(sched) = &b.schedule {
                pol.schedule = arca_control::parse_schedule(sched)?.to_string();
            }
            if let Some(w) = b.window {
                if let Some(w) = &w {
                    arca_control::parse_window(w)?;
                }
                pol.backup_window = w;
            }
            if let Some(r) = b.retention {
                pol.retention = Retention::from(r);
            }
            if let Some(n) = &b.datastore {
                pol.datastore_id = datastore_named(s, n)?;
            }
            if let Some(prio) = b.priority {
                check_priority(prio)?;
                pol.priority = prio;
            }
            if let Some(pat) = b.match_pattern {
                check_pattern(pat.as_deref())?;
                pol.match_pattern = pat;
            }
            if let Some(tags) = b.match_tags {
                check_tags(&tags)?;
                pol.match_tags = tags;
            }
            if let Some(rpo) = b.rpo_s {
                check_rpo(rpo)?;
                pol.rpo_seconds = rpo;
            }
            if let Some(e) = b.enabled {
                pol.enabled = e;
            }
            let pol = s.catalog.update_policy(&pol)?;
            changed(s)?;
            Ok(Json(pol.to_api()))
        },
    )
    .await
}

/// Remove a policy: 409 naming the task while a task of it (or of a
/// source it is assigned to) runs. Its sources lose it (and may take
/// another by the match rules).
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
            if let Some(t) = s.catalog.running_task_using(None, Some(id))? {
                return Err(ApiError::conflict(format!(
                    "policy {id} is in use by running task {t}: wait for it to end, or cancel it"
                )));
            }
            s.catalog.delete_policy(id)?;
            changed(s)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

/// `GET /api/v1/policies/{id}/preview`: what the policy's retention would
/// keep and remove now, per source, and why (control's `preview`). Seen
/// by whoever may read the policy; 404 for another project's.
pub async fn preview_policy(
    State(s): State<AppState>,
    p: Principal,
    id: Id<PolicyId>,
) -> ApiResult<Json<api::RetentionPreview>> {
    let Path(id) = id?;
    s.call(move |s| {
        let pol = s.catalog.policy(id)?;
        visible(&p, pol.project_id, || format!("policy {id}"))?;
        p.require(Action::Read, Some(pol.project_id))?;
        let now = arca_catalog::now();
        Ok(Json(arca_control::preview::preview_retention(
            &s.catalog, &pol, now,
        )?))
    })
    .await
}

/// `POST /api/v1/policies/{id}/prune`: apply the policy's retention now.
/// Queues one prune task per source it applies to (none: `[]`) and
/// returns them (202), for whoever may change the policy. 409 while a
/// prune of the policy is queued or running, and for a policy without
/// retention rules (it keeps everything).
pub async fn prune_policy(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<PolicyId>,
) -> ApiResult<(StatusCode, Json<Vec<api::Task>>)> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "policy.prune",
        id.to_string(),
        move |s| {
            let pol = s.catalog.policy(id)?;
            visible(&p, pol.project_id, || format!("policy {id}"))?;
            p.require(Action::Manage, Some(pol.project_id))?;
            if let Some(t) = s.catalog.active_policy_task(id, TaskKind::Prune)? {
                return Err(ApiError::conflict(format!(
                    "a prune of policy {} is already queued or running: task {t}",
                    pol.name
                )));
            }
            if pol.retention.is_empty() {
                return Err(ApiError::conflict(format!(
                    "policy {} has no retention rule: it keeps every restore point, so there is nothing to prune (set one with arca policy edit {} --keep-last N)",
                    pol.name, pol.name
                )));
            }
            let tasks = arca_control::prune::prune_tasks(&s.catalog, &pol, p.name())?;
            let ids = s.catalog.add_tasks(&tasks)?;
            let mut out = Vec::with_capacity(ids.len());
            for t in ids.into_iter().flatten() {
                out.push(s.catalog.task(t)?.to_api());
            }
            s.changed.notify_one();
            Ok((StatusCode::ACCEPTED, Json(out)))
        },
    )
    .await
}
