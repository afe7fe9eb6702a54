//! The core of an image backup: one or more disks into one restore point.
//!
//! For each disk it decides which fixed-size blocks to read (all of them;
//! those overlapping changed extents, taking the rest from the parent's
//! chunk table; or none, when the file is untouched), leaves blocks
//! outside the allocated extents as holes without reading them, then reads
//! on this thread while the session's workers hash, compress and store.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arca_repo::format::{Disk, Manifest, Stats};
use arca_repo::image::{self as table, IDS_PER_BLOB};
use arca_repo::{
    BackupSession, BlobKind, ChunkId, Datastore, Error, PendingChunk, Result, Snapshot,
};
use crossbeam_channel::bounded;

use super::Stamp;
use crate::restore::is_zero;
use crate::{BackupOutcome, Progress};

/// Reads `buf.len()` bytes at an offset of a disk.
pub type ReadAt<'a> = &'a (dyn Fn(u64, &mut [u8]) -> Result<()> + Sync);

/// One disk to back up.
pub struct DiskInput<'a> {
    /// Its name in the restore point (a file name, a VM's target "vda").
    pub name: String,
    pub size: u64,
    pub read: ReadAt<'a>,
    /// The extents that hold data, sorted; outside them the disk reads as
    /// zeros and is not read. None: all of it may hold data.
    pub allocated: Option<Vec<(u64, u64)>>,
    /// The extents changed since `parent` was taken. None: unknown.
    pub changed: Option<Vec<(u64, u64)>>,
    /// Where `changed` comes from ("dirty bitmap arca-…", "changed extents").
    pub changed_from: String,
    /// When `changed` is None although a parent exists: why (it goes into
    /// the mode text of the full read).
    pub no_changes_because: Option<String>,
    /// This disk in the parent restore point.
    pub parent: Option<Disk>,
    /// The image file's stamp, when it is a file read directly.
    pub(super) stamp: Option<Stamp>,
    /// Read every block even if the stamp says unchanged.
    pub full_read: bool,
    /// The format read ("raw", "qcow2").
    pub format: String,
    /// The changed-block tracking handle this backup started (see
    /// [`Disk::cbt`]).
    pub cbt: String,
}

impl<'a> DiskInput<'a> {
    /// A disk read whole by `read`, with nothing known about it.
    pub fn new(name: &str, size: u64, read: ReadAt<'a>) -> Self {
        DiskInput {
            name: name.to_string(),
            size,
            read,
            allocated: None,
            changed: None,
            changed_from: "changed extents".into(),
            no_changes_because: None,
            parent: None,
            stamp: None,
            full_read: false,
            format: "raw".into(),
            cbt: String::new(),
        }
    }
}

/// The restore point the disks go into.
pub struct Header<'a> {
    /// "image", or the source's kind ("libvirt").
    pub source_kind: &'a str,
    pub source: &'a str,
    /// What was backed up, for display.
    pub path: &'a str,
    pub tags: &'a [String],
    pub parent: Option<&'a Snapshot>,
    /// Free-form JSON: a VM's definition and what was reached.
    pub metadata_json: String,
}

/// Blocks to read, table entries taken over, and the mode text of one disk.
struct Plan {
    ids: Vec<ChunkId>,
    read: Vec<bool>,
    mode: String,
    /// Blocks of an incremental where only some ranges changed (offsets
    /// within the block): only those are read from the source, the rest
    /// comes from the parent's chunk (or zeros for a hole).
    parts: BTreeMap<usize, Vec<(u32, u32)>>,
}

/// A changed block is read in parts when they cover at most this share of
/// it (in 1/8): beyond, one read of the whole block is cheaper than reading
/// the parent's chunk from the datastore too.
const PARTIAL_MAX_EIGHTHS: u64 = 4;

