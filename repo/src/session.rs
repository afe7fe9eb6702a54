//! Backup sessions: the write pipeline.
//!
//! ```text
//!  ingest thread ──submit(chunk)──▶ workers (one per core):          ┌─▶ flusher: finish pack,
//!  (read, chunk)                    hash, dedup, compress, encrypt ──▶ packer ─┘  fsync, rename, index
//! ```
//! Reading and chunking run on the caller's thread, CPU work on one worker
//! per core, and pack writing on two more threads, all linked by bounded
//! channels, so the stages overlap and memory stays bounded. `submit`
//! returns at once with a [`PendingChunk`]; its id arrives when a worker has
//! hashed it. Nothing a session wrote is visible to readers of snapshots
//! until `commit` has made every pack and the index durable and then
//! written the manifest.
//!
//! Every chunk id a session checks against the index is recorded in the
//! session's reference set *under the GC lock*, and the roots it builds on
//! (the parent snapshot's tree or image tables) are registered before they
//! are read. GC treats both as live. See the crate documentation.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::backend::ObjectWriter;
use crate::blob::{self, BlobKind};
use crate::crypto::{random_bytes, SealKey, SALT_LEN};
use crate::datastore::{Datastore, PACKS};
use crate::error::{Error, Result};
use crate::format::{Manifest, Stats};
use crate::id::{ChunkId, SnapshotId};
use crate::pack::{self, PackBuilder};
use crate::sessions::SessionShared;
pub use crate::sessions::{Counters, SessionRegistry};

struct Job {
    kind: BlobKind,
    data: Vec<u8>,
    /// The id the sender claims for `data` (an agent's upload): refused,
    /// and nothing stored, when the bytes hash to another id.
    expect: Option<ChunkId>,
    reply: Sender<Result<ChunkId>>,
}

struct Sealed {
    id: ChunkId,
    kind: BlobKind,
    blob: Vec<u8>,
    raw_len: u32,
}

/// A chunk id that may still be computed by a worker.
pub enum PendingChunk {
    Ready(ChunkId),
    Waiting(Receiver<Result<ChunkId>>),
}

impl PendingChunk {
    pub fn wait(self) -> Result<ChunkId> {
        match self {
            PendingChunk::Ready(id) => Ok(id),
            PendingChunk::Waiting(rx) => rx
                .recv()
                .map_err(|_| Error::Poisoned("backup worker stopped".into()))?,
        }
    }
}

/// Adapts a backend object writer to `std::io::Write` for the pack builder.
/// A failed write poisons the session with the backend's error itself (its
/// path and OS error); the pack builder only sees an echo.
struct WriteAdapter(Box<dyn ObjectWriter>, Arc<SessionShared>);

impl Write for WriteAdapter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .write(buf)
            .map(|()| buf.len())
            .map_err(|e| std::io::Error::other(self.1.fail(e)))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A backup in progress. Dropping it without `commit` aborts: packs already
/// written stay as unreferenced data for GC.
pub struct BackupSession {
    ds: Arc<Datastore>,
    shared: Arc<SessionShared>,
    key: Option<SealKey>,
    work_tx: Option<Sender<Job>>,
    sealed_tx: Option<Sender<Sealed>>,
    threads: Vec<JoinHandle<()>>,
}

impl Datastore {
    /// Start a backup session with one worker per available core.
    pub fn begin_session(self: &Arc<Self>) -> Result<BackupSession> {
        self.begin_session_framed(None)
    }

    /// Start a backup session whose submitted data chunks are stored as
    /// framed blobs (version 2) with frames of `frame_size` bytes when it
    /// is given and valid (image backups, `Config::image_frame_size`).
    pub fn begin_session_framed(
        self: &Arc<Self>,
        frame_size: Option<u32>,
    ) -> Result<BackupSession> {
        self.check_writable()?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let frames = frame_size.filter(|&f| crate::frame::valid_frame_size(f));
        BackupSession::start(self.clone(), workers, frames)
    }
}

