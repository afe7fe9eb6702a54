//! The shared restore-point reader: random access to an image restore
//! point's bytes, for every frontend (NBD and iSCSI today; NFS, S3 and the
//! web browser will read through it too).
//!
//! - Offset → chunk is O(1): the image's chunk table is one id per
//!   fixed-size block, loaded once when the reader opens.
//! - Holes (all-zero blocks, never stored) read as zeros without I/O, and
//!   [`BlockSource::extents`] reports them (NBD block status).
//! - Reads decode only the frames they need: a chunk stored as a framed
//!   blob (blob version 2, `image_frame_size` of the datastore) is read
//!   frame by frame through `Datastore::read_frames`, so a cold 4 KiB read
//!   fetches, authenticates and decompresses one frame (64 KiB by default),
//!   not the whole chunk. A chunk stored whole (version 1, every restore
//!   point written before frames) is one frame: the whole chunk.
//! - Decoded frames go through a bounded cache shared by all readers of a
//!   process ([`ChunkCache`], weighted by bytes), keyed by (chunk id,
//!   frame), so identical blocks of different restore points are cached
//!   once. Concurrent misses of one frame load it once. Its use is
//!   reported by [`cache_usage`] and logged when a reader closes.
//! - A request that spans several blocks fetches them in parallel, and a
//!   sequential reader gets the next blocks prefetched whole (all their
//!   frames in one request) in the background.
//! - Reads follow gc: an export serves for hours from a datastore opened
//!   read-only, whose index view is as old as the open. Every chunk goes
//!   through `Datastore::read_blob`, which refreshes that view and looks
//!   again when a repack moved the chunk or it was written after the open
//!   (restore points backed up since the server started).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arca_repo::image as table;
use arca_repo::range::Layout;
use arca_repo::{ChunkId, Datastore, Error, Result, Snapshot};
use crossbeam_channel::{bounded, Sender, TrySendError};

/// A cached piece of a chunk: (chunk id, frame index). A chunk stored
/// whole has one frame, 0.
pub type FrameKey = (ChunkId, u32);

/// Weighs cached frames by the memory they hold: the frame's allocation
/// (its capacity, not only its length) and [`ENTRY_OVERHEAD`].
#[derive(Clone, Copy, Default)]
pub struct Bytes;

/// Bytes counted per cache entry beside its frame: the `Arc` and `Vec`
/// headers, the key, the cache's slot and the allocator's chunk header,
/// rounded up.
pub const ENTRY_OVERHEAD: u64 = 128;

impl quick_cache::Weighter<FrameKey, Arc<Vec<u8>>> for Bytes {
    fn weight(&self, _: &FrameKey, v: &Arc<Vec<u8>>) -> u64 {
        v.capacity() as u64 + ENTRY_OVERHEAD
    }
}

/// Decoded frames of chunks, shared by the readers of a process.
pub type ChunkCache = quick_cache::sync::Cache<FrameKey, Arc<Vec<u8>>, Bytes>;

/// A cache holding at most `bytes` of decoded frames.
pub fn chunk_cache(bytes: u64) -> Arc<ChunkCache> {
    let items = (bytes / (32 << 10)).max(16) as usize;
    Arc::new(ChunkCache::with_weighter(items, bytes.max(1 << 20), Bytes))
}

/// Bytes the cache holds now (decoded frames and their entries, as
/// [`Bytes`] weighs them), and its bound.
pub fn cache_usage(cache: &ChunkCache) -> (u64, u64) {
    (cache.weight(), cache.capacity())
}

/// A run of bytes that are all data or all hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub len: u64,
    pub hole: bool,
}

/// Append a run to `out`, merged into the last one when of the same kind.
pub fn push_extent(out: &mut Vec<Extent>, len: u64, hole: bool) {
    match out.last_mut() {
        Some(e) if e.hole == hole => e.len += len,
        _ => out.push(Extent { len, hole }),
    }
}

/// Runs of `[offset, end)` cut at multiples of `unit`, each a hole or not
/// as `is_hole(unit index)` says, merged.
fn runs(offset: u64, end: u64, unit: u64, is_hole: impl Fn(u64) -> bool) -> Vec<Extent> {
    let mut out = Vec::new();
    let mut pos = offset;
    while pos < end {
        let u = pos / unit;
        let run_end = ((u + 1) * unit).min(end);
        push_extent(&mut out, run_end - pos, is_hole(u));
        pos = run_end;
    }
    out
}