/// The ranges of `ext` inside each block they touch, for blocks where they
/// cover at most [`PARTIAL_MAX_EIGHTHS`] of it.
fn partial(ext: &[(u64, u64)], size: u64, cs: u64) -> BTreeMap<usize, Vec<(u32, u32)>> {
    let mut parts: BTreeMap<usize, Vec<(u32, u32)>> = BTreeMap::new();
    for &(off, len) in ext {
        let end = off.saturating_add(len).min(size);
        let mut at = off;
        while at < end {
            let b = at / cs;
            let block_end = ((b + 1) * cs).min(end);
            let v = parts.entry(b as usize).or_default();
            let (s, e) = ((at - b * cs) as u32, (block_end - b * cs) as u32);
            match v.last_mut() {
                Some(l) if l.1 >= s => l.1 = l.1.max(e),
                _ => v.push((s, e)),
            }
            at = block_end;
        }
    }
    parts.retain(|b, v| {
        let bl = (size - *b as u64 * cs).min(cs);
        let n: u64 = v.iter().map(|(s, e)| (e - s) as u64).sum();
        n * 8 <= bl * PARTIAL_MAX_EIGHTHS
    });
    parts
}

fn mark(read: &mut [bool], ext: &[(u64, u64)], size: u64, cs: u64) {
    for &(off, len) in ext {
        if len == 0 || off >= size {
            continue;
        }
        let first = off / cs;
        let last = (off.saturating_add(len) - 1).min(size - 1) / cs;
        for r in &mut read[first as usize..=last as usize] {
            *r = true;
        }
    }
}

fn plan(
    ds: &Datastore,
    session: &BackupSession,
    d: &DiskInput,
    parent: Option<&Snapshot>,
) -> Result<Plan> {
    let cs = ds.config().image_chunk_size;
    let blocks = table::block_count(d.size, cs) as usize;
    let p = parent.map(|p| p.id.short()).unwrap_or_default();
    let same = d
        .parent
        .as_ref()
        .filter(|pd| pd.size == d.size && pd.chunk_size == cs);
    // Take the parent's table over, keeping its chunks from GC; blocks
    // whose chunk verify found damaged are read again.
    let take = |pd: &Disk| -> Result<(Vec<ChunkId>, Vec<bool>)> {
        for t in &pd.table {
            session.add_root(ChunkId::from_slice(t)?);
        }
        let ids = table::read_table(ds, pd)?;
        let q = ds.quarantined_ids()?;
        let read = ids.iter().map(|id| q.contains(id)).collect();
        Ok((ids, read))
    };
    let whole = || (vec![ChunkId::default(); blocks], vec![true; blocks]);
    let mut parts = BTreeMap::new();
    // The same file, untouched since the parent read it: nothing is read,
    // unless verify found one of its chunks damaged.
    if let (Some(pd), Some(now), None, false) = (same, d.stamp, &d.changed, d.full_read) {
        if Stamp::recorded(pd) == Some(now) {
            let (ids, read) = take(pd)?;
            if !read.iter().any(|r| *r) {
                return Ok(Plan {
                    ids,
                    read,
                    parts,
                    mode: format!(
                        "unchanged, not read (size, mtime, ctime and inode equal those at {p}; --full-read reads it)"
                    ),
                });
            }
        }
    }
    let (ids, read, mode) = match (&d.changed, same, &d.parent) {
        (Some(ext), Some(pd), _) => {
            let (ids, mut read) = take(pd)?;
            // Blocks verify quarantined are read whole; so are those with
            // no separate ranges given.
            let mut ps = partial(ext, d.size, cs as u64);
            ps.retain(|b, _| !read[*b]);
            parts = ps;
            mark(&mut read, ext, d.size, cs as u64);
            let n = read.iter().filter(|r| **r).count();
            let mode = format!(
                "incremental ({n} of {blocks} blocks changed since {p}, from {})",
                d.changed_from
            );
            (ids, read, mode)
        }
        (Some(_), None, Some(_)) => {
            let (ids, read) = whole();
            (
                ids,
                read,
                format!(
                    "full ({} ignored: the parent has a different size or chunk size)",
                    d.changed_from
                ),
            )
        }
        (Some(_), None, None) => {
            let (ids, read) = whole();
            (
                ids,
                read,
                format!("full ({} ignored: no parent snapshot)", d.changed_from),
            )
        }
        (None, _, _) => {
            let (ids, read) = whole();
            let why = d
                .no_changes_because
                .clone()
                .unwrap_or_else(|| "no changed extents given".into());
            let mode = match parent {
                Some(_) => format!("full read, dedup against {p} ({why})"),
                None => "full (no parent snapshot)".into(),
            };
            (ids, read, mode)
        }
    };
    let mut plan = Plan {
        ids,
        read,
        mode,
        parts,
    };
    // Blocks outside the allocated extents are holes: not read.
    if let Some(alloc) = &d.allocated {
        let mut data = vec![false; blocks];
        mark(&mut data, alloc, d.size, cs as u64);
        for (b, ((r, id), has)) in plan
            .read
            .iter_mut()
            .zip(plan.ids.iter_mut())
            .zip(data)
            .enumerate()
        {
            if *r && !has {
                *r = false;
                *id = ChunkId::default();
                plan.parts.remove(&b);
            }
        }
    }
    Ok(plan)
}

