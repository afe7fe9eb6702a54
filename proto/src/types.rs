//! What a node and the server exchange, independent of the transport (the
//! embedded node calls the server's code directly).

use arca_catalog::{
    DatastoreId, ExportId, ExportOnStop, ExportProtocol, ExportState, PolicyId, ProjectId,
    RestorePointId, Source, SourceId, TaskEffects, TaskId,
};
use arca_model::{Retention, TaskKind, TaskResult, TaskSpec};

/// A task's datastore as the node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatastoreRef {
    pub id: DatastoreId,
    pub name: String,
    /// Path on the node that owns it.
    pub path: String,
}

/// A leased task: which task and lease, and what it does.
#[derive(Clone, Debug, PartialEq)]
pub struct LeasedTask {
    pub id: TaskId,
    /// The attempt leased: progress, log and finish calls name it.
    pub attempt: i64,
    pub max_attempts: i64,
    pub project_id: ProjectId,
    pub policy_id: Option<PolicyId>,
    pub source_id: Option<SourceId>,
    /// The kind and its typed parameters (lease-time fields included).
    pub spec: TaskSpec,
}

impl LeasedTask {
    pub fn kind(&self) -> TaskKind {
        self.spec.kind()
    }
}

/// A leased task with everything the node needs to run it.
#[derive(Clone, Debug)]
pub struct Leased {
    pub task: LeasedTask,
    pub source: Option<Source>,
    /// The policy's retention, applied after a policy's backup.
    pub retention: Option<Retention>,
    pub datastore: Option<DatastoreRef>,
    /// For a libvirt source: how to reach its host.
    pub hypervisor: Option<HypervisorAccess>,
    /// For a libvirt source's backup: its pre/post commands, if any.
    pub hooks: Option<arca_model::api::VmHooks>,
}

/// How a node reaches a libvirt host: address, SSH user and private key
/// (unsealed by the server for this lease), the pinned host key.
#[derive(Clone)]
pub struct HypervisorAccess {
    pub id: i64,
    pub address: String,
    pub user: String,
    pub private_key: Vec<u8>,
    /// "SHA256:…"; empty: not pinned yet.
    pub host_key: String,
}

impl std::fmt::Debug for HypervisorAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key, even in a debug log.
        write!(f, "HypervisorAccess({}@{})", self.user, self.address)
    }
}

/// A task's end as the node reports it.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The result of a task that succeeded, or why it did not.
    pub outcome: Result<TaskResult, String>,
    pub cancelled: bool,
    pub effects: TaskEffects,
}

/// An export as the node needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportSpec {
    pub id: ExportId,
    pub restore_point: RestorePointId,
    pub datastore: DatastoreRef,
    pub protocol: ExportProtocol,
    pub writable: bool,
    pub name: String,
    pub state: ExportState,
    pub on_stop: ExportOnStop,
    /// The export's secret (NBD name suffix, iSCSI CHAP secret).
    pub secret: String,
    /// NFS: the address blocks of the clients that may mount it.
    pub allow: Vec<String>,
    /// The restore point's source name (the NFS path's first component).
    pub source: String,
}

impl std::fmt::Debug for ExportSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSpec")
            .field("id", &self.id)
            .field("restore_point", &self.restore_point)
            .field("datastore", &self.datastore)
            .field("protocol", &self.protocol)
            .field("writable", &self.writable)
            .field("name", &self.name)
            .field("state", &self.state)
            .field("on_stop", &self.on_stop)
            .field("secret", &"<hidden>")
            .field("allow", &self.allow)
            .field("source", &self.source)
            .finish()
    }
}

impl ExportSpec {
    /// Is it to be served (starting or active)?
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}
