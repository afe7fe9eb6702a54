//! An Arca node: the data-plane half of the control plane.
//!
//! - [`Runner`] runs the tasks a [`Coordinator`] leases it, each on its own
//!   thread, and stops them for a shutdown ([`Runner::shutdown`]).
//! - [`exports`]: the node's NBD and iSCSI exports, kept in step with the
//!   catalog; [`serve`] binds and starts their servers.
//! - [`remote`]: the coordinator of an `arca node`, over gRPC to the
//!   server (the server's embedded node uses arca-server's `Local`).
//! - [`queries`]: the server's queries (browse a restore point in one of
//!   the node's datastores), polled for and answered over gRPC.
//! - [`run`]: the `arca node` loop; [`datadir`]: its data directory.
//! - [`browse`] and [`find`]: listing a tree restore point, and finding
//!   entries across restore points.
//! - [`tree_restore`]: `restore --path` of a file or directory of an
//!   image restore point's file tree.
//! - [`ingest_sessions`]: the datastore's side of `arca agent` uploads
//!   (only the chunks it lacks); [`agent`]: the agent itself.
//! - [`stop`]: the stop signal of background workers (SIGTERM, SIGINT).

pub mod agent;
pub mod browse;
pub mod coordinator;
pub mod datadir;
pub mod exports;
pub mod files;
pub mod find;
pub mod ingest_sessions;
pub mod leases;
pub mod queries;
pub mod remote;
pub mod run;
pub mod runner;
pub mod serve;
pub mod stop;
pub mod tree_restore;
pub mod vm;

pub use arca_proto::{DatastoreRef, ExportSpec, Finished, Leased, LeasedTask};
pub use runner::{Coordinator, Passphrases, Runner, ShutdownReport, INTERRUPTED};
pub use stop::Stop;
