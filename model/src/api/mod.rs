//! The REST API's request and response bodies (`/api/v1/...`), with their
//! JSON Schema (`utoipa::ToSchema`; doc comments become descriptions).
//! web/src/openapi.rs builds the served document's component schemas
//! from these types.
//!
//! Field names, types and optionality are those of the JSON the handlers
//! take and send (web/src/routes/): a response type
//! serializes to the same JSON as today's `json!` outputs, a request type
//! takes the same bodies (unknown fields are refused, as today).
//! Constraints the handlers check (name patterns, ranges, path limits) are
//! in the schemas too, so a client can see them; the handlers still check
//! them and answer 422 with a message.
//!
//! Times are whole seconds since the Unix epoch, UTC, unless a field says
//! otherwise.
//!
//! A PATCH body is a JSON merge patch: absent fields stay as they are
//! (null clears an optional one where a field says so), and `{}` changes
//! nothing; the answer is then the resource unchanged (200).

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

mod accounts;
mod hypervisors;
mod preview;
mod records;
mod reports;
mod requests;
mod search;
mod tree;

pub use accounts::*;
pub use hypervisors::*;
pub use preview::*;
pub use records::*;
pub use reports::*;
pub use requests::*;
pub use search::*;
pub use tree::*;

/// The pattern of names of users, projects, nodes, sources, policies,
/// tokens and tags: 1-128 letters, digits, `.`, `_`, `-` or `@`, not
/// starting with `.` or `-`.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$";

/// A name (schema only: request fields keep `String` and the handlers
/// check it, answering 422).
pub struct Name;

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NAME_PATTERN))
            .description(Some(
                "1-128 letters, digits, '.', '_', '-' or '@', not starting with '.' or '-'",
            ))
            .into()
    }
}

impl ToSchema for Name {}

/// An absolute path on a node (schema only, like [`Name`]).
pub struct AbsPath;

impl PartialSchema for AbsPath {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^/[^\\u0000]*$"))
            .max_length(Some(4096))
            .description(Some("An absolute path on the node, without NUL"))
            .into()
    }
}

impl ToSchema for AbsPath {}

/// Every error answer: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `too_large`, `unsupported_media_type`, `invalid`,
    /// `too_many_requests` or `internal`.
    pub error: String,
    pub message: String,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The catalog's schema version.
    pub catalog_schema: i64,
}

/// Query of `GET /api/v1/tasks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    #[serde(default)]
    pub state: Option<crate::TaskState>,
    /// Only tasks of this kind.
    #[serde(default)]
    pub kind: Option<crate::TaskKind>,
    /// Only tasks of this source (its id).
    #[serde(default)]
    pub source: Option<crate::SourceId>,
    /// 1..=1000 (default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Query of `GET /api/v1/restore-points`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestorePointQuery {
    /// Source name.
    #[serde(default)]
    pub source: Option<String>,
    /// A project, by name or id: only its restore points. An unknown
    /// project, or one the caller may not read, is a 404.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub kind: Option<crate::SourceKind>,
    /// Restore points at or after this time.
    #[serde(default)]
    pub since: Option<i64>,
    /// Restore points at or before this time.
    #[serde(default)]
    pub until: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Query of `GET /api/v1/audit`: every filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries of this actor (a user name, or `arca server`), exactly.
    #[serde(default)]
    pub actor: Option<String>,
    /// Entries of this action (`user.add`), or of every action that
    /// starts with it when it ends with `.` (`user.`).
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub result: Option<crate::AuditResult>,
    /// Entries at or after this time.
    #[serde(default)]
    pub since: Option<i64>,
    /// Entries at or before this time.
    #[serde(default)]
    pub until: Option<i64>,
    /// 1..=1000 (default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Query of `GET /api/v1/exports`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportsQuery {
    /// Also the ended exports (default: live ones only).
    #[serde(default)]
    pub all: bool,
}

/// Query of `DELETE /api/v1/exports/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopExportQuery {
    /// Commit a writable export's changes as a new restore point.
    #[serde(default)]
    pub commit: bool,
}
