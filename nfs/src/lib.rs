//! Arca's read-only NFSv3 export of restore points.
//!
//! The export shows `/<SOURCE>/<RESTORE-POINT-ID>/...` and
//! `/<SOURCE>/latest/...`, read through the one file tree view every
//! access path uses ([`arca_frontends::tree`]). nfsserve speaks the
//! protocol (NFSv3, MOUNT and portmap on one TCP port); this crate gives
//! it the file system ([`fs::ArcaFs`]), file handles that stay valid
//! across restarts ([`handles`]), the per-client view with allow lists
//! ([`namespace`]) and the listener that checks client addresses
//! ([`server`]).
//!
//! It is a crate of its own, not a module of `arca-frontends`: nfsserve
//! brings tokio and async-trait, which the frontends crate (threads,
//! blocking I/O) does not otherwise need.

pub mod fs;
pub mod handles;
pub mod namespace;
pub mod server;

pub use handles::HandleTable;
pub use namespace::{
    default_allow, Cidr, DatastoreNamespace, ExportsNamespace, Namespace, NfsExport,
};
pub use server::NfsServer;

/// The address clients mount the export `path` at (`/` for all), for
/// libnfs tools: `nfs://host:port/path?version=3&nfsport=P&mountport=P`.
pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    let host = match addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let port = addr.port();
    let path = path.trim_start_matches('/');
    format!("nfs://{host}:{port}/{path}?version=3&nfsport={port}&mountport={port}")
}
