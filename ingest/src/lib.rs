//! # arca-ingest: sources that stream into the datastore
//!
//! A source produces either a *tree* (files and directories, [`files`]) or
//! an *image* (a disk, [`image`]). Sources read, cut and describe data; the
//! datastore's [`arca_repo::BackupSession`] hashes, deduplicates, compresses,
//! encrypts and writes packs. Sources never write packs themselves.
//!
//! Restores are the reverse direction and live beside their source:
//! [`restore`] writes a tree snapshot to a directory, [`image::restore`] an
//! image snapshot to a (sparse) file.

pub mod files;
pub mod image;
pub mod libvirt;
pub mod nbd;
pub mod prefetch;
pub mod restore;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared progress counters; the CLI draws a bar, the server reports them.
#[derive(Default, Debug)]
pub struct Progress {
    /// Bytes processed so far (read, or restored).
    pub bytes: AtomicU64,
    /// Expected total bytes, 0 if unknown.
    pub total: AtomicU64,
    pub files: AtomicU64,
    /// Set to ask the operation to stop at the next chunk.
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn check_cancel(&self) -> arca_repo::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(arca_repo::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// What a backup did, for the CLI and the catalog.
#[derive(Clone, Debug, Default)]
pub struct BackupOutcome {
    pub snapshot: arca_repo::SnapshotId,
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub bytes_added: u64,
    pub files: u64,
    pub dirs: u64,
    pub chunks_new: u64,
    pub duration_s: f64,
    pub mode: String,
    /// Entries that could not be read (skipped), with the reason.
    pub warnings: Vec<String>,
    /// A VM's restore point: how consistent it is (None: not a VM).
    pub consistency: Option<libvirt::Consistency>,
}

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

/// This machine's host name, as recorded in manifests.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Commit a session's manifest and report what the backup did.
pub(crate) fn commit(
    session: arca_repo::BackupSession,
    manifest: arca_repo::format::Manifest,
    start: std::time::Instant,
    warnings: Vec<String>,
) -> arca_repo::Result<BackupOutcome> {
    let c = session.counters();
    let (bytes_added, chunks_new) = (
        c.bytes_added.load(Ordering::Relaxed),
        c.chunks_new.load(Ordering::Relaxed),
    );
    let stats = manifest.stats.clone().unwrap_or_default();
    let mode = manifest.backup_mode.clone();
    let snapshot = session.commit(manifest)?;
    Ok(BackupOutcome {
        snapshot,
        bytes_read: stats.bytes_read,
        bytes_total: stats.bytes_total,
        bytes_added,
        files: stats.files,
        dirs: stats.dirs,
        chunks_new,
        duration_s: start.elapsed().as_secs_f64(),
        mode,
        warnings,
        consistency: None,
    })
}
