//! verify: re-read and re-hash blobs, check that every snapshot's references
//! exist and are intact, and name exactly the snapshots a damage affects.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::blob::BlobKind;
use crate::datastore::{Datastore, PACKS};
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId, SnapshotId};
use crate::index::Location;
use crate::pack;
use crate::walk;

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Percentage of packs to read fully (100 = all). Structure (trees,
    /// tables, presence of every referenced chunk) is always checked.
    pub read_data_percent: f64,
    /// Reader threads.
    pub threads: usize,
    /// Verify only these snapshots: read only the blobs they reference
    /// (and only the packs holding them). `None`: every snapshot and every
    /// blob of the index.
    pub snapshots: Option<HashSet<SnapshotId>>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            read_data_percent: 100.0,
            threads: 2,
            snapshots: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DamagedBlob {
    pub id: String,
    pub kind: String,
    pub pack: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AffectedSnapshot {
    pub id: String,
    pub source: String,
    pub time: String,
    pub damaged_refs: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
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
    /// Packs on disk that the index does not know (run `arca index rebuild`
    /// if they are not leftovers of an interrupted backup).
    pub unindexed_packs: Vec<String>,
    /// Snapshots whose structure was checked and whose blobs were all read
    /// (with `read_data_percent` 100), damaged or not.
    pub checked_snapshots: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.damaged_blobs.is_empty()
            && self.damaged_packs.is_empty()
            && self.unreadable_snapshots.is_empty()
            && self.affected_snapshots.is_empty()
    }

    /// The bad stored copies found: (chunk, pack), for
    /// [`Datastore::quarantine`]. Blobs missing from the index have no copy.
    pub fn damaged_copies(&self) -> Vec<(ChunkId, PackId)> {
        self.damaged_blobs
            .iter()
            .filter_map(|b| {
                Some((
                    ChunkId::from_hex(&b.id).ok()?,
                    PackId::from_hex(&b.pack).ok()?,
                ))
            })
            .collect()
    }
}

/// Every blob reachable from `snaps` (trees, tables and data); unreadable
/// trees are left to the structure check, which reports them.
fn reachable(ds: &Datastore, snaps: &[crate::datastore::Snapshot]) -> HashSet<ChunkId> {
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    for s in snaps {
        if let Ok(roots) = walk::manifest_roots(&s.manifest) {
            stack.extend(roots);
        }
    }
    while let Some((id, kind)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if matches!(kind, BlobKind::Tree | BlobKind::ImageTable) {
            if let Ok(children) = walk::children(ds, &id, kind) {
                stack.extend(children);
            }
        }
    }
    seen
}

/// Progress callback: (step, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

pub fn verify(ds: &Datastore, opts: &VerifyOptions, progress: Progress) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    // Snapshots first, the index after: a snapshot committed while verify
    // runs is then either not judged, or judged against an index that has
    // its blobs (a snapshot is written only after its packs are indexed).
    // Judging a new snapshot against an older view of the index reported
    // its fresh blobs as missing.
    let (mut snaps, bad) = ds.snapshots_checked()?;
    report.unreadable_snapshots = bad.into_iter().map(|(n, e)| format!("{n}: {e}")).collect();
    if let Some(only) = &opts.snapshots {
        snaps.retain(|s| only.contains(&s.id));
    }
    let wanted = opts.snapshots.as_ref().map(|_| reachable(ds, &snaps));
    // Packs holding copies verify found bad before: their bytes no longer
    // match their id, which is known and no longer damage (the copies are
    // out of the index, and gc drops them); their other blobs still count.
    let quarantined: HashSet<PackId> = ds.quarantined()?.into_iter().map(|(_, p)| p).collect();
    let on_disk: HashMap<PackId, u64> = ds
        .backend()
        .list(PACKS)?
        .into_iter()
        .filter_map(|o| pack::id_from_name(&o.name).map(|id| (id, o.size)))
        .collect();
    let mut by_pack: HashMap<PackId, Vec<(ChunkId, Location)>> = HashMap::new();
    ds.index().for_each_blob(&mut |id, loc| {
        if wanted.as_ref().is_none_or(|w| w.contains(&id)) {
            by_pack.entry(loc.pack).or_default().push((id, loc));
        }
        Ok(())
    })?;
    let indexed: HashSet<PackId> = ds.index().packs()?.into_iter().map(|(p, _)| p).collect();
    report.packs_total = on_disk.len() as u64;
    let mut unindexed: Vec<_> = on_disk
        .keys()
        .filter(|p| !indexed.contains(p))
        .map(|p| p.to_hex())
        .collect();
    unindexed.sort();
    report.unindexed_packs = unindexed;

    let damaged: Mutex<HashMap<ChunkId, DamagedBlob>> = Mutex::new(HashMap::new());
    let damaged_packs = Mutex::new(Vec::new());
    let mark = |id: &ChunkId, loc: &Location, reason: String| {
        damaged.lock().unwrap_or_else(|e| e.into_inner()).insert(
            *id,
            DamagedBlob {
                id: id.to_hex(),
                kind: loc.kind.name().into(),
                pack: loc.pack.to_hex(),
                reason,
            },
        );
    };
    // Packs the index points to but that are gone: all their blobs are lost.
    for (p, blobs) in &by_pack {
        if !on_disk.contains_key(p) {
            damaged_packs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{p}: missing"));
            for (id, loc) in blobs {
                mark(id, loc, "pack is missing".into());
            }
        }
    }
    // Choose the packs to read.
    let mut to_read: Vec<(PackId, u64)> = on_disk
        .iter()
        .filter(|(p, _)| wanted.is_none() || by_pack.contains_key(p))
        .map(|(p, s)| (*p, *s))
        .collect();
    to_read.sort();
    if opts.read_data_percent < 100.0 {
        let pct = opts.read_data_percent.clamp(0.0, 100.0);
        let want = ((to_read.len() as f64) * pct / 100.0).ceil() as usize;
        // Random selection: sort by a random keyed hash of the pack id.
        let salt = crate::crypto::random_bytes::<32>();
        to_read.sort_by_key(|(p, _)| *blake3::keyed_hash(&salt, p.as_bytes()).as_bytes());
        to_read.truncate(want);
    }
    let total = to_read.len() as u64;
    let next = AtomicUsize::new(0);
    let (blobs_read, bytes_read) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((p, size)) = to_read.get(i) else {
                    break;
                };
                progress("reading packs", i as u64, total);
                let name = pack::object_name(p);
                let bytes = match ds.backend().get(&name) {
                    Ok(b) => b,
                    Err(e) => {
                        damaged_packs
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{p}: {e}"));
                        for (id, loc) in by_pack.get(p).into_iter().flatten() {
                            mark(id, loc, format!("pack unreadable: {e}"));
                        }
                        continue;
                    }
                };
                bytes_read.fetch_add(*size, Ordering::Relaxed);
                if PackId(*blake3::hash(&bytes).as_bytes()) != *p && !quarantined.contains(p) {
                    damaged_packs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{p}: content does not match the pack id"));
                }
                if let Err(e) = pack::parse_pack(&bytes, ds.keys()) {
                    damaged_packs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{p}: header: {e}"));
                }
                for (id, loc) in by_pack.get(p).into_iter().flatten() {
                    blobs_read.fetch_add(1, Ordering::Relaxed);
                    let end = loc.offset as usize + loc.length as usize;
                    let r = match bytes.get(loc.offset as usize..end) {
                        Some(b) => ds.decode_blob(id, loc, b).map(|_| ()),
                        None => Err(Error::Corrupt(
                            "blob lies beyond the end of the pack (truncated)".into(),
                        )),
                    };
                    if let Err(e) = r {
                        mark(id, loc, e.to_string());
                    }
                }
            });
        }
    });
    progress("reading packs", total, total);
    report.packs_read = total;
    report.blobs_read = blobs_read.into_inner();
    report.bytes_read = bytes_read.into_inner();
    let mut damaged = damaged.into_inner().unwrap_or_else(|e| e.into_inner());

    // Structure: which snapshots reference damaged or missing blobs.
    report.snapshots_checked = snaps.len() as u64;
    let mut memo: HashMap<ChunkId, u64> = HashMap::new();
    for (i, s) in snaps.iter().enumerate() {
        progress("checking snapshots", i as u64, snaps.len() as u64);
        let mut bad_refs = 0;
        match walk::manifest_roots(&s.manifest) {
            Ok(roots) => {
                for (id, kind) in roots {
                    bad_refs += damage_below(ds, &id, kind, &mut damaged, &mut memo);
                }
            }
            Err(e) => {
                report.unreadable_snapshots.push(format!("{}: {e}", s.id));
                continue;
            }
        }
        if opts.read_data_percent >= 100.0 {
            report.checked_snapshots.push(s.id.to_hex());
        }
        if bad_refs > 0 {
            report.affected_snapshots.push(AffectedSnapshot {
                id: s.id.to_hex(),
                source: s.manifest.source.clone(),
                time: s.time().to_rfc3339(),
                damaged_refs: bad_refs,
            });
        }
    }
    let mut blobs: Vec<_> = damaged.into_values().collect();
    blobs.sort_by(|a, b| a.id.cmp(&b.id));
    report.damaged_blobs = blobs;
    let mut dp = damaged_packs
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    dp.sort();
    report.damaged_packs = dp;
    Ok(report)
}

