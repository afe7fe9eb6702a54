//! `arca policy add|list|edit|remove|preview|prune` through the server.

use anyhow::{anyhow, Result};
use arca_model::api::{NewPolicy, Policy, PolicyChange, RetentionPreview, Task};
use arca_model::{PolicyId, ProjectId, TaskResult, TaskSpec};

use super::tasks::{final_line, wait_all};
use super::{show, Api};
use crate::objects::PolicyEdit;
use crate::table::{opt, Table};
use crate::{Cli, PolicyCmd};

/// Retention rules in short: "last 3, daily 7"; "keep all" without any.
pub(crate) fn retention_summary(r: &arca_model::Retention) -> String {
    let rules = [
        ("last", r.keep_last),
        ("hourly", r.keep_hourly),
        ("daily", r.keep_daily),
        ("weekly", r.keep_weekly),
        ("monthly", r.keep_monthly),
        ("yearly", r.keep_yearly),
    ];
    let set: Vec<String> = rules
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if set.is_empty() {
        "keep all".into()
    } else {
        set.join(", ")
    }
}

/// The rows of `arca policy list`; NEXT RUN in local time ("-" when
/// disabled or never).
fn policy_table(all: &[Policy]) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "SCHEDULE",
        "WINDOW",
        "NEXT RUN",
        "RETENTION",
        "RPO",
        "PRIORITY",
        "ENABLED",
    ])
    .right(&[0, 7]);
    for p in all {
        t.row(vec![
            p.id.to_string(),
            p.name.clone(),
            p.schedule.clone(),
            opt(p.backup_window.as_deref()),
            crate::units::local_time_opt(p.next_run),
            retention_summary(&p.retention),
            opt(p.rpo_seconds.map(crate::units::duration)),
            p.priority.to_string(),
            if p.enabled { "yes" } else { "no" }.into(),
        ]);
    }
    t.render()
}

pub fn policy(cli: &Cli, c: &PolicyCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        PolicyCmd::Add {
            name,
            schedule,
            window,
            datastore,
            priority,
            match_pattern,
            match_tags,
            keep,
            rpo,
            project,
        } => {
            let rpo_s = match rpo {
                Some(r) => Some(
                    i64::try_from(crate::units::parse_duration(r)?.as_secs())
                        .map_err(|_| anyhow::anyhow!("--rpo {r:?} is too long"))?,
                ),
                None => None,
            };
            let req = NewPolicy {
                name: name.clone(),
                schedule: schedule.clone(),
                project: *project,
                window: window.clone(),
                retention: keep.retention().into(),
                datastore: datastore.clone(),
                priority: *priority,
                match_pattern: match_pattern.clone(),
                match_tags: match_tags.clone(),
                rpo_s,
            };
            let p: Policy = api.post("/policies", &req, "a policy")?;
            show(cli, &p, |p| {
                format!(
                    "policy {:?} added (id {}, schedule {:?})",
                    p.name, p.id, p.schedule
                )
            })
        }
        PolicyCmd::List => {
            let all: Vec<Policy> = api.get("/policies", "a list of policies")?;
            show(cli, &all, |all| policy_table(all))
        }
        PolicyCmd::Edit(e) => edit(cli, &api, e),
        PolicyCmd::Preview { name, project } => {
            let id = policy_id(&api, name, *project)?;
            let p: RetentionPreview =
                api.get(&format!("/policies/{id}/preview"), "a retention preview")?;
            show(cli, &p, |p| preview_text(name, p, crate::units::local_time))
        }
        PolicyCmd::Prune {
            name,
            project,
            wait,
        } => prune(cli, &api, name, *project, *wait),
        PolicyCmd::Remove { name, project } => {
            let id = policy_id(&api, name, *project)?;
            api.delete_no_content(&format!("/policies/{id}"))?;
            show(cli, &serde_json::json!({"removed": id}), |_| {
                format!("policy {name:?} removed (id {id})")
            })
        }
    }
}