impl BackupSession {
    fn start(ds: Arc<Datastore>, workers: usize, frames: Option<u32>) -> Result<Self> {
        let shared = Arc::new(SessionShared::default());
        ds.sessions.register(&shared);
        let salt = random_bytes::<SALT_LEN>();
        let key = ds.keys.subkey(&salt);
        let (work_tx, work_rx) = bounded::<Job>(workers * 2);
        let (sealed_tx, sealed_rx) = bounded::<Sealed>(workers * 4);
        let (flush_tx, flush_rx) = bounded::<PackBuilder<WriteAdapter>>(1);
        let mut threads = Vec::new();
        for i in 0..workers {
            let (ds, shared, key) = (ds.clone(), shared.clone(), key.clone());
            let (rx, tx) = (work_rx.clone(), sealed_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("arca-worker-{i}"))
                    .spawn(move || worker(&ds, &shared, key.as_ref(), frames, &rx, &tx))
                    .map_err(|e| Error::io("spawn worker", e))?,
            );
        }
        {
            let (ds, shared, key) = (ds.clone(), shared.clone(), key.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("arca-packer".into())
                    .spawn(move || packer(&ds, &shared, salt, key, &sealed_rx, &flush_tx))
                    .map_err(|e| Error::io("spawn packer", e))?,
            );
        }
        {
            let (ds, shared) = (ds.clone(), shared.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("arca-flusher".into())
                    .spawn(move || flusher(&ds, &shared, &flush_rx))
                    .map_err(|e| Error::io("spawn flusher", e))?,
            );
        }
        Ok(BackupSession {
            ds,
            shared,
            key,
            work_tx: Some(work_tx),
            sealed_tx: Some(sealed_tx),
            threads,
        })
    }

    pub fn datastore(&self) -> &Arc<Datastore> {
        &self.ds
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The error that made this session fail, if one did: the first one,
    /// whole (path and OS error), once; later calls get `None`. Sources use
    /// it so that the user sees the cause ("No space left on device"), not
    /// an echo of it ("a previous write failed").
    pub fn take_error(&self) -> Option<Error> {
        self.shared
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// `e`, or the first error of the session if there was one (its cause).
    pub fn cause(&self, e: Error) -> Error {
        match e {
            // Not a consequence of a failed write.
            Error::Cancelled => e,
            e => self.take_error().unwrap_or(e),
        }
    }

    /// Register a root this session builds on (the parent's tree id or image
    /// table ids), before reading it, so GC keeps everything under it.
    pub fn add_root(&self, id: ChunkId) {
        let _g = self.ds.gc_lock.read().unwrap_or_else(|e| e.into_inner());
        self.shared
            .roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
    }

    /// Count a blob this session references again as it is, known to be
    /// stored under a root registered with [`add_root`](Self::add_root)
    /// (a parent's unchanged tree, `len` plaintext bytes): what [`store`]
    /// of the same bytes would record, without encoding, hashing or an
    /// index lookup.
    ///
    /// [`store`]: Self::store
    pub fn reuse(&self, id: ChunkId, len: usize) -> Result<()> {
        self.shared.check()?;
        let c = &self.shared.counters;
        c.chunks_total.fetch_add(1, Ordering::Relaxed);
        c.bytes_submitted.fetch_add(len as u64, Ordering::Relaxed);
        let _g = self.ds.gc_lock.read().unwrap_or_else(|e| e.into_inner());
        self.shared
            .referenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        Ok(())
    }

    /// Queue a chunk for hashing and storing; returns immediately unless the
    /// pipeline is full.
    pub fn submit(&self, kind: BlobKind, data: Vec<u8>) -> Result<PendingChunk> {
        self.submit_job(kind, data, None)
    }

    /// [`submit`](Self::submit) a chunk that arrived with its id (from an
    /// agent, which hashed it with the datastore's key): the worker hashes
    /// it anyway and, when the id differs, answers `InvalidInput` and
    /// stores nothing, so a buggy or hostile sender cannot put bytes in
    /// the datastore under another chunk's id. The mismatch does not
    /// poison the session; the caller decides what it ends.
    pub fn submit_expecting(
        &self,
        kind: BlobKind,
        data: Vec<u8>,
        id: ChunkId,
    ) -> Result<PendingChunk> {
        self.submit_job(kind, data, Some(id))
    }

    fn submit_job(
        &self,
        kind: BlobKind,
        data: Vec<u8>,
        expect: Option<ChunkId>,
    ) -> Result<PendingChunk> {
        self.shared.check()?;
        let (reply, rx) = bounded(1);
        self.work_tx
            .as_ref()
            .ok_or_else(|| Error::Poisoned("session closed".into()))?
            .send(Job {
                kind,
                data,
                expect,
                reply,
            })
            .map_err(|_| Error::Poisoned("backup workers stopped".into()))?;
        Ok(PendingChunk::Waiting(rx))
    }

    /// Whether the datastore holds chunk `id`, and its plaintext length if
    /// it does. A chunk found is recorded in the session's references
    /// while the GC lock is held (so GC cannot sweep it in between), and
    /// stays until the session ends: an agent told "the datastore has it"
    /// may list it in its table without uploading it. A chunk not found
    /// is not recorded: the session's references also mean "stored or
    /// queued by this session" to [`submit`](Self::submit), which would
    /// then skip the upload of it.
    pub fn lookup(&self, id: ChunkId) -> Result<Option<u32>> {
        self.shared.check()?;
        let _g = self.ds.gc_lock.read().unwrap_or_else(|e| e.into_inner());
        let found = self.ds.index.get(&id)?.map(|l| l.raw_length);
        if found.is_some() {
            self.shared
                .referenced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        }
        Ok(found)
    }

    /// Store a blob on the calling thread (trees, catalogs, tables).
    pub fn store(&self, kind: BlobKind, data: &[u8]) -> Result<ChunkId> {
        self.shared.check()?;
        let id = self.ds.keys.chunk_id(data);
        if let Some(sealed) = seal_if_new(
            &self.ds,
            &self.shared,
            self.key.as_ref(),
            None,
            id,
            kind,
            data,
        )? {
            self.sealed_tx
                .as_ref()
                .ok_or_else(|| Error::Poisoned("session closed".into()))?
                .send(sealed)
                .map_err(|_| Error::Poisoned("pack writer stopped".into()))?;
        }
        Ok(id)
    }

    /// Wait for every queued chunk to be in a durable pack and indexed.
    fn finish_writes(&mut self) -> Result<()> {
        self.work_tx.take();
        self.sealed_tx.take();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                self.shared.poison("a backup thread panicked".into());
            }
        }
        self.shared.check().map_err(|e| self.cause(e))?;
        self.ds.index.sync()
    }

    /// Make the session's data durable and write the snapshot manifest.
    /// `bytes_added`, `chunks_new` and `chunks_total` of `manifest.stats`
    /// are filled in from the session's counters.
    pub fn commit(mut self, mut manifest: Manifest) -> Result<SnapshotId> {
        self.finish_writes()?;
        let c = &self.shared.counters;
        let stats = manifest.stats.get_or_insert_with(Stats::default);
        stats.bytes_added = c.bytes_added.load(Ordering::Relaxed);
        stats.chunks_new = c.chunks_new.load(Ordering::Relaxed);
        stats.chunks_total = c.chunks_total.load(Ordering::Relaxed);
        manifest.version = crate::format::STRUCT_VERSION;
        self.ds.write_snapshot(&manifest)
    }
}

