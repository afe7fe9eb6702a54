//! What a task reports when it succeeds: [`TaskResult`], one typed struct
//! per [`TaskKind`].
//!
//! The catalog stores a succeeded task's result in `tasks.result` (JSON)
//! and the API shows it as the task's `result`. Each struct serializes to
//! exactly the JSON the node's runner wrote with `json!` before these
//! types existed (the unit tests pin it), so nothing stored or shown
//! changes. The enum itself is untagged: the kind is the task's, in its
//! own column ([`TaskResult::from_json`] reads a result back with it).

use serde::{Deserialize, Serialize};

use crate::ids::RestorePointId;
use crate::kinds::TaskKind;

/// What a backup made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupResult {
    /// The new restore point.
    pub snapshot: RestorePointId,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Restore points the policy's retention removed afterwards.
    pub pruned: u64,
    /// The restore point's size.
    pub bytes_total: u64,
    /// Bytes the datastore did not have before.
    pub bytes_added: u64,
    pub files: u64,
    pub duration_s: f64,
    /// How the source was read (e.g. "full", "incremental").
    pub mode: String,
    /// How many entries could not be read (the task log names them).
    pub warnings: u64,
    /// A VM's restore point: crash- or application-consistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<crate::api::Consistency>,
}

/// What a tree restore adds to [`RestoreResult`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRestore {
    pub files: u64,
    /// Entries that could not be restored, with the reason.
    pub warnings: Vec<String>,
    /// Device nodes not made (without `special_files`).
    pub devices_skipped: u64,
    /// Entries whose setuid/setgid bits or capabilities were dropped.
    pub privileges_dropped: u64,
}

/// What a restore wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreResult {
    pub restore_point: RestorePointId,
    /// The real target path on the node (links resolved).
    pub target: String,
    /// Bytes written.
    pub bytes: u64,
    /// A tree restore's counts; `None` for an image restore.
    #[serde(flatten)]
    pub tree: Option<TreeRestore>,
}

/// A chunk verify found damaged or missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedBlob {
    pub id: String,
    pub kind: String,
    pub pack: String,
    pub reason: String,
}

/// A restore point that references damaged chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedSnapshot {
    pub id: String,
    pub source: String,
    pub time: String,
    pub damaged_refs: u64,
}

/// What a verify that read the datastore found (arca-repo's
/// `VerifyReport`, with what the node did about it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub packs_total: u64,
    pub packs_read: u64,
    pub blobs_read: u64,
    pub bytes_read: u64,
    pub snapshots_checked: u64,
    pub damaged_blobs: Vec<DamagedBlob>,
    pub damaged_packs: Vec<String>,
    pub unreadable_snapshots: Vec<String>,
    pub affected_snapshots: Vec<AffectedSnapshot>,
    pub unindexed_packs: Vec<String>,
    pub checked_snapshots: Vec<String>,
    /// Bad stored copies moved aside (the next backup stores them again).
    pub quarantined_blobs: u64,
}

impl VerifyReport {
    /// The datastore's report, and how many bad copies were quarantined.
    pub fn new(r: &arca_repo::verify::VerifyReport, quarantined_blobs: u64) -> VerifyReport {
        // Every field named: a field added to the datastore's report
        // does not compile until it is carried here (and in the protocol).
        let arca_repo::verify::VerifyReport {
            packs_total,
            packs_read,
            blobs_read,
            bytes_read,
            snapshots_checked,
            damaged_blobs,
            damaged_packs,
            unreadable_snapshots,
            affected_snapshots,
            unindexed_packs,
            checked_snapshots,
        } = r.clone();
        VerifyReport {
            packs_total,
            packs_read,
            blobs_read,
            bytes_read,
            snapshots_checked,
            damaged_blobs: damaged_blobs
                .into_iter()
                .map(|b| DamagedBlob {
                    id: b.id,
                    kind: b.kind,
                    pack: b.pack,
                    reason: b.reason,
                })
                .collect(),
            damaged_packs,
            unreadable_snapshots,
            affected_snapshots: affected_snapshots
                .into_iter()
                .map(|a| AffectedSnapshot {
                    id: a.id,
                    source: a.source,
                    time: a.time,
                    damaged_refs: a.damaged_refs,
                })
                .collect(),
            unindexed_packs,
            checked_snapshots,
            quarantined_blobs,
        }
    }
}

