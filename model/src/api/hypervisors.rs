//! Hypervisors: libvirt hosts whose domains are backed up (issue 17).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{HypervisorId, NodeId, ProjectId};

/// A libvirt host, reached over SSH from its node. Its private key is
/// stored sealed and never shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hypervisor {
    pub id: HypervisorId,
    pub name: String,
    /// `libvirt`.
    pub kind: String,
    pub project_id: ProjectId,
    /// The node that connects to it and runs its backups.
    pub node_id: NodeId,
    /// `host` or `host:port` (SSH, port 22 by default).
    pub address: String,
    pub user: String,
    /// The SSH host key's fingerprint (`SHA256:…`), pinned on first
    /// contact or given when added; a host presenting another is refused.
    pub host_key: Option<String>,
    /// When its inventory was last synced (null: never).
    pub synced_at: Option<i64>,
    /// Why the last sync failed (null: it did not).
    pub sync_error: Option<String>,
    pub created_at: i64,
    /// `ssh` (the node connects with the key) or `agent` (an agent on
    /// the host syncs it and runs its sources' backups).
    pub access: String,
}

/// `POST /api/v1/hypervisors`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHypervisor {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")]
    pub name: String,
    /// `ssh` (default: address, user and private_key are needed) or
    /// `agent` (none of them: `arca agent run` on the host syncs it and
    /// runs the backups of its domains).
    #[serde(default)]
    pub access: Option<String>,
    /// `host` or `host:port`.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub address: String,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub user: String,
    /// The SSH private key (OpenSSH or PEM, unencrypted), as
    /// `ssh-keygen` writes it. Stored sealed; never returned.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub private_key: String,
    /// Pin the host key now (`SHA256:…`, as `ssh-keygen -lf` prints it);
    /// default: pinned at the first sync.
    #[serde(default)]
    pub host_key: Option<String>,
    /// The node that reaches it (default: the server's own).
    #[serde(default)]
    pub node: Option<String>,
    /// Default: project 1.
    #[serde(default)]
    pub project: Option<ProjectId>,
}

/// What an inventory sync found: domains added as sources, updated (their
/// disks or definition changed), marked removed (no longer on the host),
/// and the number of domains listed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncReport {
    pub domains: usize,
    /// Names of the sources added.
    pub added: Vec<String>,
    /// Names of the sources whose domain is gone from the host (kept,
    /// with their restore points, and marked `removed` in settings).
    pub removed: Vec<String>,
    /// Names of the sources seen again.
    pub present: Vec<String>,
    /// The host key pinned by this sync (first contact), if any.
    pub pinned_host_key: Option<String>,
}

/// A domain as an inventory lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InventoryDomain {
    pub name: String,
    pub uuid: String,
    /// The libvirt state (`running`, `shut off`, …).
    pub state: String,
    /// Disk targets (`vda`, …).
    pub disks: Vec<String>,
}

/// `POST /api/v1/restore-points/{id}/import`: recreate a libvirt VM from
/// its restore point on a hypervisor: its disks written there, its domain
/// defined from the saved definition (a new name, no uuid or MAC
/// addresses, the new disk files).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The hypervisor's name (in the restore point's project).
    #[schema(min_length = 1, max_length = 64)]
    pub hypervisor: String,
    /// The new domain's name (default: the original's; refused while a
    /// domain of that name exists).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")]
    pub name: Option<String>,
    /// Absolute directory on the host for the disk files.
    #[schema(pattern = "^/[^\\u0000]*$", max_length = 4096)]
    pub dir: String,
    /// `qcow2` (default) or `raw`.
    #[serde(default)]
    pub format: Option<String>,
    /// Start the domain once defined.
    #[serde(default)]
    pub start: bool,
}

/// The settings keys of a source that the server owns (set by an
/// inventory sync or when the source is added): a change of settings
/// through the API keeps them, and refuses another value for them.
pub const SERVER_SETTINGS: [&str; 4] = ["hypervisor_id", "uuid", "removed", "agent"];

/// The key of a libvirt source's settings that holds its [`VmHooks`].
pub const HOOKS_SETTING: &str = "hooks";

/// What a backup of a libvirt source does when a pre command fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnPreFailure {
    /// The backup fails (the post commands still run, to undo a freeze).
    #[default]
    Fail,
    /// The backup goes on, crash-consistent, with a warning saying why.
    CrashConsistent,
}

/// Commands run on a libvirt source's host around its backup, for an
/// application-consistent restore point (e.g. `virsh domfsfreeze` before,
/// `virsh domfsthaw` after). Each command is an argv array, run without a
/// shell, by the SSH user (or the agent's user, when the agent was started
/// with `--allow-hooks`). They run for a running domain only: the pre
/// commands just before the backup job fixes its point in time, the post
/// commands right after (also when the start failed). When every pre
/// command succeeds, the restore point is `application`-consistent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmHooks {
    #[serde(default)]
    #[schema(max_items = 16)]
    pub pre: Vec<Vec<String>>,
    #[serde(default)]
    #[schema(max_items = 16)]
    pub post: Vec<Vec<String>>,
    #[serde(default)]
    pub on_pre_failure: OnPreFailure,
}

impl VmHooks {
    /// At most this many commands before, and as many after.
    pub const MAX_COMMANDS: usize = 16;
    /// At most this many arguments per command.
    pub const MAX_ARGS: usize = 64;
    /// At most this many bytes per argument.
    pub const MAX_ARG_LEN: usize = 4096;

    /// No command at all.
    pub fn is_empty(&self) -> bool {
        self.pre.is_empty() && self.post.is_empty()
    }

    /// Why these hooks cannot be run, if so (an empty command, a NUL
    /// byte, too many or too long arguments).
    pub fn check(&self) -> Result<(), String> {
        for (what, list) in [("pre", &self.pre), ("post", &self.post)] {
            if list.len() > Self::MAX_COMMANDS {
                return Err(format!(
                    "hooks.{what}: at most {} commands",
                    Self::MAX_COMMANDS
                ));
            }
            for (i, argv) in list.iter().enumerate() {
                if argv.is_empty() || argv[0].is_empty() {
                    return Err(format!(
                        "hooks.{what}[{i}]: a command is an argv array whose first element names the program, e.g. [\"virsh\",\"domfsfreeze\",\"web1\"]"
                    ));
                }
                if argv.len() > Self::MAX_ARGS {
                    return Err(format!(
                        "hooks.{what}[{i}]: at most {} arguments",
                        Self::MAX_ARGS
                    ));
                }
                if let Some(a) = argv
                    .iter()
                    .find(|a| a.len() > Self::MAX_ARG_LEN || a.contains('\0'))
                {
                    return Err(format!(
                        "hooks.{what}[{i}]: an argument ({} bytes) is longer than {} bytes or holds a NUL byte",
                        a.len(),
                        Self::MAX_ARG_LEN
                    ));
                }
            }
        }
        Ok(())
    }

    /// The hooks in a source's settings (None: none set), checked.
    pub fn of_settings(settings: &serde_json::Value) -> Result<Option<VmHooks>, String> {
        match settings.get(HOOKS_SETTING) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                let h: VmHooks = serde_json::from_value(v.clone())
                    .map_err(|e| format!("settings.hooks: {e}"))?;
                h.check()?;
                Ok((!h.is_empty()).then_some(h))
            }
        }
    }
}

/// How consistent a VM's restore point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// As if the power had been cut at the backup's instant.
    Crash,
    /// The pre commands (freeze, flush) ran and succeeded.
    Application,
}
