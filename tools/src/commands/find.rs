//! `arca find PATTERN` on a local datastore: the snapshots the filters
//! select, newest first, searched by [`arca_node::find::search`] (as the
//! server's search endpoint does) and printed by [`crate::found`].

use anyhow::{anyhow, bail, Result};
use arca_model::api::SearchSkipped;
use arca_model::search::Pattern;
use arca_repo::SnapshotId;

use super::shared::open;
use crate::found::FindArgs;
use crate::Cli;

/// Chunk cache of `arca find --images`: file-system metadata.
const IMAGE_CACHE: u64 = 64 << 20;

/// `arca find`.
pub(super) fn find(cli: &Cli, a: &FindArgs) -> Result<u8> {
    let pattern = Pattern::new(&a.pattern, a.ignore_case).map_err(|e| anyhow!("{e}"))?;
    if let (Some(since), Some(until)) = (a.since, a.until) {
        if since > until {
            bail!("--since is after --until");
        }
    }
    let ds = open(cli, true)?;
    let (snaps, bad) = ds.snapshots_checked()?;
    let mut snaps: Vec<_> = snaps
        .into_iter()
        .filter(|s| {
            a.source
                .as_ref()
                .is_none_or(|src| &s.manifest.source == src)
        })
        .filter(|s| {
            let t = s.time().timestamp();
            a.since.is_none_or(|since| t >= since) && a.until.is_none_or(|until| t <= until)
        })
        .collect();
    snaps.reverse();
    let started = std::time::Instant::now();
    // Images through their file trees, one open at a time.
    let trees = a
        .images
        .then(|| arca_frontends::tree::Trees::new(arca_frontends::chunk_cache(IMAGE_CACHE), 1));
    let (mut r, stats) =
        arca_node::find::search(&ds, &snaps, &pattern, a.limit as usize, trees.as_ref());
    tracing::debug!(
        restore_points = snaps.len(),
        trees_read = stats.trees_read,
        trees_remembered = stats.trees_remembered,
        entries_walked = stats.entries_walked,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "search"
    );
    // Damaged snapshot files: what they hold (and their source and time)
    // cannot be read, so they are named whatever the filters say.
    for (name, e) in bad {
        if let Ok(id) = SnapshotId::from_hex(&name) {
            r.skipped.push(SearchSkipped {
                restore_point: id.into(),
                reason: format!(
                    "the snapshot file cannot be read ({e}); `arca forget {}` removes it",
                    id.short()
                ),
            });
        }
    }
    crate::found::print(cli.json, &r, a.limit)
}
