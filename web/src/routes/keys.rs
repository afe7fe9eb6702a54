//! The server's key files (`POST /keys/{name}/rotate`, admins of all
//! projects): `credentials` seals hypervisors' SSH keys, `s3` the S3
//! secret keys. A rotation makes a new random key and reseals every
//! secret under it in one catalog transaction, then replaces the key
//! file (s3_secrets.rs says how a crash in between is repaired). Sealing
//! and opening wait meanwhile; nothing else stops.

use arca_model::api;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, Remote};
use crate::s3_secrets::RotateError;
use crate::AppState;

fn rotate_error(e: RotateError) -> ApiError {
    match e {
        RotateError::Io(_) | RotateError::NotInstalled(_) => ApiError::internal(e.to_string()),
        RotateError::NotAFile | RotateError::Reseal(_) => ApiError::conflict(e.to_string()),
    }
}

pub async fn rotate_key(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<api::KeyRotation>> {
    let Path(name) = name?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "key.rotate",
        name.clone(),
        move |s| {
            p.require(Action::Administer, None)?;
            let none = || ApiError::conflict(format!("this server keeps no {name} key"));
            let resealed = match name.as_str() {
                "credentials" => {
                    let b = s.credentials.clone().ok_or_else(none)?;
                    b.rotate(|r| {
                        s.catalog
                            .reseal_hypervisor_keys(&|(project, hv), sealed| {
                                r.reseal(&crate::inventory::key_aad(project, hv), sealed)
                            })
                            .map_err(|e| e.to_string())
                    })
                    .map_err(rotate_error)?
                }
                "s3" => {
                    let b = s.s3_secrets.clone().ok_or_else(none)?;
                    b.rotate(|r| {
                        s.catalog
                            .reseal_s3_secrets(&|id, sealed| r.reseal(id.as_bytes(), sealed))
                            .map_err(|e| e.to_string())
                    })
                    .map_err(rotate_error)?
                }
                _ => {
                    return Err(ApiError::not_found(format!(
                        "key {name:?}: the server's keys are credentials and s3"
                    )))
                }
            };
            tracing::info!(target: "arca::keys", key = %name, resealed, "key file rotated");
            Ok(Json(api::KeyRotation {
                key: name,
                resealed,
            }))
        },
    )
    .await
}
