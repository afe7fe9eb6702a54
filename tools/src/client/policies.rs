//! `arca policy add|list|edit|remove` through the server.

use anyhow::{anyhow, Result};
use arca_model::api::{NewPolicy, Policy, PolicyChange};
use arca_model::{PolicyId, ProjectId};

use super::{show, Api};
use crate::objects::PolicyEdit;
use crate::{Cli, PolicyCmd};

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
            project,
        } => {
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
                rpo_s: None,
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
            show(cli, &all, |all| {
                let mut out = String::new();
                for p in all {
                    out += &format!(
                        "{:>4}  {:<20} {:<24} priority {}\n",
                        p.id, p.name, p.schedule, p.priority
                    );
                }
                out.trim_end().to_string()
            })
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