/// Number of damaged or missing blobs reachable from `id` (memoised).
fn damage_below(
    ds: &Datastore,
    id: &ChunkId,
    kind: BlobKind,
    damaged: &mut HashMap<ChunkId, DamagedBlob>,
    memo: &mut HashMap<ChunkId, u64>,
) -> u64 {
    if let Some(n) = memo.get(id) {
        return *n;
    }
    let n = if damaged.contains_key(id) {
        1
    } else {
        match ds.index().get(id) {
            Ok(None) | Err(_) => {
                damaged.insert(
                    *id,
                    DamagedBlob {
                        id: id.to_hex(),
                        kind: kind.name().into(),
                        pack: String::new(),
                        reason: "referenced but not in the datastore".into(),
                    },
                );
                1
            }
            Ok(Some(loc)) => match kind {
                BlobKind::Tree | BlobKind::ImageTable => match walk::children(ds, id, kind) {
                    Ok(children) => children
                        .iter()
                        .map(|(c, k)| damage_below(ds, c, *k, damaged, memo))
                        .sum(),
                    Err(e) => {
                        damaged.insert(
                            *id,
                            DamagedBlob {
                                id: id.to_hex(),
                                kind: kind.name().into(),
                                pack: loc.pack.to_hex(),
                                reason: e.to_string(),
                            },
                        );
                        1
                    }
                },
                _ => 0,
            },
        }
    };
    if matches!(kind, BlobKind::Tree | BlobKind::ImageTable) || n > 0 {
        memo.insert(*id, n);
    }
    n
}
