//! What the commands share: the datastore the options name, opened as a
//! command needs it, and how numbers, times and JSON are printed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arca_repo::{Datastore, OpenOptions, Snapshot};

use crate::Cli;

pub(crate) fn passphrase(cli: &Cli) -> Result<Option<Vec<u8>>> {
    if let Some(f) = &cli.passphrase_file {
        let mut p =
            std::fs::read(f).with_context(|| format!("reading passphrase file {}", f.display()))?;
        while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            p.pop();
        }
        return Ok(Some(p));
    }
    Ok(std::env::var_os("ARCA_PASSPHRASE")
        .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec()))
}

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

pub(super) fn fmt_time(s: &Snapshot) -> String {
    s.time().format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("bad duration {s:?} (use e.g. 90s, 30m, 1h, 2d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("bad duration unit in {s:?} (use s, m, h or d)"),
    };
    Ok(std::time::Duration::from_secs(n * mult))
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