/// What a verify did: nothing (with a note saying why), or a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub restore_points_checked: u64,
    /// Why nothing was read ("nothing due: ...").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What reading the datastore found; `None` when nothing was due.
    #[serde(flatten)]
    pub report: Option<VerifyReport>,
}

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResult {
    /// Restore points removed from the datastore.
    pub removed: u64,
}

/// What a garbage collection did (arca-repo's `GcReport`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcResult {
    pub snapshots: u64,
    pub live_blobs: u64,
    pub packs_total: u64,
    pub packs_deleted: u64,
    pub packs_repacked: u64,
    pub packs_in_grace: u64,
    pub packs_healed: u64,
    /// Unfinished writes of killed processes removed, and their bytes.
    pub temporaries_removed: u64,
    pub temporary_bytes_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub bytes_rewritten: u64,
    /// What gc could not do and left for a later run.
    pub warnings: Vec<String>,
    /// Snapshot files that are damaged (gc went on without them).
    pub damaged_snapshots: Vec<String>,
}

impl From<&arca_repo::gc::GcReport> for GcResult {
    fn from(r: &arca_repo::gc::GcReport) -> GcResult {
        // Every field named, as in `VerifyReport::new`.
        let arca_repo::gc::GcReport {
            snapshots,
            live_blobs,
            packs_total,
            packs_deleted,
            packs_repacked,
            packs_in_grace,
            packs_healed,
            temporaries_removed,
            temporary_bytes_removed,
            blobs_removed,
            bytes_freed,
            bytes_rewritten,
            warnings,
            damaged_snapshots,
        } = r.clone();
        GcResult {
            snapshots,
            live_blobs,
            packs_total,
            packs_deleted,
            packs_repacked,
            packs_in_grace,
            packs_healed,
            temporaries_removed,
            temporary_bytes_removed,
            blobs_removed,
            bytes_freed,
            bytes_rewritten,
            warnings,
            damaged_snapshots,
        }
    }
}

/// What committing an export made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitExportResult {
    /// The new restore point.
    pub restore_point: RestorePointId,
    pub bytes_added: u64,
}

/// What a forget removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetResult {
    /// Restore points removed from the datastore (their space comes back
    /// at the datastore's next gc).
    pub removed: u64,
}

/// A succeeded task's result, by kind. Serialized untagged: the JSON is
/// the inner struct's, as the catalog stores it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TaskResult {
    Backup(BackupResult),
    Restore(RestoreResult),
    Verify(VerifyResult),
    Prune(PruneResult),
    Gc(GcResult),
    CommitExport(CommitExportResult),
    Forget(ForgetResult),
}

/// A stored result that does not fit its task kind.
#[derive(Debug)]
pub struct BadResult {
    pub kind: TaskKind,
    pub error: serde_json::Error,
}

impl std::fmt::Display for BadResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "result of a {} task: {}", self.kind, self.error)
    }
}

impl std::error::Error for BadResult {}

impl TaskResult {
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskResult::Backup(_) => TaskKind::Backup,
            TaskResult::Restore(_) => TaskKind::Restore,
            TaskResult::Verify(_) => TaskKind::Verify,
            TaskResult::Prune(_) => TaskKind::Prune,
            TaskResult::Gc(_) => TaskKind::Gc,
            TaskResult::CommitExport(_) => TaskKind::CommitExport,
            TaskResult::Forget(_) => TaskKind::Forget,
        }
    }

    /// The result as the catalog stores it and the API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        // Structs of strings, numbers and lists: this cannot fail (a
        // non-finite duration becomes null, as with `json!`).
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A stored result of a `kind` task.
    pub fn from_json(kind: TaskKind, v: &serde_json::Value) -> Result<TaskResult, BadResult> {
        fn read<T: serde::de::DeserializeOwned>(
            v: &serde_json::Value,
        ) -> Result<T, serde_json::Error> {
            T::deserialize(v)
        }
        let r = match kind {
            TaskKind::Backup => read(v).map(TaskResult::Backup),
            TaskKind::Restore => read(v).map(TaskResult::Restore),
            TaskKind::Verify => read(v).map(TaskResult::Verify),
            TaskKind::Prune => read(v).map(TaskResult::Prune),
            TaskKind::Gc => read(v).map(TaskResult::Gc),
            TaskKind::CommitExport => read(v).map(TaskResult::CommitExport),
            TaskKind::Forget => read(v).map(TaskResult::Forget),
        };
        r.map_err(|error| BadResult { kind, error })
    }
}

#[cfg(test)]
mod tests;
