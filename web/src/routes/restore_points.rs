//! Restore points: list, show (by id or unique prefix), browse,
//! protect or note, restore, and delete.
//!
//! A protected restore point is never removed by retention: the server
//! leaves it out of the restore points a backup's or prune's retention
//! chooses among when it leases the task, and names it to the node, which
//! keeps it as well. Protecting one while a task that prunes its source
//! runs takes effect from the next such task.

use arca_catalog::{self as catalog, NewTask, TaskSpec};
use arca_model::{api, ForgetParams, RestoreParams};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, audited_patch, invalid, no_change, page, Body, Remote};
use crate::AppState;

pub async fn list_restore_points(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::RestorePointQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::RestorePoint>>> {
    let Query(q) = q?;
    let (limit, offset) = page(q.limit, q.offset)?;
    s.call(move |s| {
        let project_ids = match &q.project {
            Some(name) => Some(vec![project(s, &p, name)?]),
            None => p.projects(Action::Read),
        };
        let f = catalog::RestorePointFilter {
            source: q.source,
            project_ids,
            kind: q.kind,
            since: q.since,
            until: q.until,
            limit,
            offset,
        };
        Ok(Json(all(s.catalog.restore_points(&f)?)))
    })
    .await
}

/// The `project` filter: a project by id or name (an id first, as the
/// CLI reads `--project`) that the caller may read. Unknown and
/// invisible ones are the same 404, as for objects of other projects.
pub(crate) fn project(s: &AppState, p: &Principal, name: &str) -> ApiResult<catalog::ProjectId> {
    let all = s.catalog.projects()?;
    let found = all
        .iter()
        .find(|x| x.id.to_string() == name)
        .or_else(|| all.iter().find(|x| x.name == name))
        .map(|x| x.id)
        .filter(|&id| p.can(Action::Read, Some(id)));
    found.ok_or_else(|| catalog::Error::NotFound(format!("project {name:?}")).into())
}

/// A restore point by id or unique prefix among those of the projects the
/// caller may read: one of another project answers exactly as one that
/// does not exist, and does not make a prefix ambiguous.
pub(crate) fn restore_point(
    s: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<catalog::RestorePoint> {
    let projects = p.projects(Action::Read);
    s.catalog
        .restore_point(id, projects.as_deref())
        .map_err(|e| match e {
            catalog::Error::Invalid(m) => ApiError::bad_request(m),
            e => e.into(),
        })
}

pub async fn get_restore_point(
    State(s): State<AppState>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<api::RestorePoint>> {
    let Path(id) = id?;
    s.call(move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Read, Some(rp.project_id))?;
        Ok(Json(rp.to_api()))
    })
    .await
}

/// Protect a restore point, or lift that, and set its note.
pub async fn update_restore_point(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Result<Path<String>, PathRejection>,
    body: Body<api::RestorePointChange>,
) -> ApiResult<Json<api::RestorePoint>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let target = format!("{id}: protected {:?}", b.protected);
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "restore-point.update",
        target,
        unchanged,
        move |s| {
            let rp = restore_point(s, &p, &id)?;
            p.require(Action::Manage, Some(rp.project_id))?;
            if let Some(n) = &b.note {
                if n.chars().count() > 1024 || n.contains('\0') {
                    return Err(invalid("note must be at most 1024 characters, without NUL"));
                }
            }
            if !unchanged {
                s.catalog
                    .set_restore_point_protection(rp.id, b.protected, b.note.as_deref())?;
            }
            let projects = p.projects(Action::Read);
            Ok(Json(
                s.catalog
                    .restore_point(&rp.id.to_string(), projects.as_deref())?
                    .to_api(),
            ))
        },
    )
    .await
}

