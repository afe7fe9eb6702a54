//! Sign-in, bearer tokens and the role/permission model.
//!
//! Passwords are stored as Argon2id PHC strings, hashed and checked on
//! tokio's blocking pool ([`hash`], [`verify`]): an Argon2 run takes tens
//! of milliseconds of CPU and must not stall the async workers. Tokens are
//! `arca_<64 hex>`; only their SHA-256 is stored, so a stolen catalog does
//! not hand out sessions. Session tokens (from `POST /auth/login`) last 12
//! hours; API tokens last until they expire or are revoked.
//!
//! Roles are granted per project, or for all projects. What each role may
//! do is [`allows`]; docs/roles.md has the same table.

use arca_catalog::{Role, RoleBinding, Token, User};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    pub token_id: i64,
}

impl Principal {
    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// May the caller do `action` in `project` (`None`: across all projects)?
    pub fn can(&self, action: Action, project: Option<i64>) -> bool {
        self.user.roles.iter().any(|b: &RoleBinding| {
            allows(b.role, action)
                && match (b.project_id, project) {
                    (None, _) => true,
                    (Some(p), Some(q)) => p == q,
                    (Some(_), None) => false,
                }
                && (action != Action::Administer || b.project_id.is_none())
        })
    }

    /// The projects in which the caller may `action`; `None` means all.
    pub fn projects(&self, action: Action) -> Option<Vec<i64>> {
        let mut out = Vec::new();
        for b in &self.user.roles {
            if allows(b.role, action) {
                match b.project_id {
                    None => return None,
                    Some(p) => out.push(p),
                }
            }
        }
        Some(out)
    }

    pub fn require(&self, action: Action, project: Option<i64>) -> Result<(), ApiError> {
        if self.can(action, project) {
            Ok(())
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

/// Check a token: exists, not revoked, not expired, its user enabled.
pub fn check_token(state: &AppState, secret: &str) -> Result<(Token, User), ApiError> {
    let token = state
        .catalog
        .live_token(&secret_hash(secret))?
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

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("sign in: Authorization: Bearer <token> is missing")
            })?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be \"Bearer <token>\""))?;
        let (token, user) = check_token(state, secret)?;
        let _ = state.catalog.touch_token(token.id);
        Ok(Principal {
            user,
            token_id: token.id,
        })
    }
}
