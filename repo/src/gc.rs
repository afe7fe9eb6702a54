//! Garbage collection: mark, sweep, repack. See the crate documentation for
//! the rule that keeps concurrent backups safe.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::blob::{self, BlobKind};
use crate::crypto::{random_bytes, SALT_LEN};
use crate::datastore::{Datastore, PACKS, SNAPSHOTS};

use crate::error::{Error, Result};
use crate::gc_live::LiveSet;
use crate::id::{ChunkId, PackId};
use crate::index::{Location, PackInfo};
use crate::pack::{self, PackBuilder};
use crate::walk;

#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Packs modified more recently than this are never deleted or repacked.
    pub grace: Duration,
    /// Repack a pack when at least this fraction of its bytes is garbage.
    pub repack_threshold: f64,
    pub dry_run: bool,
    /// Live ids held in memory before gc spills a sorted run to disk; bounds
    /// gc's memory whatever the number of chunks.
    pub live_buffer_ids: usize,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            repack_threshold: 0.5,
            dry_run: false,
            live_buffer_ids: crate::gc_live::DEFAULT_BUFFER_IDS,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
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
    /// What gc could not do and left for a later run (repacking on a full
    /// disk), and the damaged snapshot files it could not mark.
    pub warnings: Vec<String>,
    /// Snapshot files that are damaged (gc went on without them; see
    /// `warnings`).
    pub damaged_snapshots: Vec<String>,
}

/// Per pack: live bytes and live blobs found by the sweep pass.
#[derive(Default, Clone, Copy)]
struct PackLiveness {
    live_bytes: u64,
    live_blobs: u64,
}

/// What mark has walked: the exact set of trees and tables (few), and every
/// reachable id in the bounded [`LiveSet`].
struct Marked {
    walked: HashSet<ChunkId>,
    live: LiveSet,
}

impl Marked {
    /// Everything reachable from `roots`, depth first, each tree read once.
    fn mark(&mut self, ds: &Datastore, roots: Vec<(ChunkId, BlobKind)>) -> Result<()> {
        let mut stack = roots;
        while let Some((id, kind)) = stack.pop() {
            if !matches!(kind, BlobKind::Tree | BlobKind::ImageTable) {
                self.live.insert(id)?;
                continue;
            }
            if !self.walked.insert(id) {
                continue;
            }
            self.live.insert(id)?;
            // A damaged tree must not make its children look dead: refuse to
            // collect until verify and repair have dealt with it.
            let children = walk::children(ds, &id, kind).map_err(|e| {
                Error::Corrupt(format!(
                    "cannot read {} {id} during mark ({e}); run `arca verify` first",
                    kind.name()
                ))
            })?;
            stack.extend(children);
        }
        Ok(())
    }
}

/// The roots of every readable snapshot not in `seen` yet, and how many
/// snapshots there are. A damaged snapshot file (its bytes fail to
/// authenticate or decode) cannot be marked: what only it references is
/// collected, and gc says so in `damaged` (name → warning). Any other
/// error reading a snapshot (I/O, a manifest of a newer arca) stops gc:
/// the snapshot may well be intact, and its data must not look dead.
fn snapshot_roots(
    ds: &Datastore,
    seen: &mut HashSet<String>,
    damaged: &mut BTreeMap<String, String>,
) -> Result<(Vec<(ChunkId, BlobKind)>, u64)> {
    let (snaps, bad) = ds.snapshots_checked()?;
    for (name, e) in bad {
        if !crate::datastore::is_damage(&e) {
            return Err(Error::Corrupt(format!(
                "snapshot {name} is unreadable ({e}); gc refuses to run until it can be read"
            )));
        }
        let short = &name[..name.len().min(8)];
        damaged.entry(name.clone()).or_insert_with(|| {
            format!(
                "snapshot {name} is damaged ({e}): gc cannot read what it references, so it keeps \
                 no data for it (what only it referenced is collected); remove it with \
                 `arca forget {short}`"
            )
        });
    }
    let mut roots = Vec::new();
    let mut n = 0;
    for s in snaps {
        n += 1;
        if seen.insert(s.id.to_hex()) {
            roots.extend(walk::manifest_roots(&s.manifest)?);
        }
    }
    Ok((roots, n))
}

