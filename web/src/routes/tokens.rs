//! API tokens (`/tokens`) and the admin settings that bound them
//! (`/settings`). See docs/control-plane.md, "Tokens".
//!
//! - A token made with a request authenticated by API token T is T's
//!   child: it cannot outlive T, cannot have a wider scope, and cannot
//!   reach projects T cannot. Revoking T revokes all its descendants.
//!   Tokens made with a sign-in session are roots (the session is the
//!   user who typed the password; a token made in the web UI must outlive
//!   the 12-hour session).
//! - Every API token expires: `expires_in_s` at most the admin-set
//!   `token_max_lifetime_s` (default 90 days; 400 beyond it, naming the
//!   maximum), and exactly that when left out.

use arca_catalog::{self as catalog, NewApiToken, ProjectId, Token, TokenId, TokenKind};
use arca_model::{api, TokenState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{self, Action, Principal};
use crate::convert::ToApi;
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, audited_patch, check_name, invalid, no_change, Body, Id, Remote};
use crate::AppState;

/// Seconds as the CLI writes them: `90d`, `12h`, `30m`, or `45s`.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A token as the API shows it: its record and whether it can be used
/// (`active`, `revoked`, `expired`, or `parent-revoked`/`parent-expired`
/// when a token it was made with is).
fn view(s: &AppState, t: Token) -> ApiResult<api::Token> {
    let state = match s.catalog.token_problem(&t)? {
        None => TokenState::Active,
        Some(w) if w.starts_with("token revoked:") => TokenState::ParentRevoked,
        Some(w) if w.starts_with("token expired:") => TokenState::ParentExpired,
        Some(w) if w.starts_with("token revoked") => TokenState::Revoked,
        Some(_) => TokenState::Expired,
    };
    Ok(api::Token {
        state: Some(state),
        ..t.to_api()
    })
}

pub async fn list_tokens(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<api::Token>>> {
    s.call(move |s| {
        let list = s.catalog.tokens_of_user(p.user.id)?;
        let out = list
            .into_iter()
            .map(|t| view(s, t))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Json(out))
    })
    .await
}

