//! The Arca catalog: everything the control plane knows, in one SQLite
//! database (WAL mode, versioned migrations in [`schema`]).
//!
//! The catalog is an index of the datastores plus the control plane's own
//! state (users, policies, tasks, audit). Restore points can always be
//! re-imported from the datastores, which describe themselves.
//!
//! One writer connection behind a mutex makes the changes (SQLite
//! serialises writers anyway) and a small pool of read-only connections
//! serves the reads, which in WAL mode never wait for a writer ([`db`]).
//! WAL also lets the `arca` CLI read the same file at the same time. The
//! catalog is synchronous: async code calls it through [`AsyncCatalog`],
//! which runs the calls on tokio's blocking pool. Times are Unix seconds
//! (UTC) throughout.

mod accounts;
mod asynchronous;
mod audit;
mod datastores;
pub mod db;
mod exports;
mod forget;
mod hypervisors;
mod leases;
mod maintenance;
mod nodes;
mod policies;
mod projects;
pub mod reports;
mod restore_points;
mod s3_keys;
pub mod schema;
mod sealed;
mod sources;
mod tasks;
mod tokens;
mod types;
mod users;

pub use audit::AuditFilter;
use std::sync::Mutex;

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("catalog at {path} has schema version {found}, newer than this arca ({supported}); upgrade arca")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The object is not in a state that allows this (HTTP 409).
    #[error("{0}")]
    State(String),
    /// The caller may not do this to the object (a node reporting on
    /// another node's task, or beyond its task).
    #[error("{0}")]
    Denied(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Map a UNIQUE violation to `Conflict(what)`.
fn unique(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
    let what = what.into();
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::Conflict(what)
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Error::Invalid(format!("{what}: refers to something that does not exist"))
        }
        _ => Error::Sql(e),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub use types::*;

// ---- the catalog ----

pub struct Catalog {
    /// The writer connection (see [`db`]).
    conn: Mutex<Connection>,
    /// Read-only connections for reads; `None` in memory or without WAL.
    readers: Option<db::Readers>,
    /// Bumped on every change of exports (see [`Catalog::wait_exports`]).
    exports_gen: (Mutex<u64>, std::sync::Condvar),
    /// Bumped each time the writer connection is released (see
    /// [`Catalog::write_generation`]).
    write_gen: std::sync::atomic::AtomicU64,
}

pub use accounts::SignedOut;
pub use asynchronous::{blocking, AsyncCatalog};
pub use exports::{Export, NewExport, LIVE as LIVE_EXPORT_STATES};
pub use hypervisors::{domain_source_name, SeenDomain};
pub use leases::{Lease, MAKES_RESTORE_POINTS};
pub use maintenance::{VerifyEffects, MAINTENANCE_KINDS};
pub use nodes::NodeConfinement;
pub use restore_points::{SourceFreshness, IMPORT_BATCH};
pub use s3_keys::S3Key;
pub use tasks::TaskFilter;
pub use tokens::{NewApiToken, Settings, DEFAULT_TOKEN_MAX_LIFETIME_S, TOKEN_MAX_LIFETIME_RANGE};

fn json_vec(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

fn json_val(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

/// A comma-separated list of ids for `IN (...)` (never empty).
fn id_list<T: Copy + Into<i64>>(ids: &[T]) -> String {
    if ids.is_empty() {
        return "NULL".into();
    }
    ids.iter()
        .map(|i| (*i).into().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
