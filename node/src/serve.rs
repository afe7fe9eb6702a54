//! The export servers of a server's embedded node or of an `arca node`:
//! one NBD server, one iSCSI target and one NFS server serving whatever
//! exports the catalog gives this node (`arca mount`, `POST
//! /api/v1/exports`). The NFS server keeps its file handle ids in
//! `<data-dir>/nfs`, so that clients' handles survive a restart.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::exports::{self, ExportHost, Listeners};
use crate::Runner;

/// Where a node serves its exports.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Address of the NBD server ("off": none).
    pub nbd_listen: String,
    /// Address of the iSCSI target ("off": none).
    pub iscsi_listen: String,
    /// Address of the NFS server ("off": none; port 0: one the system
    /// picks).
    pub nfs_listen: String,
    /// Host name put in export addresses.
    pub export_host: Option<String>,
    pub nbd_tls_cert: Option<PathBuf>,
    pub nbd_tls_key: Option<PathBuf>,
    /// Clear-text NBD on an address other than loopback (insecure).
    pub nbd_plain: bool,
    /// Decoded chunks kept in memory for exports, shared by all of them.
    pub export_cache_mib: u64,
}

fn bind(what: &str, addr: &str) -> Option<TcpListener> {
    if addr == "off" {
        return None;
    }
    match TcpListener::bind(addr) {
        Ok(l) => Some(l),
        Err(e) => {
            // The rest of the node still works; exports of this protocol
            // fail with a reason that says why.
            tracing::error!(protocol = what, listen = %addr, error = %e, "not serving exports: cannot listen");
            None
        }
    }
}

/// NBD in clear text only on loopback, or when the admin says so: the
/// export names carry the exports' secrets.
fn check_nbd_plain(addr: SocketAddr, tls: bool, plain: bool) -> Result<()> {
    if tls || addr.ip().is_loopback() {
        return Ok(());
    }
    if plain {
        tracing::warn!(
            listen = %addr,
            "NBD exports without TLS (--nbd-plain): their data and secrets cross the network in clear text"
        );
        return Ok(());
    }
    bail!(
        "--nbd-listen {addr} is not a loopback address: NBD exports there need TLS (--nbd-tls-cert and --nbd-tls-key), or --nbd-plain to accept clear text (insecure: the data and the export secrets cross the network unprotected)"
    )
}

/// Bind the export servers, start them and the loop that keeps them in
/// step with the catalog. Returns the addresses they listen on.
pub fn start(args: &MountConfig, data_dir: &Path, runner: &Arc<Runner>) -> Result<Listeners> {
    let tls = match (&args.nbd_tls_cert, &args.nbd_tls_key) {
        (Some(c), Some(k)) => Some(arca_frontends::nbd::tls_config(c, k)?),
        _ => None,
    };
    let nbd = bind("NBD", &args.nbd_listen);
    if let Some(a) = nbd.as_ref().and_then(|l| l.local_addr().ok()) {
        check_nbd_plain(a, tls.is_some(), args.nbd_plain)?;
    }
    let iscsi = bind("iSCSI", &args.iscsi_listen);
    let nfs = bind("NFS", &args.nfs_listen);
    let listeners = Listeners {
        nbd: nbd.as_ref().and_then(|l| l.local_addr().ok()),
        iscsi: iscsi.as_ref().and_then(|l| l.local_addr().ok()),
        nfs: nfs.as_ref().and_then(|l| l.local_addr().ok()),
        host: args.export_host.clone(),
        nbd_tls: tls.is_some(),
    };
    let r = runner.clone();
    let cache = arca_frontends::chunk_cache(args.export_cache_mib.saturating_mul(1 << 20));
    let trees = Arc::new(arca_frontends::tree::Trees::new(
        cache.clone(),
        crate::runner::TREES_OPEN,
    ));
    runner.set_trees(trees.clone());
    let host = Arc::new(ExportHost::new(
        listeners.clone(),
        data_dir.join("overlays"),
        cache,
        trees,
        move |d| r.datastore(d),
    ));
    runner.set_exports(host.clone());
    if let Some(l) = nbd {
        let table = host.nbd.clone();
        std::thread::Builder::new()
            .name("nbd".into())
            .spawn(move || {
                if let Err(e) = arca_frontends::nbd::serve_with(l, table, tls) {
                    tracing::error!(error = %e, "NBD server stopped");
                }
            })?;
    }
    if let Some(l) = iscsi {
        let table = host.iscsi.clone();
        std::thread::Builder::new()
            .name("iscsi".into())
            .spawn(move || {
                let cfg = Arc::new(arca_frontends::iscsi::IscsiConfig::default());
                if let Err(e) = arca_frontends::iscsi::serve(l, table, cfg) {
                    tracing::error!(error = %e, "iSCSI target stopped");
                }
            })?;
    }
    if let Some(l) = nfs {
        let dir = data_dir.join("nfs");
        let table = arca_nfs::HandleTable::open(&dir)
            .with_context(|| format!("NFS state directory {}", dir.display()))?;
        let server = Arc::new(arca_nfs::NfsServer::new(host.nfs.clone(), Arc::new(table)));
        l.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("nfs".into())
            .spawn(move || {
                let served = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("nfs-worker")
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            server.serve(tokio::net::TcpListener::from_std(l)?).await
                        })
                    });
                if let Err(e) = served {
                    tracing::error!(error = %e, "NFS server stopped");
                }
            })?;
    }
    let coord = runner.coord.clone();
    std::thread::Builder::new()
        .name("exports".into())
        .spawn(move || exports::run(coord, host))?;
    Ok(listeners)
}