fn block_len(size: u64, cs: u32, b: usize) -> u64 {
    (size - b as u64 * cs as u64).min(cs as u64)
}

/// Bytes of block `b` the plan reads from the source.
fn bytes_to_read(p: &Plan, size: u64, cs: u32, b: usize) -> u64 {
    match p.parts.get(&b) {
        Some(v) => v.iter().map(|(s, e)| (e - s) as u64).sum(),
        None => block_len(size, cs, b),
    }
}

/// A changed block from its changed ranges and the rest of the parent's
/// block (a hole's is zeros). None when the parent's chunk does not have
/// the block's length (then the block is read whole).
fn merge_block(
    ds: &Datastore,
    d: &DiskInput,
    parent: &ChunkId,
    off: u64,
    len: usize,
    ranges: &[(u32, u32)],
) -> Result<Option<Vec<u8>>> {
    let mut buf = if parent.is_zero() {
        vec![0u8; len]
    } else {
        ds.read_blob(parent)?
    };
    if buf.len() != len {
        return Ok(None);
    }
    for &(s, e) in ranges {
        (d.read)(off + s as u64, &mut buf[s as usize..e as usize])?;
    }
    Ok(Some(buf))
}

/// Read the planned blocks of one disk and fill its table; the bytes
/// read from the source.
fn read_blocks(
    session: &BackupSession,
    d: &DiskInput,
    cs: u32,
    plan: &mut Plan,
    progress: &Progress,
) -> Result<u64> {
    let mut got = 0u64;
    let (read, size) = (d.read, d.size);
    let ds = session.datastore();
    let plan_ro: &Plan = plan;
    let to_read = &plan_ro.read;
    // Reader (this thread) → workers → resolver thread fills the table.
    let (tx, rx) = bounded::<(usize, PendingChunk)>(64);
    let resolved: Result<Vec<(usize, ChunkId)>> = std::thread::scope(|s| {
        let resolver = s.spawn(move || -> Result<Vec<(usize, ChunkId)>> {
            let mut out = Vec::new();
            for (i, p) in rx {
                out.push((i, p.wait()?));
            }
            Ok(out)
        });
        let r = (|| -> Result<()> {
            for b in (0..to_read.len()).filter(|b| to_read[*b]) {
                progress.check_cancel()?;
                let off = b as u64 * cs as u64;
                let len = block_len(size, cs, b) as usize;
                let merged = match plan_ro.parts.get(&b) {
                    Some(r) => merge_block(ds, d, &plan_ro.ids[b], off, len, r)?,
                    None => None,
                };
                let buf = match merged {
                    Some(buf) => {
                        let n = bytes_to_read(plan_ro, size, cs, b);
                        got += n;
                        progress.add(n);
                        buf
                    }
                    None => {
                        let mut buf = vec![0u8; len];
                        read(off, &mut buf)?;
                        got += len as u64;
                        progress.add(len as u64);
                        buf
                    }
                };
                if is_zero(&buf) {
                    tx.send((b, PendingChunk::Ready(ChunkId::default())))
                } else {
                    tx.send((b, session.submit(BlobKind::Data, buf)?))
                }
                .map_err(|_| Error::Poisoned("resolver stopped".into()))?;
            }
            Ok(())
        })();
        drop(tx);
        let out = resolver
            .join()
            .unwrap_or_else(|_| Err(Error::Poisoned("resolver panicked".into())));
        r.and(out)
    });
    // The session's first error is the cause of any later one.
    for (i, id) in resolved.map_err(|e| session.cause(e))? {
        plan.ids[i] = id;
    }
    Ok(got)
}

