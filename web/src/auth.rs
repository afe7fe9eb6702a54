//! Sign-in, bearer tokens and the role/permission model.
//!
//! Passwords are stored as Argon2id PHC strings, hashed and checked on
//! tokio's blocking pool ([`hash`], [`verify`]): an Argon2 run takes tens
//! of milliseconds of CPU and must not stall the async workers. Tokens are
//! `arca_<64 hex>`; only their SHA-256 is stored, so a stolen catalog does
//! not hand out sessions. Session tokens (from `POST /auth/login`) last 12
//! hours; API tokens last until they expire (at most the admin-set maximum,
//! 90 days by default) or are revoked, or a token they were minted with is.
//!
//! Roles are granted per project, or for all projects. What each role may
//! do is [`allows`]; docs/control-plane.md has the same table.
//!
//! A token narrows its user's rights (docs/control-plane.md, "Tokens"):
//! - scope `read-only`: only GET and HEAD requests (anything else is 403
//!   before the handler runs), and no action that hands out data or
//!   credentials (restore, export addresses and secrets);
//! - scope `metrics`: only `GET /metrics` ([`MetricsReader`]); every other
//!   route answers 403;
//! - projects: the user's bindings intersected with the token's projects
//!   (an all-projects binding becomes one binding per listed project, so a
//!   project-limited token never administers). Objects of projects outside
//!   the token answer 404 ([`Principal::require_on`]), as if they did not
//!   exist.

use arca_catalog::{ProjectId, Role, RoleBinding, Token, TokenId, TokenScope, User};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

pub const SESSION_SECS: i64 = 12 * 3600;

/// What a request may want to do; checked per project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// List and read sources, policies, tasks, restore points.
    Read,
    /// Create, change and delete sources and policies; start and cancel
    /// backups and other tasks.
    Manage,
    /// Restore from restore points.
    Restore,
    /// Read the audit log.
    ReadAudit,
    /// Users, projects, datastores (only with an all-projects binding).
    Administer,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Read,
        Action::Manage,
        Action::Restore,
        Action::ReadAudit,
        Action::Administer,
    ];
}

/// The role table.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Operator => matches!(action, Read | Manage | Restore),
        Role::RestoreOnly => matches!(action, Read | Restore),
        Role::Auditor => matches!(action, Read | ReadAudit),
    }
}

/// May `roles` do `action` in `project` (`None`: across all projects)?
fn roles_allow(roles: &[RoleBinding], action: Action, project: Option<ProjectId>) -> bool {
    roles.iter().any(|b: &RoleBinding| {
        allows(b.role, action)
            && match (b.project_id, project) {
                (None, _) => true,
                (Some(p), Some(q)) => p == q,
                (Some(_), None) => false,
            }
            && (action != Action::Administer || b.project_id.is_none())
    })
}

/// The user's bindings as a token limited to `projects` leaves them: an
/// all-projects binding becomes one per listed project, a project binding
/// stays only when its project is listed.
pub fn narrow(roles: &[RoleBinding], projects: Option<&[ProjectId]>) -> Vec<RoleBinding> {
    let Some(projects) = projects else {
        return roles.to_vec();
    };
    let mut out: Vec<RoleBinding> = Vec::new();
    let mut add = |b: RoleBinding| {
        if !out.contains(&b) {
            out.push(b);
        }
    };
    for b in roles {
        match b.project_id {
            None => {
                for p in projects {
                    add(RoleBinding {
                        role: b.role,
                        project_id: Some(*p),
                    });
                }
            }
            Some(p) if projects.contains(&p) => add(b.clone()),
            Some(_) => {}
        }
    }
    out
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The user, with all their role bindings.
    pub user: User,
    pub token_id: TokenId,
    /// The token the request came with.
    pub token: Token,
    /// The role bindings this request may use: the user's, narrowed to
    /// the token's projects.
    pub roles: Vec<RoleBinding>,
    /// Signed in by the session cookie: the CSRF value of the session.
    pub csrf: Option<String>,
}

impl Principal {
    pub fn new(user: User, token: Token) -> Principal {
        let roles = narrow(&user.roles, token.projects.as_deref());
        Principal {
            csrf: None,
            user,
            token_id: token.id,
            token,
            roles,
        }
    }

    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// Does the token's scope leave `action` to the roles?
    fn scope_allows(&self, action: Action) -> bool {
        match self.token.scope {
            TokenScope::Full => true,
            // Only GET routes reach the handlers: reading, the audit log
            // and administrators' lists, but not restores or the export
            // credentials (they read the data).
            TokenScope::ReadOnly => !matches!(action, Action::Manage | Action::Restore),
            TokenScope::Metrics => false,
        }
    }

