//! Users: list, show, add (with their roles) and delete. Sign-in and
//! passwords are in [`super::accounts`].

use arca_catalog::{ProjectId, Role, RoleBinding, UserId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, check_name, invalid, Body, Id, Remote};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    role: String,
    #[serde(default)]
    project: Option<ProjectId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    roles: Vec<RoleIn>,
}

pub async fn list_users(State(s): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(Action::Administer, None)?;
    Ok(Json(json!(s.db.call(|c| c.users()).await?)))
}

pub async fn get_user(
    State(s): State<AppState>,
    p: Principal,
    id: Id<UserId>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    if p.user.id != id {
        p.require(Action::Administer, None)?;
    }
    Ok(Json(json!(s.db.call(move |c| c.user(id)).await?)))
}

pub async fn add_user(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
            let mut roles = Vec::new();
            for r in &b.roles {
                let role = r.role.parse::<Role>().map_err(|_| {
                    invalid(format!(
                        "unknown role {:?}; roles are admin, operator, restore-only, auditor",
                        r.role
                    ))
                })?;
                roles.push(RoleBinding {
                    role,
                    project_id: r.project,
                });
            }
            auth::check_new_password(&b.name, &password)?;
            let hash = hash.ok_or_else(|| ApiError::internal("the password was not hashed"))??;
            let u = s.catalog.add_user(&b.name, &hash, &roles)?;
            let mut v = json!({"user": u});
            if generated {
                v["password"] = json!(password);
            }
            Ok((StatusCode::CREATED, Json(v)))
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
