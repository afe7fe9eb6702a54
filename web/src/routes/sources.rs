//! Sources: list, show, add, change, delete, and back up now.
//!
//! Deleting a source keeps its restore points by default
//! (`?restore_points=keep`): they stay listed under the source's name,
//! and their `source_id` becomes null (the catalog's `ON DELETE SET
//! NULL`), so a new source of the same name never inherits them.
//! `?restore_points=remove` queues forget tasks for all of them (one per
//! datastore, on the datastore's node) and deletes the source in the same
//! transaction, answering 202 with the tasks; it is refused with 409 when
//! one of them is protected (or exported, or being removed already), and
//! then the source stays too.

use std::collections::BTreeMap;

use arca_catalog::{
    self as catalog, AssignedBy, DatastoreId, NewTask, NodeId, ProjectId, RestorePointId, SourceId,
    TaskSpec,
};
use arca_model::{api, ForgetParams};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{
    audited, audited_patch, changed, check_name, check_tags, invalid, no_change, readable, visible,
    Body, Id, Remote,
};
use crate::AppState;

pub async fn list_sources(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Source>>> {
    let list = s.db.call(|c| c.sources()).await?;
    Ok(Json(all(readable(&p, list, |x| x.project_id))))
}

pub async fn get_source(
    State(s): State<AppState>,
    p: Principal,
    id: Id<SourceId>,
) -> ApiResult<Json<api::Source>> {
    let Path(id) = id?;
    let src = s.db.call(move |c| c.source(id)).await?;
    visible(&p, src.project_id, || format!("source {id}"))?;
    p.require(Action::Read, Some(src.project_id))?;
    Ok(Json(src.to_api()))
}

pub(crate) fn node_id(s: &AppState, name: Option<&str>) -> ApiResult<NodeId> {
    let nodes = s.catalog.nodes()?;
    match name {
        Some(n) => nodes
            .iter()
            .find(|x| x.name == n)
            .map(|x| x.id)
            .ok_or_else(|| invalid(format!("unknown node {n:?}"))),
        None => nodes
            .iter()
            .find(|x| x.embedded)
            .or(nodes.first())
            .map(|x| x.id)
            .ok_or_else(|| invalid("no node is registered")),
    }
}

pub async fn add_source(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewSource>,
) -> ApiResult<(StatusCode, Json<api::Source>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.add",
        b.name.clone(),
        move |s| {
            let project = b.project.unwrap_or(ProjectId(1));
            p.require(Action::Manage, Some(project))?;
            check_name("source", &b.name)?;
            check_tags(&b.tags)?;
            if b.kind == arca_model::SourceKind::Libvirt {
                return Err(invalid(
                    "libvirt sources come from a hypervisor's inventory: POST /api/v1/hypervisors, then POST /api/v1/hypervisors/{id}/sync",
                ));
            }
            if !b.path.starts_with('/') || b.path.len() > 4096 || b.path.contains('\0') {
                return Err(invalid("path must be an absolute path on the node"));
            }
            if b.agent && b.kind != arca_model::SourceKind::Image {
                return Err(invalid(
                    "only image sources are fed by an agent (libvirt sources are, when their hypervisor's access is \"agent\")",
                ));
            }
            let node = node_id(s, b.node.as_deref())?;
            // An agent's path is on its host, which the node cannot check.
            let path = if b.agent {
                b.path.clone()
            } else {
                super::nodes::check_source(s, node, &b.path)?
            };
            let policy = match &b.policy {
                Some(name) => Some(policy_named(s, project, name)?),
                None => None,
            };
            let src = s.catalog.add_source(
                &b.name,
                b.kind,
                &path,
                node,
                project,
                &b.tags,
                &if b.agent {
                    serde_json::json!({"agent": true})
                } else {
                    serde_json::json!({})
                },
                policy,
            )?;
            changed(s)?;
            Ok((
                StatusCode::CREATED,
                Json(s.catalog.source(src.id)?.to_api()),
            ))
        },
    )
    .await
}

