//! The node protocol: how an `arca node` works for `arca server` over gRPC
//! (docs/node-protocol.md). The messages and stubs are generated from
//! `proto/node.proto` ([`pb`]); [`DatastoreRef`], [`Leased`], [`Finished`]
//! and [`ExportSpec`] are what the two sides exchange, as the runner (the
//! node) and the catalog (the server) see them, and [`convert`] turns one
//! into the other. Task parameters and results cross the wire as typed
//! messages, one per task kind, converted to and from arca-model's
//! `TaskSpec` and `TaskResult`. [`query`]: what the server asks a node
//! (browse a restore point in its datastore) and what it answers.

pub mod agent;
pub mod convert;
pub mod query;
mod types;

pub use types::{DatastoreRef, ExportSpec, Finished, HypervisorAccess, Leased, LeasedTask};

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod pb {
    tonic::include_proto!("arca.node.v1");
}

/// The agent protocol (`proto/agent.proto`): `arca agent` pushing a disk
/// image backup, only the chunks the datastore lacks (docs/vm-ingest.md).
#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod agent_pb {
    tonic::include_proto!("arca.agent.v1");
}

/// The agent service's path prefix, for routing it beside the REST API.
pub const AGENT_SERVICE_PATH: &str = "/arca.agent.v1.Ingest/";

/// Seconds a node's lease on a running task lasts without a report.
pub const LEASE_SECS: i64 = 30;

/// The gRPC service path prefix, for routing it beside the REST API.
pub const SERVICE_PATH: &str = "/arca.node.v1.Node/";
