//! `arca snapshots`, `arca forget` and `arca ls`: what the datastore holds.

use anyhow::{Context, Result};
use arca_repo::Snapshot;
use serde_json::json;

use super::shared::{open, open_for_deletion, print_json, resolve};
use crate::listing::{self, SnapshotFilter};
use crate::Cli;

/// `arca snapshots`.
pub(super) fn snapshots(cli: &Cli, f: &SnapshotFilter) -> Result<u8> {
    let ds = open(cli, true)?;
    let (snaps, bad) = ds.snapshots_checked()?;
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|s| {
            f.source
                .as_ref()
                .is_none_or(|src| &s.manifest.source == src)
        })
        .filter(|s| {
            f.kind
                .is_none_or(|k| s.manifest.source_kind == k.to_string())
        })
        .filter(|s| f.since.is_none_or(|t| s.time().timestamp() >= t))
        .collect();
    // Damaged snapshot files are listed whatever the filters say: what
    // they belong to cannot be read.
    let damaged: Vec<(String, String, &'static str)> = bad
        .into_iter()
        .map(|(id, e)| {
            let state = if arca_repo::datastore::is_damage(&e) {
                "damaged"
            } else {
                "unreadable"
            };
            (id, e.to_string(), state)
        })
        .collect();
    if cli.json {
        let mut rows: Vec<_> = snaps.iter().map(snapshot_json).collect();
        rows.extend(damaged.iter().map(|(id, e, state)| {
            json!({ "id": id, "state": state, "error": e, "source": null, "time": null })
        }));
        print_json(json!(rows));
    } else {
        let rows: Vec<listing::SnapshotRow> = snaps
            .iter()
            .map(|s| {
                let st = s.manifest.stats.clone().unwrap_or_default();
                listing::SnapshotRow {
                    id: s.id.to_hex(),
                    time: s.time().timestamp(),
                    kind: s.manifest.source_kind.clone(),
                    bytes_total: st.bytes_total,
                    bytes_added: st.bytes_added,
                    source: s.manifest.source.clone(),
                }
            })
            .collect();
        let unreadable = damaged
            .iter()
            .map(|(id, e, state)| {
                vec![
                    id[..id.len().min(8)].to_string(),
                    "-".into(),
                    state.to_ascii_uppercase(),
                    "-".into(),
                    "-".into(),
                    format!("unknown ({state}: {e})"),
                ]
            })
            .collect();
        println!("{}", listing::snapshot_table(&rows, unreadable));
        if damaged.is_empty() {
            println!("{} snapshots", snaps.len());
        } else {
            println!(
                "{} snapshots, {} damaged",
                snaps.len() + damaged.len(),
                damaged.len()
            );
        }
    }
    if !damaged.is_empty() {
        eprintln!(
            "warning: {} snapshot file(s) cannot be read; `arca forget ID` removes one",
            damaged.len()
        );
    }
    Ok(0)
}

fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    let m = &s.manifest;
    let st = m.stats.clone().unwrap_or_default();
    json!({
        "id": s.id.to_hex(), "state": "ok", "time": s.time().to_rfc3339(), "source": m.source, "kind": m.source_kind,
        "path": m.path, "hostname": m.hostname, "tags": m.tags, "mode": m.backup_mode,
        "parent": if m.parent.is_empty() { None } else { Some(hex_of(&m.parent)) },
        "files": st.files, "bytes_total": st.bytes_total, "bytes_read": st.bytes_read, "bytes_added": st.bytes_added,
        "disks": m.disks.iter().map(|d| json!({"name": d.name, "size": d.size, "chunk_size": d.chunk_size, "holes": d.holes,
            "format": if d.format.is_empty() { "raw" } else { &d.format }, "cbt": d.cbt, "mode": d.mode, "bytes_read": d.bytes_read})).collect::<Vec<_>>(),
    })
}

/// `arca forget ID...`: resolve every id first (damaged files included),
/// then delete them; nothing is deleted if one does not resolve.
pub(super) fn forget(cli: &Cli, specs: &[String]) -> Result<u8> {
    let ds = open_for_deletion(cli, false)?;
    let mut chosen = Vec::new();
    for spec in specs {
        let r = ds
            .resolve(spec, None)
            .with_context(|| format!("forget {spec}"))?;
        if !chosen
            .iter()
            .any(|c: &arca_repo::datastore::Resolved| c.id() == r.id())
        {
            chosen.push(r);
        }
    }
    let mut removed = Vec::new();
    for r in &chosen {
        ds.delete_snapshot(&r.id())?;
        let (source, state) = match r {
            arca_repo::datastore::Resolved::Ok(s) => (Some(s.manifest.source.clone()), "ok"),
            arca_repo::datastore::Resolved::Damaged(..) => (None, "damaged"),
        };
        if !cli.json {
            println!(
                "removed snapshot {}{}",
                r.id(),
                match &source {
                    Some(s) => format!(" of {s}"),
                    None => " (damaged)".into(),
                }
            );
        }
        removed.push(json!({ "id": r.id().to_hex(), "source": source, "state": state }));
    }
    if cli.json {
        print_json(json!({ "removed": removed }));
    } else {
        println!("run `arca gc` to reclaim space");
    }
    Ok(0)
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `arca ls` on a local datastore (`client::ls` through a server): the
/// entries [`arca_node::browse::tree`] lists, as the server's API does.
pub(super) fn ls(cli: &Cli, req: &listing::LsRequest) -> Result<u8> {
    let ds = open(cli, true)?;
    let snap = resolve(&ds, req.snapshot, req.source)?;
    // An image's file tree (`disk.img`, partitions, their file
    // systems); the disks it holds are in `arca snapshots --json`.
    let trees = arca_frontends::tree::Trees::new(arca_frontends::chunk_cache(LS_CACHE), 1);
    let page = arca_node::browse::tree(&ds, &trees, &snap, req.path, req.recursive, 0, u32::MAX)?;
    listing::print_tree(cli.json, &page)
}

/// Chunk cache of `arca ls` on an image: its file systems' metadata.
const LS_CACHE: u64 = 64 << 20;
