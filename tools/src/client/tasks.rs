//! `arca task list|show|cancel|retry`, and following a queued task to its end
//! (`--wait`).

use std::collections::HashMap;

use anyhow::Result;
use arca_model::api::{Cancelled, Source, Task, TaskLog};
use arca_model::{SourceId, TaskId, TaskResult, TaskState};
use serde::Serialize;

use super::{show, Api};
use crate::table::{opt, Table};
use crate::units::{duration, human, local_time, local_time_opt, rate};
use crate::{Cli, TaskCmd};

/// Source names by id, looked up once per command.
type SourceNames = HashMap<SourceId, String>;

fn source_names(api: &Api) -> Result<SourceNames> {
    let all: Vec<Source> = api.get("/sources", "a list of sources")?;
    Ok(all.into_iter().map(|s| (s.id, s.name)).collect())
}

/// A task's source by name ("#7" when it is gone), or none.
fn source_of(t: &Task, names: &SourceNames) -> Option<String> {
    t.source_id
        .map(|id| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}")))
}

/// Seconds a task ran: until it ended, or until `now` while it runs.
fn ran_for(t: &Task, now: i64) -> Option<i64> {
    let start = t.started_at?;
    Some(t.finished_at.unwrap_or(now) - start)
}

/// The rows of `arca task list`.
fn task_table(all: &[Task], names: &SourceNames, now: i64) -> String {
    let mut tab = Table::new(&[
        "ID", "SOURCE", "KIND", "STATE", "STARTED", "DURATION", "BYTES", "RATE",
    ])
    .right(&[0, 5, 6, 7]);
    for t in all {
        let secs = ran_for(t, now);
        let bytes = u64::try_from(t.bytes_done).unwrap_or(0);
        tab.row(vec![
            t.id.to_string(),
            opt(source_of(t, names)),
            t.kind.to_string(),
            t.state.to_string(),
            local_time_opt(t.started_at),
            opt(secs.map(duration)),
            opt((bytes > 0).then(|| human(bytes))),
            opt(secs.and_then(|s| rate(bytes, s as f64))),
        ]);
    }
    tab.render()
}