/// Removes dead index entries in batches, one durable write per pack and batch.
struct Remover<'a> {
    ds: &'a Datastore,
    pending: HashMap<PackId, Vec<ChunkId>>,
    n: usize,
}

impl Remover<'_> {
    const BATCH: usize = 1 << 16;

    fn push(&mut self, p: PackId, id: ChunkId) -> Result<()> {
        self.pending.entry(p).or_default().push(id);
        self.n += 1;
        if self.n >= Self::BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for (p, ids) in self.pending.drain() {
            self.ds.index().remove_blobs(&p, &ids, false)?;
        }
        self.n = 0;
        Ok(())
    }
}

pub fn gc(ds: &Datastore, opts: &GcOptions, progress: &dyn Fn(&str, u64, u64)) -> Result<GcReport> {
    ds.check_writable()?;
    let mut report = GcReport::default();
    // Phase 1, mark without blocking anyone.
    progress("mark", 0, 1);
    LiveSet::remove_leftovers(ds.root());
    let mut seen = HashSet::new();
    let mut damaged = BTreeMap::new();
    let mut marked = Marked {
        walked: HashSet::new(),
        live: LiveSet::new(ds.root(), opts.live_buffer_ids),
    };
    let (roots, _) = snapshot_roots(ds, &mut seen, &mut damaged)?;
    marked.mark(ds, roots)?;

    // Phase 2, under the exclusive GC lock: catch up with snapshots and
    // sessions that appeared meanwhile, decide, and remove dead index
    // entries. After this no session can find a dead chunk in the index.
    let now = SystemTime::now();
    let (to_delete, to_repack) = {
        let _g = ds.gc_lock.write().unwrap_or_else(|e| e.into_inner());
        // Sessions before snapshots: a session writes its snapshot before it
        // leaves the registry, so each committed backup is seen in one of
        // the two. The other order lost a snapshot that committed between
        // the two reads: its deduplicated chunks looked dead.
        let (session_ids, session_roots) = ds.sessions.live();
        #[cfg(test)]
        tests::between_sessions_and_snapshots();
        let (roots, n) = snapshot_roots(ds, &mut seen, &mut damaged)?;
        report.snapshots = n;
        report.damaged_snapshots = damaged.keys().cloned().collect();
        report
            .warnings
            .extend(std::mem::take(&mut damaged).into_values());
        marked.mark(ds, roots)?;
        marked.live.extend(session_ids)?;
        let session_roots = session_roots
            .into_iter()
            .filter_map(|id| walk::kind_of(ds, &id).ok().map(|k| (id, k)))
            .collect();
        marked.mark(ds, session_roots)?;
        let live = &mut marked.live;

        let on_disk: HashMap<PackId, (u64, SystemTime)> = ds
            .backend()
            .list(PACKS)?
            .into_iter()
            .filter_map(|o| pack::id_from_name(&o.name).map(|id| (id, (o.size, o.modified))))
            .collect();
        let indexed: HashMap<PackId, PackInfo> = ds.index().packs()?.into_iter().collect();
        report.packs_total = on_disk.len() as u64;
        let old = |p: &PackId| {
            on_disk
                .get(p)
                .is_some_and(|(_, m)| now.duration_since(*m).unwrap_or_default() >= opts.grace)
        };
        // Packs on disk that the index does not know (a crash between pack
        // write and index update, or an interrupted repack): re-index those
        // that hold a live blob the index lacks, leave the rest as garbage.
        let mut unindexed = Vec::new();
        let mut missing = Vec::new();
        for (p, (size, _)) in &on_disk {
            if indexed.contains_key(p) || !old(p) {
                continue;
            }
            let entries = ds.read_pack_header(p, *size)?;
            for (id, ..) in &entries {
                if ds.index().get(id)?.is_none() {
                    missing.push((*id, *p));
                }
            }
            unindexed.push((*p, *size, entries));
        }
        missing.sort_unstable();
        let mut needed = HashSet::new();
        {
            let mut c = live.cursor()?;
            for (id, p) in &missing {
                if c.contains(id)? {
                    needed.insert(*p);
                }
            }
        }
        for (p, size, entries) in unindexed {
            if needed.contains(&p) && !opts.dry_run {
                let blobs: Vec<_> = entries
                    .iter()
                    .map(|&(id, kind, offset, length, raw_length)| {
                        (
                            id,
                            Location {
                                pack: p,
                                offset,
                                length,
                                raw_length,
                                kind,
                            },
                        )
                    })
                    .collect();
                ds.index().add_pack(
                    &p,
                    PackInfo {
                        size,
                        blobs: blobs.len() as u32,
                    },
                    &blobs,
                )?;
                report.packs_healed += 1;
            } else if !needed.contains(&p) {
                report.packs_deleted += 1;
                report.bytes_freed += size;
            }
        }
        // Sweep pass 1: liveness per pack, in index (id) order.
        progress("sweep", 0, 1);
        let mut per_pack: HashMap<PackId, PackLiveness> = HashMap::new();
        {
            let mut c = live.cursor()?;
            ds.index().for_each_blob(&mut |id, loc| {
                if c.contains(&id)? {
                    let e = per_pack.entry(loc.pack).or_default();
                    e.live_bytes += loc.length as u64;
                    e.live_blobs += 1;
                    report.live_blobs += 1;
                }
                Ok(())
            })?;
        }
        let mut to_delete = Vec::new();
        let mut to_repack = Vec::new();
        for (p, info) in &indexed {
            if !old(p) {
                report.packs_in_grace += 1;
                continue;
            }
            let l = per_pack.get(p).copied().unwrap_or_default();
            let garbage = 1.0 - l.live_bytes as f64 / info.size.max(1) as f64;
            if l.live_blobs == 0 {
                to_delete.push((*p, info.size, u64::from(info.blobs)));
            } else if garbage >= opts.repack_threshold {
                to_repack.push((*p, info.size, u64::from(info.blobs) - l.live_blobs));
            }
        }
        // Sweep pass 2: remove the dead entries of the chosen packs.
        if !opts.dry_run && (!to_delete.is_empty() || !to_repack.is_empty()) {
            let chosen: HashSet<PackId> = to_delete
                .iter()
                .map(|(p, ..)| *p)
                .chain(to_repack.iter().map(|(p, ..)| *p))
                .collect();
            let mut c = live.cursor()?;
            let mut rm = Remover {
                ds,
                pending: HashMap::new(),
                n: 0,
            };
            ds.index().for_each_blob(&mut |id, loc| {
                if chosen.contains(&loc.pack) && !c.contains(&id)? {
                    rm.push(loc.pack, id)?;
                }
                Ok(())
            })?;
            rm.flush()?;
            for (p, ..) in &to_delete {
                ds.index().remove_pack(p, &[])?;
            }
        }
        (to_delete, to_repack)
    };
    drop(marked);

    // Phase 3, without the lock: delete files, copy live blobs.
    let total = (to_delete.len() + to_repack.len()) as u64;
    let mut done = 0;
    for (p, size, blobs) in to_delete {
        progress("sweep", done, total);
        done += 1;
        report.packs_deleted += 1;
        report.blobs_removed += blobs;
        report.bytes_freed += size;
        if !opts.dry_run {
            ds.backend().delete(&pack::object_name(&p))?;
        }
    }
    // Unindexed garbage packs: leftovers of interrupted writes. Decided
    // under the exclusive GC lock, which a backup's flusher holds shared
    // from a pack's rename to its index entry: a pack on disk that the
    // index does not know at this point is never one about to be indexed
    // (and gc holds the writer lock: no other process writes).
    #[cfg(test)]
    tests::hook(&tests::BEFORE_LEFTOVERS);
    if !opts.dry_run {
        let leftovers: Vec<String> = {
            let _g = ds.gc_lock.write().unwrap_or_else(|e| e.into_inner());
            let indexed: HashSet<PackId> =
                ds.index().packs()?.into_iter().map(|(p, _)| p).collect();
            ds.backend()
                .list(PACKS)?
                .into_iter()
                .filter(|o| {
                    pack::id_from_name(&o.name).is_some_and(|p| {
                        !indexed.contains(&p)
                            && now.duration_since(o.modified).unwrap_or_default() >= opts.grace
                    })
                })
                .map(|o| o.name)
                .collect()
        };
        for name in leftovers {
            ds.backend().delete(&name)?;
        }
    }
    #[cfg(test)]
    tests::hook(&tests::AFTER_LEFTOVERS);
    // Temporaries of writers that are gone: gc holds the writer lock, so no
    // other process writes, and the backend never removes those of this
    // process's live writers. The grace period still applies (clocks).
    if !opts.dry_run {
        for prefix in [PACKS, SNAPSHOTS] {
            let (n, bytes) = ds.backend().remove_stale_temporaries(prefix, opts.grace)?;
            report.temporaries_removed += n;
            report.temporary_bytes_removed += bytes;
        }
    }
    if !to_repack.is_empty() && !opts.dry_run {
        let mut w = Repacker::new(ds);
        // Old packs whose live blobs are in `w`: (pack, moved ids, size, dead blobs).
        let mut pending: Vec<(PackId, Vec<ChunkId>, u64, u64)> = Vec::new();
        let mut rewritten = 0;
        let n = to_repack.len();
        for (i, (p, size, dead)) in to_repack.into_iter().enumerate() {
            progress("repack", done, total);
            done += 1;
            let bytes = ds.backend().get(&pack::object_name(&p))?;
            if bytes.len() < pack::TRAILER_LEN {
                return Err(Error::Corrupt(format!(
                    "pack {p} is truncated; run `arca verify`"
                )));
            }
            let (trailer, entries) = pack::parse_pack(&bytes, ds.keys())?;
            let old_key = ds.keys().subkey(&trailer.salt);
            // What the index still places in this pack is what is live: the
            // dead entries went in phase 2, and a blob stored again since
            // then lives in its new pack.
            let mut moved = Vec::new();
            for (id, ..) in &entries {
                let Some(loc) = ds.index().get(id)?.filter(|l| l.pack == p) else {
                    continue;
                };
                let b = bytes
                    .get(loc.offset as usize..loc.offset as usize + loc.length as usize)
                    .ok_or_else(|| {
                        Error::Corrupt(format!("pack {p} is truncated; run `arca verify`"))
                    })?;
                // Check before copying so that repack never spreads damage.
                ds.decode_blob(id, &loc, b)?;
                let resealed = blob::reseal(id, b, old_key.as_ref(), w.key.as_ref())?;
                rewritten += resealed.len() as u64;
                w.add(id, &loc, &resealed)?;
                moved.push(*id);
            }
            pending.push((p, moved, size, dead));
            if w.len() >= ds.config().pack_size as u64 || i + 1 == n {
                // New copies durable and indexed first, then the old packs go.
                if let Err(e) = w.flush() {
                    if !e.is_no_space() {
                        return Err(e);
                    }
                    // A full disk: the packs deleted above are freed; these
                    // stay as they are (their live blobs never moved).
                    report.warnings.push(format!(
                        "repacking stopped, {} packs left as they are: {e}",
                        n - i + pending.len() - 1
                    ));
                    break;
                }
                report.bytes_rewritten += std::mem::take(&mut rewritten);
                for (p, ids, size, dead) in pending.drain(..) {
                    ds.index().remove_pack(&p, &ids)?;
                    ds.backend().delete(&pack::object_name(&p))?;
                    report.packs_repacked += 1;
                    report.blobs_removed += dead;
                    report.bytes_freed += size;
                }
            }
        }
    } else {
        report.packs_repacked = to_repack.len() as u64;
    }
    if !opts.dry_run {
        // Space was freed: put back the reserve if a full disk used it.
        crate::reserve::ensure(ds.root());
    }
    progress("done", total, total);
    Ok(report)
}