impl Drop for BackupSession {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.finish_writes();
        }
    }
}

/// Hash-independent part of storing: record the reference, check the index,
/// and seal the blob if it is new to the datastore.
fn seal_if_new(
    ds: &Datastore,
    shared: &SessionShared,
    key: Option<&SealKey>,
    frames: Option<u32>,
    id: ChunkId,
    kind: BlobKind,
    data: &[u8],
) -> Result<Option<Sealed>> {
    if data.len() > blob::MAX_PLAINTEXT {
        return Err(Error::InvalidInput(format!(
            "a {} blob of {} bytes exceeds the limit of {} bytes",
            kind.name(),
            data.len(),
            blob::MAX_PLAINTEXT
        )));
    }
    shared.counters.chunks_total.fetch_add(1, Ordering::Relaxed);
    shared
        .counters
        .bytes_submitted
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    {
        // Under the GC lock: once the reference is recorded, GC keeps the
        // chunk; if GC swept it before, the index no longer has it and we
        // store it again.
        let _g = ds.gc_lock.read().unwrap_or_else(|e| e.into_inner());
        if !shared
            .referenced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id)
        {
            return Ok(None);
        }
        if ds.index.get(&id)?.is_some() {
            return Ok(None);
        }
    }
    let level = ds.config().compression_level;
    let blob = match frames {
        // Only data blobs bigger than one frame gain from frames.
        Some(f) if kind == BlobKind::Data && data.len() > f as usize => {
            let level = ds.config().image_level();
            crate::frame::encode(&id, kind, data, level, key, &ds.frame_mac(), f)
        }
        _ => blob::encode(&id, kind, data, level, key),
    };
    shared.counters.chunks_new.fetch_add(1, Ordering::Relaxed);
    shared
        .counters
        .bytes_added
        .fetch_add(blob.len() as u64, Ordering::Relaxed);
    Ok(Some(Sealed {
        id,
        kind,
        blob,
        raw_len: data.len() as u32,
    }))
}