/// One line saying what a succeeded task did, by kind.
pub(super) fn result_summary(t: &Task) -> Option<String> {
    let v = t.result.as_ref()?;
    let r = match TaskResult::from_json(t.kind, v) {
        Ok(r) => r,
        Err(_) => return Some(v.to_string()),
    };
    Some(match r {
        TaskResult::Backup(b) => format!(
            "restore point {}, {} files, read {}, added {}, mode {}{}{}",
            b.snapshot.to_hex(),
            b.files,
            human(b.bytes_read),
            human(b.bytes_added),
            b.mode,
            if b.pruned > 0 {
                format!(", {} pruned", b.pruned)
            } else {
                String::new()
            },
            if b.warnings > 0 {
                format!(", {} warnings (see the log)", b.warnings)
            } else {
                String::new()
            }
        ),
        TaskResult::Restore(r) => format!(
            "{} files, {} written to {}",
            r.tree.as_ref().map_or(1, |t| t.files),
            human(r.bytes),
            r.target
        ),
        TaskResult::Verify(v) => match (&v.report, &v.note) {
            (Some(rep), _) => format!(
                "{} restore points checked, {} damaged chunks, {} damaged packs",
                v.restore_points_checked,
                rep.damaged_blobs.len(),
                rep.damaged_packs.len()
            ),
            (None, note) => format!(
                "{} restore points checked{}",
                v.restore_points_checked,
                note.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        },
        TaskResult::Prune(p) => format!("{} restore points removed", p.removed),
        TaskResult::Gc(g) => format!(
            "{} freed, {} packs deleted, {} repacked",
            human(g.bytes_freed),
            g.packs_deleted,
            g.packs_repacked
        ),
        TaskResult::CommitExport(c) => format!(
            "restore point {}, added {}",
            c.restore_point.to_hex(),
            human(c.bytes_added)
        ),
        TaskResult::Forget(f) => format!(
            "{} restore points removed; their space comes back at the datastore's next gc",
            f.removed
        ),
    })
}

/// `arca task show`: key/value lines, then the log.
fn task_text(t: &Task, logs: &[TaskLog], names: &SourceNames, now: i64) -> String {
    let mut tab = Table::new(&["task", ""]);
    let mut kv = |k: &str, v: String| tab.row(vec![k.to_string(), v]);
    kv("kind", t.kind.to_string());
    kv("state", t.state.to_string());
    if let Some(s) = source_of(t, names) {
        kv("source", s);
    }
    kv(
        "created",
        format!("{} by {}", local_time(t.created_at), t.created_by),
    );
    kv("started", local_time_opt(t.started_at));
    kv("finished", local_time_opt(t.finished_at));
    kv("duration", opt(ran_for(t, now).map(duration)));
    if t.bytes_total > 0 || t.bytes_done > 0 {
        let done = u64::try_from(t.bytes_done).unwrap_or(0);
        let total = u64::try_from(t.bytes_total).unwrap_or(0);
        kv("bytes", format!("{} of {}", human(done), human(total)));
    }
    kv("attempt", format!("{} of {}", t.attempt, t.max_attempts));
    if let Some(e) = &t.error {
        kv("error", e.clone());
    }
    if let Some(r) = result_summary(t) {
        kv("result", r);
    }
    // The header row is the task's id.
    let mut out = tab.render().replacen("task", &format!("task {}", t.id), 1);
    out = out
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    if !logs.is_empty() {
        out += "\nlog:";
        for l in logs {
            out += &format!("\n  {}  {:<5} {}", local_time(l.time), l.level, l.message);
        }
    }
    out
}

/// What `arca --json task show` prints.
#[derive(Serialize)]
struct TaskWithLogs {
    task: Task,
    logs: Vec<TaskLog>,
}

pub fn task(cli: &Cli, c: &TaskCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    let now = arca_catalog::now();
    match c {
        TaskCmd::List {
            state,
            kind,
            source,
            limit,
        } => {
            let mut q = format!("/tasks?limit={limit}");
            if let Some(s) = state {
                q += &format!("&state={s}");
            }
            if let Some(k) = kind {
                q += &format!("&kind={k}");
            }
            let names = source_names(&api)?;
            if let Some(name) = source {
                let id = names
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(id, _)| *id)
                    .ok_or_else(|| anyhow::anyhow!("no source named {name:?}"))?;
                q += &format!("&source={id}");
            }
            let all: Vec<Task> = api.get(&q, "a list of tasks")?;
            if cli.json {
                return show(cli, &all, |_| String::new());
            }
            show(cli, &all, |all| task_table(all, &names, now))
        }
        TaskCmd::Show { id } => {
            let task: Task = api.get(&format!("/tasks/{id}"), "a task")?;
            let logs: Vec<TaskLog> =
                api.get(&format!("/tasks/{id}/logs"), "a list of task log lines")?;
            if cli.json {
                return show(cli, &TaskWithLogs { task, logs }, |_| String::new());
            }
            let names = source_names(&api)?;
            show(cli, &TaskWithLogs { task, logs }, |v| {
                task_text(&v.task, &v.logs, &names, now)
            })
        }
        TaskCmd::Cancel { id } => {
            let c: Cancelled = api.post_empty(&format!("/tasks/{id}/cancel"), "a cancellation")?;
            show(cli, &c, |c| format!("task {} is {}", c.id, c.state))
        }
        TaskCmd::Retry { id, wait } => {
            let t: Task = api.post_empty(&format!("/tasks/{id}/retry"), "a task")?;
            if *wait {
                return follow(cli, &api, t.id);
            }
            show(cli, &t, |t| {
                format!(
                    "task {id} retried as {} task {} ({})",
                    t.kind, t.id, t.state
                )
            })
        }
    }
}

/// Follow task `id` until it ends, with a progress bar on a terminal.
/// Prints the final task; exit code 0 when it succeeded, else 1.
pub(super) fn follow(cli: &Cli, api: &Api, id: TaskId) -> Result<u8> {
    let t = wait_task(api, id)?;
    let ok = t.state == TaskState::Succeeded;
    show(cli, &t, |t| final_line(t, arca_catalog::now()))?;
    Ok(if ok { 0 } else { 1 })
}

/// Follow `tasks` to their ends, one after the other: how they ended, and
/// whether all succeeded.
pub(super) fn wait_all(api: &Api, tasks: &[Task]) -> Result<(Vec<Task>, bool)> {
    let mut ended = Vec::with_capacity(tasks.len());
    for t in tasks {
        ended.push(wait_task(api, t.id)?);
    }
    let ok = ended.iter().all(|t| t.state == TaskState::Succeeded);
    Ok((ended, ok))
}

/// Poll task `id` until it ends (a progress bar on a terminal); returns
/// it as it ended.
pub(super) fn wait_task(api: &Api, id: TaskId) -> Result<Task> {
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
    Ok(t)
}

/// How `--wait` reports a task that ended.
pub(super) fn final_line(t: &Task, now: i64) -> String {
    let took = ran_for(t, now)
        .map(|s| format!(" in {}", duration(s)))
        .unwrap_or_default();
    match t.state {
        TaskState::Succeeded => format!(
            "{} task {} succeeded{took}: {}",
            t.kind,
            t.id,
            result_summary(t).unwrap_or_else(|| "no result".into())
        ),
        s => format!(
            "{} task {} {s}{took}: {}",
            t.kind,
            t.id,
            t.error.as_deref().unwrap_or("no reason given")
        ),
    }
}

#[cfg(test)]
mod tests;
