//! `arca backup libvirt`, `arca libvirt list` and `arca libvirt import`:
//! argument checks and output around [`arca_ingest::libvirt`].

use std::sync::Arc;

use anyhow::{Context, Result};
use arca_ingest::libvirt::{
    self, BackupRecord, Host, HostKey, ImportOptions, SshKey, VmBackupOptions,
};
use arca_ingest::Progress;
use serde_json::json;

use super::backup::parent_for;
use super::shared::{human, open, print_json, resolve};
use crate::progress::Bar;
use crate::{BackupArgs, Cli, HostArgs, LibvirtBackupArgs, LibvirtCmd};

/// Read the key and the pin, connect, and say which host key was seen
/// when none was pinned.
fn connect(cli: &Cli, a: &HostArgs) -> Result<libvirt::Conn> {
    let private_pem = std::fs::read(&a.identity)
        .with_context(|| format!("reading the SSH key {}", a.identity.display()))?;
    let passphrase = match &a.identity_passphrase_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        None => None,
    };
    let known_host = a
        .known_host
        .as_deref()
        .map(HostKey::parse_fingerprint)
        .transpose()?;
    let host = Host {
        addr: a.host.clone(),
        user: a.user.clone(),
        key: SshKey {
            private_pem,
            passphrase,
        },
        known_host,
    };
    let conn = libvirt::connect(&host)?;
    if a.known_host.is_none() && !cli.json {
        eprintln!(
            "warning: the host key of {} was not checked; it is {} ({}): pass --known-host {} to pin it",
            a.host,
            conn.host_key().fingerprint,
            conn.host_key().key_type,
            conn.host_key().fingerprint
        );
    }
    Ok(conn)
}

pub(super) fn backup(cli: &Cli, a: &LibvirtBackupArgs, common: &BackupArgs) -> Result<u8> {
    let hooks = a.hooks.hooks()?.unwrap_or_default();
    let ds = open(cli, false)?;
    let source = common
        .source
        .clone()
        .unwrap_or_else(|| format!("libvirt://{}/{}", a.host.host, a.domain));
    let parent = parent_for(&ds, common, &source)?;
    let conn = connect(cli, &a.host)?;
    crate::interrupt::explain(
        "interrupted: nothing was committed; the backup job and checkpoint this run started on the host are cleaned up by the next backup",
    );
    let opts = VmBackupOptions {
        source: source.clone(),
        parent,
        tags: common.tags.clone(),
        pre: hooks.pre,
        post: hooks.post,
        pre_failure_is_warning: hooks.on_pre_failure
            == arca_model::api::OnPreFailure::CrashConsistent,
        checkpoint_prefix: arca_ingest::image::qcow2::bitmap_prefix(&ds),
    };
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(&progress, "backup");
    let out = libvirt::backup(&ds, &conn, &a.domain, &opts, &progress);
    drop(bar);
    let out = out?;
    let snap = ds.load_snapshot(&out.snapshot)?;
    let rec = BackupRecord::of(&snap);
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    if cli.json {
        print_json(json!({
            "snapshot": out.snapshot.to_hex(), "source": source, "domain": a.domain,
            "mode": out.mode, "bytes_read": out.bytes_read, "bytes_total": out.bytes_total,
            "bytes_added": out.bytes_added, "chunks_new": out.chunks_new, "duration_s": out.duration_s,
            "consistency": rec.as_ref().map(|r| r.consistency),
            "checkpoint": rec.as_ref().and_then(|r| r.checkpoint.clone()),
            "disks": snap.manifest.disks.iter().map(|d| json!({
                "target": d.name, "size": d.size, "format": d.format, "mode": d.mode, "bytes_read": d.bytes_read,
            })).collect::<Vec<_>>(),
            "host_key": conn.host_key(), "warnings": out.warnings,
        }));
    } else {
        println!(
            "snapshot {} of {source}: {} total, {} read, {} added, {:.1}s, {} consistent\n{}",
            &out.snapshot.to_hex()[..8],
            human(out.bytes_total),
            human(out.bytes_read),
            human(out.bytes_added),
            out.duration_s,
            rec.map_or("crash", |r| match r.consistency {
                libvirt::Consistency::Crash => "crash",
                libvirt::Consistency::Application => "application",
            }),
            out.mode
        );
    }
    Ok(0)
}

pub(super) fn command(cli: &Cli, c: &LibvirtCmd) -> Result<u8> {
    match c {
        LibvirtCmd::List { host } => {
            let conn = connect(cli, host)?;
            let domains = libvirt::inventory(&conn)?;
            if cli.json {
                print_json(json!({ "host_key": conn.host_key(), "domains": domains }));
            } else {
                for d in &domains {
                    println!("{}  {}  {}", d.name, d.state, d.uuid);
                    for k in &d.disks {
                        println!(
                            "  {:<6} {:<6} {:<6} {:>10}  {}{}",
                            k.target,
                            k.device,
                            k.format.as_deref().unwrap_or("-"),
                            human(k.size),
                            k.source.as_deref().unwrap_or("-"),
                            if k.backed_up { "" } else { "  (not backed up)" }
                        );
                    }
                }
            }
            Ok(0)
        }
        LibvirtCmd::Import {
            snapshot,
            host,
            name,
            dir,
            format,
            start,
            source,
        } => {
            let ds = open(cli, true)?;
            let snap = resolve(&ds, snapshot, source.as_deref())?;
            let conn = connect(cli, host)?;
            let opts = ImportOptions {
                new_name: name.clone(),
                dir: dir.clone(),
                format: format.parse()?,
                start: *start,
            };
            let progress = Arc::new(Progress::default());
            let bar = Bar::start(&progress, "import");
            let out = libvirt::import(&ds, &conn, &snap, &opts, &progress);
            drop(bar);
            let out = out?;
            if cli.json {
                print_json(json!({
                    "name": out.name, "uuid": out.uuid, "started": out.started,
                    "disks": out.disks.iter().map(|(t, p)| json!({"target": t, "path": p})).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "defined {} ({}) from {}",
                    out.name,
                    out.uuid,
                    snap.id.short()
                );
                for (t, p) in &out.disks {
                    println!("  {t}: {p}");
                }
            }
            Ok(0)
        }
    }
}
