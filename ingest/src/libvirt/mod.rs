//! # libvirt over SSH: inventory, backup with checkpoints, import
//!
//! Arca reaches a hypervisor the way an admin does: SSH with a key, then
//! `virsh -c qemu:///system`. Nothing is installed on the host; only SSH
//! crosses the network. The design (docs/vm-ingest.md has the long form):
//!
//! - [`connect`]: key authentication only, the server's host key checked
//!   against a pinned SHA-256 fingerprint (the form `ssh-keygen -l`
//!   prints) *before* the key is offered. Without a pin the key seen is
//!   returned, for pin-on-first-contact by the caller.
//! - [`inventory`]: `virsh list --all --name`, then per domain its
//!   definition (`dumpxml --inactive`, parsed with `roxmltree`), its state
//!   and the capacity of each disk (`domblkinfo --all`).
//! - [`backup`]: a running domain is read through libvirt's backup job in
//!   *pull mode*: `backup-begin` with a new checkpoint, the NBD export on
//!   the host's loopback reached through an SSH `direct-tcpip` channel,
//!   only allocated extents read, and for an incremental only the extents
//!   the previous checkpoint's dirty bitmap marks. The previous checkpoint
//!   is deleted only after the restore point is committed; on failure the
//!   new one is deleted instead, so the next run is again incremental
//!   against the last good restore point. A shut-off domain has no backup
//!   job: its disk files are served by `qemu-nbd` on the host (a unix
//!   socket in a private temp dir, reached by `direct-streamlocal`).
//! - [`import`]: the restore direction: each disk uploaded to the host
//!   (SFTP, holes skipped), converted to qcow2 there if asked, and the
//!   saved definition defined under a new name, with new disk paths, no
//!   UUID and no MAC addresses.
//!
//! Every remote command is an argv array, quoted for the remote shell by
//! [`ssh::quote_argv`] alone.

mod backup;
mod import;
mod inventory;
pub mod ssh;
pub mod xml;

pub use backup::{
    backup, backup_to, BackupRecord, Consistency, DiskPlan, DiskSink, ReadyDisk, VmBackupOptions,
};
pub use import::{import, DiskFormat, ImportOptions, Imported};
pub use inventory::{domain, inventory, parse_blkinfo, Domain, DomainDisk};
pub use ssh::{connect, local, Conn, Stream};

use serde::{Deserialize, Serialize};

/// The `virsh` every command runs: the system instance of the QEMU driver.
pub(crate) const VIRSH: [&str; 3] = ["virsh", "-c", "qemu:///system"];

/// `virsh -c qemu:///system ARGS…` as an argv array.
pub(crate) fn virsh<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    VIRSH
        .iter()
        .map(|s| s.to_string())
        .chain(args.iter().map(|a| a.as_ref().to_string()))
        .collect()
}

/// A private key for SSH (PEM or OpenSSH format, as `ssh-keygen` writes).
#[derive(Clone, Default)]
pub struct SshKey {
    pub private_pem: Vec<u8>,
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in a debug log.
        f.write_str("SshKey(..)")
    }
}

/// A host key as OpenSSH shows it: its type (`ssh-ed25519`) and the
/// SHA-256 fingerprint of its public key blob (`SHA256:` + unpadded
/// base64). Only the fingerprint is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    pub key_type: String,
    pub fingerprint: String,
}

impl HostKey {
    /// A pin given as `SHA256:…` (what `ssh-keygen -lf KEY.pub` prints
    /// second), checked for shape so that a typo fails here and not as a
    /// "changed host key".
    pub fn parse_fingerprint(s: &str) -> Result<HostKey> {
        use base64::Engine;
        let b64 = s.trim().strip_prefix("SHA256:").ok_or_else(|| {
            Error::InvalidInput(format!(
                "host key fingerprint {s:?} must start with SHA256:"
            ))
        })?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| {
                Error::InvalidInput(format!("host key fingerprint {s:?} is not base64"))
            })?;
        if raw.len() != 32 {
            return Err(Error::InvalidInput(format!(
                "host key fingerprint {s:?} is not a SHA-256 hash"
            )));
        }
        Ok(HostKey {
            key_type: String::new(),
            fingerprint: format!("SHA256:{}", b64.trim_end_matches('=')),
        })
    }
}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct Host {
    /// `host` or `host:port` (`[v6]:port`); port 22 by default.
    pub addr: String,
    pub user: String,
    pub key: SshKey,
    /// The pinned host key; `None` accepts any (first contact) and
    /// [`Conn::host_key`] tells which was seen.
    pub known_host: Option<HostKey>,
}

/// The one error type of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("cannot reach {0}")]
    Unreachable(String),
    #[error("SSH: {0}")]
    Ssh(String),
    #[error("SSH authentication failed: {0}")]
    AuthFailed(String),
    #[error("host key of {addr} changed: expected {expected}, got {got}; if the host was reinstalled, pin the new key")]
    HostKeyChanged {
        addr: String,
        expected: String,
        got: String,
    },
    #[error("`{command}` failed on the host (exit status {status}): {stderr}")]
    Remote {
        command: String,
        status: i32,
        stderr: String,
    },
    #[error("no domain {0:?} on the host")]
    NoSuchDomain(String),
    #[error("a domain named {0:?} already exists on the host; choose another name")]
    DomainExists(String),
    #[error("bad XML from the host: {0}")]
    Xml(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Repo(#[from] arca_repo::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for arca_repo::Error {
    /// For callers that speak the datastore's error type (a task runner).
    fn from(e: Error) -> Self {
        match e {
            Error::Repo(e) => e,
            Error::InvalidInput(m) => arca_repo::Error::InvalidInput(m),
            other => arca_repo::Error::InvalidInput(other.to_string()),
        }
    }
}
