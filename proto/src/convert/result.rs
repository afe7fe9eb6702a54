//! Task results: arca-model's [`TaskResult`] to and from the `result`
//! oneof of a `FinishRequest`. A result the server cannot read (a bad
//! restore point id) is an error saying so.

use arca_model::task_result::{
    AffectedSnapshot, BackupResult, CommitExportResult, DamagedBlob, ForgetResult, GcResult,
    PruneResult, RestoreResult, TaskResult, TreeRestore, VerifyReport, VerifyResult,
};

use arca_model::api::Consistency;

use super::spec::rp_from_pb;
use crate::pb;
use crate::pb::finish_request::Result as R;

fn verify_report_to_pb(r: &VerifyReport) -> pb::VerifyReport {
    pb::VerifyReport {
        packs_total: r.packs_total,
        packs_read: r.packs_read,
        blobs_read: r.blobs_read,
        bytes_read: r.bytes_read,
        snapshots_checked: r.snapshots_checked,
        damaged_blobs: r
            .damaged_blobs
            .iter()
            .map(|b| pb::DamagedBlob {
                id: b.id.clone(),
                kind: b.kind.clone(),
                pack: b.pack.clone(),
                reason: b.reason.clone(),
            })
            .collect(),
        damaged_packs: r.damaged_packs.clone(),
        unreadable_snapshots: r.unreadable_snapshots.clone(),
        affected_snapshots: r
            .affected_snapshots
            .iter()
            .map(|a| pb::AffectedSnapshot {
                id: a.id.clone(),
                source: a.source.clone(),
                time: a.time.clone(),
                damaged_refs: a.damaged_refs,
            })
            .collect(),
        unindexed_packs: r.unindexed_packs.clone(),
        checked_snapshots: r.checked_snapshots.clone(),
        quarantined_blobs: r.quarantined_blobs,
    }
}

fn verify_report_from_pb(r: pb::VerifyReport) -> VerifyReport {
    VerifyReport {
        packs_total: r.packs_total,
        packs_read: r.packs_read,
        blobs_read: r.blobs_read,
        bytes_read: r.bytes_read,
        snapshots_checked: r.snapshots_checked,
        damaged_blobs: r
            .damaged_blobs
            .into_iter()
            .map(|b| DamagedBlob {
                id: b.id,
                kind: b.kind,
                pack: b.pack,
                reason: b.reason,
            })
            .collect(),
        damaged_packs: r.damaged_packs,
        unreadable_snapshots: r.unreadable_snapshots,
        affected_snapshots: r
            .affected_snapshots
            .into_iter()
            .map(|a| AffectedSnapshot {
                id: a.id,
                source: a.source,
                time: a.time,
                damaged_refs: a.damaged_refs,
            })
            .collect(),
        unindexed_packs: r.unindexed_packs,
        checked_snapshots: r.checked_snapshots,
        quarantined_blobs: r.quarantined_blobs,
    }
}

fn gc_to_pb(r: &GcResult) -> pb::GcResult {
    pb::GcResult {
        snapshots: r.snapshots,
        live_blobs: r.live_blobs,
        packs_total: r.packs_total,
        packs_deleted: r.packs_deleted,
        packs_repacked: r.packs_repacked,
        packs_in_grace: r.packs_in_grace,
        packs_healed: r.packs_healed,
        temporaries_removed: r.temporaries_removed,
        temporary_bytes_removed: r.temporary_bytes_removed,
        blobs_removed: r.blobs_removed,
        bytes_freed: r.bytes_freed,
        bytes_rewritten: r.bytes_rewritten,
        warnings: r.warnings.clone(),
        damaged_snapshots: r.damaged_snapshots.clone(),
    }
}

fn gc_from_pb(r: pb::GcResult) -> GcResult {
    GcResult {
        snapshots: r.snapshots,
        live_blobs: r.live_blobs,
        packs_total: r.packs_total,
        packs_deleted: r.packs_deleted,
        packs_repacked: r.packs_repacked,
        packs_in_grace: r.packs_in_grace,
        packs_healed: r.packs_healed,
        temporaries_removed: r.temporaries_removed,
        temporary_bytes_removed: r.temporary_bytes_removed,
        blobs_removed: r.blobs_removed,
        bytes_freed: r.bytes_freed,
        bytes_rewritten: r.bytes_rewritten,
        warnings: r.warnings,
        damaged_snapshots: r.damaged_snapshots,
    }
}

