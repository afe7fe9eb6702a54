//! Upload sessions of `arca agent` (docs/vm-ingest.md, "Agent"): the
//! datastore's side of an agent pushing a disk image backup, whoever
//! authenticated the agent. The all-in-one server mounts it behind its
//! gRPC `Ingest` service (arca-server's `agent` module checks the token
//! and records the task); a remote node that serves agents itself would
//! mount the same sessions over its own datastores.
//!
//! A session wraps one [`BackupSession`]. What the agent may list in its
//! chunk tables at [`Session::commit`] is exactly what the datastore is
//! known to hold for this session: the parent's chunks (registered as GC
//! roots at [`IngestSessions::begin`]), the chunks [`Session::have`] found
//! (recorded as the session's references under the GC lock), and the
//! chunks [`Session::put`] stored after checking each one's id against its
//! bytes. An id outside these, or of the wrong length for its block, is
//! refused, so an agent cannot make a restore point that points at data
//! the datastore lacks. Dropping a session without commit leaves the
//! chunks it stored for GC, as for any aborted backup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arca_repo::format::{Disk, Manifest, Stats};
use arca_repo::image::{self as table, IDS_PER_BLOB};
use arca_repo::{BackupSession, BlobKind, ChunkId, Datastore, PendingChunk, Snapshot, SnapshotId};

/// Open sessions at most (each runs a backup session's worker threads).
pub const MAX_SESSIONS: usize = 8;
/// Disks at most in one restore point.
pub const MAX_DISKS: usize = 64;
/// Ids at most in one [`Session::have`] call.
pub const MAX_HAVE: usize = 65536;
/// Parent chunk ids at most that [`IngestSessions::begin`] hands out (16
/// MiB of ids: a 512 GiB disk at 1 MiB chunks); beyond it the agent asks
/// [`Session::have`] for every chunk.
pub const MAX_PARENT_IDS: usize = 512 * 1024;
/// Chunks a `put` lets the workers hash and store before it waits for the
/// oldest one's answer.
const PUT_IN_FLIGHT: usize = 32;

/// Why a session call was refused.
#[derive(Debug)]
pub enum IngestError {
    /// No such session (never opened, committed, aborted or timed out).
    NotFound(String),
    /// What the agent sent is wrong (a chunk that does not match its id,
    /// a table that lists chunks the datastore was not shown to hold).
    Invalid(String),
    /// The session cannot do this now (too many open, already failed).
    State(String),
    /// The datastore failed.
    Store(arca_repo::Error),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::NotFound(m) | IngestError::Invalid(m) | IngestError::State(m) => {
                f.write_str(m)
            }
            IngestError::Store(e) => write!(f, "the datastore: {e}"),
        }
    }
}