/// Back up `disks` as one image restore point.
pub fn backup_disks(
    ds: &Arc<Datastore>,
    header: &Header,
    disks: Vec<DiskInput>,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let start = Instant::now();
    let cs = ds.config().image_chunk_size;
    // Image blocks are framed (blob version 2) when the datastore says so,
    // for fast random reads of restore points (docs/decisions.md).
    let frames = Some(ds.config().image_frame_size).filter(|&f| f > 0);
    let session = ds.begin_session_framed(frames)?;
    let mut plans = Vec::with_capacity(disks.len());
    for d in &disks {
        plans.push(plan(ds, &session, d, header.parent)?);
    }
    let read_bytes = |d: &DiskInput, p: &Plan| -> u64 {
        (0..p.read.len())
            .filter(|b| p.read[*b])
            .map(|b| bytes_to_read(p, d.size, cs, b))
            .sum()
    };
    let total: u64 = disks
        .iter()
        .zip(&plans)
        .map(|(d, p)| read_bytes(d, p))
        .sum();
    progress.total.store(total, Ordering::Relaxed);
    let mut records = Vec::with_capacity(disks.len());
    for (d, mut p) in disks.iter().zip(plans) {
        let got = read_blocks(&session, d, cs, &mut p, progress)?;
        let mut table_ids = Vec::new();
        for part in p.ids.chunks(IDS_PER_BLOB) {
            let id = session
                .store(BlobKind::ImageTable, &table::encode_table_blob(part))
                .map_err(|e| session.cause(e))?;
            table_ids.push(id.0.to_vec());
        }
        let stamp = d.stamp;
        records.push(Disk {
            name: d.name.clone(),
            size: d.size,
            chunk_size: cs,
            table: table_ids,
            holes: p.ids.iter().filter(|i| i.is_zero()).count() as u64,
            source_mtime_ns: stamp.map_or(0, |s| s.mtime_ns),
            source_ctime_ns: stamp.map_or(0, |s| s.ctime_ns),
            source_inode: stamp.map_or(0, |s| s.inode),
            source_device: stamp.map_or(0, |s| s.device),
            format: d.format.clone(),
            cbt: d.cbt.clone(),
            bytes_read: got,
            mode: p.mode,
        });
    }
    let mode = match records.as_slice() {
        [one] => one.mode.clone(),
        many => many
            .iter()
            .map(|d| format!("{}: {}", d.name, d.mode))
            .collect::<Vec<_>>()
            .join("; "),
    };
    let manifest = Manifest {
        source_kind: header.source_kind.into(),
        source: header.source.into(),
        time_ns: crate::now_ns(),
        parent: header.parent.map(|p| p.id.0.to_vec()).unwrap_or_default(),
        tags: header.tags.to_vec(),
        stats: Some(Stats {
            files: records.len() as u64,
            bytes_read: records.iter().map(|d| d.bytes_read).sum(),
            bytes_total: records.iter().map(|d| d.size).sum(),
            duration_s: start.elapsed().as_secs_f64(),
            ..Default::default()
        }),
        disks: records,
        hostname: crate::hostname(),
        backup_mode: mode,
        path: header.path.into(),
        metadata_json: header.metadata_json.clone(),
        ..Default::default()
    };
    crate::commit(session, manifest, start, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::partial;

    #[test]
    fn changed_ranges_are_cut_per_block_and_merged() {
        // 64 KiB blocks; a range across a boundary, two touching ranges,
        // and a block mostly written (read whole).
        let cs = 65536;
        let p = partial(
            &[
                (65536 - 100, 200),
                (3 * 65536, 10),
                (3 * 65536 + 10, 10),
                (5 * 65536, 60000),
            ],
            10 * 65536,
            cs,
        );
        assert_eq!(p[&0], vec![(65436, 65536)]);
        assert_eq!(p[&1], vec![(0, 100)]);
        assert_eq!(p[&3], vec![(0, 20)]);
        assert!(!p.contains_key(&5), "{p:?}");
        // The short last block of a disk, and ranges past its end.
        let p = partial(&[(65536 + 10, 1 << 20)], 65536 + 100, cs);
        assert!(!p.contains_key(&1), "90 of 100 bytes: read whole");
        let p = partial(&[(65536 + 10, 20)], 65536 + 100, cs);
        assert_eq!(p[&1], vec![(10, 30)]);
    }
}