fn worker(
    ds: &Datastore,
    shared: &SessionShared,
    key: Option<&SealKey>,
    frames: Option<u32>,
    rx: &Receiver<Job>,
    tx: &Sender<Sealed>,
) {
    for job in rx {
        let id = ds.keys.chunk_id(&job.data);
        if let Some(want) = job.expect.filter(|w| *w != id) {
            let _ = job.reply.send(Err(Error::InvalidInput(format!(
                "chunk {} does not match its bytes ({} bytes hash to {})",
                want.short(),
                job.data.len(),
                id.short()
            ))));
            continue;
        }
        let r = match seal_if_new(ds, shared, key, frames, id, job.kind, &job.data) {
            Ok(Some(sealed)) => {
                // Reply once the packer has it, so that commit sees it.
                drop(job.data);
                tx.send(sealed)
                    .map(|()| id)
                    .map_err(|_| Error::Poisoned("pack writer stopped".into()))
            }
            Ok(None) => Ok(id),
            Err(e) => Err(e),
        };
        // The error itself goes to the session (for the caller); whoever
        // waits for this chunk gets its echo.
        let r = r.map_err(|e| Error::Poisoned(shared.fail(e)));
        let _ = job.reply.send(r);
    }
}

fn packer(
    ds: &Datastore,
    shared: &Arc<SessionShared>,
    salt: [u8; SALT_LEN],
    key: Option<SealKey>,
    rx: &Receiver<Sealed>,
    flush: &Sender<PackBuilder<WriteAdapter>>,
) {
    let target = ds.config().pack_size as u64;
    let mut current: Option<PackBuilder<WriteAdapter>> = None;
    for s in rx {
        if shared.check().is_err() {
            continue; // drain so that senders never block
        }
        let r = (|| -> Result<()> {
            if current.is_none() {
                let w = ds.backend.writer(PACKS)?;
                current = Some(PackBuilder::new(
                    salt,
                    key.clone(),
                    WriteAdapter(w, shared.clone()),
                ));
            }
            let pb = current
                .as_mut()
                .ok_or_else(|| Error::Poisoned("no pack".into()))?;
            pb.add(&s.id, s.kind, &s.blob, s.raw_len)
                .map_err(|e| Error::io("write pack", e))?;
            if pb.len() >= target {
                if let Some(pb) = current.take() {
                    flush
                        .send(pb)
                        .map_err(|_| Error::Poisoned("pack flusher stopped".into()))?;
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            shared.fail(e);
        }
    }
    if let Some(pb) = current.take() {
        if shared.check().is_ok() && !pb.is_empty() {
            let _ = flush.send(pb);
        }
    }
}

fn flusher(ds: &Datastore, shared: &SessionShared, rx: &Receiver<PackBuilder<WriteAdapter>>) {
    for pb in rx {
        if shared.check().is_err() {
            continue;
        }
        let r = (|| -> Result<()> {
            let (id, w, info, blobs) = pb.finish().map_err(|e| Error::io("write pack", e))?;
            // The pack is durable before the index mentions it. From its
            // rename to its index entry the GC lock is held shared: gc
            // takes it exclusively to tell leftovers (packs on disk that
            // the index does not know) from packs about to be indexed,
            // and deleted this one as a leftover when it looked in
            // between (with a grace period of 0 s).
            let _g = ds.gc_lock.read().unwrap_or_else(|e| e.into_inner());
            w.0.commit(&pack::object_name(&id))?;
            #[cfg(test)]
            crate::gc::tests::hook(&crate::gc::tests::RENAMED);
            ds.index.add_pack(&id, info, &blobs)?;
            drop(_g);
            shared
                .counters
                .packs_written
                .fetch_add(1, Ordering::Relaxed);
            Ok(())
        })();
        if let Err(e) = r {
            // After a failed write or fsync nothing later can be trusted.
            shared.fail(e);
        }
    }
}
