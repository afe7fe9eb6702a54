//! `arca source add|list|edit|remove` and `arca backup now` through the
//! server.

use anyhow::{anyhow, Result};
use arca_model::api::{NewSource, Source, SourceChange, Task};
use arca_model::{ProjectId, SourceId};

use super::{show, tasks::follow, Api};
use crate::objects::{RestorePoints, SourceEdit};
use crate::table::{opt, Table};
use crate::{Cli, SourceCmd};

/// The rows of `arca source list`.
fn source_table(all: &[Source]) -> String {
    let mut t =
        Table::new(&["ID", "NAME", "KIND", "PATH", "PROJECT", "POLICY", "TAGS"]).right(&[0]);
    for s in all {
        t.row(vec![
            s.id.to_string(),
            s.name.clone(),
            s.kind.to_string(),
            s.path.clone(),
            s.project_id.to_string(),
            opt(s.policy_id),
            s.tags.join(","),
        ]);
    }
    t.render()
}

pub fn source(cli: &Cli, c: &SourceCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        SourceCmd::Add {
            kind,
            name,
            path,
            node,
            project,
            tags,
            policy,
            agent,
        } => {
            let req = NewSource {
                name: name.clone(),
                kind: *kind,
                path: path.clone(),
                node: node.clone(),
                project: *project,
                tags: tags.clone(),
                policy: policy.clone(),
                agent: *agent,
            };
            let s: Source = api.post("/sources", &req, "a source")?;
            show(cli, &s, |s| {
                format!(
                    "source {:?} added (id {}, policy {})",
                    s.name,
                    s.id,
                    s.policy_id.map_or("none".to_string(), |p| p.to_string())
                )
            })
        }
        SourceCmd::List => {
            let all: Vec<Source> = api.get("/sources", "a list of sources")?;
            show(cli, &all, |all| source_table(all))
        }
        SourceCmd::Edit(e) => edit(cli, &api, e),
        SourceCmd::Remove {
            name,
            project,
            keep_restore_points,
            remove_restore_points,
            wait,
            restore_points,
        } => {
            let choice = match (keep_restore_points, remove_restore_points, restore_points) {
                (true, _, _) => Some(RestorePoints::Keep),
                (_, true, _) => Some(RestorePoints::Remove),
                (_, _, rp) => *rp,
            };
            super::forget::remove_source(cli, &api, name, *project, choice, *wait)
        }
    }
}

fn edit(cli: &Cli, api: &Api, e: &SourceEdit) -> Result<u8> {
    let req = SourceChange {
        name: e.rename.clone(),
        path: e.path.clone(),
        tags: if e.no_tags {
            Some(Vec::new())
        } else {
            (!e.tags.is_empty()).then(|| e.tags.clone())
        },
        settings: None,
        policy: if e.no_policy {
            Some(None)
        } else {
            e.policy.clone().map(Some)
        },
        hooks: if e.no_hooks {
            Some(None)
        } else {
            e.hooks.hooks()?.map(Some)
        },
    };
    if req == SourceChange::default() {
        return Err(crate::usage::nothing_to_change(
            &["source", "edit"],
            // A modifier of --pre, not a change of its own.
            &["project", "pre-failure-is-warning"],
        ));
    }
    let id = source_id(api, &e.name, e.project)?;
    let s: Source = api.patch(&format!("/sources/{id}"), &req, "a source")?;
    show(cli, &s, |s| {
        format!(
            "source {:?} changed (id {}, path {}, policy {})",
            s.name,
            s.id,
            s.path,
            opt(s.policy_id)
        )
    })
}

/// The id of the source `name` among those the caller can see, in
/// `project` when given. Names are unique per project only: a name used in
/// several projects needs the project.
pub(super) fn source_id(api: &Api, name: &str, project: Option<ProjectId>) -> Result<SourceId> {
    let all: Vec<Source> = api.get("/sources", "a list of sources")?;
    let found: Vec<&Source> = all
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| project.is_none_or(|p| s.project_id == p))
        .collect();
    match found.as_slice() {
        [s] => Ok(s.id),
        [] => match project {
            Some(p) => Err(anyhow!("no source named {name:?} in project {p}")),
            None => Err(anyhow!("no source named {name:?} on the server")),
        },
        many => Err(anyhow!(
            "source name {name:?} is used in projects {}: add --project",
            many.iter()
                .map(|s| s.project_id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub fn backup_now(cli: &Cli, source: &str, project: Option<ProjectId>, wait: bool) -> Result<u8> {
    let api = Api::new(cli)?;
    let id = source_id(&api, source, project)?;
    let t: Task = api.post_empty(&format!("/sources/{id}/backup"), "a task")?;
    if wait {
        return follow(cli, &api, t.id);
    }
    show(cli, &t, |t| {
        format!("backup of {source} queued as task {}", t.id)
    })
}