    /// May the caller do `action` in `project` (`None`: across all projects)?
    pub fn can(&self, action: Action, project: Option<ProjectId>) -> bool {
        self.scope_allows(action) && roles_allow(&self.roles, action, project)
    }

    /// The projects in which the caller may `action`; `None` means all.
    pub fn projects(&self, action: Action) -> Option<Vec<ProjectId>> {
        if !self.scope_allows(action) {
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        for b in &self.roles {
            if allows(b.role, action) {
                match b.project_id {
                    None => return None,
                    Some(p) => out.push(p),
                }
            }
        }
        Some(out)
    }

    /// Is `project` outside the projects the token is limited to? Its
    /// objects then do not exist for this request.
    pub fn hides(&self, project: ProjectId) -> bool {
        self.token
            .projects
            .as_ref()
            .is_some_and(|p| !p.contains(&project))
    }

    /// [`require`](Self::require) for an existing object of `project`:
    /// 404 "`what` not found" when the token's projects leave it out, as
    /// for an object that does not exist.
    pub fn require_on(
        &self,
        action: Action,
        project: ProjectId,
        what: &str,
    ) -> Result<(), ApiError> {
        if self.hides(project) {
            return Err(ApiError::not_found(format!("{what} not found")));
        }
        self.require(action, Some(project))
    }

    /// Whether the user's roles allow `action` in `project` (`None`:
    /// across all projects), whatever the token used may do.
    pub fn user_may(&self, action: Action, project: Option<ProjectId>) -> bool {
        roles_allow(&self.user.roles, action, project)
    }

    pub fn require(&self, action: Action, project: Option<ProjectId>) -> Result<(), ApiError> {
        if self.can(action, project) {
            Ok(())
        } else if roles_allow(&self.user.roles, action, project) {
            // The user could; the token may not.
            Err(ApiError::forbidden(
                match (self.token.scope, &self.token.projects) {
                    (TokenScope::Full, Some(p)) => format!(
                        "this token is limited to project(s) {}; {} is outside it",
                        join(p),
                        match project {
                            Some(q) => format!("project {q}"),
                            None => "an all-projects action".into(),
                        }
                    ),
                    (scope, _) => format!(
                        "this token's scope is {}: it may not do this",
                        scope.as_str()
                    ),
                },
            ))
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not {} {}",
                self.user.name,
                match action {
                    Action::Read => "read",
                    Action::Manage => "change",
                    Action::Restore => "restore from",
                    Action::ReadAudit => "read the audit log of",
                    Action::Administer => "administer",
                },
                match project {
                    Some(p) => format!("project {p}"),
                    None => "all projects".into(),
                }
            )))
        }
    }
}

/// Shortest and longest password accepted (in characters and bytes).
pub const MIN_PASSWORD: usize = 10;
pub const MAX_PASSWORD: usize = 1024;

/// The password rule, as the 422 states it.
pub const PASSWORD_RULE: &str =
    "a password must be 10 to 1024 characters long and must not be the user name";

/// Check a new password for `user` against [`PASSWORD_RULE`].
pub fn check_new_password(user: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(ApiError::invalid(format!(
            "{PASSWORD_RULE} (this one has {n} characters)"
        )));
    }
    if password.trim().to_lowercase() == user.to_lowercase() {
        return Err(ApiError::invalid(format!(
            "{PASSWORD_RULE} (this one is the user name)"
        )));
    }
    Ok(())
}

/// [`hash_password`] on the blocking pool.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hash: {e}")))?
}

/// [`verify_password`] on the blocking pool.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// Hash a password (Argon2id, random salt). Blocks for the length of an
/// Argon2 run: from async code call [`hash`].
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(&random::<16>())
        .map_err(|e| ApiError::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hash: {e}")))
}

/// Does `password` match the PHC string `hash`? Blocks like
/// [`hash_password`]: from async code call [`verify`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG failing is not recoverable.
    getrandom::fill(&mut b).expect("operating system random number generator failed");
    b
}

/// A new token secret and the hash to store.
pub fn new_secret() -> (String, Vec<u8>) {
    let secret = format!("arca_{}", hex::encode(random::<32>()));
    let hash = secret_hash(&secret);
    (secret, hash)
}

pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A random password for generated accounts: 20 characters, ~119 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random::<20>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn join(ids: &[ProjectId]) -> String {
    ids.iter()
        .map(ProjectId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check a token: exists, not revoked, not expired (nor any token it was
/// minted with), its user enabled.
pub fn check_token(state: &AppState, secret_sha256: &[u8]) -> Result<(Token, User), ApiError> {
    let token = state
        .catalog
        .live_token(secret_sha256)?
        .map_err(ApiError::unauthorized)?;
    let user_id = token
        .user_id
        .ok_or_else(|| ApiError::unauthorized("a node token cannot call the user API"))?;
    let user = state.catalog.user(user_id)?;
    if user.disabled {
        return Err(ApiError::unauthorized("user disabled"));
    }
    Ok((token, user))
}

/// How often a token's `last_used_at` is written: a request within this
/// many seconds of the last recorded use leaves it as it is.
pub const TOUCH_EVERY_S: i64 = 60;

/// Record the use of `t`, at most once every [`TOUCH_EVERY_S`] seconds per
/// token, on the blocking pool and without the request waiting for it (a
/// read request must not wait for the writer).
fn touch(state: &AppState, t: &Token) {
    if t.last_used_at
        .is_some_and(|at| arca_catalog::now() - at < TOUCH_EVERY_S)
    {
        return;
    }
    let (c, id) = (state.catalog.clone(), t.id);
    // Detached: the request goes on; a failure only loses the timestamp.
    drop(tokio::task::spawn_blocking(move || c.touch_token(id)));
}

/// The name of the web UI's session cookie.
pub const SESSION_COOKIE: &str = "arca_session";
/// The header that requests signed in by the cookie send to change
/// something (see [`csrf_value`]).
pub const CSRF_HEADER: &str = "x-arca-csrf";

/// The CSRF value of a session: derived from its secret, so it needs no
/// storage, and unknown to other sites (they can neither read the
/// HttpOnly cookie nor our answers). Requests signed in by the cookie
/// that are not GET or HEAD must carry it in [`CSRF_HEADER`]; with
/// `SameSite=Strict` on the cookie that is two locks against cross-site
/// requests.
pub fn csrf_value(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"arca-csrf\0");
    h.update(secret.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The session secret of the `arca_session` cookie, if the request has one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.split_once('=')?;
            (k.trim() == SESSION_COOKIE).then(|| v.trim())
        })
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session (`max_age` seconds) or, with `None`,
/// one that removes it.
pub fn session_set_cookie(secret: Option<&str>, max_age: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        secret.unwrap_or(""),
        if secret.is_some() { max_age.max(0) } else { 0 },
        if secure { "; Secure" } else { "" }
    )
}

/// The bearer token (or, without one, the session cookie) of a request,
/// checked (on the blocking pool), as a [`Principal`] of any scope.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let (secret, by_cookie) = match parts.headers.get(axum::http::header::AUTHORIZATION) {
        Some(header) => (
            header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::unauthorized("Authorization must be \"Bearer <token>\"")
                })?,
            false,
        ),
        None => (
            session_cookie(&parts.headers).ok_or_else(|| {
                ApiError::unauthorized("sign in: Authorization: Bearer <token> is missing")
            })?,
            true,
        ),
    };
    let hash = secret_hash(secret);
    let generation = state.catalog.write_generation();
    let cached = state.tokens.get(&hash, generation, arca_catalog::now());
    let (token, user) = match cached {
        Some(found) => found,
        None => {
            state
                .call(move |s| {
                    // Read before the check: a write after it makes the
                    // entry stale (see token_cache).
                    let generation = s.catalog.write_generation();
                    let (token, user) = check_token(s, &hash)?;
                    s.tokens.insert(hash, generation, &token, &user);
                    Ok((token, user))
                })
                .await?
        }
    };
    let csrf = by_cookie.then(|| csrf_value(secret));
    if let Some(want) = &csrf {
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let got = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if got != Some(want.as_str()) {
                return Err(ApiError::forbidden(
                    "a request signed in by the session cookie that changes something must carry the session's X-Arca-CSRF header",
                ));
            }
        }
    }
    touch(state, &token);
    crate::RequestUser::set(&parts.extensions, &user.name);
    let mut p = Principal::new(user, token);
    p.csrf = csrf;
    Ok(p)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// Any route but `/metrics`: a metrics token is refused, a read-only
    /// one unless the request is a GET or HEAD.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let p = authenticate(parts, state).await?;
        match p.token.scope {
            TokenScope::Full => {}
            TokenScope::ReadOnly => {
                if !matches!(parts.method, Method::GET | Method::HEAD) {
                    return Err(ApiError::forbidden(format!(
                        "this token is read-only: it may not {} (only GET requests)",
                        parts.method
                    )));
                }
            }
            TokenScope::Metrics => {
                return Err(ApiError::forbidden(
                    "this token's scope is metrics: it may only read /metrics",
                ))
            }
        }
        Ok(p)
    }
}

/// The caller of `GET /metrics`: a valid token of any scope (full,
/// read-only or metrics) whose user has a role.
pub struct MetricsReader(pub Principal);

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let p = authenticate(parts, state).await?;
        if p.roles.is_empty() {
            return Err(ApiError::forbidden(format!(
                "{} has no role{}",
                p.name(),
                if p.token.projects.is_some() {
                    " in this token's projects"
                } else {
                    ""
                }
            )));
        }
        Ok(MetricsReader(p))
    }
}