/// A source's settings replaced by `new` (an object), with the keys the
/// server owns kept: 422 when `new` gives one of them another value.
fn merged_settings(
    old: &serde_json::Value,
    new: serde_json::Value,
) -> ApiResult<serde_json::Value> {
    let serde_json::Value::Object(mut m) = new else {
        return Err(invalid("settings must be a JSON object"));
    };
    for k in api::SERVER_SETTINGS {
        match (old.get(k), m.get(k)) {
            (_, None) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, Some(serde_json::Value::Null)) => {}
            _ => {
                return Err(invalid(format!(
                    "settings.{k} is set by the server and cannot be changed"
                )))
            }
        }
        match old.get(k) {
            Some(v) => m.insert(k.to_string(), v.clone()),
            None => m.remove(k),
        };
    }
    Ok(serde_json::Value::Object(m))
}

/// Set (or, with null, remove) one key of a source's settings.
fn set_setting(settings: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    if !settings.is_object() {
        *settings = serde_json::json!({});
    }
    if let Some(m) = settings.as_object_mut() {
        if v.is_null() {
            m.remove(key);
        } else {
            m.insert(key.to_string(), v);
        }
    }
}

/// The policy named `name` in `project` (422 when there is none).
fn policy_named(s: &AppState, project: ProjectId, name: &str) -> ApiResult<catalog::PolicyId> {
    // Only the source's project's policies have names here.
    Ok(s.catalog
        .policy_by_name(project, name)?
        .ok_or_else(|| invalid(format!("unknown policy {name:?} in project {project}")))?
        .id)
}

/// Change a source's name, path (checked against its node's source
/// roots, as when it is added), tags, settings or policy.
pub async fn update_source(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<SourceId>,
    body: Body<api::SourceChange>,
) -> ApiResult<Json<api::Source>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "source.update",
        id.to_string(),
        unchanged,
        move |s| {
            let mut src = s.catalog.source(id)?;
            visible(&p, src.project_id, || format!("source {id}"))?;
            p.require(Action::Manage, Some(src.project_id))?;
            if unchanged {
                return Ok(Json(src.to_api()));
            }
            if let Some(name) = b.name {
                check_name("source", &name)?;
                src.name = name;
            }
            if let Some(path) = b.path {
                if !path.starts_with('/') || path.len() > 4096 || path.contains('\0') {
                    return Err(invalid("path must be an absolute path on the node"));
                }
                src.path = super::nodes::check_source(s, src.node_id, &path)?;
            }
            if let Some(tags) = b.tags {
                check_tags(&tags)?;
                src.tags = tags;
            }
            if let Some(settings) = b.settings {
                src.settings = merged_settings(&src.settings, settings)?;
            }
            if let Some(hooks) = b.hooks {
                match hooks {
                    Some(h) if !h.is_empty() => {
                        h.check().map_err(invalid)?;
                        set_setting(&mut src.settings, api::HOOKS_SETTING, serde_json::json!(h));
                    }
                    _ => set_setting(
                        &mut src.settings,
                        api::HOOKS_SETTING,
                        serde_json::Value::Null,
                    ),
                }
            }
            // Hooks are a libvirt source's: they run on its host.
            match api::VmHooks::of_settings(&src.settings) {
                Ok(Some(_)) if src.kind != arca_model::SourceKind::Libvirt => {
                    return Err(invalid(format!(
                        "hooks (pre/post commands) are for libvirt sources; {} is a {} source",
                        src.name, src.kind
                    )))
                }
                Ok(_) => {}
                Err(e) => return Err(invalid(e)),
            }
            if src.settings.to_string().len() > 16 * 1024 {
                return Err(invalid("settings must be at most 16 KiB"));
            }
            let policy = match &b.policy {
                Some(Some(name)) => Some(Some(policy_named(s, src.project_id, name)?)),
                Some(None) => Some(None),
                None => None,
            };
            s.catalog.update_source(&src)?;
            match policy {
                Some(Some(pid)) => s
                    .catalog
                    .assign_policy(id, Some(pid), AssignedBy::Explicit)?,
                // Back to the match rules: `changed` assigns again.
                Some(None) => s.catalog.assign_policy(id, None, AssignedBy::None)?,
                None => {}
            }
            changed(s)?;
            Ok(Json(s.catalog.source(id)?.to_api()))
        },
    )
    .await
}

