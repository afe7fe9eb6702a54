//! The shared restore-point reader: random access to an image restore
//! point's bytes, for every frontend (NBD and iSCSI today; NFS, S3 and the
//! web browser will read through it too).
//!
//! - Offset → chunk is O(1): the image's chunk table is one id per
//!   fixed-size block, loaded once when the reader opens.
//! - Holes (all-zero blocks, never stored) read as zeros without I/O, and
//!   [`BlockSource::extents`] reports them (NBD block status).
//! - Chunks go through a bounded cache shared by all readers of a process
//!   ([`ChunkCache`], weighted by bytes), keyed by chunk id, so identical
//!   blocks of different restore points are cached once. Concurrent misses
//!   of one chunk load it once.
//! - A request that spans several blocks fetches them in parallel, and a
//!   sequential reader gets the next blocks prefetched in the background.
//! - Reads follow gc: an export serves for hours from a datastore opened
//!   read-only, whose index view is as old as the open. Every chunk goes
//!   through `Datastore::read_blob`, which refreshes that view and looks
//!   again when a repack moved the chunk or it was written after the open
//!   (restore points backed up since the server started).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arca_repo::image as table;
use arca_repo::{ChunkId, Datastore, Error, Result, Snapshot};
use crossbeam_channel::{bounded, Sender, TrySendError};

/// Weighs cached chunks by their size.
#[derive(Clone, Copy, Default)]
pub struct Bytes;

impl quick_cache::Weighter<ChunkId, Arc<Vec<u8>>> for Bytes {
    fn weight(&self, _: &ChunkId, v: &Arc<Vec<u8>>) -> u64 {
        v.len().max(1) as u64
    }
}

/// Decoded chunks, shared by the readers of a process.
pub type ChunkCache = quick_cache::sync::Cache<ChunkId, Arc<Vec<u8>>, Bytes>;

/// A cache holding at most `bytes` of decoded chunks.
pub fn chunk_cache(bytes: u64) -> Arc<ChunkCache> {
    let items = (bytes / (256 << 10)).max(16) as usize;
    Arc::new(ChunkCache::with_weighter(items, bytes.max(1 << 20), Bytes))
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
    /// Where the last read ended (sequential detection).
    last_end: AtomicU64,
    /// Highest block already handed to the read-ahead.
    ahead_to: AtomicU64,
    ahead: Sender<u64>,
}

fn load(ds: &Datastore, cache: &ChunkCache, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
    cache.get_or_insert_with(id, || ds.read_blob(id).map(Arc::new))
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
        let (tx, rx) = bounded::<u64>(64);
        for _ in 0..READ_AHEAD_THREADS {
            let (rx, ds, ids, cache) = (rx.clone(), ds.clone(), ids.clone(), cache.clone());
            std::thread::Builder::new()
                .name("read-ahead".into())
                .spawn(move || {
                    // Ends when the reader (the sender) is dropped.
                    for b in rx {
                        if let Some(id) = ids.get(b as usize).filter(|id| !id.is_zero()) {
                            let _ = load(&ds, &cache, id);
                        }
                    }
                })
                .map_err(|e| Error::io("starting read-ahead", e))?;
        }
        Ok(ImageReader {
            ds,
            ids,
            size: disk.size,
            bs: disk.chunk_size as u64,
            cache,
            last_end: AtomicU64::new(u64::MAX),
            ahead_to: AtomicU64::new(0),
            ahead: tx,
        })
    }

    fn block(&self, b: u64) -> Result<Option<Arc<Vec<u8>>>> {
        let id = &self.ids[b as usize];
        if id.is_zero() {
            return Ok(None);
        }
        let data = load(&self.ds, &self.cache, id)?;
        let want = (self.size - b * self.bs).min(self.bs) as usize;
        if data.len() != want {
            return Err(Error::Corrupt(format!(
                "block {b}: chunk {id} holds {} bytes, the image needs {want}",
                data.len()
            )));
        }
        Ok(Some(data))
    }

    fn read_ahead(&self, next_block: u64) {
        let n = self.ids.len() as u64;
        let from = next_block.max(self.ahead_to.load(Ordering::Relaxed));
        let to = (next_block + READ_AHEAD_BLOCKS).min(n);
        for b in from..to {
            match self.ahead.try_send(b) {
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
            match self.block(b)? {
                None => piece.fill(0),
                Some(data) => {
                    let at = (*pos - b * self.bs) as usize;
                    piece.copy_from_slice(&data[at..at + piece.len()]);
                }
            }
            Ok(())
        };
        let misses = pieces
            .iter()
            .filter(|(p, _)| {
                let id = &self.ids[(p / self.bs) as usize];
                !id.is_zero() && self.cache.get(id).is_none()
            })
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
