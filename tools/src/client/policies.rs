//! `arca policy add|list` through the server.

use anyhow::Result;
use arca_model::api::{NewPolicy, Policy};

use super::{show, Api};
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
    }
}
