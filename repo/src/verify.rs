//! verify: re-read and re-hash blobs, check that every snapshot's references
//! exist and are intact, and name exactly the snapshots a damage affects.
//!
//! Verify runs beside backups, prune and gc of other processes, so it never
//! reports what a second look does not confirm:
//! - snapshots are listed first, then the index view is refreshed, so that
//!   each snapshot is judged against an index that has its blobs;
//! - when the first look found anything, the view is refreshed again and
//!   each finding rechecked: a damaged or missing blob is read again where
//!   the index now places it (a blob gc moved reads fine in its new pack; a
//!   blob the index no longer has counts only if a snapshot that still
//!   exists references it), a damaged pack is read again (one gc deleted
//!   is no longer damage), an unreadable snapshot is loaded again (one
//!   forgotten meanwhile is gone), and the affected snapshots that still
//!   exist are walked again, counting only blobs the first look had found.
//!
//! Damage stays damage: a flipped byte fails both looks.

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
    // A read-only view of the index is as old as the open: bring it up to
    // date now that the snapshots are listed (a backup of another process
    // may have committed in between).
    ds.refresh_index()?;
    let mut unreadable: Vec<(String, String)> =
        bad.into_iter().map(|(n, e)| (n, e.to_string())).collect();
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
    #[cfg(test)]
    tests::before_reading_packs(ds.root());
    report.packs_total = on_disk.len() as u64;
    let mut unindexed: Vec<_> = on_disk
        .keys()
        .filter(|p| !indexed.contains(p))
        .map(|p| p.to_hex())
        .collect();
    unindexed.sort();
    report.unindexed_packs = unindexed;

    let damaged: Mutex<HashMap<ChunkId, DamagedBlob>> = Mutex::new(HashMap::new());
    let damaged_packs: Mutex<Vec<(PackId, String)>> = Mutex::new(Vec::new());
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
                .push((*p, MISSING.into()));
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
                            .push((*p, e.to_string()));
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
                        .push((*p, HASH_MISMATCH.into()));
                }
                if let Err(e) = pack::parse_pack(&bytes, ds.keys()) {
                    damaged_packs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((*p, format!("header: {e}")));
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
    let mut affected = Vec::new();
    for (i, s) in snaps.iter().enumerate() {
        progress("checking snapshots", i as u64, snaps.len() as u64);
        let mut bad_refs = 0;
        match walk::manifest_roots(&s.manifest) {
            Ok(roots) => {
                for (id, kind) in roots {
                    bad_refs += damage_below(ds, &id, kind, &mut damaged, &mut memo, None);
                }
            }
            Err(e) => {
                unreadable.push((s.id.to_hex(), e.to_string()));
                continue;
            }
        }
        if opts.read_data_percent >= 100.0 {
            report.checked_snapshots.push(s.id.to_hex());
        }
        if bad_refs > 0 {
            affected.push((s, bad_refs));
        }
    }
    let mut damaged_packs = damaged_packs
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let found_some = !damaged.is_empty()
        || !damaged_packs.is_empty()
        || !unreadable.is_empty()
        || !affected.is_empty();
    if found_some {
        // Never report what a second look does not confirm (a backup, gc
        // or prune of another process may have changed the datastore while
        // this one read it).
        progress("confirming damage", 0, 1);
        ds.refresh_index()?;
        let suspects: HashSet<ChunkId> = damaged.keys().copied().collect();
        damaged = confirm_blobs(ds, damaged)?;
        damaged_packs = confirm_packs(ds, damaged_packs, &quarantined)?;
        unreadable = confirm_unreadable(ds, unreadable)?;
        affected = confirm_affected(ds, affected, &mut damaged, &suspects)?;
    }
    report.affected_snapshots = affected
        .into_iter()
        .map(|(s, n)| AffectedSnapshot {
            id: s.id.to_hex(),
            source: s.manifest.source.clone(),
            time: s.time().to_rfc3339(),
            damaged_refs: n,
        })
        .collect();
    let mut blobs: Vec<_> = damaged.into_values().collect();
    blobs.sort_by(|a, b| a.id.cmp(&b.id));
    report.damaged_blobs = blobs;
    damaged_packs.sort();
    damaged_packs.dedup();
    report.damaged_packs = damaged_packs
        .into_iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect();
    unreadable.sort();
    unreadable.dedup();
    report.unreadable_snapshots = unreadable
        .into_iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    Ok(report)
}

const MISSING: &str = "missing";
const HASH_MISMATCH: &str = "content does not match the pack id";
const NOT_IN_DATASTORE: &str = "referenced but not in the datastore";

/// What a second look at a blob found, against the refreshed index.
enum Recheck {
    /// Reads and decodes: the first look saw a state that is gone.
    Fine,
    /// The index no longer has it: damage only if a snapshot still
    /// references it (the structure recheck decides).
    Gone,
    /// Still missing or damaged: (pack, reason).
    Bad(PackId, String),
}

