//! `arca task list|show|cancel`, and following a queued task to its end
//! (`--wait`).

use anyhow::Result;
use arca_model::api::{Cancelled, Task, TaskLog};
use arca_model::{TaskId, TaskState};
use serde::Serialize;

use super::{show, Api};
use crate::{Cli, TaskCmd};

fn task_line(t: &Task) -> String {
    let progress = t.progress.map(|p| format!("{p:.0}%")).unwrap_or_default();
    format!(
        "{:>6}  {:<8} {:<10} {:>5}  {}{}",
        t.id,
        t.kind,
        t.state,
        progress,
        t.created_by,
        t.error
            .as_deref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

/// What `arca --json task show` prints.
#[derive(Serialize)]
struct TaskWithLogs {
    task: Task,
    logs: Vec<TaskLog>,
}

pub fn task(cli: &Cli, c: &TaskCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        TaskCmd::List { state, limit } => {
            let q = match state {
                Some(s) => format!("/tasks?limit={limit}&state={s}"),
                None => format!("/tasks?limit={limit}"),
            };
            let all: Vec<Task> = api.get(&q, "a list of tasks")?;
            show(cli, &all, |all| {
                all.iter().map(task_line).collect::<Vec<_>>().join("\n")
            })
        }
        TaskCmd::Show { id } => {
            let task: Task = api.get(&format!("/tasks/{id}"), "a task")?;
            let logs: Vec<TaskLog> =
                api.get(&format!("/tasks/{id}/logs"), "a list of task log lines")?;
            show(cli, &TaskWithLogs { task, logs }, |v| {
                let mut out = task_line(&v.task);
                if let Some(r) = &v.task.result {
                    out += &format!("\nresult: {r}");
                }
                for l in &v.logs {
                    out += &format!("\n  {} {:<5} {}", l.time, l.level, l.message);
                }
                out
            })
        }
        TaskCmd::Cancel { id } => {
            let c: Cancelled = api.post_empty(&format!("/tasks/{id}/cancel"), "a cancellation")?;
            show(cli, &c, |c| format!("task {} is {}", c.id, c.state))
        }
    }
}

/// Follow task `id` until it ends, with a progress bar on a terminal.
/// Prints the final task; exit code 0 when it succeeded, else 1.
pub(super) fn follow(cli: &Cli, api: &Api, id: TaskId) -> Result<u8> {
    use std::sync::atomic::Ordering;
    let p = std::sync::Arc::new(arca_ingest::Progress::default());
    crate::interrupt::explain(format!(
        "task {id} continues on the server; follow it with `arca task show {id}`, \
         cancel it with `arca task cancel {id}`"
    ));
    let bar = crate::progress::Bar::start(&p, "task");
    let t = loop {
        let t: Task = api.get(&format!("/tasks/{id}"), "a task")?;
        p.total
            .store(u64::try_from(t.bytes_total).unwrap_or(0), Ordering::Relaxed);
        p.bytes
            .store(u64::try_from(t.bytes_done).unwrap_or(0), Ordering::Relaxed);
        if t.state.is_final() {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    drop(bar);
    let ok = t.state == TaskState::Succeeded;
    show(cli, &t, |t| match t.state {
        TaskState::Succeeded => format!(
            "task {id} succeeded: {}",
            t.result.as_ref().unwrap_or(&serde_json::Value::Null)
        ),
        s => format!(
            "task {id} {s}: {}",
            t.error.as_deref().unwrap_or("(no reason)")
        ),
    })?;
    Ok(if ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of `arca task list`: kinds and states padded as the
    /// text they were before they were enums.
    #[test]
    fn a_task_line_has_its_columns() {
        let t: Task = serde_json::from_str(r#"{"id": 12, "kind": "gc", "state": "failed", "project_id": 1, "source_id": null, "policy_id": null, "datastore_id": 1, "node_id": 1, "params": {}, "priority": -1, "slot": null, "attempt": 1, "max_attempts": 1, "not_before": 0, "lease_until": null, "cancel_requested": false, "bytes_done": 1, "bytes_total": 3, "progress": 33.3, "result": null, "error": "disk full", "created_by": "admin", "created_at": 0, "started_at": 1, "finished_at": 2}"#).unwrap();
        assert_eq!(
            task_line(&t),
            "    12  gc       failed       33%  admin  error: disk full"
        );
    }
}
