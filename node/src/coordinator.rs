//! The control plane as a node sees it: arca-server's `Local` on the
//! catalog for the embedded node, [`crate::remote::Remote`] over gRPC for
//! an `arca node`.

use arca_catalog::{ExportId, LogLevel, NodeId, TaskId, TaskState};
use arca_proto::{ExportSpec, Finished, Leased};

/// The control plane as a node sees it. Errors are messages to log.
pub trait Coordinator: Send + Sync {
    fn node_id(&self) -> NodeId;
    /// The next task this node may run now, if any.
    fn lease(&self) -> Result<Option<Leased>, String>;
    /// Record progress and renew the lease; returns whether cancellation
    /// was requested.
    fn progress(&self, task_id: TaskId, done: i64, total: i64) -> Result<bool, String>;
    fn log(&self, task_id: TaskId, level: LogLevel, message: &str);
    /// Record the result and its effects; returns the task's new state.
    fn finish(&self, task_id: TaskId, f: Finished) -> Result<TaskState, String>;
    /// Wait up to `wait` for this node's exports to change after
    /// generation `seen`; returns the generation and the exports (live,
    /// and recently ended for clean-up).
    fn exports(
        &self,
        seen: u64,
        wait: std::time::Duration,
    ) -> Result<(u64, Vec<ExportSpec>), String>;
    /// An export is served at this address, or could not be.
    fn export_state(&self, id: ExportId, r: Result<String, String>) -> Result<(), String>;
}
