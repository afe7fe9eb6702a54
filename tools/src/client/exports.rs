//! `arca mount|mounts|unmount` through the server: restore points served
//! as disks over NBD or iSCSI.

use anyhow::{anyhow, bail, Result};
use arca_model::api::{Export, ExtendExport, NewExport};
use arca_model::{ExportId, ExportProtocol, ExportState};

use super::{show, tasks::follow, Api};
use crate::units::local_time;
use crate::Cli;

fn export_line(e: &Export) -> String {
    let rp = e.restore_point_id.to_hex();
    format!(
        "{:<5} {:<8} {:<6} {:<3} {:<10} {:<16} {}",
        e.id,
        e.state,
        e.protocol,
        if e.writable { "rw" } else { "ro" },
        &rp[..rp.len().min(10)],
        local_time(e.expires_at),
        e.address
            .clone()
            .flatten()
            .as_deref()
            .or(e.error.as_deref())
            .unwrap_or("")
    )
}

/// `arca mount`: export, then wait (polling every 50 ms) until the node
/// serves it, and print the address.
pub fn mount(
    cli: &Cli,
    rp: &str,
    protocol: ExportProtocol,
    allow: &[String],
    writable: bool,
    ttl: &str,
) -> Result<u8> {
    let api = Api::new(cli)?;
    let req = NewExport {
        restore_point: rp.to_string(),
        protocol,
        writable,
        ttl: Some(ttl.to_string()),
        allow: allow.to_vec(),
    };
    let mut e: Export = api.post("/exports", &req, "an export")?;
    let id = e.id;
    let t0 = std::time::Instant::now();
    while e.state == ExportState::Starting {
        if t0.elapsed() > std::time::Duration::from_secs(60) {
            bail!("export {id} is not served after 60 s: is its node online? (`arca mounts`)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        e = api.get(&format!("/exports/{id}"), "an export")?;
    }
    if e.state != ExportState::Active {
        bail!(
            "export {id} {}: {}",
            e.state,
            e.error.as_deref().unwrap_or("no reason given")
        );
    }
    show(cli, &e, |e| {
        let commands = e.commands.as_deref().unwrap_or_default();
        format!(
            "{}\nexport {id} ({}), until {} (stop it with `arca unmount {id}`){}{}",
            e.address.clone().flatten().unwrap_or_default(),
            if writable {
                "writable, overlay"
            } else {
                "read-only"
            },
            local_time(e.expires_at),
            match &e.chap_user {
                Some(u) => format!(
                    "\nCHAP user {u}, secret {}",
                    e.secret.as_deref().unwrap_or_default()
                ),
                None if e.protocol == ExportProtocol::Nfs => {
                    format!("\nNFSv3 clients allowed: {}", e.allow.join(", "))
                }
                None => String::new(),
            },
            if commands.is_empty() {
                String::new()
            } else {
                format!("\nfor example:\n  {}", commands.join("\n  "))
            }
        )
    })
}

pub fn mounts(cli: &Cli, all: bool, extend: Option<ExportId>, ttl: Option<&str>) -> Result<u8> {
    let api = Api::new(cli)?;
    if let Some(id) = extend {
        let ttl = ttl.ok_or_else(|| anyhow!("--extend needs --ttl"))?;
        let req = ExtendExport {
            ttl: Some(ttl.to_string()),
        };
        let e: Export = api.patch(&format!("/exports/{id}"), &req, "an export")?;
        return show(cli, &e, export_line);
    }
    let list: Vec<Export> = api.get(&format!("/exports?all={all}"), "a list of exports")?;
    show(cli, &list, |list| {
        let mut t = crate::table::Table::new(&[
            "ID",
            "STATE",
            "PROTO",
            "RW",
            "RESTORE POINT",
            "EXPIRES",
            "ADDRESS",
        ])
        .right(&[0]);
        for e in list {
            let rp = e.restore_point_id.to_hex();
            t.row(vec![
                e.id.to_string(),
                e.state.to_string(),
                e.protocol.to_string(),
                if e.writable { "rw" } else { "ro" }.into(),
                rp[..rp.len().min(10)].to_string(),
                crate::units::local_time(e.expires_at),
                e.address
                    .clone()
                    .flatten()
                    .or_else(|| e.error.clone())
                    .unwrap_or_default(),
            ]);
        }
        t.render()
    })
}

pub fn unmount(cli: &Cli, id: ExportId, commit: bool, wait: bool) -> Result<u8> {
    let api = Api::new(cli)?;
    let e: Export = api.delete(&format!("/exports/{id}?commit={commit}"), "an export")?;
    if let (true, Some(t)) = (wait, e.commit_task_id) {
        return follow(cli, &api, t);
    }
    show(cli, &e, |e| match e.commit_task_id {
        Some(t) => {
            format!("export {id} stopped; task {t} commits its changes as a new restore point")
        }
        None => format!("export {id} stopped"),
    })
}
