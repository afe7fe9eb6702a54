//! Deleting restore points through the server: `arca forget RP...` (a
//! forget task per restore point) and `arca source remove NAME` with what
//! becomes of its restore points (kept, or removed by forget tasks). The
//! space comes back at each datastore's next gc.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Result};
use arca_model::api::{RestorePoint, Task};
use arca_model::ProjectId;
use serde::Serialize;

use super::restore_points::list;
use super::sources::source_id;
use super::tasks::{final_line, wait_all};
use super::{show, Api};
use crate::listing::SnapshotFilter;
use crate::objects::RestorePoints;
use crate::Cli;

/// What a command that queued forget tasks says about them: queued, or
/// (with `--wait`) how each ended. Returns the exit code: 1 if one did
/// not succeed.
fn report(cli: &Cli, api: &Api, tasks: Vec<Task>, wait: bool, what: &str) -> Result<u8> {
    if !wait {
        show(cli, &tasks, |tasks| {
            let mut lines: Vec<String> = tasks
                .iter()
                .map(|t| {
                    format!(
                        "{what}: queued as task {} (follow it with `arca task show {}`)",
                        t.id, t.id
                    )
                })
                .collect();
            lines.push(
                "their space comes back at the datastore's next gc (`arca datastore gc`, or its schedule)"
                    .into(),
            );
            lines.join("\n")
        })?;
        return Ok(0);
    }
    let (ended, ok) = wait_all(api, &tasks)?;
    show(cli, &ended, |ended| {
        let now = arca_catalog::now();
        ended
            .iter()
            .map(|t| final_line(t, now))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if ok { 0 } else { 1 })
}

/// `arca forget RP... --server`: every id or prefix is looked up first
/// (nothing is queued if one is unknown or ambiguous), then each restore
/// point gets its forget task.
pub fn forget(cli: &Cli, specs: &[String], wait: bool) -> Result<u8> {
    let api = Api::new(cli)?;
    let mut chosen: Vec<RestorePoint> = Vec::new();
    for spec in specs {
        let rp: RestorePoint = api
            .get(&format!("/restore-points/{spec}"), "a restore point")
            .map_err(|e| anyhow!("forget {spec}: {e}"))?;
        if !chosen.iter().any(|c| c.id == rp.id) {
            chosen.push(rp);
        }
    }
    let mut tasks = Vec::with_capacity(chosen.len());
    for rp in &chosen {
        let t: Task = api
            .delete(&format!("/restore-points/{}", rp.id), "a task")
            .map_err(|e| {
                let queued: Vec<String> = tasks.iter().map(|t: &Task| t.id.to_string()).collect();
                if queued.is_empty() {
                    anyhow!("forget {}: {e}", rp.id.short())
                } else {
                    anyhow!(
                        "forget {}: {e} (the ones before it are queued: task(s) {})",
                        rp.id.short(),
                        queued.join(", ")
                    )
                }
            })?;
        tasks.push(t);
    }
    let what = match chosen.as_slice() {
        [one] => format!("removal of restore point {}", one.id.short()),
        _ => "removal of a restore point".into(),
    };
    report(cli, &api, tasks, wait, &what)
}

/// What `arca --json source remove` prints.
#[derive(Serialize)]
struct Removed {
    removed: arca_model::SourceId,
    restore_points: &'static str,
    /// The forget tasks that delete them (`remove`).
    tasks: Vec<Task>,
}

/// Ask on the terminal what becomes of a source's `n` restore points.
fn ask(name: &str, n: usize) -> Result<RestorePoints> {
    let stdin = std::io::stdin();
    for _ in 0..3 {
        eprint!("source {name:?} has {n} restore point(s): keep or remove them? [keep/remove] ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "keep" | "k" => return Ok(RestorePoints::Keep),
            "remove" | "r" => return Ok(RestorePoints::Remove),
            _ => eprintln!("answer keep or remove"),
        }
    }
    bail!("no answer: nothing removed (give --keep-restore-points or --remove-restore-points)")
}

/// `arca source remove NAME`: `choice` from the flags; without one, ask on
/// a terminal (when the source has restore points), else refuse naming
/// both flags.
pub(super) fn remove_source(
    cli: &Cli,
    api: &Api,
    name: &str,
    project: Option<ProjectId>,
    choice: Option<RestorePoints>,
    wait: bool,
) -> Result<u8> {
    let id = source_id(api, name, project)?;
    let choice = match choice {
        Some(c) => c,
        None if std::io::stdin().is_terminal() => {
            let f = SnapshotFilter {
                source: Some(name.to_string()),
                kind: None,
                since: None,
            };
            let n = list(api, &f, None, None)?
                .iter()
                .filter(|rp| rp.source_id == Some(id))
                .count();
            if n == 0 {
                RestorePoints::Keep
            } else {
                ask(name, n)?
            }
        }
        None => bail!(
            "what becomes of the restore points of source {name:?}? give --keep-restore-points (they stay listed and restorable) or --remove-restore-points (forget tasks delete them)"
        ),
    };
    let rp = match choice {
        RestorePoints::Keep => "keep",
        RestorePoints::Remove => "remove",
    };
    let tasks: Vec<Task> = api
        .delete_maybe(
            &format!("/sources/{id}?restore_points={rp}"),
            "a list of tasks",
        )?
        .unwrap_or_default();
    if wait && !tasks.is_empty() {
        if !cli.json {
            println!("source {name:?} removed (id {id})");
        }
        return report(cli, api, tasks, true, "");
    }
    let out = Removed {
        removed: id,
        restore_points: rp,
        tasks,
    };
    show(cli, &out, |o| {
        let mut s = format!(
            "source {name:?} removed (id {id}); its restore points are {}",
            match o.restore_points {
                "keep" => "kept, listed under its name",
                _ => "removed",
            }
        );
        for t in &o.tasks {
            s += &format!(
                "\nremoval of its restore points in datastore {}: queued as task {} (follow it with `arca task show {}`)",
                t.datastore_id.map_or("?".to_string(), |d| d.to_string()),
                t.id,
                t.id
            );
        }
        if !o.tasks.is_empty() {
            s += "\ntheir space comes back at the datastore's next gc";
        }
        s
    })
}