/// Delete a restore point: queue a forget task on its datastore's node
/// and return it (202). 409 while it is protected, served by a live
/// export, or being removed already (catalog/src/forget.rs). Its data is
/// freed by the datastore's next gc.
pub async fn delete_restore_point(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "restore-point.delete",
        id.clone(),
        move |s| {
            let rp = restore_point(s, &p, &id)?;
            p.require(Action::Manage, Some(rp.project_id))?;
            let ds = s.catalog.datastore(rp.datastore_id)?;
            let t = forget_task(
                ForgetParams {
                    restore_points: vec![rp.id],
                    protected: None,
                },
                rp.project_id,
                rp.source_id,
                &ds,
                p.name(),
            );
            let t = s.catalog.queue_forget(&[t], None)?;
            let t = t
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::conflict("the forget task could not be queued"))?;
            s.changed.notify_one();
            Ok((StatusCode::ACCEPTED, Json(t.to_api())))
        },
    )
    .await
}

/// A forget task on the node that owns `ds`: asked for by a user, so
/// before scheduled maintenance; not retried (what failed is in its error).
pub(crate) fn forget_task(
    params: ForgetParams,
    project_id: catalog::ProjectId,
    source_id: Option<catalog::SourceId>,
    ds: &catalog::Datastore,
    created_by: &str,
) -> NewTask {
    NewTask {
        spec: TaskSpec::Forget(params),
        project_id,
        source_id,
        datastore_id: Some(ds.id),
        node_id: Some(ds.node_id),
        priority: 10,
        max_attempts: 1,
        not_before: catalog::now(),
        created_by: created_by.to_string(),
        ..Default::default()
    }
}

pub async fn restore(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Result<Path<String>, PathRejection>,
    body: Body<api::RestoreRequest>,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    let Json(b) = body?;
    audited(&s, p.name().to_string(), &remote, "restore", id.clone(), move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Restore, Some(rp.project_id))?;
        if b.special_files && !p.can(Action::Administer, None) {
            return Err(ApiError::forbidden(format!(
                "{} may not restore special files (device nodes, setuid/setgid bits): only admins of all projects may",
                p.name()
            )));
        }
        if !b.target.starts_with('/') || b.target.len() > 4096 || b.target.contains('\0') {
            return Err(invalid("target must be an absolute path on the node"));
        }
        let ds = s.catalog.datastore(rp.datastore_id)?;
        let node = match &b.node {
            Some(n) => super::sources::node_id(s, Some(n))?,
            None => ds.node_id,
        };
        if node != ds.node_id {
            return Err(invalid("the restore must run on the node that owns the datastore (copying between nodes comes with replication)"));
        }
        let target = super::nodes::check_restore(s, node, &b.target)?;
        let path = match b.path {
            // A path of an image's file tree (`part1/etc/hostname`): a
            // leading '/' is the tree's root.
            Some(p) if rp.kind.has_disks() => Some(p.trim_start_matches('/').to_string()),
            // An absolute path: under the source's root, as on the machine
            // that was backed up (the source's path; the restore point's
            // source name once the source is gone).
            Some(p) if p.starts_with('/') => {
                let root = rp
                    .source_id
                    .and_then(|id| s.catalog.source(id).ok())
                    .map_or_else(|| rp.source_name.clone(), |src| src.path);
                let rel = arca_model::paths::relative_to_root(&p, Some(&root)).map_err(invalid)?;
                (!rel.is_empty()).then_some(rel)
            }
            p => p,
        };
        let params = RestoreParams {
                restore_point: rp.id,
                target,
                path,
                overwrite: b.overwrite,
                special_files: b.special_files,
                confine: None,
                import: None,
        };
        queue_restore(s, &p, &rp, params, node)
    })
    .await
}

/// Queue a restore task of `rp` with `params` on `node` (202 with it).
fn queue_restore(
    s: &AppState,
    p: &Principal,
    rp: &catalog::RestorePoint,
    params: RestoreParams,
    node: catalog::NodeId,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let t = s.catalog.add_task(&NewTask {
        spec: TaskSpec::Restore(params),
        project_id: rp.project_id,
        source_id: None,
        datastore_id: Some(rp.datastore_id),
        node_id: Some(node),
        priority: 20,
        max_attempts: 1,
        not_before: catalog::now(),
        created_by: p.name().to_string(),
        ..Default::default()
    })?;
    let t = t.ok_or_else(|| ApiError::conflict("the restore task could not be queued"))?;
    s.changed.notify_one();
    Ok((StatusCode::ACCEPTED, Json(t.to_api())))
}

