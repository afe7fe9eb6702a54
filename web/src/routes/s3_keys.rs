//! S3 access keys (`/s3-keys`, issue 15): a user's keys for the S3
//! gateway. A key acts as its user (the buckets are the sources of the
//! projects where the user may restore), checked on every S3 request: a
//! revoked key or a disabled user is refused at once.
//!
//! - `POST` makes a key for the caller; the secret is in the answer only.
//!   A token limited to projects cannot make one (the key would reach
//!   all of the user's projects).
//! - `GET` lists the caller's keys; an admin of all projects sees every
//!   user's, or one user's with `?user=NAME`.
//! - `DELETE /s3-keys/{id}` revokes a key: one's own, or any as an admin.

use arca_catalog::{S3Key, User};
use arca_model::api;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, invalid, Body, Id, Remote};
use crate::AppState;

fn view(k: S3Key, users: &[User]) -> api::S3Key {
    api::S3Key {
        id: k.id,
        user_id: k.user_id,
        user: users
            .iter()
            .find(|u| u.id == k.user_id)
            .map(|u| u.name.clone())
            .unwrap_or_default(),
        access_key_id: k.access_key_id,
        description: k.description,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
    }
}

pub async fn list_s3_keys(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::S3KeyQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::S3Key>>> {
    let Query(q) = q?;
    s.call(move |s| {
        let admin = p.can(Action::Administer, None);
        let user = match q.user.as_deref() {
            None if admin => None,
            None => Some(p.user.id),
            Some(name) if name == p.name() => Some(p.user.id),
            Some(name) => {
                if !admin {
                    return Err(ApiError::forbidden(
                        "only an admin of all projects lists other users' S3 keys",
                    ));
                }
                let u = s
                    .catalog
                    .user_by_name(name)?
                    .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
                Some(u.id)
            }
        };
        let users = s.catalog.users()?;
        let keys = s.catalog.s3_keys(user)?;
        Ok(Json(keys.into_iter().map(|k| view(k, &users)).collect()))
    })
    .await
}

pub async fn add_s3_key(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewS3Key>,
) -> ApiResult<(StatusCode, Json<api::CreatedS3Key>)> {
    let Json(b) = body?;
    audited(&s, p.name().to_string(), &remote, "s3-key.add", p.name().to_string(), move |s| {
        // Any role will do: the key reads only what the user may restore.
        crate::routes::any_role(&p)?;
        if p.token.projects.is_some() {
            return Err(ApiError::forbidden(
                "a token limited to projects cannot make an S3 key (the key acts as the user in all of their projects): use a sign-in session or an unlimited token",
            ));
        }
        let description = b.description.unwrap_or_default();
        if description.chars().count() > 200 || description.chars().any(char::is_control) {
            return Err(invalid(
                "description must be at most 200 characters, without control characters",
            ));
        }
        let secrets = s.s3_secrets.clone().ok_or_else(|| {
            ApiError::conflict("this server has no S3 gateway: it cannot make S3 keys")
        })?;
        let (id, secret) = crate::s3_secrets::new_key_pair().map_err(ApiError::internal)?;
        let sealed = secrets
            .seal(id.as_bytes(), secret.as_bytes())
            .map_err(ApiError::internal)?;
        let k = s.catalog.add_s3_key(p.user.id, &id, &sealed, &description)?;
        let users = s.catalog.users()?;
        Ok((
            StatusCode::CREATED,
            Json(api::CreatedS3Key {
                secret_access_key: secret,
                key: view(k, &users),
            }),
        ))
    })
    .await
}

pub async fn revoke_s3_key(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<i64>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "s3-key.revoke",
        id.to_string(),
        move |s| {
            let k = s.catalog.s3_key(id)?;
            if k.user_id != p.user.id {
                // Another user's key does not exist for anyone but an admin.
                if !p.user_may(Action::Administer, None) {
                    return Err(ApiError::not_found(format!("S3 key {id} not found")));
                }
                p.require(Action::Administer, None)?;
            }
            s.catalog.revoke_s3_key(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