fn recheck_blob(ds: &Datastore, id: &ChunkId) -> Result<Recheck> {
    let Some(loc) = ds.index().get(id)? else {
        return Ok(Recheck::Gone);
    };
    let bytes = match ds.backend().get_range(
        &pack::object_name(&loc.pack),
        loc.offset,
        loc.length as usize,
    ) {
        Ok(b) => b,
        Err(Error::NotFound(_)) => return Ok(Recheck::Bad(loc.pack, "pack is missing".into())),
        Err(e) => return Ok(Recheck::Bad(loc.pack, format!("pack unreadable: {e}"))),
    };
    if bytes.len() < loc.length as usize {
        return Ok(Recheck::Bad(
            loc.pack,
            "blob lies beyond the end of the pack (truncated)".into(),
        ));
    }
    Ok(match ds.decode_blob(id, &loc, &bytes) {
        Ok(_) => Recheck::Fine,
        Err(e) => Recheck::Bad(loc.pack, e.to_string()),
    })
}

/// The damaged blobs that a second look confirms. Blobs the refreshed
/// index no longer has are left to the structure recheck.
fn confirm_blobs(
    ds: &Datastore,
    damaged: HashMap<ChunkId, DamagedBlob>,
) -> Result<HashMap<ChunkId, DamagedBlob>> {
    let mut out = HashMap::new();
    for (id, mut b) in damaged {
        match recheck_blob(ds, &id)? {
            Recheck::Fine | Recheck::Gone => {}
            Recheck::Bad(pack, reason) => {
                b.pack = pack.to_hex();
                b.reason = reason;
                out.insert(id, b);
            }
        }
    }
    Ok(out)
}

/// The damaged packs that a second look confirms: a pack gc deleted since
/// is no longer damage (its blobs are judged one by one), one the index
/// dropped is no longer missing.
fn confirm_packs(
    ds: &Datastore,
    packs: Vec<(PackId, String)>,
    quarantined: &HashSet<PackId>,
) -> Result<Vec<(PackId, String)>> {
    let indexed: HashSet<PackId> = ds.index().packs()?.into_iter().map(|(p, _)| p).collect();
    let mut out = Vec::new();
    for (p, why) in packs {
        let name = pack::object_name(&p);
        let bytes = match ds.backend().get(&name) {
            Ok(b) => b,
            Err(Error::NotFound(_)) => {
                if indexed.contains(&p) {
                    out.push((p, MISSING.to_string()));
                }
                continue;
            }
            Err(e) => {
                out.push((p, e.to_string()));
                continue;
            }
        };
        if why == MISSING {
            continue; // it is there
        }
        if PackId(*blake3::hash(&bytes).as_bytes()) != p && !quarantined.contains(&p) {
            out.push((p, HASH_MISMATCH.into()));
        }
        if let Err(e) = pack::parse_pack(&bytes, ds.keys()) {
            out.push((p, format!("header: {e}")));
        }
    }
    Ok(out)
}

