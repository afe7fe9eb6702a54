//! The leases a node holds: the attempt of each task it leased, which it
//! names in every progress, log and finish call. The server accepts those
//! calls only from the current lease's holder (arca-catalog's `Lease`), so
//! a node that lost a lease cannot finish or renew the task's next attempt.

use std::collections::HashMap;
use std::sync::Mutex;

use arca_catalog::{Lease, NodeId, TaskId};

/// Task id → leased attempt.
#[derive(Debug, Default)]
pub struct Held(Mutex<HashMap<TaskId, i64>>);

impl Held {
    pub fn hold(&self, task_id: TaskId, attempt: i64) {
        self.map().insert(task_id, attempt);
    }

    /// This node's lease of the task, if it holds one.
    pub fn lease(&self, node_id: NodeId, task_id: TaskId) -> Option<Lease> {
        self.map()
            .get(&task_id)
            .map(|&attempt| Lease { node_id, attempt })
    }

    pub fn release(&self, task_id: TaskId) {
        self.map().remove(&task_id);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, i64>> {
        // A panic while holding this lock left a plain map behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error for a call about a task this node did not lease.
pub fn not_held(task_id: TaskId) -> String {
    format!("task {task_id} is not leased by this node")
}
