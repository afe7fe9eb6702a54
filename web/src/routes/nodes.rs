//! Nodes' confinement through the API: an admin sets where a node's
//! sources may live and its restores may write (`PATCH
//! /api/v1/nodes/{id}`); adding a source and asking for a restore are
//! checked against it here. The rules are in `arca_control::confine`.

use arca_catalog::{Node, NodeConfinement, NodeId, TokenKind};
use arca_control::confine::{check_roots, Confinement};
use arca_model::api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{self, Action, Principal};
use crate::convert::ToApi;
use crate::error::{ApiError, ApiResult};
use crate::routes::{
    any_role, audited, audited_patch, check_name, invalid, no_change, Body, Id, Remote,
};
use crate::AppState;

/// A node as the API lists it: the catalog's record plus the restore
/// roots in force (`<data_dir>/restores` when none are set).
pub(crate) fn node_view(n: Node) -> api::Node {
    let c = Confinement {
        node: n.name.clone(),
        restore_roots: n.restore_roots.clone(),
        data_dir: n.data_dir.clone(),
        ..Default::default()
    };
    api::Node {
        effective_restore_roots: Some(c.restore_roots()),
        ..n.to_api()
    }
}

/// A source path on `node`, checked against its roots (422 naming them);
/// returns it normalised.
pub(crate) fn check_source(s: &AppState, node: NodeId, path: &str) -> ApiResult<String> {
    Confinement::load(&s.catalog, node)?
        .check_source(path)
        .map_err(invalid)
}

/// A restore target on `node`, likewise.
pub(crate) fn check_restore(s: &AppState, node: NodeId, target: &str) -> ApiResult<String> {
    Confinement::load(&s.catalog, node)?
        .check_restore(target)
        .map_err(invalid)
}

/// Change a node's confinement (admin only).
pub async fn update_node(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<NodeId>,
    body: Body<api::NodeSettings>,
) -> ApiResult<Json<api::Node>> {
    let Path(id) = id?;
    let Json(b) = body?;
    // The audit target says what was asked, so the log shows the change.
    let target = format!(
        "node {id}: source_roots {:?}, restore_roots {:?}, allow_block_devices {:?}",
        b.source_roots, b.restore_roots, b.allow_block_devices
    );
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "node.set",
        target,
        unchanged,
        move |s| {
            p.require(Action::Administer, None)?;
            let n = s.catalog.node(id)?;
            if unchanged {
                return Ok(Json(node_view(n)));
            }
            let roots = |what: &str, r: &Option<Vec<String>>| {
                r.as_ref()
                    .map(|r| check_roots(what, r))
                    .transpose()
                    .map_err(invalid)
            };
            let change = NodeConfinement {
                source_roots: roots("source_roots", &b.source_roots)?,
                restore_roots: roots("restore_roots", &b.restore_roots)?,
                allow_block_devices: b.allow_block_devices,
            };
            let n = s.catalog.set_node_confinement(id, &change)?;
            Ok(Json(node_view(n)))
        },
    )
    .await
}

pub async fn list_nodes(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Node>>> {
    any_role(&p)?;
    let nodes = s.db.call(|c| c.nodes()).await?;
    Ok(Json(nodes.into_iter().map(node_view).collect()))
}

/// A remote node and its token (shown once). The node registers with
/// `arca node --server URL --token TOKEN`.
pub async fn add_node(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewNode>,
) -> ApiResult<(StatusCode, Json<api::CreatedNode>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "node.add",
        b.name.clone(),
        move |s| {
            p.require(Action::Administer, None)?;
            check_name("node", &b.name)?;
            if !(1..=64).contains(&b.max_tasks) {
                return Err(invalid("max_tasks must be between 1 and 64"));
            }
            let node = s.catalog.add_node(&b.name, b.max_tasks)?;
            let (secret, hash) = auth::new_secret();
            let t =
                s.catalog
                    .add_token(None, Some(node.id), &b.name, TokenKind::Node, &hash, None)?;
            Ok((
                StatusCode::CREATED,
                Json(api::CreatedNode {
                    node: node.to_api(),
                    token: secret,
                    token_id: t.id,
                }),
            ))
        },
    )
    .await
}

/// Remove a node (admin only): its tokens go with it. Refused with 409
/// for the server's own node and for a node that still has sources,
/// datastores, or queued or running tasks (removing datastores is not
/// possible yet, so a node that made its datastore stays).
pub async fn delete_node(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<NodeId>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "node.delete",
        id.to_string(),
        move |s| {
            p.require(Action::Administer, None)?;
            let n = s.catalog.node(id)?;
            if n.embedded {
                return Err(ApiError::conflict(format!(
                    "node {} is the server's own node",
                    n.name
                )));
            }
            let (sources, datastores, tasks) = s.catalog.node_usage(id)?;
            if sources + datastores + tasks > 0 {
                return Err(ApiError::conflict(format!(
                    "node {} still has {sources} source(s), {datastores} datastore(s) and {tasks} queued or running task(s): remove its sources and let its tasks end first (datastores cannot be removed yet)",
                    n.name
                )));
            }
            s.catalog.delete_node(id).map_err(|e| match e {
                arca_catalog::Error::Invalid(m) => ApiError::conflict(m),
                e => e.into(),
            })?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
