//! `arca snapshots`, `arca forget` and `arca ls`: what the datastore holds.

use anyhow::{bail, Context, Result};
use arca_repo::format::node_kind;
use arca_repo::Snapshot;
use serde_json::json;

use super::shared::{fmt_time, human, open, open_for_deletion, print_json, resolve};
use crate::Cli;

/// `arca snapshots`.
pub(super) fn snapshots(cli: &Cli, source: &Option<String>) -> Result<u8> {
    let ds = open(cli, true)?;
    let (snaps, bad) = ds.snapshots_checked()?;
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|s| source.as_ref().is_none_or(|src| &s.manifest.source == src))
        .collect();
    // Damaged snapshot files are listed whatever --source says: what
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
        let mut t = crate::table::Table::new(&["ID", "TIME", "KIND", "SIZE", "ADDED", "SOURCE"])
            .right(&[3, 4]);
        for s in &snaps {
            let st = s.manifest.stats.clone().unwrap_or_default();
            t.row(vec![
                s.id.to_hex()[..8].to_string(),
                fmt_time(s),
                s.manifest.source_kind.clone(),
                human(st.bytes_total),
                human(st.bytes_added),
                s.manifest.source.clone(),
            ]);
        }
        for (id, e, state) in &damaged {
            t.row(vec![
                id[..id.len().min(8)].to_string(),
                String::new(),
                state.to_ascii_uppercase(),
                String::new(),
                String::new(),
                format!("unknown ({state}: {e})"),
            ]);
        }
        println!("{}", t.render());
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
        "disks": m.disks.iter().map(|d| json!({"name": d.name, "size": d.size, "chunk_size": d.chunk_size, "holes": d.holes})).collect::<Vec<_>>(),
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

pub(super) fn ls(cli: &Cli, spec: &str, path: Option<&str>, source: Option<&str>) -> Result<u8> {
    let ds = open(cli, true)?;
    let snap = resolve(&ds, spec, source)?;
    if snap.is_image() {
        let disks: Vec<_> = snap.manifest.disks.iter().map(|d| json!({"name": d.name, "size": d.size, "chunk_size": d.chunk_size, "holes": d.holes})).collect();
        if cli.json {
            print_json(json!(disks));
        } else {
            for d in &snap.manifest.disks {
                println!(
                    "disk {} {} ({} bytes, {} KiB blocks, {} holes)",
                    d.name,
                    human(d.size),
                    d.size,
                    d.chunk_size / 1024,
                    d.holes
                );
            }
        }
        return Ok(0);
    }
    let prefix = path
        .map(|p| p.trim_matches('/').as_bytes().to_vec())
        .unwrap_or_default();
    let ids: Vec<_> = snap
        .manifest
        .catalog
        .iter()
        .map(|c| arca_repo::ChunkId::from_slice(c))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut found = prefix.is_empty();
    arca_repo::catalog::for_each(&ds, &ids, &mut |e| {
        let inside = prefix.is_empty()
            || e.path == prefix
            || (e.path.starts_with(&prefix) && e.path.get(prefix.len()) == Some(&b'/'));
        if inside {
            found = true;
            rows.push(e.clone());
        }
        true
    })?;
    if !found {
        bail!(
            "no path {:?} in snapshot {}",
            path.unwrap_or(""),
            &snap.id.to_hex()[..8]
        );
    }
    if cli.json {
        print_json(json!(rows.iter().map(|e| json!({
            "path": String::from_utf8_lossy(&e.path), "kind": kind_name(e.kind), "mode": format!("{:o}", e.mode),
            "size": e.size, "mtime": chrono::DateTime::from_timestamp_nanos(e.mtime_ns).to_rfc3339(),
        })).collect::<Vec<_>>()));
    } else {
        for e in &rows {
            println!(
                "{} {:>6o} {:>12} {} {}",
                kind_name(e.kind).chars().next().unwrap_or('?'),
                e.mode,
                e.size,
                chrono::DateTime::from_timestamp_nanos(e.mtime_ns).format("%Y-%m-%d %H:%M"),
                String::from_utf8_lossy(&e.path)
            );
        }
    }
    Ok(0)
}

fn kind_name(k: u32) -> &'static str {
    match k {
        node_kind::FILE => "file",
        node_kind::DIR => "dir",
        node_kind::SYMLINK => "symlink",
        node_kind::FIFO => "fifo",
        node_kind::CHARDEV => "chardev",
        node_kind::BLOCKDEV => "blockdev",
        node_kind::SOCKET => "socket",
        _ => "unknown",
    }
}