/// Random-access bytes of a disk: what a block frontend exports.
pub trait BlockSource: Send + Sync {
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`; the range must lie within the disk.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Data and hole runs covering `[offset, offset + len)`, in order.
    fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>>;
    /// The block size reads are best aligned to.
    fn block_size(&self) -> u32 {
        4096
    }
    /// Whether [`BlockSource::write_at`] works (an overlay).
    fn writable(&self) -> bool {
        false
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> Result<()> {
        Err(Error::InvalidInput("the export is read-only".into()))
    }
    /// Make written data durable.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Blocks the read-ahead fetches past a sequential read.
const READ_AHEAD_BLOCKS: u64 = 8;
/// Background read-ahead threads per reader.
const READ_AHEAD_THREADS: usize = 2;

/// An image restore point's first disk, read through the chunk cache.
pub struct ImageReader {
    ds: Arc<Datastore>,
    ids: Arc<Vec<ChunkId>>,
    size: u64,
    bs: u64,
    cache: Arc<ChunkCache>,
    /// Frame size of each block's chunk once known (0: not yet).
    frames: Arc<Vec<AtomicU32>>,
    /// Where the last read ended (sequential detection).
    last_end: AtomicU64,
    /// Highest block already handed to the read-ahead.
    ahead_to: AtomicU64,
    /// Taken on drop, which ends the read-ahead threads' queue.
    ahead: Option<Sender<u64>>,
    /// Set on drop: the read-ahead threads skip what is still queued.
    stop: Arc<AtomicBool>,
    /// Joined on drop, so that no thread reads the datastore after its
    /// reader is gone (a process exiting while a detached thread is inside
    /// RocksDB aborts with "pthread lock: Invalid argument").
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// Marks, in [`ImageReader::frames`], a chunk stored whole (its frame size
/// is then its length). Whole chunks are cached under the frame index
/// [`WHOLE_FRAME`], so that they never stand for frame 0 of a framed copy
/// of the same chunk.
const WHOLE: u32 = 1 << 31;
const WHOLE_FRAME: u32 = u32::MAX;

/// The frame size of the chunk of block `b` (the block's own size, with
/// [`WHOLE`] set, when the chunk is stored whole), checking that the chunk
/// holds `want` bytes.
fn frame_size(
    ds: &Datastore,
    frames: &[AtomicU32],
    b: u64,
    id: &ChunkId,
    want: usize,
) -> Result<u32> {
    let known = frames[b as usize].load(Ordering::Relaxed);
    if known != 0 {
        return Ok(known);
    }
    let layout = ds.blob_layout(id)?;
    let len = match &layout {
        Layout::Whole { len } => *len as usize,
        Layout::Framed(t) => t.header.plaintext_len as usize,
    };
    if len != want {
        return Err(Error::Corrupt(format!(
            "block {b}: chunk {id} holds {len} bytes, the image needs {want}"
        )));
    }
    let fs = match layout {
        Layout::Whole { .. } => layout.frame_size() | WHOLE,
        Layout::Framed(_) => layout.frame_size(),
    };
    frames[b as usize].store(fs, Ordering::Relaxed);
    Ok(fs)
}

/// Frames `first..=last` of chunk `id` into the cache, one request for
/// those missing; each frame is handed to `out` in order.
fn load_frames(
    ds: &Datastore,
    cache: &ChunkCache,
    id: &ChunkId,
    first: u32,
    last: u32,
    whole: bool,
    out: &mut dyn FnMut(u32, &[u8]),
) -> Result<()> {
    if first == last {
        // The common random read: concurrent misses load the frame once.
        let key = (*id, if whole { WHOLE_FRAME } else { first });
        let f = cache.get_or_insert_with(&key, || {
            let mut got = None;
            ds.read_frames(id, first, first, &mut |_, f| got = Some(Arc::new(f)))?;
            got.ok_or_else(|| Error::Corrupt(format!("chunk {id}: frame {first} missing")))
        })?;
        out(first, &f);
        return Ok(());
    }
    let mut i = first;
    while i <= last {
        if let Some(f) = cache.get(&(*id, i)) {
            out(i, &f);
            i += 1;
            continue;
        }
        // A run of missing frames, read in one request.
        let mut end = i;
        while end < last && cache.get(&(*id, end + 1)).is_none() {
            end += 1;
        }
        ds.read_frames(id, i, end, &mut |k, f| {
            out(k, &f);
            cache.insert((*id, k), Arc::new(f));
        })?;
        i = end + 1;
    }
    Ok(())
}

impl ImageReader {
    pub fn open(ds: Arc<Datastore>, snap: &Snapshot, cache: Arc<ChunkCache>) -> Result<Self> {
        let disk = snap.manifest.disks.first().ok_or_else(|| {
            Error::InvalidInput(format!("restore point {} is not an image", snap.id))
        })?;
        let ids = if disk.size == 0 {
            Vec::new()
        } else {
            table::read_table(&ds, disk)?
        };
        let ids = Arc::new(ids);
        let frames: Arc<Vec<AtomicU32>> =
            Arc::new((0..ids.len()).map(|_| AtomicU32::new(0)).collect());
        let (size, bs) = (disk.size, disk.chunk_size as u64);
        let (tx, rx) = bounded::<u64>(64);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(READ_AHEAD_THREADS);
        for _ in 0..READ_AHEAD_THREADS {
            let (rx, ds, ids, cache) = (rx.clone(), ds.clone(), ids.clone(), cache.clone());
            let (frames, stop) = (frames.clone(), stop.clone());
            let worker = std::thread::Builder::new()
                .name("read-ahead".into())
                .spawn(move || {
                    // Ends when the reader (the sender) is dropped.
                    for b in rx {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Some(id) = ids.get(b as usize).filter(|id| !id.is_zero()) {
                            let want = (size - b * bs).min(bs) as usize;
                            if let Ok(v) = frame_size(&ds, &frames, b, id, want) {
                                let (fs, whole) = (v & !WHOLE, v & WHOLE != 0);
                                let last = (want.max(1) - 1) as u32 / fs;
                                let _ =
                                    load_frames(&ds, &cache, id, 0, last, whole, &mut |_, _| {});
                            }
                        }
                    }
                })
                .map_err(|e| Error::io("starting read-ahead", e))?;
            workers.push(worker);
        }
        Ok(ImageReader {
            ds,
            ids,
            size,
            bs,
            cache,
            frames,
            last_end: AtomicU64::new(u64::MAX),
            ahead_to: AtomicU64::new(0),
            ahead: Some(tx),
            stop,
            workers,
        })
    }

    /// Fill `piece` with the bytes of block `b` from offset `at` in it.
    fn fill_from_block(&self, b: u64, at: usize, piece: &mut [u8]) -> Result<()> {
        let id = &self.ids[b as usize];
        if id.is_zero() {
            piece.fill(0);
            return Ok(());
        }
        let want = (self.size - b * self.bs).min(self.bs) as usize;
        let v = frame_size(&self.ds, &self.frames, b, id, want)?;
        let (fs, whole) = ((v & !WHOLE) as usize, v & WHOLE != 0);
        let (first, last) = (at / fs, (at + piece.len() - 1) / fs);
        let mut filled = 0;
        load_frames(
            &self.ds,
            &self.cache,
            id,
            first as u32,
            last as u32,
            whole,
            &mut |i, f| {
                let base = i as usize * fs;
                let from = (at + filled - base).min(f.len());
                let n = (f.len() - from).min(piece.len() - filled);
                piece[filled..filled + n].copy_from_slice(&f[from..from + n]);
                filled += n;
            },
        )?;
        if filled != piece.len() {
            return Err(Error::Corrupt(format!(
                "block {b}: chunk {id} is shorter than the image needs"
            )));
        }
        Ok(())
    }

    /// Whether the first frame a read of block `b` from `at` needs is not
    /// cached (a read that will go to the datastore).
    fn misses(&self, b: u64, at: u64) -> bool {
        let id = &self.ids[b as usize];
        if id.is_zero() {
            return false;
        }
        let v = self.frames[b as usize].load(Ordering::Relaxed);
        let frame = match v {
            0 => 0,
            v if v & WHOLE != 0 => WHOLE_FRAME,
            fs => (at / fs as u64) as u32,
        };
        self.cache.get(&(*id, frame)).is_none()
    }

    fn read_ahead(&self, next_block: u64) {
        let n = self.ids.len() as u64;
        let from = next_block.max(self.ahead_to.load(Ordering::Relaxed));
        let to = (next_block + READ_AHEAD_BLOCKS).min(n);
        let Some(ahead) = &self.ahead else { return };
        for b in from..to {
            match ahead.try_send(b) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => break,
            }
            self.ahead_to.store(b + 1, Ordering::Relaxed);
        }
    }
}

impl BlockSource for ImageReader {
    fn size(&self) -> u64 {
        self.size
    }

    fn block_size(&self) -> u32 {
        4096.min(self.bs as u32)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "read of {} bytes at {offset} is past the end ({})",
                    buf.len(),
                    self.size
                ))
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        let (first, last) = (offset / self.bs, (end - 1) / self.bs);
        // One piece of `buf` per block, filled in parallel when several
        // blocks are not cached yet.
        let mut pieces: Vec<(u64, &mut [u8])> = Vec::new();
        let mut rest = buf;
        let mut pos = offset;
        for b in first..=last {
            let block_end = ((b + 1) * self.bs).min(end);
            let (piece, tail) = rest.split_at_mut((block_end - pos) as usize);
            pieces.push((pos, piece));
            rest = tail;
            pos = block_end;
        }
        let fill = |(pos, piece): &mut (u64, &mut [u8])| -> Result<()> {
            let b = *pos / self.bs;
            self.fill_from_block(b, (*pos - b * self.bs) as usize, piece)
        };
        let misses = pieces
            .iter()
            .filter(|(p, _)| self.misses(p / self.bs, p % self.bs))
            .count();
        if misses <= 1 {
            for p in pieces.iter_mut() {
                fill(p)?;
            }
        } else {
            let threads = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8)
                .min(pieces.len());
            let per = pieces.len().div_ceil(threads);
            std::thread::scope(|s| -> Result<()> {
                let handles: Vec<_> = pieces
                    .chunks_mut(per)
                    .map(|group| s.spawn(|| group.iter_mut().try_for_each(fill)))
                    .collect();
                for h in handles {
                    h.join()
                        .map_err(|_| Error::Poisoned("a read thread panicked".into()))??;
                }
                Ok(())
            })?;
        }
        // Sequential? Fetch what comes next before it is asked for.
        if self.last_end.swap(end, Ordering::Relaxed) == offset {
            self.read_ahead(last + 1);
        }
        Ok(())
    }

    fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| Error::InvalidInput(format!("range at {offset} is past the end")))?;
        Ok(runs(offset, end, self.bs, |b| {
            self.ids[b as usize].is_zero()
        }))
    }
}

impl Drop for ImageReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.ahead.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let (used, cap) = cache_usage(&self.cache);
        tracing::info!(
            cache_bytes = used,
            cache_capacity = cap,
            "restore-point reader closed; frame cache holds {used} of {cap} bytes"
        );
    }
}

/// A disk held in memory (tests and fuzzing): zero runs are holes.
pub struct MemDisk {
    pub data: Vec<u8>,
}

impl BlockSource for MemDisk {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset)
            .ok()
            .filter(|&s| {
                s.checked_add(buf.len())
                    .is_some_and(|e| e <= self.data.len())
            })
            .ok_or_else(|| Error::InvalidInput("read past the end".into()))?;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }

    fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.size())
            .ok_or_else(|| Error::InvalidInput("range past the end".into()))?;
        Ok(runs(offset, end, 4096, |p| {
            let a = (p * 4096).max(offset) as usize;
            let b = ((p + 1) * 4096).min(end) as usize;
            self.data[a..b].iter().all(|&x| x == 0)
        }))
    }
}

/// A writable disk held in memory (fuzzing the write paths).
pub struct RamDisk {
    data: std::sync::Mutex<Vec<u8>>,
}

impl RamDisk {
    pub fn new(data: Vec<u8>) -> RamDisk {
        RamDisk {
            data: std::sync::Mutex::new(data),
        }
    }

    fn range(&self, offset: u64, len: usize) -> Result<std::ops::Range<usize>> {
        let size = self.size() as usize;
        usize::try_from(offset)
            .ok()
            .and_then(|s| Some(s..s.checked_add(len)?))
            .filter(|r| r.end <= size)
            .ok_or_else(|| Error::InvalidInput("past the end".into()))
    }
}

impl BlockSource for RamDisk {
    fn size(&self) -> u64 {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.data.lock().unwrap_or_else(|e| e.into_inner())[r]);
        Ok(())
    }
    fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        self.range(offset, len as usize)?;
        Ok(vec![Extent { len, hole: false }])
    }
    fn writable(&self) -> bool {
        true
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let r = self.range(offset, data.len())?;
        self.data.lock().unwrap_or_else(|e| e.into_inner())[r].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_weighs_what_a_frame_holds() {
        let cache = chunk_cache(4 << 20);
        let mut frame = Vec::with_capacity(96 << 10);
        frame.extend_from_slice(&[7u8; 1000]);
        let cap = frame.capacity() as u64;
        cache.insert((ChunkId([1; 32]), 0), Arc::new(frame));
        assert_eq!(cache_usage(&cache), (cap + ENTRY_OVERHEAD, 4 << 20));
    }
}
