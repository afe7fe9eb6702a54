//! `arca restore`: through a server onto a node, or here from the
//! datastore.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use arca_ingest::{image, restore, Progress};
use serde_json::json;

use super::shared::{human, open, print_json, resolve};
use crate::progress::Bar;
use crate::Cli;

/// Chunk cache of an image's file tree read by `restore --path`: a few
/// frames of metadata and file data.
const IMAGE_TREE_CACHE: u64 = 64 << 20;

/// `arca restore` with a server: the server has a node restore.
#[allow(clippy::too_many_arguments)]
pub(super) fn through_server(
    cli: &Cli,
    snapshot: &str,
    target: &Option<PathBuf>,
    to: &Option<String>,
    node: &Option<String>,
    path: &Option<String>,
    wait: bool,
    overwrite: bool,
    special_files: bool,
) -> Result<u8> {
    let to = match (to, target) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.display().to_string(),
        (None, None) => bail!("give the path on the node with --to"),
    };
    let o = crate::client::RestoreTo {
        path: path.as_deref(),
        node: node.as_deref(),
        overwrite,
        special_files,
        wait,
    };
    crate::client::restore(cli, snapshot, &to, &o)
}

/// `arca restore` without a server: from the datastore to `target` here.
#[allow(clippy::too_many_arguments)]
pub(super) fn local(
    cli: &Cli,
    snapshot: &str,
    target: &Option<PathBuf>,
    path: &Option<String>,
    source: &Option<String>,
    to: &Option<String>,
    node: &Option<String>,
    wait: bool,
    overwrite: bool,
) -> Result<u8> {
    if to.is_some() || node.is_some() || wait {
        bail!("--to, --node and --wait restore through a server: give --server (or ARCA_SERVER)");
    }
    let target = target
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("give TARGET (or --server and --to)"))?;
    // The path you name, links included (restores never follow
    // links inside the target).
    let target = &match std::fs::canonicalize(target) {
        Ok(real) => real,
        Err(_) => target.clone(),
    };
    let opts = restore::RestoreOptions {
        overwrite,
        allow_block_devices: true,
        // With the rights of whoever runs the CLI: all of it.
        special_files: true,
    };
    let ds = open(cli, true)?;
    let snap = resolve(&ds, snapshot, source.as_deref())?;
    let progress = Arc::new(Progress::default());
    let start = std::time::Instant::now();
    let bar = Bar::start(&progress, "restore");
    // Files an interrupted run of this restore had finished (tree restores).
    let mut skipped = 0;
    let (files, bytes, warnings) = if let (true, Some(p)) = (snap.is_image(), path) {
        // A file or directory of the image's file tree (`disk.img`,
        // `part1/etc/hostname`), as a file restore writes it.
        let cache = arca_frontends::chunk_cache(IMAGE_TREE_CACHE);
        let tree = arca_frontends::tree::open_tree(ds.clone(), &snap, cache)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let o = arca_node::tree_restore::restore(
            tree.as_ref(),
            &snap.id.to_hex(),
            p,
            target,
            &opts,
            &progress,
        )
        .map_err(|e| anyhow::anyhow!("--path {p:?}: {e}"))?;
        skipped = o.skipped;
        (o.files, o.bytes, o.warnings)
    } else if snap.is_image() {
        let n = image::restore(&ds, &snap, target, &opts, &progress)?;
        (1, n, Vec::new())
    } else {
        // The snapshot's source is its absolute path unless named
        // otherwise (`backup files --source`).
        let path = match path {
            Some(p) => Some(
                arca_model::paths::relative_to_root(p, Some(&snap.manifest.source))
                    .map_err(|e| anyhow::anyhow!("--path {e}"))?,
            ),
            None => None,
        };
        let o = restore::restore(&ds, &snap, target, path.as_deref(), &opts, &progress)?;
        skipped = o.skipped;
        (o.files, o.bytes, o.warnings)
    };
    drop(bar);
    let secs = start.elapsed().as_secs_f64();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if cli.json {
        print_json(
            json!({ "snapshot": snap.id.to_hex(), "target": target, "files": files,
            "bytes": bytes, "duration_s": secs, "warnings": warnings, "skipped": skipped }),
        );
    } else {
        println!(
            "restored {} ({files} files, {}) to {} in {secs:.1}s",
            &snap.id.to_hex()[..8],
            human(bytes),
            target.display()
        );
        if skipped > 0 {
            println!(
                "resumed an interrupted restore: {skipped} file(s) were already restored and identical, not written again"
            );
        }
    }
    Ok(0)
}
