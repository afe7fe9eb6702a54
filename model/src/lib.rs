//! Arca's domain model: the types the control plane talks in, below the
//! catalog, the REST API, the CLI client and the node protocol.
//!
//! - [`ids`]: a newtype id per entity ([`SourceId`], [`PolicyId`], ...;
//!   bare numbers in JSON) and [`RestorePointId`], the datastore's
//!   snapshot id.
//! - [`kinds`]: an enum per kind and state ([`TaskKind`], [`TaskState`],
//!   [`ExportState`], [`Role`], ...), serialized as the strings the
//!   catalog stores and the API sends.
//! - [`task`]: [`TaskSpec`], a task's kind with its typed parameters,
//!   serialized as the catalog's `kind` and `params` columns.
//! - [`task_result`]: [`TaskResult`], a succeeded task's typed result,
//!   serialized as the catalog's `result` column.
//! - `sql` (feature `rusqlite`): the catalog's columns read and written
//!   as ids and kinds, with the values stored today.
//! - [`net`]: address blocks ([`net::Cidr`]), the allow lists of NFS
//!   exports.
//! - [`paths`]: paths inside a restore point, relative to the source's
//!   root (`--path`).
//! - [`search`]: the glob patterns of `arca find` and the search
//!   endpoint.
//! - [`api`]: the REST request and response bodies, with their JSON
//!   Schema (utoipa), from which the served OpenAPI document's component
//!   schemas are made (web/src/openapi.rs).
//!
//! The crate has no I/O and depends on nothing above the datastore: the
//! serde names and field shapes are the compatibility contract with the
//! catalog's stored values and the API's JSON, and the unit tests pin
//! them to today's JSON.

pub mod api;
pub mod ids;
pub mod kinds;
pub mod net;
pub mod paths;
pub mod search;
#[cfg(feature = "rusqlite")]
pub mod sql;
pub mod task;
pub mod task_result;

pub use ids::{
    AuditId, BadId, DatastoreId, ExportId, HypervisorId, NodeId, PolicyId, ProjectId,
    RestorePointId, SourceId, TaskId, TokenId, UserId,
};
pub use kinds::{
    AssignedBy, AuditResult, Encryption, ExportOnStop, ExportProtocol, ExportState, LogLevel,
    NodeState, RestorePointState, Role, SourceKind, TaskKind, TaskState, TokenKind, TokenScope,
    TokenState, UnknownValue,
};
pub use task::{
    BackupParams, BadParams, CommitExportParams, Confinement, ForgetParams, GcParams, PruneParams,
    RestoreParams, Retention, TaskSpec, VerifyParams, VmImport,
};
pub use task_result::{
    BackupResult, BadResult, CommitExportResult, ForgetResult, GcResult, PruneResult,
    RestoreResult, TaskResult, TreeRestore, VerifyReport, VerifyResult,
};