/// A succeeded task's result as the node sends it.
pub fn result_to_pb(r: &TaskResult) -> R {
    match r {
        TaskResult::Backup(b) => R::Backup(pb::BackupResult {
            snapshot: b.snapshot.to_hex(),
            bytes_read: b.bytes_read,
            pruned: b.pruned,
            bytes_total: b.bytes_total,
            bytes_added: b.bytes_added,
            files: b.files,
            duration_s: b.duration_s,
            mode: b.mode.clone(),
            warnings: b.warnings,
            consistency: match b.consistency {
                None => String::new(),
                Some(Consistency::Crash) => "crash".into(),
                Some(Consistency::Application) => "application".into(),
            },
        }),
        TaskResult::Restore(r) => R::Restore(pb::RestoreResult {
            restore_point: r.restore_point.to_hex(),
            target: r.target.clone(),
            bytes: r.bytes,
            tree: r.tree.as_ref().map(|t| pb::TreeRestore {
                files: t.files,
                warnings: t.warnings.clone(),
                devices_skipped: t.devices_skipped,
                privileges_dropped: t.privileges_dropped,
            }),
        }),
        TaskResult::Verify(v) => R::VerifyResult(pb::VerifyResult {
            restore_points_checked: v.restore_points_checked,
            note: v.note.clone(),
            report: v.report.as_ref().map(verify_report_to_pb),
        }),
        TaskResult::Prune(p) => R::Prune(pb::PruneResult { removed: p.removed }),
        TaskResult::Forget(f) => R::Forget(pb::ForgetResult { removed: f.removed }),
        TaskResult::Gc(g) => R::Gc(gc_to_pb(g)),
        TaskResult::CommitExport(c) => R::CommitExport(pb::CommitExportResult {
            restore_point: c.restore_point.to_hex(),
            bytes_added: c.bytes_added,
        }),
    }
}

/// A succeeded task's result as the server receives it.
pub fn result_from_pb(r: R) -> Result<TaskResult, String> {
    Ok(match r {
        R::Backup(b) => TaskResult::Backup(BackupResult {
            snapshot: rp_from_pb(&b.snapshot, "backup result snapshot")?,
            bytes_read: b.bytes_read,
            pruned: b.pruned,
            bytes_total: b.bytes_total,
            bytes_added: b.bytes_added,
            files: b.files,
            duration_s: b.duration_s,
            mode: b.mode,
            warnings: b.warnings,
            consistency: match b.consistency.as_str() {
                "" => None,
                "crash" => Some(Consistency::Crash),
                "application" => Some(Consistency::Application),
                c => return Err(format!("backup result: unknown consistency {c:?}")),
            },
        }),
        R::Restore(r) => TaskResult::Restore(RestoreResult {
            restore_point: rp_from_pb(&r.restore_point, "restore result restore_point")?,
            target: r.target,
            bytes: r.bytes,
            tree: r.tree.map(|t| TreeRestore {
                files: t.files,
                warnings: t.warnings,
                devices_skipped: t.devices_skipped,
                privileges_dropped: t.privileges_dropped,
            }),
        }),
        R::VerifyResult(v) => TaskResult::Verify(VerifyResult {
            restore_points_checked: v.restore_points_checked,
            note: v.note,
            report: v.report.map(verify_report_from_pb),
        }),
        R::Prune(p) => TaskResult::Prune(PruneResult { removed: p.removed }),
        R::Forget(f) => TaskResult::Forget(ForgetResult { removed: f.removed }),
        R::Gc(g) => TaskResult::Gc(gc_from_pb(g)),
        R::CommitExport(c) => TaskResult::CommitExport(CommitExportResult {
            restore_point: rp_from_pb(&c.restore_point, "commit-export result restore_point")?,
            bytes_added: c.bytes_added,
        }),
    })
}

/// A task's end as the server receives it: the result when `ok` (which
/// it must then carry), else the error.
pub fn outcome_from_pb(
    ok: bool,
    result: Option<R>,
    error: String,
) -> Result<Result<TaskResult, String>, String> {
    match (ok, result) {
        (true, Some(r)) => result_from_pb(r).map(Ok),
        (true, None) => Err("a succeeded task without its result".into()),
        (false, None) => Ok(Err(error)),
        (false, Some(_)) => Err("a failed task with a result".into()),
    }
}