/// `arca policy preview`: one row per restore point (sources by name,
/// newest first), then what a prune would do per source. `time` shows a
/// Unix time (local time; UTC in tests).
fn preview_text(name: &str, p: &RetentionPreview, time: impl Fn(i64) -> String) -> String {
    if p.sources.is_empty() {
        return format!("policy {name:?} applies to no source: nothing to keep or remove");
    }
    let mut t = Table::new(&["SOURCE", "RESTORE POINT", "TIME", "KEEP/REMOVE", "WHY"]);
    for s in &p.sources {
        for rp in &s.restore_points {
            t.row(vec![
                s.source_name.clone(),
                rp.id.short(),
                time(rp.time),
                if rp.keep { "keep" } else { "remove" }.into(),
                rp.reasons.join(", "),
            ]);
        }
    }
    let mut out = t.render();
    let rules = retention_summary(&p.retention);
    for s in &p.sources {
        out.push_str(&format!(
            "\n{}: {} kept, {} to remove (retention: {rules})",
            s.source_name, s.kept, s.removed
        ));
    }
    out
}

/// `arca policy prune NAME [--wait]`: queue the policy's prune tasks,
/// then say what was queued, or (with `--wait`) what each removed.
fn prune(cli: &Cli, api: &Api, name: &str, project: Option<ProjectId>, wait: bool) -> Result<u8> {
    let id = policy_id(api, name, project)?;
    let tasks: Vec<Task> = api.post_empty(&format!("/policies/{id}/prune"), "a list of tasks")?;
    if !wait || tasks.is_empty() {
        show(cli, &tasks, |tasks| prune_text(name, tasks, None))?;
        return Ok(0);
    }
    let (ended, ok) = wait_all(api, &tasks)?;
    show(cli, &ended, |ended| {
        prune_text(name, ended, Some(arca_catalog::now()))
    })?;
    Ok(if ok { 0 } else { 1 })
}

/// What `arca policy prune` says: a line per source, the task queued
/// (`now`: None) or how it ended, and with `now` the total removed.
fn prune_text(policy: &str, tasks: &[Task], now: Option<i64>) -> String {
    if tasks.is_empty() {
        return format!("policy {policy:?} applies to no source: nothing to prune");
    }
    let source = |t: &Task| match t.spec() {
        Ok(TaskSpec::Prune(p)) => p.source,
        _ => t.source_id.map_or("?".into(), |s| format!("source {s}")),
    };
    let mut lines = Vec::with_capacity(tasks.len() + 1);
    let mut removed = 0;
    for t in tasks {
        lines.push(match now {
            None => format!(
                "{}: prune queued as task {} (follow it with `arca task show {}`)",
                source(t),
                t.id,
                t.id
            ),
            Some(now) => format!("{}: {}", source(t), final_line(t, now)),
        });
        if let Some(Ok(TaskResult::Prune(p))) =
            t.result.as_ref().map(|v| TaskResult::from_json(t.kind, v))
        {
            removed += p.removed;
        }
    }
    if now.is_some() {
        lines.push(format!(
            "{removed} restore point(s) removed; their space comes back at the datastore's next gc"
        ));
    }
    lines.join("\n")
}

fn edit(cli: &Cli, api: &Api, e: &PolicyEdit) -> Result<u8> {
    let req = PolicyChange {
        schedule: e.schedule.clone(),
        window: if e.no_window {
            Some(None)
        } else {
            e.window.clone().map(Some)
        },
        retention: e.keep.retention().map(Into::into),
        datastore: e.datastore.clone(),
        priority: e.priority,
        match_pattern: e.match_pattern.clone().map(Some),
        match_tags: (!e.match_tags.is_empty()).then(|| e.match_tags.clone()),
        rpo_s: e.rpo_s.map(Some),
        enabled: e.enabled,
    };
    if req == PolicyChange::default() {
        return Err(crate::usage::nothing_to_change(
            &["policy", "edit"],
            &["project"],
        ));
    }
    let id = policy_id(api, &e.name, e.project)?;
    let p: Policy = api.patch(&format!("/policies/{id}"), &req, "a policy")?;
    show(cli, &p, |p| {
        format!(
            "policy {:?} changed (id {}, schedule {:?}, enabled {})",
            p.name, p.id, p.schedule, p.enabled
        )
    })
}

