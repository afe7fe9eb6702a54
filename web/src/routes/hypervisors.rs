//! Hypervisors (libvirt hosts): add, list, show, delete, and sync their
//! inventory into sources of kind `libvirt` (docs/vm-ingest.md,
//! "Control plane"). The private key is sealed at once with the server's
//! credentials box and never returned.

use arca_catalog::{self as catalog, HypervisorId, ProjectId, SeenDomain};
use arca_model::api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::inventory::{InventoryError, InventoryTarget};
use crate::routes::sources::node_id;
use crate::routes::{audited, changed, check_name, invalid, readable, visible, Body, Id, Remote};
use crate::AppState;

use crate::inventory::key_aad as aad;

fn check_address(a: &str) -> ApiResult<()> {
    let ok = !a.is_empty()
        && a.len() <= 255
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid("address must be host or host:port"))
    }
}

fn check_fingerprint(f: &str) -> ApiResult<()> {
    let b64 = f.strip_prefix("SHA256:").unwrap_or("");
    let ok = (40..=44).contains(&b64.len())
        && b64
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "host_key must be a SHA256:… fingerprint, as ssh-keygen -lf prints it",
        ))
    }
}

pub async fn list_hypervisors(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Hypervisor>>> {
    let list = s.db.call(|c| c.hypervisors()).await?;
    Ok(Json(readable(&p, list, |h| h.project_id)))
}

pub async fn get_hypervisor(
    State(s): State<AppState>,
    p: Principal,
    id: Id<HypervisorId>,
) -> ApiResult<Json<api::Hypervisor>> {
    let Path(id) = id?;
    let h = s.db.call(move |c| c.hypervisor(id)).await?;
    visible(&p, h.project_id, || format!("hypervisor {id}"))?;
    p.require(Action::Read, Some(h.project_id))?;
    Ok(Json(h))
}

pub async fn add_hypervisor(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewHypervisor>,
) -> ApiResult<(StatusCode, Json<api::Hypervisor>)> {
    let Json(b) = body?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "hypervisor.add",
        b.name.clone(),
        move |s| {
            let project = b.project.unwrap_or(ProjectId(1));
            p.require(Action::Manage, Some(project))?;
            check_name("hypervisor", &b.name)?;
            let node = node_id(s, b.node.as_deref())?;
            match b.access.as_deref().unwrap_or("ssh") {
                "ssh" => {}
                "agent" => {
                    if !b.address.is_empty() || !b.user.is_empty() || !b.private_key.is_empty() {
                        return Err(invalid(
                            "a hypervisor reached by its agent has no address, user or private_key",
                        ));
                    }
                    return Ok((
                        StatusCode::CREATED,
                        Json(s.catalog.add_hypervisor(
                            &b.name,
                            project,
                            node,
                            "",
                            "",
                            &[],
                            None,
                            "agent",
                        )?),
                    ));
                }
                a => return Err(invalid(format!("access must be ssh or agent, not {a:?}"))),
            }
            check_address(&b.address)?;
            if b.user.is_empty()
                || b.user.len() > 64
                || !b
                    .user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(invalid("user must be a user name (letters, digits, . _ -)"));
            }
            if b.private_key.len() > 16384 || !b.private_key.contains("PRIVATE KEY-----") {
                return Err(invalid(
                    "private_key must be an SSH private key (OpenSSH or PEM)",
                ));
            }
            if let Some(k) = &b.host_key {
                check_fingerprint(k)?;
            }
            let sealer = s.credentials.as_ref().ok_or_else(|| {
                ApiError::conflict("this server keeps no credentials (no credentials key)")
            })?;
            let sealed = sealer
                .seal(&aad(project, &b.name), b.private_key.as_bytes())
                .map_err(ApiError::internal)?;
            let h = s.catalog.add_hypervisor(
                &b.name,
                project,
                node,
                &b.address,
                &b.user,
                &sealed,
                b.host_key.as_deref(),
                "ssh",
            )?;
            Ok((StatusCode::CREATED, Json(h)))
        },
    )
    .await
}

pub async fn delete_hypervisor(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<HypervisorId>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "hypervisor.delete",
        id.to_string(),
        move |s| {
            let h = s.catalog.hypervisor(id)?;
            visible(&p, h.project_id, || format!("hypervisor {id}"))?;
            p.require(Action::Manage, Some(h.project_id))?;
            s.catalog.delete_hypervisor(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

/// The key of `h`, unsealed.
pub(crate) fn unseal(s: &AppState, h: &catalog::Hypervisor) -> ApiResult<Vec<u8>> {
    let sealer = s.credentials.as_ref().ok_or_else(|| {
        ApiError::conflict("this server keeps no credentials (no credentials key)")
    })?;
    sealer
        .open(
            &aad(h.project_id, &h.name),
            &s.catalog.hypervisor_key(h.id)?,
        )
        .map_err(|e| ApiError::conflict(format!("the private key of hypervisor {}: {e}", h.name)))
}

/// Connect to the host and list its domains: new ones become sources
/// (policy rules then pick them up), gone ones are marked removed.
pub async fn sync_hypervisor(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<HypervisorId>,
) -> ApiResult<Json<api::SyncReport>> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "hypervisor.sync",
        id.to_string(),
        move |s| {
            let h = s.catalog.hypervisor(id)?;
            visible(&p, h.project_id, || format!("hypervisor {id}"))?;
            p.require(Action::Manage, Some(h.project_id))?;
            if h.access == "agent" {
                return Err(ApiError::conflict(format!(
                    "hypervisor {} is synced by its agent: run `arca agent run --hypervisor {}` on the host",
                    h.name, h.name
                )));
            }
            let inv = s
                .inventory
                .as_ref()
                .ok_or_else(|| ApiError::conflict("this server cannot reach hypervisors"))?;
            let target = InventoryTarget {
                address: h.address.clone(),
                user: h.user.clone(),
                private_key: unseal(s, &h)?,
                host_key: h.host_key.clone(),
            };
            let (key, domains) = match inv.list(&target) {
                Ok(x) => x,
                Err(e) => {
                    let (status, code, m) = match e {
                        InventoryError::HostKeyChanged(m) => (StatusCode::CONFLICT, "conflict", m),
                        InventoryError::Invalid(m) => {
                            (StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
                        }
                        InventoryError::Unreachable(m) => {
                            (StatusCode::BAD_GATEWAY, "unreachable", m)
                        }
                    };
                    s.catalog.hypervisor_sync_failed(id, &m)?;
                    return Err(ApiError::new(status, code, m));
                }
            };
            let seen: Vec<SeenDomain> = domains
                .iter()
                .map(|d| SeenDomain {
                    name: d.name.clone(),
                    uuid: d.uuid.clone(),
                })
                .collect();
            let (added, removed, present) = s.catalog.hypervisor_synced(&h, &key, &seen)?;
            changed(s)?;
            Ok(Json(api::SyncReport {
                domains: domains.len(),
                added: added.into_iter().map(|s| s.name).collect(),
                removed,
                present,
                pinned_host_key: h.host_key.is_none().then_some(key),
            }))
        },
    )
    .await
}
