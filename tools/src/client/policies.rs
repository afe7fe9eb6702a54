//! `arca policy add|list|edit|remove` through the server.

use anyhow::{anyhow, Result};
use arca_model::api::{NewPolicy, Policy, PolicyChange};
use arca_model::{PolicyId, ProjectId};

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

/// The rows of `arca policy list`. The API has no next run: the schedule
/// says when.
fn policy_table(all: &[Policy]) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "SCHEDULE",
        "WINDOW",
        "RETENTION",
        "RPO",
        "PRIORITY",
        "ENABLED",
    ])
    .right(&[0, 6]);
    for p in all {
        t.row(vec![
            p.id.to_string(),
            p.name.clone(),
            p.schedule.clone(),
            opt(p.backup_window.as_deref()),
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
        PolicyCmd::Remove { name, project } => {
            let id = policy_id(&api, name, *project)?;
            api.delete_no_content(&format!("/policies/{id}"))?;
            show(cli, &serde_json::json!({"removed": id}), |_| {
                format!("policy {name:?} removed (id {id})")
            })
        }
    }
}

fn edit(cli: &Cli, api: &Api, e: &PolicyEdit) -> Result<u8> {
    let id = policy_id(api, &e.name, e.project)?;
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
            "ID  NAME     SCHEDULE        WINDOW  RETENTION        RPO     PRIORITY  ENABLED\n \
             3  nightly  Mon..Fri 22:00  -       last 3, daily 7  1d 00h        10  yes"
        );
        assert_eq!(
            retention_summary(&arca_model::Retention::default()),
            "keep all"
        );
    }
}
