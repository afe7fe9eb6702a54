//! `arca backup files` and `arca backup image`, here, into the datastore.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arca_ingest::{files, image, BackupOutcome, Progress};
use arca_repo::{Datastore, Snapshot};
use serde_json::json;

use super::shared::{human, open, print_json};
use crate::progress::Bar;
use crate::{BackupArgs, BackupCmd, Cli};

pub(super) fn backup(cli: &Cli, cmd: &BackupCmd) -> Result<u8> {
    let (path, common) = match cmd {
        BackupCmd::Files { dir, common } => (dir, common),
        BackupCmd::Image { file, common, .. } => (file, common),
        BackupCmd::Now { .. } => bail!("`backup now` needs --server"),
        BackupCmd::Libvirt { .. } => bail!("`backup libvirt` has its own command"),
    };
    // Start reading the tree's metadata now, overlapping the key derivation
    // and the index open; stops when dropped at the end of this function.
    let prefetch = matches!(cmd, BackupCmd::Files { .. })
        .then(|| arca_ingest::prefetch::Prefetch::start(path));
    let ds = open(cli, false)?;
    let source = match &common.source {
        Some(s) => s.clone(),
        None => std::fs::canonicalize(path)
            .with_context(|| format!("{}", path.display()))?
            .display()
            .to_string(),
    };
    let parent = parent_for(&ds, common, &source)?;
    crate::interrupt::explain(
        "interrupted: nothing was committed; the data already stored is reused by the next backup",
    );
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(&progress, "backup");
    let out: BackupOutcome = match cmd {
        BackupCmd::Files { dir, .. } => {
            let opts = files::FilesOptions {
                source: source.clone(),
                parent,
                tags: common.tags.clone(),
            };
            match &prefetch {
                Some(p) => files::backup_with(&ds, dir, &opts, &progress, p)?,
                None => files::backup(&ds, dir, &opts, &progress)?,
            }
        }
        BackupCmd::Image {
            file,
            changed_extents,
            full_read,
            ..
        } => {
            let ext = changed_extents
                .as_deref()
                .map(image::parse_extents)
                .transpose()?;
            let opts = image::ImageOptions {
                source: source.clone(),
                parent,
                changed_extents: ext,
                tags: common.tags.clone(),
                full_read: *full_read,
            };
            image::backup(&ds, file, &opts, &progress)?
        }
        BackupCmd::Now { .. } | BackupCmd::Libvirt { .. } => {
            bail!("`backup now` needs --server")
        }
    };
    drop(bar);
    for w in &out.warnings {
        eprintln!("warning: skipped {w}");
    }
    if cli.json {
        print_json(json!({
            "snapshot": out.snapshot.to_hex(), "source": source, "bytes_read": out.bytes_read,
            "bytes_total": out.bytes_total, "bytes_added": out.bytes_added, "files": out.files, "dirs": out.dirs,
            "chunks_new": out.chunks_new, "duration_s": out.duration_s, "mode": out.mode, "warnings": out.warnings,
        }));
    } else {
        let rate = out.bytes_read as f64 / out.duration_s.max(1e-9) / 1e6;
        println!(
            "snapshot {} of {source}: {} files, {} total, {} read ({rate:.0} MB/s), {} added, {:.1}s\n{}",
            &out.snapshot.to_hex()[..8], out.files, human(out.bytes_total), human(out.bytes_read),
            human(out.bytes_added), out.duration_s, out.mode
        );
    }
    Ok(0)
}

pub(super) fn parent_for(ds: &Datastore, a: &BackupArgs, source: &str) -> Result<Option<Snapshot>> {
    if a.no_parent {
        return Ok(None);
    }
    match &a.parent {
        Some(p) => Ok(Some(
            ds.resolve_snapshot(p, Some(source))
                .or_else(|_| ds.resolve_snapshot(p, None))?,
        )),
        None => match ds.resolve_snapshot("latest", Some(source)) {
            Ok(s) => Ok(Some(s)),
            Err(arca_repo::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}