fn ids(p: &[ProjectId]) -> String {
    p.iter()
        .map(ProjectId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The projects a new token is limited to: those asked for, each within
/// the minting token's and one the user has a role in; or the minting
/// token's when none are asked for.
fn token_projects(
    s: &AppState,
    p: &Principal,
    asked: Option<&[ProjectId]>,
) -> ApiResult<Option<Vec<ProjectId>>> {
    let Some(asked) = asked else {
        return Ok(p.token.projects.clone());
    };
    if asked.is_empty() || asked.len() > 64 {
        return Err(invalid(
            "projects must list 1 to 64 project ids (leave it out for all of yours)",
        ));
    }
    let mut v = asked.to_vec();
    v.sort_unstable();
    v.dedup();
    let known: Vec<ProjectId> = s.catalog.projects()?.iter().map(|x| x.id).collect();
    for q in &v {
        if let Some(limit) = &p.token.projects {
            if !limit.contains(q) {
                return Err(ApiError::forbidden(format!(
                    "this token is limited to project(s) {}: it cannot make a token for project {q}",
                    ids(limit)
                )));
            }
        }
        if !known.contains(q) || !p.can(Action::Read, Some(*q)) {
            return Err(invalid(format!(
                "project {q}: no such project, or {} has no role in it",
                p.name()
            )));
        }
    }
    Ok(Some(v))
}

pub async fn add_token(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewToken>,
) -> ApiResult<(StatusCode, Json<api::CreatedToken>)> {
    let Json(b) = body?;
    audited(&s, p.name().to_string(), &remote, "token.add", b.name.clone(), move |s| {
        check_name("token", &b.name)?;
        let scope = b.scope.unwrap_or(p.token.scope);
        if !scope.within(p.token.scope) {
            return Err(ApiError::forbidden(format!(
                "a {} token cannot make a {} token",
                p.token.scope.as_str(),
                scope.as_str()
            )));
        }
        let projects = token_projects(s, &p, b.projects.as_deref())?;
        let max = s.catalog.settings()?.token_max_lifetime_s;
        let now = catalog::now();
        // Minted with an API token: its child. With a session: a root.
        let parent = (p.token.kind == TokenKind::Api).then_some(p.token.id);
        let parent_end = parent.and(p.token.expires_at);
        let expires_at = match b.expires_in_s {
            Some(e) if e < 1 => return Err(invalid("expires_in_s must be at least 1 second")),
            Some(e) if e > max => {
                return Err(ApiError::bad_request(format!(
                    "expires_in_s {e} ({}) is longer than the maximum token lifetime, {max} s ({}); an admin sets the maximum (PATCH /api/v1/settings, `arca settings set token-max-lifetime`)",
                    human_duration(e),
                    human_duration(max)
                )))
            }
            Some(e) => {
                let at = now + e;
                if let Some(end) = parent_end.filter(|end| at > *end) {
                    return Err(ApiError::bad_request(format!(
                        "the new token would outlive token {} that makes it, which expires in {} s: ask for at most expires_in_s {}",
                        p.token.id,
                        end - now,
                        end - now
                    )));
                }
                at
            }
            None => parent_end.map_or(now + max, |end| end.min(now + max)),
        };
        let (secret, hash) = auth::new_secret();
        let t = s.catalog.add_api_token(&NewApiToken {
            user_id: p.user.id,
            name: &b.name,
            secret_sha256: &hash,
            expires_at,
            scope,
            projects,
            parent_token_id: parent,
        })?;
        Ok((
            StatusCode::CREATED,
            Json(api::CreatedToken {
                token: secret,
                info: view(s, t)?,
            }),
        ))
    })
    .await
}

/// Revoke a token (yours, or any as an admin) and every token made with
/// it.
pub async fn revoke_token(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<TokenId>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "token.revoke",
        id.to_string(),
        move |s| {
            require_token(&p, &s.catalog.token(id)?)?;
            s.catalog.revoke_token(id)?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}

/// One's own token, or any as an admin of all projects. Another user's
/// token is a 404 to anyone else, as a token that does not exist (the
/// ids of other users' tokens stay unknown, docs/ids.md); a 403 only when
/// the user may administer but the token used may not.
fn require_token(p: &Principal, t: &Token) -> Result<(), ApiError> {
    if t.user_id == Some(p.user.id) {
        return Ok(());
    }
    if !p.user_may(Action::Administer, None) {
        return Err(ApiError::not_found(format!("token {} not found", t.id)));
    }
    p.require(Action::Administer, None)
}

/// Rename a token: one's own, or any as an admin of all projects.
pub async fn update_token(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<TokenId>,
    body: Body<api::TokenChange>,
) -> ApiResult<Json<api::Token>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "token.update",
        id.to_string(),
        unchanged,
        move |s| {
            let token = s.catalog.token(id)?;
            require_token(&p, &token)?;
            let Some(name) = b.name else {
                return Ok(Json(token.to_api()));
            };
            check_name("token", &name)?;
            Ok(Json(s.catalog.rename_token(id, &name)?.to_api()))
        },
    )
    .await
}

// ---- settings ----

pub async fn get_settings(
    State(s): State<AppState>,
    p: Principal,
) -> ApiResult<Json<api::Settings>> {
    p.require(Action::Administer, None)?;
    Ok(Json(s.db.call(|c| c.settings()).await?.to_api()))
}

pub async fn update_settings(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::SettingsPatch>,
) -> ApiResult<Json<api::Settings>> {
    let Json(b) = body?;
    let target = match b.token_max_lifetime_s {
        Some(v) => format!("token_max_lifetime_s={v}"),
        None => String::new(),
    };
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "settings.update",
        target,
        unchanged,
        move |s| {
            p.require(Action::Administer, None)?;
            let out = match b.token_max_lifetime_s {
                Some(v) => s.catalog.set_token_max_lifetime(v)?,
                None => s.catalog.settings()?,
            };
            Ok(Json(out.to_api()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_cli_writes_them() {
        assert_eq!(human_duration(7_776_000), "90d");
        assert_eq!(human_duration(7200), "2h");
        assert_eq!(human_duration(90), "90s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(0), "0s");
    }
}