/// Writes copies of live blobs into new packs.
struct Repacker<'a> {
    ds: &'a Datastore,
    salt: [u8; SALT_LEN],
    key: Option<crate::crypto::SealKey>,
    current: Option<PackBuilder<Vec<u8>>>,
}

impl<'a> Repacker<'a> {
    fn new(ds: &'a Datastore) -> Self {
        let salt = random_bytes::<SALT_LEN>();
        Repacker {
            ds,
            salt,
            key: ds.keys().subkey(&salt),
            current: None,
        }
    }

    fn len(&self) -> u64 {
        self.current.as_ref().map_or(0, |p| p.len())
    }

    fn add(&mut self, id: &ChunkId, loc: &Location, sealed: &[u8]) -> Result<()> {
        let pb = self
            .current
            .get_or_insert_with(|| PackBuilder::new(self.salt, self.key.clone(), Vec::new()));
        pb.add(id, loc.kind, sealed, loc.raw_length)
            .map_err(|e| Error::io("repack", e))?;
        Ok(())
    }

    /// Write the current pack (durably) and index it.
    fn flush(&mut self) -> Result<()> {
        if let Some(pb) = self.current.take() {
            if pb.is_empty() {
                return Ok(());
            }
            let (id, bytes, info, blobs) = pb.finish().map_err(|e| Error::io("repack", e))?;
            self.ds.backend().put(&pack::object_name(&id), &bytes)?;
            self.ds.index().add_pack(&id, info, &blobs)?;
            self.ds.index().sync()?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::image_manifest;
    use crate::verify;
    use crate::{image, Encryption, IndexKind, OpenOptions};
    use std::sync::Mutex;

    type Hook = Box<dyn FnOnce() + Send>;
    static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

    /// Runs what a test placed between gc's two reads under the lock.
    pub(super) fn between_sessions_and_snapshots() {
        let hook = HOOK.lock().unwrap().take();
        if let Some(h) = hook {
            h();
        }
    }

    pub(crate) static RENAMED: Mutex<Option<Hook>> = Mutex::new(None);
    pub(crate) static BEFORE_LEFTOVERS: Mutex<Option<Hook>> = Mutex::new(None);
    pub(crate) static AFTER_LEFTOVERS: Mutex<Option<Hook>> = Mutex::new(None);

    /// Runs (once) what a test placed at this point.
    pub(crate) fn hook(at: &Mutex<Option<Hook>>) {
        let h = at.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = h {
            h();
        }
    }

    /// A backup's pack renamed into place but not yet indexed, while gc
    /// (grace 0) decides which unindexed packs are leftovers: gc must not
    /// take it for one. It did, deleted it, and the backup's snapshot then
    /// referenced a missing pack. The hooks put the rename just before
    /// gc's decision and hold the index entry back until gc is past it (or
    /// two seconds, when gc rightly waits for the backup).
    #[test]
    #[cfg(feature = "rocksdb")]
    fn gc_never_deletes_a_pack_between_its_rename_and_its_index_entry() {
        use std::sync::mpsc::channel;
        let dir = tempfile::tempdir().unwrap();
        Datastore::init(dir.path(), Encryption::None, None, |_| {}).unwrap();
        // RocksDB as on a server (gc heals an in-memory index by itself).
        let ds = Datastore::open(dir.path(), &OpenOptions::default()).unwrap();
        let data = vec![9u8; 65536];
        let (renamed_tx, renamed_rx) = channel::<()>();
        let (past_tx, past_rx) = channel::<()>();
        *RENAMED.lock().unwrap() = Some(Box::new(move || {
            renamed_tx.send(()).unwrap();
            let _ = past_rx.recv_timeout(Duration::from_secs(2));
        }));
        *BEFORE_LEFTOVERS.lock().unwrap() = Some(Box::new(move || {
            renamed_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }));
        *AFTER_LEFTOVERS.lock().unwrap() = Some(Box::new(move || {
            let _ = past_tx.send(());
        }));
        let s = ds.begin_session().unwrap();
        let id = s
            .submit(BlobKind::Data, data.clone())
            .unwrap()
            .wait()
            .unwrap();
        let t = s
            .store(BlobKind::ImageTable, &image::encode_table_blob(&[id]))
            .unwrap();
        let ds2 = ds.clone();
        let gc_thread = std::thread::spawn(move || {
            let g = GcOptions {
                grace: Duration::ZERO,
                ..Default::default()
            };
            gc(&ds2, &g, &|_, _, _| {}).unwrap()
        });
        s.commit(image_manifest(t, 1)).unwrap();
        gc_thread.join().unwrap();
        assert!(
            RENAMED.lock().unwrap().is_none(),
            "the backup's hook did not run"
        );
        assert!(
            BEFORE_LEFTOVERS.lock().unwrap().is_none(),
            "gc's hook did not run"
        );
        assert_eq!(
            ds.read_blob(&id).unwrap(),
            data,
            "gc deleted the backup's pack"
        );
        assert!(ds.read_blob(&t).is_ok());
        assert!(verify::verify(&ds, &Default::default(), &|_, _, _| {})
            .unwrap()
            .is_clean());
    }

    /// A backup that commits (and leaves the session registry) while gc
    /// holds the lock keeps the chunks it deduplicated against. This lost a
    /// committed snapshot's chunks when gc listed snapshots first.
    #[test]
    fn a_backup_committing_inside_gc_keeps_its_deduplicated_chunks() {
        let dir = tempfile::tempdir().unwrap();
        Datastore::init(dir.path(), Encryption::None, None, |_| {}).unwrap();
        let opts = OpenOptions {
            index: IndexKind::Memory,
            ..Default::default()
        };
        let ds = Datastore::open(dir.path(), &opts).unwrap();
        let data = vec![7u8; 65536];

        // A snapshot holds the chunk, then is deleted: the chunk is garbage.
        let s1 = ds.begin_session().unwrap();
        let id = s1
            .submit(BlobKind::Data, data.clone())
            .unwrap()
            .wait()
            .unwrap();
        let t = s1
            .store(BlobKind::ImageTable, &image::encode_table_blob(&[id]))
            .unwrap();
        let first = s1.commit(image_manifest(t, 1)).unwrap();
        ds.delete_snapshot(&first).unwrap();

        // A second backup deduplicates against it and commits inside gc.
        let s2 = ds.begin_session().unwrap();
        assert_eq!(
            s2.submit(BlobKind::Data, data.clone())
                .unwrap()
                .wait()
                .unwrap(),
            id
        );
        let t2 = s2
            .store(BlobKind::ImageTable, &image::encode_table_blob(&[id]))
            .unwrap();
        *HOOK.lock().unwrap() = Some(Box::new(move || {
            s2.commit(image_manifest(t2, 1)).unwrap();
        }));
        let g = GcOptions {
            grace: Duration::ZERO,
            ..Default::default()
        };
        gc(&ds, &g, &|_, _, _| {}).unwrap();
        assert!(HOOK.lock().unwrap().is_none(), "the hook did not run");
        assert_eq!(ds.snapshots().unwrap().len(), 1);
        assert_eq!(
            ds.read_blob(&id).unwrap(),
            data,
            "gc removed a committed snapshot's chunk"
        );
        assert!(ds.read_blob(&t2).is_ok());
    }
}
