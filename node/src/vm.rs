//! Backups of libvirt domains (issue 17): the lease says how to reach the
//! host; the host key must be the pinned one (the server pins it at the
//! first inventory sync).

use std::sync::Arc;

use arca_ingest::libvirt::{self, Host, HostKey, ImportOptions, Imported, SshKey, VmBackupOptions};
use arca_ingest::{BackupOutcome, Progress};
use arca_model::api::{Consistency, OnPreFailure, VmHooks};
use arca_model::VmImport;
use arca_proto::HypervisorAccess;
use arca_repo::{Datastore, Snapshot};

/// The libvirt connection parameters of a lease.
pub fn host(h: &HypervisorAccess) -> Result<Host, String> {
    if h.host_key.is_empty() {
        return Err(format!(
            "the host key of {} is not pinned yet: sync the hypervisor's inventory first",
            h.address
        ));
    }
    Ok(Host {
        addr: h.address.clone(),
        user: h.user.clone(),
        key: SshKey {
            private_pem: h.private_key.clone(),
            passphrase: None,
        },
        known_host: Some(HostKey::parse_fingerprint(&h.host_key).map_err(|e| e.to_string())?),
    })
}

/// Back up domain `domain` of the lease's hypervisor.
pub fn backup(
    ds: &Arc<Datastore>,
    h: &HypervisorAccess,
    domain: &str,
    opts: &VmBackupOptions,
    progress: &Progress,
) -> Result<BackupOutcome, String> {
    let conn = libvirt::connect(&host(h)?).map_err(|e| e.to_string())?;
    libvirt::backup(ds, &conn, domain, opts, progress).map_err(|e| e.to_string())
}

/// `opts` with a source's pre/post commands (from the server: the
/// source's settings), if any.
pub fn with_hooks(mut opts: VmBackupOptions, hooks: Option<&VmHooks>) -> VmBackupOptions {
    if let Some(h) = hooks {
        opts.pre = h.pre.clone();
        opts.post = h.post.clone();
        opts.pre_failure_is_warning = h.on_pre_failure == OnPreFailure::CrashConsistent;
    }
    opts
}

/// The model's name for how consistent a VM's restore point is.
pub fn consistency(c: libvirt::Consistency) -> Consistency {
    match c {
        libvirt::Consistency::Crash => Consistency::Crash,
        libvirt::Consistency::Application => Consistency::Application,
    }
}

/// Import `snap` (a VM's restore point) onto the lease's hypervisor.
pub fn import(
    ds: &Arc<Datastore>,
    h: &HypervisorAccess,
    snap: &Snapshot,
    imp: &VmImport,
    progress: &Progress,
) -> Result<Imported, String> {
    let conn = libvirt::connect(&host(h)?).map_err(|e| e.to_string())?;
    let opts = ImportOptions {
        new_name: imp.name.clone(),
        dir: imp.dir.clone(),
        format: imp
            .format
            .parse()
            .map_err(|e: libvirt::Error| e.to_string())?,
        start: imp.start,
    };
    libvirt::import(ds, &conn, snap, &opts, progress).map_err(|e| e.to_string())
}