/// `POST /api/v1/restore-points/{id}/import`: a restore task that
/// recreates a libvirt VM on a hypervisor (its node runs it).
pub async fn import(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Result<Path<String>, PathRejection>,
    body: Body<api::ImportRequest>,
) -> ApiResult<(StatusCode, Json<api::Task>)> {
    let Path(id) = id?;
    let Json(b) = body?;
    audited(&s, p.name().to_string(), &remote, "restore.import", id.clone(), move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Restore, Some(rp.project_id))?;
        if rp.kind != arca_model::SourceKind::Libvirt {
            return Err(invalid("only a libvirt VM's restore point imports onto a hypervisor; restore other kinds with /restore"));
        }
        let h = s
            .catalog
            .hypervisors()?
            .into_iter()
            .find(|h| h.project_id == rp.project_id && h.name == b.hypervisor)
            .ok_or_else(|| invalid(format!("unknown hypervisor {:?} in project {}", b.hypervisor, rp.project_id)))?;
        if h.access == "agent" {
            return Err(invalid(format!(
                "hypervisor {} is reached by its agent; an import goes over SSH: add the host again with access \"ssh\" to import onto it",
                h.name
            )));
        }
        if !b.dir.starts_with('/') || b.dir.len() > 4096 || b.dir.contains('\0') {
            return Err(invalid("dir must be an absolute path on the hypervisor"));
        }
        if let Some(n) = &b.name {
            let ok = !n.is_empty()
                && n.len() <= 64
                && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !n.starts_with(['.', '-']);
            if !ok {
                return Err(invalid("name must be 1-64 letters, digits, . _ - (not first)"));
            }
        }
        let format = b.format.clone().unwrap_or_else(|| "qcow2".into());
        if format != "qcow2" && format != "raw" {
            return Err(invalid("format must be qcow2 or raw"));
        }
        let ds = s.catalog.datastore(rp.datastore_id)?;
        if h.node_id != ds.node_id {
            return Err(invalid("the hypervisor's node must own the restore point's datastore"));
        }
        let params = RestoreParams {
                restore_point: rp.id,
                target: String::new(),
                path: None,
                overwrite: false,
                special_files: false,
                confine: None,
                import: Some(arca_model::VmImport {
                    hypervisor_id: h.id,
                    name: b.name.clone(),
                    dir: b.dir.clone(),
                    format,
                    start: b.start,
                }),
        };
        queue_restore(s, &p, &rp, params, ds.node_id)
    })
    .await
}

/// `GET /api/v1/restore-points/{id}/tree`: a page of a tree restore
/// point's entries, read from its datastore on the blocking pool.
pub async fn tree(
    State(s): State<AppState>,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<api::TreeQuery>, QueryRejection>,
) -> ApiResult<Json<api::TreePage>> {
    let Path(id) = id?;
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(api::TREE_DEFAULT_LIMIT);
    if !(1..=api::TREE_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            api::TREE_MAX_LIMIT
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let path = q.path.unwrap_or_default();
    if path.len() > 4096 || path.contains('\0') || path.split('/').any(|c| c == "..") {
        return Err(ApiError::bad_request(
            "path must be inside the restore point: no '..', no NUL, at most 4096 bytes",
        ));
    }
    s.call(move |s| {
        let rp = restore_point(s, &p, &id)?;
        p.require(Action::Read, Some(rp.project_id))?;
        // An image restore point is listed through its file tree
        // (`disk.img`, partitions, their file systems).
        let b = s
            .browse
            .clone()
            .ok_or_else(|| ApiError::conflict("this server cannot browse restore points"))?;
        let ds = s.catalog.datastore(rp.datastore_id)?;
        Ok(Json(b.tree(
            &ds,
            rp.id,
            &path,
            q.recursive,
            offset,
            limit,
        )?))
    })
    .await
}