impl From<arca_repo::Error> for IngestError {
    fn from(e: arca_repo::Error) -> Self {
        match e {
            arca_repo::Error::InvalidInput(m) => IngestError::Invalid(m),
            e => IngestError::Store(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, IngestError>;

/// A disk of the backup: its name in the restore point and its size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskSpec {
    pub name: String,
    pub size: u64,
}

/// A parent disk's chunk table as handed to the agent.
#[derive(Clone, Debug)]
pub struct ParentTable {
    pub name: String,
    pub size: u64,
    pub chunk_size: u32,
    /// Empty when the tables were omitted (too many ids).
    pub ids: Vec<ChunkId>,
    /// The tracking handle the parent's backup started (`Disk::cbt`).
    pub cbt: String,
}

/// One disk's table as the agent commits it, with how it was read.
#[derive(Clone, Debug, Default)]
pub struct DiskTable {
    pub spec: DiskSpec,
    /// One id per block, zero for a hole.
    pub ids: Vec<ChunkId>,
    /// "raw" or "qcow2" (`Disk::format`).
    pub format: String,
    /// The tracking handle this backup started (`Disk::cbt`).
    pub cbt: String,
    /// How the disk was read (`Disk::mode`).
    pub mode: String,
    pub bytes_read: u64,
}

/// What [`IngestSessions::begin`] tells the agent.
#[derive(Clone, Debug)]
pub struct Begun {
    pub session: String,
    pub chunk_size: u32,
    pub id_key: [u8; 32],
    pub parent: Option<SnapshotId>,
    pub parent_tables: Vec<ParentTable>,
    pub tables_omitted: bool,
}

/// A chunk as the agent uploads it.
pub struct Upload {
    pub id: ChunkId,
    pub length: u32,
    /// zstd, one frame.
    pub compressed: Vec<u8>,
}

/// What the agent reports at commit, beside its tables.
#[derive(Clone, Debug, Default)]
pub struct CommitInfo {
    pub backup_mode: String,
    pub bytes_read: u64,
    pub path: String,
    pub hostname: String,
    pub tags: Vec<String>,
    /// `image`, or `libvirt` (a domain backed up by its hypervisor's agent).
    pub source_kind: &'static str,
    /// The kind's record (a libvirt restore point's), empty for none.
    pub metadata_json: String,
}

/// A committed session.
#[derive(Clone, Debug)]
pub struct Committed {
    pub snapshot: SnapshotId,
    pub time_ns: i64,
    pub bytes_total: u64,
    pub bytes_added: u64,
    pub chunks_new: u64,
    pub duration_s: f64,
}

/// One agent's upload, and `T`, what the service that opened it keeps
/// with it (the task it records into).
pub struct Session<T> {
    pub id: String,
    pub meta: T,
    pub source: String,
    pub disks: Vec<DiskSpec>,
    pub ds: Arc<Datastore>,
    chunk_size: u32,
    parent: Option<Snapshot>,
    /// `None` once committed or aborted; Have and Put hold it shared,
    /// commit takes it.
    backup: RwLock<Option<BackupSession>>,
    /// Chunks the datastore holds for this session, with their lengths:
    /// the parent's, those Have found and those Put stored.
    known: Mutex<HashMap<ChunkId, u32>>,
    /// Compressed chunk bytes and chunks received by Put.
    pub bytes_received: AtomicU64,
    pub chunks_received: AtomicU64,
    last_call: Mutex<Instant>,
    started: Instant,
    /// Set once the session is ended ([`Session::end`], [`Session::abort`]).
    ended: std::sync::atomic::AtomicBool,
}

/// The open sessions.
pub struct IngestSessions<T> {
    open: Mutex<HashMap<String, Arc<Session<T>>>>,
}

impl<T> Default for IngestSessions<T> {
    fn default() -> Self {
        IngestSessions {
            open: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Length of block `i` of a disk of `size` bytes in blocks of `cs`.
fn block_len(size: u64, cs: u32, i: u64) -> u32 {
    (size - i * cs as u64).min(cs as u64) as u32
}

impl<T> IngestSessions<T> {
    /// Open a session for a backup of `disks` of source `source` into
    /// `ds`, building on `parent` (the source's newest restore point in
    /// that datastore). Refused when [`MAX_SESSIONS`] are open.
    pub fn begin(
        &self,
        ds: Arc<Datastore>,
        source: &str,
        disks: Vec<DiskSpec>,
        parent: Option<Snapshot>,
        meta: T,
    ) -> Result<(Arc<Session<T>>, Begun)> {
        if disks.is_empty() || disks.len() > MAX_DISKS {
            return Err(IngestError::Invalid(format!(
                "{} disks: give 1 to {MAX_DISKS}",
                disks.len()
            )));
        }
        for (i, d) in disks.iter().enumerate() {
            if d.name.is_empty() || d.name.len() > 255 || d.name.contains(['/', '\0']) {
                return Err(IngestError::Invalid(format!(
                    "disk name {:?}: give 1 to 255 bytes without '/' or NUL",
                    d.name
                )));
            }
            if disks[..i].iter().any(|o| o.name == d.name) {
                return Err(IngestError::Invalid(format!("disk {:?} twice", d.name)));
            }
        }
        if lock(&self.open).len() >= MAX_SESSIONS {
            return Err(IngestError::State(format!(
                "{MAX_SESSIONS} agent sessions are open; try again when one has ended"
            )));
        }
        let cs = ds.config().image_chunk_size;
        let frames = Some(ds.config().image_frame_size).filter(|&f| f > 0);
        let backup = ds.begin_session_framed(frames)?;
        let mut known = HashMap::new();
        let mut parent_tables = Vec::new();
        let parent_ids: u64 = parent.as_ref().map_or(0, |p| {
            p.manifest
                .disks
                .iter()
                .map(|d| table::block_count(d.size, d.chunk_size.max(1)))
                .sum()
        });
        let tables_omitted = parent_ids > MAX_PARENT_IDS as u64;
        if let (Some(p), false) = (&parent, tables_omitted) {
            let quarantined = ds.quarantined_ids()?;
            for d in p.manifest.disks.iter().filter(|d| d.chunk_size == cs) {
                // Registered before they are read, so GC keeps them.
                for t in &d.table {
                    backup.add_root(ChunkId::from_slice(t)?);
                }
                let mut ids = table::read_table(&ds, d)?;
                for (i, id) in ids.iter_mut().enumerate() {
                    if quarantined.contains(id) {
                        // Damaged: the agent must send it again.
                        *id = ChunkId::default();
                    } else if !id.is_zero() {
                        known.insert(*id, block_len(d.size, cs, i as u64));
                    }
                }
                parent_tables.push(ParentTable {
                    name: d.name.clone(),
                    size: d.size,
                    chunk_size: cs,
                    ids,
                    cbt: d.cbt.clone(),
                });
            }
        }
        let id = hex_id();
        let s = Arc::new(Session {
            id: id.clone(),
            meta,
            source: source.to_string(),
            disks,
            chunk_size: cs,
            parent: parent.clone(),
            backup: RwLock::new(Some(backup)),
            known: Mutex::new(known),
            bytes_received: AtomicU64::new(0),
            chunks_received: AtomicU64::new(0),
            last_call: Mutex::new(Instant::now()),
            started: Instant::now(),
            ended: Default::default(),
            ds: ds.clone(),
        });
        lock(&self.open).insert(id.clone(), s.clone());
        Ok((
            s,
            Begun {
                session: id,
                chunk_size: cs,
                id_key: ds.keys().id_key,
                parent: parent.map(|p| p.id),
                parent_tables,
                tables_omitted,
            },
        ))
    }

    /// The open session `id`.
    pub fn get(&self, id: &str) -> Result<Arc<Session<T>>> {
        lock(&self.open).get(id).cloned().ok_or_else(|| {
            IngestError::NotFound(format!(
                "no open agent session {id:?} (it was committed, aborted, or timed out)"
            ))
        })
    }

    /// Close session `id` (after commit, or to abort it): it is no longer
    /// found. Returns it if it was open.
    pub fn remove(&self, id: &str) -> Option<Arc<Session<T>>> {
        lock(&self.open).remove(id)
    }

    /// All open sessions (for the keeper that renews their tasks' leases
    /// and ends idle ones).
    pub fn all(&self) -> Vec<Arc<Session<T>>> {
        lock(&self.open).values().cloned().collect()
    }
}

/// 128 random bits in hex: a session name nobody guesses.
fn hex_id() -> String {
    let mut b = [0u8; 16];
    // getrandom fails only without an OS random source; the time is a
    // poor but unique stand-in then (the token guards the calls anyway).
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl<T> Session<T> {
    fn touch(&self) {
        *lock(&self.last_call) = Instant::now();
    }

    /// Mark the session ended (aborted, cancelled, timed out or being
    /// committed): its calls are refused from now on, and an upload in
    /// progress stops at its next chunk. True the first time only, so
    /// whoever ends it first records why.
    pub fn end(&self) -> bool {
        !self.ended.swap(true, Ordering::SeqCst)
    }

    fn check_ended(&self) -> Result<()> {
        if self.ended.load(Ordering::SeqCst) {
            return Err(IngestError::State(format!(
                "session {} has ended (aborted, cancelled or timed out)",
                self.id
            )));
        }
        Ok(())
    }

    /// Time since the agent's last call.
    pub fn idle(&self) -> Duration {
        lock(&self.last_call).elapsed()
    }

    /// Run `f` on the open backup session.
    fn with_backup<R>(&self, f: impl FnOnce(&BackupSession) -> Result<R>) -> Result<R> {
        self.touch();
        self.check_ended()?;
        let g = self.backup.read().unwrap_or_else(|e| e.into_inner());
        let b = g
            .as_ref()
            .ok_or_else(|| IngestError::State(format!("session {} has ended", self.id)))?;
        f(b)
    }

    /// Which of `ids` the datastore lacks (their indexes). The others are
    /// held for this session until it ends.
    pub fn have(&self, ids: &[ChunkId]) -> Result<Vec<u32>> {
        if ids.len() > MAX_HAVE {
            return Err(IngestError::Invalid(format!(
                "{} ids in one call; at most {MAX_HAVE}",
                ids.len()
            )));
        }
        self.with_backup(|b| {
            let mut missing = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                if lock(&self.known).contains_key(id) {
                    continue;
                }
                match b.lookup(*id)? {
                    Some(len) => {
                        lock(&self.known).insert(*id, len);
                    }
                    None => missing.push(i as u32),
                }
            }
            Ok(missing)
        })
    }

    /// Store uploaded chunks, as `next` yields them (`Ok(None)` at the end
    /// of the stream, `Err` when it broke): each is decompressed (at most
    /// the chunk size), hashed with the datastore's key and refused when
    /// its id differs. Returns the chunks stored. A refused chunk ends the
    /// call with the reason; the caller aborts the session.
    pub fn put<E: std::fmt::Display>(
        &self,
        mut next: impl FnMut() -> std::result::Result<Option<Upload>, E>,
    ) -> Result<u64> {
        let cs = self.chunk_size;
        self.with_backup(|b| {
            let mut pending: std::collections::VecDeque<(ChunkId, u32, PendingChunk)> =
                Default::default();
            let mut stored = 0u64;
            let mut settle = |p: (ChunkId, u32, PendingChunk)| -> Result<()> {
                p.2.wait().map_err(|e| b.cause(e))?;
                lock(&self.known).insert(p.0, p.1);
                stored += 1;
                Ok(())
            };
            loop {
                let u = match next() {
                    Ok(Some(u)) => u,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(IngestError::State(format!("the upload stream broke: {e}")))
                    }
                };
                self.touch();
                self.check_ended()?;
                self.bytes_received
                    .fetch_add(u.compressed.len() as u64, Ordering::Relaxed);
                self.chunks_received.fetch_add(1, Ordering::Relaxed);
                let data = decompress(&u, cs)?;
                pending.push_back((
                    u.id,
                    u.length,
                    b.submit_expecting(BlobKind::Data, data, u.id)?,
                ));
                if pending.len() >= PUT_IN_FLIGHT {
                    if let Some(p) = pending.pop_front() {
                        settle(p)?;
                    }
                }
            }
            for p in pending {
                settle(p)?;
            }
            Ok(stored)
        })
    }

    /// Write the restore point: every disk's table (`ids`: one per block,
    /// zero for a hole), checked against what the datastore is known to
    /// hold for this session, then the manifest. The session is over
    /// afterwards, whatever the outcome.
    pub fn commit(&self, tables: Vec<DiskTable>, info: &CommitInfo) -> Result<Committed> {
        self.touch();
        self.check_ended()?;
        // Never waits: an upload or Have of this session still running
        // (the agent's own calls) makes the commit fail instead.
        let backup = match self.backup.try_write() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(IngestError::State(format!(
                    "another call of session {} is still running",
                    self.id
                )))
            }
        }
        .ok_or_else(|| IngestError::State(format!("session {} has ended", self.id)))?;
        let cs = self.chunk_size;
        if tables.len() != self.disks.len()
            || tables.iter().zip(&self.disks).any(|(t, d)| t.spec != *d)
        {
            return Err(IngestError::Invalid(
                "the tables are not of the disks the session was opened for (names and sizes, in order)".into(),
            ));
        }
        let known = lock(&self.known);
        let mut disks = Vec::new();
        for t in &tables {
            let (d, ids) = (&t.spec, &t.ids);
            let blocks = table::block_count(d.size, cs);
            if ids.len() as u64 != blocks {
                return Err(IngestError::Invalid(format!(
                    "disk {}: {} ids for {blocks} blocks",
                    d.name,
                    ids.len()
                )));
            }
            for (i, id) in ids.iter().enumerate().filter(|(_, id)| !id.is_zero()) {
                let want = block_len(d.size, cs, i as u64);
                match known.get(id) {
                    Some(&len) if len == want => {}
                    Some(&len) => {
                        return Err(IngestError::Invalid(format!(
                            "disk {} block {i}: chunk {} holds {len} bytes, the block {want}",
                            d.name,
                            id.short()
                        )))
                    }
                    None => {
                        return Err(IngestError::Invalid(format!(
                            "disk {} block {i}: chunk {} was neither uploaded, nor found by Have, nor in the parent",
                            d.name,
                            id.short()
                        )))
                    }
                }
            }
            let mut table_ids = Vec::new();
            for part in ids.chunks(IDS_PER_BLOB) {
                let t = backup
                    .store(BlobKind::ImageTable, &table::encode_table_blob(part))
                    .map_err(|e| backup.cause(e))?;
                table_ids.push(t.0.to_vec());
            }
            disks.push(Disk {
                name: d.name.clone(),
                size: d.size,
                chunk_size: cs,
                table: table_ids,
                holes: ids.iter().filter(|i| i.is_zero()).count() as u64,
                format: t.format.chars().take(16).collect(),
                cbt: t.cbt.chars().take(256).collect(),
                mode: t.mode.chars().take(1024).collect(),
                bytes_read: t.bytes_read,
                ..Default::default()
            });
        }
        drop(known);
        let bytes_total = self.disks.iter().map(|d| d.size).sum();
        let time_ns = chrono_now_ns();
        let manifest = Manifest {
            source_kind: info.source_kind.into(),
            metadata_json: info.metadata_json.clone(),
            source: self.source.clone(),
            time_ns,
            parent: self
                .parent
                .as_ref()
                .map(|p| p.id.0.to_vec())
                .unwrap_or_default(),
            tags: info.tags.clone(),
            disks,
            hostname: info.hostname.clone(),
            backup_mode: info.backup_mode.clone(),
            path: info.path.clone(),
            stats: Some(Stats {
                files: self.disks.len() as u64,
                bytes_read: info.bytes_read,
                bytes_total,
                duration_s: self.started.elapsed().as_secs_f64(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let snapshot = backup.commit(manifest)?;
        // The counters as commit recorded them in the manifest.
        let stats = self
            .ds
            .load_snapshot(&snapshot)?
            .manifest
            .stats
            .unwrap_or_default();
        Ok(Committed {
            snapshot,
            time_ns,
            bytes_total,
            bytes_added: stats.bytes_added,
            chunks_new: stats.chunks_new,
            duration_s: self.started.elapsed().as_secs_f64(),
        })
    }

    /// End the session without a restore point: what it stored is left
    /// for GC. Never waits for a call of the session still running (an
    /// upload waits for the agent, which may wait for a `Have` of its
    /// own): that call sees the session ended at its next chunk, fails,
    /// and its caller aborts again, which then drops the backup session.
    pub fn abort(&self) {
        self.ended.store(true, Ordering::SeqCst);
        let b = match self.backup.try_write() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        drop(b);
    }
}

/// A chunk's plaintext: at most `cs` bytes, and as many as declared.
fn decompress(u: &Upload, cs: u32) -> Result<Vec<u8>> {
    arca_proto::agent::plaintext(&u.compressed, u.length, cs)
        .map_err(|e| IngestError::Invalid(format!("chunk {}: {e}", u.id.short())))
}

fn chrono_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests;
