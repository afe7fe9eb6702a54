//! Users, roles, sessions, tokens and settings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{NodeId, ProjectId, TokenId, UserId};
use crate::kinds::{Role, TokenKind, TokenScope, TokenState};

/// A role in one project, or in every project (`project_id: null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleBinding {
    pub role: Role,
    /// The project; null: every project.
    pub project_id: Option<ProjectId>,
}

/// A user (never with a password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    pub roles: Vec<RoleBinding>,
    pub created_at: i64,
}

/// A token: a sign-in session, an API token or a node's token. Never the
/// secret (that is shown once, when it is made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: TokenId,
    /// The user it acts for (null for a node's token).
    pub user_id: Option<UserId>,
    /// The node it belongs to (node tokens only).
    pub node_id: Option<NodeId>,
    pub name: String,
    pub kind: TokenKind,
    pub created_at: i64,
    /// Null: it does not expire (node tokens).
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The token this one was made with (null: made with a sign-in
    /// session, or not an API token).
    pub parent_token_id: Option<TokenId>,
    pub scope: TokenScope,
    /// The projects the token is limited to (null: all of the user's).
    pub projects: Option<Vec<ProjectId>>,
    /// Whether it can be used (token lists only; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TokenState>,
}

/// `POST /api/v1/auth/login`: a new sign-in session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// The secret to send as `Authorization: Bearer <token>` (empty when
    /// the session went to a cookie).
    pub token: String,
    pub token_id: TokenId,
    pub expires_at: i64,
    pub user: User,
    /// With `cookie`: the value of the `X-Arca-CSRF` header that requests
    /// changing something must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// `GET /api/v1/me`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub token_id: TokenId,
    /// The token of the request.
    pub token: Token,
    /// The roles this request may use: the user's, narrowed to the
    /// token's projects.
    pub roles: Vec<RoleBinding>,
    /// When the request was signed in by the session cookie: the value of
    /// the `X-Arca-CSRF` header that requests changing something must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    /// The generated password, when none was given (shown once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Sessions and tokens a password change signed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedOut {
    /// Sign-in sessions revoked.
    pub sessions: u64,
    /// API tokens revoked (with `revoke_api_tokens`).
    pub api_tokens: u64,
}

/// `POST /api/v1/auth/password` and `POST /api/v1/users/{id}/password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PasswordChanged {
    pub user: User,
    pub signed_out: SignedOut,
    /// The generated password, when none was given (shown once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `PATCH /api/v1/users/{id}`: what to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// Replaces the user's roles (`[]`: none).
    #[serde(default)]
    pub roles: Option<Vec<RoleRequest>>,
    /// Disable (`true`) or enable (`false`) the user. A disabled user
    /// cannot sign in, and its sessions and API tokens are refused from
    /// the next request on (they are kept, and work again when the user
    /// is enabled).
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// `PATCH /api/v1/tokens/{id}`: what to change. A token's rights
/// (scope, projects, expiry) are set when it is made and never widened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenChange {
    /// A new name.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: Option<String>,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The secret (shown once).
    pub token: String,
    pub info: Token,
}

/// The admin-set server settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// The longest lifetime of a new API token, in seconds; a token made
    /// without `expires_in_s` gets this.
    pub token_max_lifetime_s: i64,
}

// ---- requests ----

/// `POST /api/v1/auth/login`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// Put the session in an HttpOnly cookie (`arca_session`, SameSite=Strict)
    /// instead of the answer: for the web UI. The answer's `token` is then
    /// empty and `csrf` is set; requests signed in by the cookie that change
    /// something must send it as `X-Arca-CSRF`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cookie: bool,
}

/// `POST /api/v1/auth/password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// At least 10 characters, not the user name.
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
    /// Also revoke your API tokens (default: only your other sessions).
    #[serde(default)]
    pub revoke_api_tokens: bool,
}

/// `POST /api/v1/users/{id}/password`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The new password (at least 10 characters, not the user name);
    /// without it one is generated and answered once.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: Option<String>,
    /// Revoke the user's API tokens too (default: only their sessions).
    #[serde(default)]
    pub revoke_api_tokens: bool,
}

/// A role to give a new user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: Role,
    /// The project (null: every project).
    #[serde(default)]
    pub project: Option<ProjectId>,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
    /// At least 10 characters, not the user name; generated (and answered
    /// once) when left out.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    pub password: Option<String>,
    #[serde(default)]
    pub roles: Vec<RoleRequest>,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$")]
    pub name: String,
    /// Lifetime in seconds: at most the maximum token lifetime (`GET
    /// /api/v1/settings`; 90 days by default) and the remaining life of
    /// the token making it. Left out: the maximum.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 316224000)]
    pub expires_in_s: Option<i64>,
    /// full (the user's rights), read-only (GET requests only) or metrics
    /// (GET /metrics only); default: the scope of the token making it.
    #[serde(default)]
    pub scope: Option<TokenScope>,
    /// Limit the token to these projects; default: those of the token
    /// making it.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 64)]
    pub projects: Option<Vec<ProjectId>>,
}

/// `PATCH /api/v1/settings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// The longest lifetime of new API tokens, in seconds: 3600 (an hour)
    /// to 316224000 (ten years); 7776000 (90 days) by default. There is no
    /// "unlimited".
    #[serde(default)]
    #[schema(minimum = 3600, maximum = 316224000)]
    pub token_max_lifetime_s: Option<i64>,
}

/// `POST /api/v1/keys/{name}/rotate`: a key file of the server rotated
/// (`credentials`: hypervisors' SSH keys; `s3`: S3 secret keys). Every
/// secret it sealed is sealed anew under a new random key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// `credentials` or `s3`.
    pub key: String,
    /// How many secrets were resealed.
    pub resealed: usize,
}

/// An S3 access key of the S3 gateway (issue 15). Never the secret
/// (that is shown once, when it is made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct S3Key {
    pub id: i64,
    /// The user it acts as.
    pub user_id: UserId,
    pub user: String,
    /// The key id clients sign with (`AKIA…`, 20 characters).
    pub access_key_id: String,
    pub description: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// `POST /api/v1/s3-keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewS3Key {
    /// Free text, at most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

/// `POST /api/v1/s3-keys`: the new key with its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedS3Key {
    /// The secret access key (40 characters; shown once).
    pub secret_access_key: String,
    pub key: S3Key,
}

/// `GET /api/v1/s3-keys` query: an admin lists another user's keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3KeyQuery {
    /// A user name (admins only; default: yourself).
    pub user: Option<String>,
}

/// `GET /api/v1/status`: what `arca status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The server's version.
    pub version: String,
    /// The S3 gateway's address (`http://host:port`); null when it is off.
    pub s3_endpoint: Option<String>,
    /// Nodes known to the server, and how many of them are online.
    pub nodes: u64,
    pub nodes_online: u64,
}