/// The id of the policy `name` among those the caller can see, in
/// `project` when given (names are unique per project only).
fn policy_id(api: &Api, name: &str, project: Option<ProjectId>) -> Result<PolicyId> {
    let all: Vec<Policy> = api.get("/policies", "a list of policies")?;
    let found: Vec<&Policy> = all
        .iter()
        .filter(|p| p.name == name)
        .filter(|p| project.is_none_or(|x| p.project_id == x))
        .collect();
    match found.as_slice() {
        [p] => Ok(p.id),
        [] => Err(anyhow!("no policy named {name:?} on the server")),
        many => Err(anyhow!(
            "policy name {name:?} is used in projects {}: add --project",
            many.iter()
                .map(|p| p.project_id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_list_schedule_and_retention() {
        let p: Policy = serde_json::from_value(serde_json::json!({"id": 3, "name": "nightly",
            "project_id": 1, "schedule": "Mon..Fri 22:00", "backup_window": null,
            "retention": {"keep_last": 3, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 0,
                "keep_monthly": 0, "keep_yearly": 0},
            "datastore_id": 1, "priority": 10, "match_pattern": null, "match_tags": [],
            "rpo_seconds": 86400, "enabled": true, "created_at": 0}))
        .unwrap();
        assert_eq!(
            policy_table(&[p]),
            "ID  NAME     SCHEDULE        WINDOW  NEXT RUN  RETENTION        RPO     PRIORITY  ENABLED\n \
             3  nightly  Mon..Fri 22:00  -       -         last 3, daily 7  1d 00h        10  yes"
        );
        assert_eq!(
            retention_summary(&arca_model::Retention::default()),
            "keep all"
        );
    }

    #[test]
    fn prune_says_what_was_queued_and_what_went() {
        let task = |id: i64, source: &str, result: Option<serde_json::Value>| -> Task {
            serde_json::from_value(serde_json::json!({"id": id, "kind": "prune",
                "state": if result.is_some() { "succeeded" } else { "queued" },
                "project_id": 1, "source_id": id, "policy_id": 3, "datastore_id": 1,
                "node_id": 1, "params": {"retention": {"keep_last": 1}, "source": source},
                "priority": 0, "slot": null, "attempt": 1, "max_attempts": 1,
                "not_before": 0, "lease_until": null, "cancel_requested": false,
                "bytes_done": 0, "bytes_total": 0, "progress": null, "result": result,
                "error": null, "created_by": "admin", "created_at": 0,
                "started_at": 10, "finished_at": 12}))
            .unwrap()
        };
        let queued = [task(7, "web", None), task(8, "db", None)];
        assert_eq!(
            prune_text("keep", &queued, None),
            "web: prune queued as task 7 (follow it with `arca task show 7`)\n\
             db: prune queued as task 8 (follow it with `arca task show 8`)"
        );
        let ended = [
            task(7, "web", Some(serde_json::json!({"removed": 2}))),
            task(8, "db", Some(serde_json::json!({"removed": 1}))),
        ];
        assert_eq!(
            prune_text("keep", &ended, Some(20)),
            "web: prune task 7 succeeded in 2s: 2 restore points removed\n\
             db: prune task 8 succeeded in 2s: 1 restore points removed\n\
             3 restore point(s) removed; their space comes back at the datastore's next gc"
        );
        assert_eq!(
            prune_text("keep", &[], None),
            "policy \"keep\" applies to no source: nothing to prune"
        );
    }

    #[test]
    fn preview_rows_say_keep_or_remove_and_why() {
        let rp = |c: char| c.to_string().repeat(64);
        let p: RetentionPreview = serde_json::from_value(serde_json::json!({
            "policy_id": 3, "time": 0,
            "retention": {"keep_last": 1},
            "sources": [{"source_id": 1, "source_name": "web", "datastore_id": 1,
                "kept": 2, "removed": 1, "restore_points": [
                    {"id": rp('c'), "time": 1_794_045_600, "keep": true, "reasons": ["protected"]},
                    {"id": rp('b'), "time": 1_794_042_000, "keep": true, "reasons": ["last 1", "daily 2026-11-07"]},
                    {"id": rp('a'), "time": 1_793_955_600, "keep": false, "reasons": []}]}]}))
        .unwrap();
        let utc = |t| crate::units::time_in(t, &chrono::Utc);
        assert_eq!(
            preview_text("nightly", &p, utc),
            "SOURCE  RESTORE POINT  TIME              KEEP/REMOVE  WHY\n\
             web     cccccccc       2026-11-07 10:00  keep         protected\n\
             web     bbbbbbbb       2026-11-07 09:00  keep         last 1, daily 2026-11-07\n\
             web     aaaaaaaa       2026-11-06 09:00  remove       -\n\
             web: 2 kept, 1 to remove (retention: last 1)"
        );
        let none: RetentionPreview = serde_json::from_value(serde_json::json!({
            "policy_id": 3, "time": 0, "retention": {}, "sources": []}))
        .unwrap();
        assert!(preview_text("x", &none, utc).contains("applies to no source"));
    }
}