/// Remove a source; what becomes of its restore points: see the module
/// notes. 409 naming the task while a task of it runs.
pub async fn delete_source(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<SourceId>,
    q: Result<Query<api::DeleteSourceQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Path(id) = id?;
    let Query(q) = q?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.delete",
        id.to_string(),
        move |s| {
            let src = s.catalog.source(id)?;
            visible(&p, src.project_id, || format!("source {id}"))?;
            p.require(Action::Manage, Some(src.project_id))?;
            if let Some(t) = s.catalog.running_task_using(Some(id), None)? {
                return Err(ApiError::conflict(format!(
                    "source {id} is in use by running task {t}: wait for it to end, or cancel it"
                )));
            }
            if q.restore_points == api::RestorePointsOnDelete::Remove {
                let rps = s.catalog.restore_points_of_source_everywhere(id)?;
                if !rps.is_empty() {
                    let tasks = remove_with_source(s, &p, &src, &rps)?;
                    return Ok((StatusCode::ACCEPTED, Json(all(tasks))).into_response());
                }
            }
            s.catalog.delete_source(id)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        },
    )
    .await
}

/// Queue forget tasks for a source's restore points `rps` (one per
/// datastore) and delete the source, in one transaction; 409 naming how
/// many are protected when any is.
fn remove_with_source(
    s: &AppState,
    p: &Principal,
    src: &catalog::Source,
    rps: &[(RestorePointId, DatastoreId, bool)],
) -> ApiResult<Vec<catalog::Task>> {
    let protected = rps.iter().filter(|r| r.2).count();
    if protected > 0 {
        return Err(ApiError::conflict(format!(
            "source {} has {protected} protected restore point(s) of {}: unprotect them first, or remove the source with restore_points=keep",
            src.name,
            rps.len()
        )));
    }
    let mut by_ds: BTreeMap<DatastoreId, Vec<RestorePointId>> = BTreeMap::new();
    for (rp, ds, _) in rps {
        by_ds.entry(*ds).or_default().push(*rp);
    }
    let mut tasks = Vec::with_capacity(by_ds.len());
    for (ds, ids) in by_ds {
        let ds = s.catalog.datastore(ds)?;
        tasks.push(super::restore_points::forget_task(
            ForgetParams {
                restore_points: ids,
                protected: None,
            },
            src.project_id,
            Some(src.id),
            &ds,
            p.name(),
        ));
    }
    let tasks = s.catalog.queue_forget(&tasks, Some(src.id))?;
    s.changed.notify_one();
    Ok(tasks)
}

pub async fn backup_now(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<SourceId>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    // The body is optional here.
    let b: api::BackupNow = if body.iter().all(u8::is_ascii_whitespace) {
        api::BackupNow::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid(format!("body: {e}")))?
    };
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "source.backup",
        id.to_string(),
        move |s| {
            let src = s.catalog.source(id)?;
            visible(&p, src.project_id, || format!("source {id}"))?;
            p.require(Action::Manage, Some(src.project_id))?;
            let ds = match (&b.datastore, src.policy_id) {
                (Some(name), _) => {
                    s.catalog
                        .datastore_by_name(name)?
                        .ok_or_else(|| invalid(format!("unknown datastore {name:?}")))?
                        .id
                }
                // The policy's datastore, or the first one, as placed on
                // the source's node (that node's datastore of that name).
                (None, pid) => {
                    let all = s.catalog.datastores()?;
                    let want = match pid {
                        Some(pid) => s.catalog.policy(pid)?.datastore_id,
                        None => all
                            .first()
                            .map(|d| d.id)
                            .ok_or_else(|| invalid("no datastore"))?,
                    };
                    arca_control::place(&all, want, src.node_id)
                }
            };
            let t = s.catalog.add_task(&NewTask {
                spec: TaskSpec::Backup(Default::default()),
                project_id: src.project_id,
                source_id: Some(src.id),
                datastore_id: Some(ds),
                node_id: Some(src.node_id),
                priority: 10,
                max_attempts: 1,
                not_before: catalog::now(),
                created_by: p.name().to_string(),
                ..Default::default()
            })?;
            let t = t.ok_or_else(|| ApiError::conflict("the backup task could not be queued"))?;
            s.changed.notify_one();
            Ok((StatusCode::ACCEPTED, Json(t.to_api())))
        },
    )
    .await
}
