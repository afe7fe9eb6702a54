//! What the commands share: the datastore the options name, opened as a
//! command needs it, and how numbers, times and JSON are printed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use arca_repo::{Datastore, OpenOptions, Snapshot};

pub(super) use crate::secrets::passphrase;
pub(super) use crate::units::{human, parse_duration};
use crate::Cli;

pub(super) fn datastore_path(cli: &Cli) -> Result<PathBuf> {
    cli.datastore
        .clone()
        .ok_or_else(|| anyhow!("no datastore given: use --datastore <PATH> or ARCA_DATASTORE"))
}

pub(super) fn open(cli: &Cli, read_only: bool) -> Result<Arc<Datastore>> {
    open_with(cli, read_only, false)
}

/// Open for prune and gc: works on a full file system (see
/// `arca_repo::reserve`).
pub(super) fn open_for_deletion(cli: &Cli, dry_run: bool) -> Result<Arc<Datastore>> {
    open_with(cli, dry_run, !dry_run)
}

pub(super) fn open_with(cli: &Cli, read_only: bool, for_deletion: bool) -> Result<Arc<Datastore>> {
    let path = datastore_path(cli)?;
    let opts = OpenOptions {
        passphrase: passphrase(cli)?,
        read_only,
        for_deletion,
        ..Default::default()
    };
    Datastore::open(&path, &opts).with_context(|| format!("opening datastore {}", path.display()))
}

/// Open for `arca index rebuild`: an index too damaged to open
/// ([`arca_repo::Error::IndexCorrupt`]) is discarded under the writer lock
/// and built from the packs; the rebuild that follows then only re-reads
/// the pack headers. Other open errors (the lock is held, no space) are
/// reported as they are.
pub(super) fn open_to_rebuild_index(cli: &Cli) -> Result<Arc<Datastore>> {
    let path = datastore_path(cli)?;
    let opts = OpenOptions {
        passphrase: passphrase(cli)?,
        ..Default::default()
    };
    match Datastore::open(&path, &opts) {
        Err(arca_repo::Error::IndexCorrupt(e)) => {
            eprintln!("the index is damaged ({e}); discarding it and rebuilding it from the packs");
            Datastore::open_discarding_index(&path, &opts)
        }
        r => r,
    }
    .with_context(|| format!("opening datastore {}", path.display()))
}

pub(super) fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

/// A snapshot's time as people read it (local, to the minute).
pub(super) fn fmt_time(s: &Snapshot) -> String {
    crate::units::local_time(s.time().timestamp())
}

/// Resolve a snapshot for reading; a damaged one says how to remove it.
pub(super) fn resolve(ds: &Datastore, spec: &str, source: Option<&str>) -> Result<Snapshot> {
    ds.resolve_snapshot(spec, source).map_err(|e| match e {
        arca_repo::Error::SnapshotDamaged { id, .. } => {
            anyhow!("{e}; `arca forget {}` removes it", id.short())
        }
        e => e.into(),
    })
}
