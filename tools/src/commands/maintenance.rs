//! `arca verify`, `arca prune`, `arca gc` and `arca index rebuild`.

use anyhow::{anyhow, Result};
use arca_repo::gc::GcOptions;
use arca_repo::verify::VerifyOptions;
use serde_json::json;

use super::shared::{
    fmt_time, human, open, open_for_deletion, open_to_rebuild_index, parse_duration, print_json,
};
use crate::progress::steps;
use crate::{Cli, PruneArgs, EXIT_DAMAGE};

/// `arca verify`: exit code [`EXIT_DAMAGE`] when damage was found.
pub(super) fn verify(cli: &Cli, read_data_subset: &Option<String>) -> Result<u8> {
    let ds = open(cli, true)?;
    let pct = match read_data_subset {
        None => 100.0,
        Some(s) => s
            .trim_end_matches('%')
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                anyhow!("--read-data-subset wants a percentage between 0 and 100, got {s:?}")
            })?,
    };
    let report = arca_repo::verify::verify(
        &ds,
        &VerifyOptions {
            read_data_percent: pct,
            ..Default::default()
        },
        &steps(),
    )?;
    if cli.json {
        print_json(serde_json::to_value(&report)?);
    } else {
        println!(
            "checked {} snapshots; read {} of {} packs ({} blobs, {})",
            report.snapshots_checked,
            report.packs_read,
            report.packs_total,
            report.blobs_read,
            human(report.bytes_read)
        );
        for p in &report.damaged_packs {
            println!("damaged pack {p}");
        }
        for b in &report.damaged_blobs {
            println!(
                "damaged {} blob {} (pack {}): {}",
                b.kind,
                b.id,
                if b.pack.is_empty() { "-" } else { &b.pack[..8] },
                b.reason
            );
        }
        for s in &report.unreadable_snapshots {
            println!("unreadable snapshot {s}");
        }
        for a in &report.affected_snapshots {
            println!(
                "affected snapshot {} ({} {}): {} damaged references",
                a.id, a.source, a.time, a.damaged_refs
            );
        }
        if !report.unindexed_packs.is_empty() {
            println!("{} packs are not in the index (left by an interrupted backup, or run `arca index rebuild`)", report.unindexed_packs.len());
        }
        println!(
            "{}",
            if report.is_clean() {
                "no damage found"
            } else {
                "DAMAGE FOUND"
            }
        );
    }
    Ok(if report.is_clean() { 0 } else { EXIT_DAMAGE })
}

pub(super) fn prune(cli: &Cli, a: &PruneArgs) -> Result<u8> {
    let ds = open_for_deletion(cli, a.dry_run)?;
    let r = a.keep.retention();
    let snaps: Vec<_> = ds
        .snapshots()?
        .into_iter()
        .filter(|s| {
            a.source
                .as_ref()
                .is_none_or(|src| &s.manifest.source == src)
        })
        .collect();
    let plan = arca_repo::prune::plan(&snaps, &r)?;
    let removed = if a.dry_run {
        0
    } else {
        arca_repo::prune::apply(&ds, &plan)?
    };
    if cli.json {
        print_json(json!({
            "dry_run": a.dry_run, "removed": removed,
            "snapshots": plan.iter().map(|d| json!({"id": d.snapshot.id.to_hex(), "source": d.snapshot.manifest.source,
                "time": d.snapshot.time().to_rfc3339(), "keep": d.keep, "reasons": d.reasons})).collect::<Vec<_>>(),
        }));
    } else {
        for d in &plan {
            println!(
                "{} {} {} {:<30} {}",
                if d.keep {
                    "keep  "
                } else if a.dry_run {
                    "would remove"
                } else {
                    "remove"
                },
                &d.snapshot.id.to_hex()[..8],
                fmt_time(&d.snapshot),
                d.snapshot.manifest.source,
                d.reasons.join(", ")
            );
        }
        let n = plan.iter().filter(|d| !d.keep).count();
        if a.dry_run {
            println!("dry run: would remove {n} of {} snapshots", plan.len());
        } else {
            println!(
                "removed {removed} of {} snapshots; run `arca gc` to reclaim space",
                plan.len()
            );
        }
    }
    Ok(0)
}

/// `arca gc`.
pub(super) fn gc(cli: &Cli, grace: &str, repack_threshold: f64, dry_run: bool) -> Result<u8> {
    let grace = parse_duration(grace)?;
    let ds = open_for_deletion(cli, false)?;
    let opts = GcOptions {
        grace,
        repack_threshold,
        dry_run,
        ..Default::default()
    };
    let r = arca_repo::gc::gc(&ds, &opts, &steps())?;
    if cli.json {
        print_json(serde_json::to_value(&r)?);
    } else {
        println!(
            "{}{} snapshots, {} live blobs; deleted {} packs, repacked {} ({} rewritten), freed {}; {} packs within the grace period; {} stale temporaries removed",
            if dry_run { "dry run: " } else { "" },
            r.snapshots, r.live_blobs, r.packs_deleted, r.packs_repacked, human(r.bytes_rewritten),
            human(r.bytes_freed.saturating_sub(r.bytes_rewritten)), r.packs_in_grace, r.temporaries_removed
        );
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    Ok(0)
}

/// `arca index rebuild`.
pub(super) fn index_rebuild(cli: &Cli) -> Result<u8> {
    let ds = open_to_rebuild_index(cli)?;
    let s = steps();
    let r = ds.rebuild_index(&mut |d, t| s("rebuild", d as u64, t as u64))?;
    if cli.json {
        print_json(json!({ "packs": r.packs, "blobs": r.blobs,
            "damaged_packs": r.damaged.iter().map(|(p, e)| format!("{p}: {e}")).collect::<Vec<_>>() }));
    } else {
        println!("index rebuilt: {} packs, {} blobs", r.packs, r.blobs);
        for (p, e) in &r.damaged {
            println!("skipped damaged pack {p}: {e}");
        }
    }
    Ok(0)
}
