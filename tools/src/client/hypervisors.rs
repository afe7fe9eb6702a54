//! `arca hypervisor add|list|sync|remove|import` through the server.

use anyhow::{anyhow, Context, Result};
use arca_model::api::{Hypervisor, ImportRequest, NewHypervisor, SyncReport, Task};

use super::{show, tasks::follow, Api};
use crate::table::{opt, Table};
use crate::{Cli, HypervisorCmd};

fn by_name(api: &Api, name: &str) -> Result<Hypervisor> {
    let all: Vec<Hypervisor> = api.get("/hypervisors", "a list of hypervisors")?;
    all.into_iter()
        .find(|h| h.name == name)
        .ok_or_else(|| anyhow!("no hypervisor {name:?} (`arca hypervisor list`)"))
}

pub fn hypervisor(cli: &Cli, c: &HypervisorCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        HypervisorCmd::Add {
            name,
            address,
            user,
            identity,
            known_host,
            node,
            project,
            agent,
        } => {
            let key = match identity {
                Some(i) if !agent => {
                    std::fs::read_to_string(i).with_context(|| format!("read {}", i.display()))?
                }
                _ => String::new(),
            };
            let req = NewHypervisor {
                name: name.clone(),
                access: Some(if *agent { "agent" } else { "ssh" }.to_string()),
                address: address.clone().unwrap_or_default(),
                user: if *agent { String::new() } else { user.clone() },
                private_key: key,
                host_key: known_host.clone(),
                node: node.clone(),
                project: *project,
            };
            let h: Hypervisor = api.post("/hypervisors", &req, "a hypervisor")?;
            show(cli, &h, |h| {
                if h.access == "agent" {
                    format!("hypervisor {:?} added (id {}); run `arca agent run --hypervisor {}` on the host", h.name, h.id, h.name)
                } else {
                    format!("hypervisor {:?} added (id {}); list its domains with `arca hypervisor sync {}`", h.name, h.id, h.name)
                }
            })
        }
        HypervisorCmd::List => {
            let all: Vec<Hypervisor> = api.get("/hypervisors", "a list of hypervisors")?;
            show(cli, &all, |all| {
                let mut t = Table::new(&[
                    "ID", "NAME", "ADDRESS", "USER", "HOST KEY", "SYNCED", "ERROR",
                ])
                .right(&[0]);
                for h in all {
                    t.row(vec![
                        h.id.to_string(),
                        h.name.clone(),
                        if h.access == "agent" {
                            "(agent)".to_string()
                        } else {
                            h.address.clone()
                        },
                        h.user.clone(),
                        opt(h.host_key.clone()),
                        opt(h.synced_at),
                        opt(h.sync_error.clone()),
                    ]);
                }
                t.render()
            })
        }
        HypervisorCmd::Sync { name } => {
            let h = by_name(&api, name)?;
            let r: SyncReport =
                api.post_empty(&format!("/hypervisors/{}/sync", h.id), "a sync report")?;
            show(cli, &r, |r| {
                let mut s = format!(
                    "{} domain(s); added: {}; removed: {}",
                    r.domains,
                    if r.added.is_empty() {
                        "none".into()
                    } else {
                        r.added.join(", ")
                    },
                    if r.removed.is_empty() {
                        "none".into()
                    } else {
                        r.removed.join(", ")
                    },
                );
                if let Some(k) = &r.pinned_host_key {
                    s.push_str(&format!("\nhost key pinned: {k}"));
                }
                s
            })
        }
        HypervisorCmd::Remove { name } => {
            let h = by_name(&api, name)?;
            api.delete_no_content(&format!("/hypervisors/{}", h.id))?;
            if !cli.json {
                println!("hypervisor {name:?} removed");
            }
            Ok(0)
        }
        HypervisorCmd::Import {
            restore_point,
            hypervisor,
            name,
            dir,
            format,
            start,
            wait,
        } => {
            let req = ImportRequest {
                hypervisor: hypervisor.clone(),
                name: name.clone(),
                dir: dir.clone(),
                format: Some(format.clone()),
                start: *start,
            };
            let t: Task = api.post(
                &format!("/restore-points/{restore_point}/import"),
                &req,
                "a task",
            )?;
            if *wait {
                return follow(cli, &api, t.id);
            }
            show(cli, &t, |t| format!("import queued as task {}", t.id))
        }
    }
}
