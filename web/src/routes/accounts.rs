//! Sign-in and passwords: `POST /auth/login`, `POST /auth/password` (your
//! own, with the current one) and `POST /users/{id}/password` (an admin's
//! reset).
//!
//! Sign-in and a wrong current password count against the rate limits of
//! [`crate::signin_limit`]; a refused attempt leaves a structured log
//! record (`arca::signin`) with the user name, the address and why. A
//! password change signs the user's other sessions out in the same
//! transaction (API tokens only when asked: docs/control-plane.md).

use arca_catalog::{TokenKind, UserId};
use arca_model::api;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;

use crate::auth::{self, Action, Principal};
use crate::convert::ToApi;
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, Body, Id, Remote};
use crate::signin_limit::Limited;
use crate::AppState;

/// Spend the same Argon2 time on unknown and disabled users as on real ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A log record for a refused sign-in or password check.
fn refused(what: &str, user: &str, remote: &str, reason: &str, retry_after: Option<u64>) {
    tracing::warn!(
        target: "arca::signin",
        what,
        user,
        remote,
        reason,
        retry_after_s = retry_after,
        "{what} refused: {reason}"
    );
}

/// The 429 for a limited user or address.
fn limited(what: &str, user: &str, remote: &str, l: Limited) -> ApiError {
    refused(what, user, remote, "rate_limited", Some(l.retry_after));
    let whose = match l.by {
        "user" => format!("for user {user:?}"),
        _ if remote.is_empty() => "from this address".to_string(),
        _ => format!("from {remote}"),
    };
    ApiError::too_many(
        format!(
            "too many failed sign-ins {whose}; try again in {} seconds",
            l.retry_after
        ),
        l.retry_after,
    )
}

/// A user name as a limiter key (longer names never exist).
fn key(name: &str) -> &str {
    let mut end = name.len().min(128);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

pub async fn login(
    State(s): State<AppState>,
    remote: Remote,
    body: Body<api::Login>,
) -> ApiResult<axum::response::Response> {
    let Json(b) = body?;
    let cookie = b.cookie;
    let secure = s.secure_cookies;
    let name = key(&b.username).to_string();
    let name = name.as_str();
    if let Err(l) = s.signin.check(name, &remote.0) {
        // Refused before the password is looked at, right or wrong.
        return Err(limited("sign-in", name, &remote.0, l));
    }
    let user = if b.username.len() > 128 || b.password.len() > auth::MAX_PASSWORD {
        None
    } else {
        let username = b.username.clone();
        s.db.call(move |c| c.user_by_name(&username)).await?
    };
    let (hash, user) = match user {
        Some(u) if !u.disabled => (u.password_hash.clone(), Some(u)),
        _ => (DUMMY_HASH.to_string(), None),
    };
    let ok = auth::verify(b.password, hash).await && user.is_some();
    if ok {
        s.signin.success(name);
    } else {
        s.signin.failure(name, &remote.0);
        refused(
            "sign-in",
            name,
            &remote.0,
            if user.is_some() {
                "wrong_password"
            } else {
                "unknown_or_disabled_user"
            },
            None,
        );
    }
    audited(
        &s,
        name.to_string(),
        &remote,
        "auth.login",
        String::new(),
        move |s| {
            let user = match (ok, user) {
                (true, Some(u)) => u,
                _ => return Err(ApiError::unauthorized("wrong user name or password")),
            };
            let (secret, hash) = auth::new_secret();
            // 12 hours, or the admin-set maximum token lifetime when shorter.
            let max = s.catalog.settings()?.token_max_lifetime_s;
            let expires = arca_catalog::now() + auth::SESSION_SECS.min(max);
            let t = s.catalog.add_token(
                Some(user.id),
                None,
                "session",
                TokenKind::Session,
                &hash,
                Some(expires),
            )?;
            let session = api::Session {
                token: if cookie {
                    String::new()
                } else {
                    secret.clone()
                },
                token_id: t.id,
                expires_at: expires,
                user: user.to_api(),
                csrf: cookie.then(|| auth::csrf_value(&secret)),
            };
            Ok(if cookie {
                let set =
                    auth::session_set_cookie(Some(&secret), expires - arca_catalog::now(), secure);
                ([(axum::http::header::SET_COOKIE, set)], Json(session)).into_response()
            } else {
                Json(session).into_response()
            })
        },
    )
    .await
}

/// Sign out: the session (or token) of the request is revoked, and the
/// session cookie removed.
pub async fn logout(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
) -> ApiResult<axum::response::Response> {
    let id = p.token_id;
    let secure = s.secure_cookies;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "auth.logout",
        format!("token {id}"),
        move |s| {
            s.catalog.revoke_token(id)?;
            Ok((
                axum::http::StatusCode::NO_CONTENT,
                [(
                    axum::http::header::SET_COOKIE,
                    auth::session_set_cookie(None, 0, secure),
                )],
            )
                .into_response())
        },
    )
    .await
}

/// Change your own password. The session (or token) used for the call
/// stays; your other sessions are signed out.
pub async fn change_password(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::ChangePassword>,
) -> ApiResult<Json<api::PasswordChanged>> {
    let Json(b) = body?;
    let name = p.name().to_string();
    let r = async {
        s.signin
            .check(&name, &remote.0)
            .map_err(|l| limited("password change", &name, &remote.0, l))?;
        auth::check_new_password(&name, &b.new_password)?;
        let current_ok = b.current_password.len() <= auth::MAX_PASSWORD
            && auth::verify(b.current_password, p.user.password_hash.clone()).await;
        if !current_ok {
            s.signin.failure(&name, &remote.0);
            refused(
                "password change",
                &name,
                &remote.0,
                "wrong_current_password",
                None,
            );
            return Err(ApiError::forbidden(
                "the current password is wrong; the password was not changed",
            ));
        }
        s.signin.success(&name);
        let hash = auth::hash(b.new_password).await?;
        let (uid, keep, api) = (p.user.id, Some(p.token_id), b.revoke_api_tokens);
        let out =
            s.db.call(move |c| c.change_password(uid, &hash, keep, api))
                .await?;
        Ok::<_, ApiError>(Json(api::PasswordChanged {
            user: p.user.clone().to_api(),
            signed_out: out.to_api(),
            password: None,
        }))
    }
    .await;
    audited(&s, name.clone(), &remote, "user.password", name, move |_| r).await
}

/// An admin sets a user's password. All of the user's sessions are signed
/// out (but the admin's own, when resetting their own password), and the
/// user's sign-in lockout, if any, ends.
pub async fn reset_password(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<UserId>,
    body: Body<api::ResetPassword>,
) -> ApiResult<Json<api::PasswordChanged>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let r = async {
        p.require(Action::Administer, None)?;
        let u = s.db.call(move |c| c.user(id)).await?;
        let (password, generated) = match b.new_password {
            Some(pw) => (pw, false),
            None => (auth::random_password(), true),
        };
        auth::check_new_password(&u.name, &password)?;
        let hash = auth::hash(password.clone()).await?;
        let keep = (u.id == p.user.id).then_some(p.token_id);
        let (uid, api) = (u.id, b.revoke_api_tokens);
        let out =
            s.db.call(move |c| c.change_password(uid, &hash, keep, api))
                .await?;
        s.signin.success(&u.name);
        Ok::<_, ApiError>(Json(api::PasswordChanged {
            user: u.to_api(),
            signed_out: out.to_api(),
            password: generated.then_some(password),
        }))
    }
    .await;
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "user.password_reset",
        id.to_string(),
        move |_| r,
    )
    .await
}
