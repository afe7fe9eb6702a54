//! Users: list, show, add (with their roles), change their roles and
//! delete. Sign-in and
//! passwords are in [`super::accounts`].

use arca_catalog::{RoleBinding, UserId};
use arca_model::api;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{self, Action, Principal};
use crate::convert::{all, ToApi};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, audited_patch, check_name, invalid, no_change, Body, Id, Remote};
use crate::AppState;

pub async fn list_users(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::User>>> {
    p.require(Action::Administer, None)?;
    Ok(Json(all(s.db.call(|c| c.users()).await?)))
}

pub async fn get_user(
    State(s): State<AppState>,
    p: Principal,
    id: Id<UserId>,
) -> ApiResult<Json<api::User>> {
    let Path(id) = id?;
    if p.user.id != id {
        p.require(Action::Administer, None)?;
    }
    Ok(Json(s.db.call(move |c| c.user(id)).await?.to_api()))
}

pub async fn add_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewUser>,
) -> ApiResult<(StatusCode, Json<api::CreatedUser>)> {
    let Json(b) = body?;
    let target = b.name.clone();
    // Argon2 runs on the blocking pool, before the (synchronous) change.
    let (password, generated) = match &b.password {
        Some(pw) => (pw.clone(), false),
        None => (auth::random_password(), true),
    };
    let hash = match auth::check_new_password(&b.name, &password) {
        Ok(()) if p.can(Action::Administer, None) => Some(auth::hash(password.clone()).await),
        _ => None,
    };
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "user.add",
        target,
        move |s| {
            p.require(Action::Administer, None)?;
            check_name("user", &b.name)?;
            let roles: Vec<RoleBinding> = b
                .roles
                .iter()
                .map(|r| RoleBinding {
                    role: r.role,
                    project_id: r.project,
                })
                .collect();
            auth::check_new_password(&b.name, &password)?;
            let hash = hash.ok_or_else(|| ApiError::internal("the password was not hashed"))??;
            let u = s.catalog.add_user(&b.name, &hash, &roles)?;
            Ok((
                StatusCode::CREATED,
                Json(api::CreatedUser {
                    user: u.to_api(),
                    password: generated.then_some(password),
                }),
            ))
        },
    )
    .await
}

/// Replace a user's roles and/or disable or enable it (admins of all
/// projects; not one's own roles or state, so that no admin locks themself
/// out). Projects must exist (422). An empty change answers the user
/// unchanged.
pub async fn update_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<UserId>,
    body: Body<api::UserChange>,
) -> ApiResult<Json<api::User>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let target = format!("user {id}: roles {:?}, disabled {:?}", b.roles, b.disabled);
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "user.update",
        target,
        unchanged,
        move |s| {
            p.require(Action::Administer, None)?;
            let user = s.catalog.user(id)?;
            if b.roles.is_none() && b.disabled.is_none() {
                return Ok(Json(user.to_api()));
            }
            if id == p.user.id {
                return Err(ApiError::conflict(
                    "you cannot change your own roles or disable yourself",
                ));
            }
            let mut bindings = Vec::new();
            if let Some(roles) = &b.roles {
                if roles.len() > 64 {
                    return Err(invalid("at most 64 roles"));
                }
                let projects = s.catalog.projects()?;
                for r in roles {
                    if let Some(pid) = r.project {
                        if !projects.iter().any(|x| x.id == pid) {
                            return Err(invalid(format!("unknown project {pid}")));
                        }
                    }
                    let b = RoleBinding {
                        role: r.role,
                        project_id: r.project,
                    };
                    if !bindings.contains(&b) {
                        bindings.push(b);
                    }
                }
            }
            // Both changes in one transaction: a refused one leaves the
            // other undone.
            Ok(Json(
                s.catalog
                    .update_user(id, b.roles.is_some().then_some(&bindings[..]), b.disabled)?
                    .to_api(),
            ))
        },
    )
    .await
}

pub async fn delete_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<UserId>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "user.delete",
        id.to_string(),
        move |s| {
            p.require(Action::Administer, None)?;
            if id == p.user.id {
                return Err(ApiError::conflict("you cannot delete yourself"));
            }
            s.catalog.delete_user(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
