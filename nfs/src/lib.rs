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
/// libnfs tools: `nfs://host/path?version=3&nfsport=P&mountport=P`. The
/// port is only in the options: the libnfs tools refuse `host:port`.
pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    url_at(&addr.ip().to_string(), addr.port(), path)
}

/// [`url`] for a host name or address (an IPv6 address is put in
/// brackets).
pub fn url_at(host: &str, port: u16, path: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = path.trim_start_matches('/');
    format!("nfs://{host}/{path}?version=3&nfsport={port}&mountport={port}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn urls_carry_the_port_in_the_options() {
        let a: std::net::SocketAddr = "127.0.0.1:2049".parse().unwrap();
        assert_eq!(
            super::url(a, "/"),
            "nfs://127.0.0.1/?version=3&nfsport=2049&mountport=2049"
        );
        assert_eq!(
            super::url_at("::1", 20, "web/ab"),
            "nfs://[::1]/web/ab?version=3&nfsport=20&mountport=20"
        );
        assert_eq!(
            super::url_at("[::1]", 20, ""),
            "nfs://[::1]/?version=3&nfsport=20&mountport=20"
        );
    }
}