/// The unreadable snapshots that are still there and still unreadable.
fn confirm_unreadable(
    ds: &Datastore,
    unreadable: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, why) in unreadable {
        let Ok(id) = SnapshotId::from_hex(&name) else {
            out.push((name, why));
            continue;
        };
        match ds.load_snapshot(&id) {
            Err(Error::NotFound(_)) => {}
            Err(e) => out.push((name, e.to_string())),
            Ok(s) => {
                if let Err(e) = walk::manifest_roots(&s.manifest) {
                    out.push((name, e.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// The affected snapshots that still exist and still reach damage that
/// the first look also found. `damaged` holds the confirmed blobs; blobs
/// the first look found missing that a snapshot still references and the
/// refreshed index still lacks are added to it.
fn confirm_affected<'a>(
    ds: &Datastore,
    affected: Vec<(&'a crate::datastore::Snapshot, u64)>,
    damaged: &mut HashMap<ChunkId, DamagedBlob>,
    suspects: &HashSet<ChunkId>,
) -> Result<Vec<(&'a crate::datastore::Snapshot, u64)>> {
    let mut out = Vec::new();
    let mut memo = HashMap::new();
    for (s, _) in affected {
        match ds.load_snapshot(&s.id) {
            Ok(_) => {}
            Err(Error::NotFound(_)) => continue, // forgotten meanwhile
            Err(e) => return Err(e),
        }
        let Ok(roots) = walk::manifest_roots(&s.manifest) else {
            continue;
        };
        let n: u64 = roots
            .into_iter()
            .map(|(id, kind)| damage_below(ds, &id, kind, damaged, &mut memo, Some(suspects)))
            .sum();
        if n > 0 {
            out.push((s, n));
        }
    }
    Ok(out)
}

/// Number of damaged or missing blobs reachable from `id` (memoised).
/// With `suspects` (the recheck), a blob found missing or unreadable
/// counts only if the first look had found it too.
fn damage_below(
    ds: &Datastore,
    id: &ChunkId,
    kind: BlobKind,
    damaged: &mut HashMap<ChunkId, DamagedBlob>,
    memo: &mut HashMap<ChunkId, u64>,
    suspects: Option<&HashSet<ChunkId>>,
) -> u64 {
    if let Some(n) = memo.get(id) {
        return *n;
    }
    let bad = |pack: String, reason: String| Err::<u64, _>((pack, reason));
    let r = if damaged.contains_key(id) {
        Ok(1)
    } else {
        match ds.index().get(id) {
            Ok(None) | Err(_) => bad(String::new(), NOT_IN_DATASTORE.into()),
            Ok(Some(loc)) => match kind {
                BlobKind::Tree | BlobKind::ImageTable => match walk::children(ds, id, kind) {
                    Ok(children) => Ok(children
                        .iter()
                        .map(|(c, k)| damage_below(ds, c, *k, damaged, memo, suspects))
                        .sum()),
                    Err(e) => bad(loc.pack.to_hex(), e.to_string()),
                },
                _ => Ok(0),
            },
        }
    };
    let n = match r {
        Ok(n) => n,
        Err(_) if suspects.is_some_and(|s| !s.contains(id)) => 0,
        Err((pack, reason)) => {
            damaged.insert(
                *id,
                DamagedBlob {
                    id: id.to_hex(),
                    kind: kind.name().into(),
                    pack,
                    reason,
                },
            );
            1
        }
    };
    if matches!(kind, BlobKind::Tree | BlobKind::ImageTable) || n > 0 {
        memo.insert(*id, n);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::{gc, GcOptions};
    use crate::test_util::{image_manifest, pseudo_random};
    use crate::{image, Encryption, IndexKind, OpenOptions};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    type Hook = Box<dyn FnOnce() + Send>;
    static HOOK: Mutex<Option<(PathBuf, Hook)>> = Mutex::new(None);

    /// Runs what a test placed between verify's look at the index and its
    /// reading of the packs (for the datastore at `root` only).
    pub(super) fn before_reading_packs(root: &Path) {
        let mut g = HOOK.lock().unwrap();
        if g.as_ref().is_some_and(|(p, _)| p == root) {
            if let Some((_, h)) = g.take() {
                drop(g);
                h();
            }
        }
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        pseudo_random(n, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// An image snapshot of `live` blocks, written in one session beside
    /// as many garbage blocks (interleaved, so every pack is half garbage).
    fn snapshot_with_garbage(ds: &Arc<Datastore>, seed: u64) -> (SnapshotId, Vec<ChunkId>) {
        let s = ds.begin_session().unwrap();
        let mut ids = Vec::new();
        for i in 0..12 {
            let live = s
                .submit(BlobKind::Data, random(65536, seed + 2 * i))
                .unwrap();
            let dead = s
                .submit(BlobKind::Data, random(65536, seed + 2 * i + 1))
                .unwrap();
            ids.push(live.wait().unwrap());
            dead.wait().unwrap();
        }
        let table = s
            .store(BlobKind::ImageTable, &image::encode_table_blob(&ids))
            .unwrap();
        let m = image_manifest(table, ids.len());
        (s.commit(m).unwrap(), ids)
    }

    /// A gc of another process deletes the packs verify is about to read:
    /// the first look finds them gone, the second finds every blob in its
    /// new pack, so verify reports nothing. A flipped byte is still
    /// reported, by both looks.
    #[test]
    fn damage_a_second_look_does_not_confirm_is_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        Datastore::init(dir.path(), Encryption::None, None, |c| {
            c.pack_size = 1 << 20
        })
        .unwrap();
        let writer = Datastore::open(dir.path(), &OpenOptions::default()).unwrap();
        let (snap, ids) = snapshot_with_garbage(&writer, 1);
        let ro = OpenOptions {
            read_only: true,
            index: IndexKind::Rocks,
            ..Default::default()
        };
        let reader = Datastore::open(dir.path(), &ro).unwrap();

        let w = writer.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        *HOOK.lock().unwrap() = Some((
            dir.path().to_path_buf(),
            Box::new(move || {
                let g = GcOptions {
                    grace: Duration::ZERO,
                    repack_threshold: 0.3,
                    ..Default::default()
                };
                tx.send(gc(&w, &g, &|_, _, _| {}).unwrap()).unwrap();
            }),
        ));
        let r = verify(&reader, &VerifyOptions::default(), &|_, _, _| {}).unwrap();
        let g = rx.try_recv().expect("the hook did not run");
        assert!(g.packs_repacked > 0, "{g:?}");
        assert!(r.is_clean(), "a false alarm: {r:?}");
        assert_eq!(r.checked_snapshots, vec![snap.to_hex()]);

        // Real damage: one byte of a live blob flipped in its pack.
        let loc = writer.locate(&ids[3]).unwrap();
        let path = dir.path().join(crate::pack::object_name(&loc.pack));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[loc.offset as usize + 20] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let r = verify(&reader, &VerifyOptions::default(), &|_, _, _| {}).unwrap();
        assert!(!r.is_clean());
        assert_eq!(r.damaged_blobs.len(), 1, "{r:?}");
        assert_eq!(r.damaged_blobs[0].id, ids[3].to_hex());
        assert_eq!(r.affected_snapshots.len(), 1, "{r:?}");
        assert_eq!(r.affected_snapshots[0].id, snap.to_hex());
        assert_eq!(r.damaged_packs.len(), 1, "{r:?}");
    }
}
