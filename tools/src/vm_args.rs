//! Arguments of the libvirt commands: `arca backup libvirt`, `arca
//! libvirt list` and `arca libvirt import` (kept out of main.rs).

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};

/// How to reach a libvirt host over SSH.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// The host: HOST or HOST:PORT (SSH, port 22 by default).
    #[arg(long)]
    pub host: String,
    /// The SSH user (it must be allowed to run `virsh -c qemu:///system`).
    #[arg(long, default_value = "root")]
    pub user: String,
    /// The private key file (key authentication only).
    #[arg(long, short = 'i')]
    pub identity: PathBuf,
    /// A file holding the private key's passphrase, if it has one.
    #[arg(long)]
    pub identity_passphrase_file: Option<PathBuf>,
    /// The host key's SHA-256 fingerprint (`ssh-keygen -lf
    /// /etc/ssh/ssh_host_ed25519_key.pub` on the host): a different key
    /// is refused. Without it any key is accepted and its fingerprint
    /// printed, to pin next time.
    #[arg(long, value_name = "SHA256:...")]
    pub known_host: Option<String>,
}

/// `arca backup libvirt`.
#[derive(Args, Debug)]
pub struct LibvirtBackupArgs {
    /// The domain's name on the host.
    pub domain: String,
    #[command(flatten)]
    pub host: HostArgs,
    #[command(flatten)]
    pub hooks: HookArgs,
}

/// A libvirt domain's pre/post commands (`arca backup libvirt`, `arca
/// source edit`).
#[derive(Args, Debug, Clone, Default)]
pub struct HookArgs {
    /// A command run on the host before the backup job fixes its point in
    /// time, as a JSON array of arguments, e.g.
    /// '["virsh","-c","qemu:///system","domfsfreeze","web1"]' (repeatable;
    /// no shell is involved). When they all succeed the restore point is
    /// application-consistent.
    #[arg(long = "pre", value_name = "JSON_ARGV")]
    pub pre: Vec<String>,
    /// A command run on the host once the backup's point in time is fixed
    /// (e.g. domfsthaw), also when the start failed (repeatable, JSON array).
    #[arg(long = "post", value_name = "JSON_ARGV")]
    pub post: Vec<String>,
    /// With --pre: a failing pre command only warns (the restore point is
    /// then crash-consistent) instead of failing the backup.
    #[arg(long)]
    pub pre_failure_is_warning: bool,
}

impl HookArgs {
    /// The commands given (None: no --pre and no --post).
    pub fn hooks(&self) -> Result<Option<arca_model::api::VmHooks>> {
        if self.pre.is_empty() && self.post.is_empty() {
            if self.pre_failure_is_warning {
                return Err(anyhow!("--pre-failure-is-warning goes with --pre"));
            }
            return Ok(None);
        }
        Ok(Some(arca_model::api::VmHooks {
            pre: argvs(&self.pre, "pre")?,
            post: argvs(&self.post, "post")?,
            on_pre_failure: if self.pre_failure_is_warning {
                arca_model::api::OnPreFailure::CrashConsistent
            } else {
                arca_model::api::OnPreFailure::Fail
            },
        }))
    }
}

#[derive(Subcommand, Debug)]
pub enum LibvirtCmd {
    /// List the host's domains and their disks (and show its host key).
    List {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Recreate a domain on a host from a libvirt restore point: its disks
    /// are uploaded into --dir and its saved definition is defined under
    /// --name (no UUID, new MAC addresses). An existing domain or file is
    /// never replaced.
    Import {
        /// The restore point: an id, a unique prefix of one, or `latest`
        /// (with --source).
        snapshot: String,
        #[command(flatten)]
        host: HostArgs,
        /// The new domain's name (default: the original's).
        #[arg(long)]
        name: Option<String>,
        /// Absolute directory on the host for the disk files
        /// (<dir>/<name>-<target>.<format>).
        #[arg(long)]
        dir: String,
        /// Format of the disk files.
        #[arg(long, default_value = "qcow2", value_parser = ["qcow2", "raw"])]
        format: String,
        /// Start the domain once it is defined.
        #[arg(long)]
        start: bool,
        /// With `latest`: the newest restore point of this source.
        #[arg(long)]
        source: Option<String>,
    },
}

/// `arca hypervisor …`: libvirt hosts on a server.
#[derive(Subcommand, Debug)]
pub enum HypervisorCmd {
    /// Add a libvirt host; its private key is stored sealed on the server
    /// and never shown again. Then `arca hypervisor sync NAME`.
    Add {
        name: String,
        /// HOST or HOST:PORT (SSH); not with --agent.
        #[arg(required_unless_present = "agent")]
        address: Option<String>,
        #[arg(long, default_value = "root")]
        user: String,
        /// The private key file (unencrypted; OpenSSH or PEM).
        #[arg(long, short = 'i', required_unless_present = "agent")]
        identity: Option<PathBuf>,
        /// Reached by its agent instead of SSH: `arca agent run
        /// --hypervisor NAME` on the host syncs it and runs its backups.
        #[arg(long, conflicts_with_all = ["address", "identity", "known_host"])]
        agent: bool,
        /// Pin the host key now (`SHA256:…`); default: at the first sync.
        #[arg(long, value_name = "SHA256:...")]
        known_host: Option<String>,
        /// The node that reaches it (default: the server's own).
        #[arg(long)]
        node: Option<String>,
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
    },
    /// The hypervisors, their pinned host keys and last syncs.
    List,
    /// List the host's domains: new ones become sources (policy rules then
    /// pick them up), gone ones are marked removed.
    Sync { name: String },
    /// Delete a hypervisor that has no sources left.
    Remove { name: String },
    /// Recreate a VM from its restore point on a hypervisor (a restore
    /// task on the server): disks into --dir, the domain under --name.
    Import {
        /// The restore point's id or a unique prefix of it.
        restore_point: String,
        /// The hypervisor's name.
        #[arg(long)]
        hypervisor: String,
        /// The new domain's name (default: the original's).
        #[arg(long)]
        name: Option<String>,
        /// Absolute directory on the host for the disk files.
        #[arg(long)]
        dir: String,
        #[arg(long, default_value = "qcow2", value_parser = ["qcow2", "raw"])]
        format: String,
        /// Start the domain once it is defined.
        #[arg(long)]
        start: bool,
        /// Follow the task to its end.
        #[arg(long)]
        wait: bool,
    },
}

/// Commands given as JSON argv arrays (`--pre`, `--post`).
pub fn argvs(list: &[String], what: &str) -> Result<Vec<Vec<String>>> {
    list.iter()
        .map(|s| {
            let v: Vec<String> = serde_json::from_str(s).map_err(|_| {
                anyhow!("--{what} {s:?}: expected a JSON array of strings, e.g. '[\"virsh\",\"domfsfreeze\",\"web1\"]'")
            })?;
            if v.is_empty() {
                return Err(anyhow!("--{what}: the command is empty"));
            }
            Ok(v)
        })
        .collect()
}
