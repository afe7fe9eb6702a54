//! Fault injection and crash simulation under the local backend.
//!
//! [`Faults`] runs the real [`LocalBackend`] code through a [`FileOps`]
//! that counts every file system call and can make a chosen one fail:
//!
//! - **errors**: the Nth call of a kind ([`Op`]), or every call of a kind
//!   from the Nth on (a disk that stays full or read-only), fails with
//!   ENOSPC, EIO or EROFS; a **short write** writes half of its buffer and
//!   fills the disk: every later write, create and mkdir fails with ENOSPC.
//! - **crashes**: at mutation `k` (creates, writes, fsyncs, renames,
//!   removes, mkdirs, and the index's writes and syncs, counted together in
//!   the order they happen), the call fails and so does every later call,
//!   reads included: the process is dead from that point on, and what it
//!   does in its error paths (removing temporaries) does not happen.
//!   - *process crash*: what was done before `k` stays, as after `kill -9`
//!     (the kernel keeps written data whether or not it was fsynced).
//!   - *power loss* ([`Faults::power_loss`], after the datastore is
//!     dropped): the directory is rolled back to what was durable at `k`:
//!     a file's content is what it held at its last fsync (empty if never
//!     fsynced), and a directory holds the entries it had at its last fsync
//!     (or at the start, if never fsynced): creates, renames and unlinks not
//!     followed by an fsync of their directory are undone. This is the most
//!     pessimistic model POSIX allows for whole operations.
//!
//! **The index.** RocksDB writes its own files and is not under this
//! wrapper. Its writes are counted and failed through
//! [`Backend::wrap_index`]: `add_pack`, `remove_blobs` and `clear` are
//! index writes, `sync` an index sync. In the power-loss model the index
//! directory is rolled back to a copy taken at the last index sync (or at
//! open): RocksDB's WAL is treated as durable exactly at its own fsync
//! (`sync`, and the synced writes of `remove_blobs` and `clear`), and every
//! unsynced write after it is lost. What this does not cover: torn writes
//! inside RocksDB's own files, a lost fsync that RocksDB does internally
//! (flushes, compactions, MANIFEST), and files written outside the backend
//! (the index marker, `HELD-BY`, gc's spill files; the space reserve and
//! the writer lock are left as they are).
//!
//! Not covered either: partially durable data of one write (torn sectors),
//! reordering of data within a file, and renames across directories (the
//! local backend never does them).
//!
//! Cheap when unused: the real backend uses [`super::Direct`], whose calls
//! are inlined; nothing here runs unless a test builds a [`Faults`].

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::local::{Direct, FileOps, LocalBackend};
use super::Backend;
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId};
use crate::index::{Index, Location, PackInfo};

/// Kinds of calls, counted separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Create a new file.
    Create,
    /// One `write` call on a file (a buffered writer issues one per buffer).
    Write,
    /// fsync of a file or of a directory.
    Fsync,
    Rename,
    Remove,
    /// Create a directory (and its parents).
    Mkdir,
    /// Read a file (whole or a range). Not a crash point.
    Read,
    /// An index write (`add_pack`, `remove_blobs`, `clear`).
    IndexWrite,
    /// An index sync (WAL fsync).
    IndexSync,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Create,
        Op::Write,
        Op::Fsync,
        Op::Rename,
        Op::Remove,
        Op::Mkdir,
        Op::Read,
        Op::IndexWrite,
        Op::IndexSync,
    ];

    /// Whether the call changes state (and so is a crash point).
    pub fn is_mutation(self) -> bool {
        self != Op::Read
    }

    fn grows_space(self) -> bool {
        matches!(self, Op::Create | Op::Write | Op::Mkdir)
    }
}

/// An injected error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// ENOSPC: no space left on device.
    NoSpace,
    /// EIO: input/output error.
    Io,
    /// EROFS: read-only file system.
    ReadOnly,
    /// A write that stores half of its buffer and then finds the disk full
    /// (only for [`Op::Write`]; elsewhere it is [`Fault::NoSpace`]).
    ShortWrite,
}

// Linux errno values; the messages are the OS's own ("No space left on
// device (os error 28)").
const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EROFS: i32 = 30;

impl Fault {
    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            Fault::NoSpace | Fault::ShortWrite => ENOSPC,
            Fault::Io => EIO,
            Fault::ReadOnly => EROFS,
        })
    }
}

/// One counted call, for diagnostics and for choosing crash points.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// Position among mutations (1-based), 0 for reads.
    pub seq: u64,
    pub op: Op,
    /// The path relative to the datastore, or what the index did.
    pub what: String,
}

struct Rule {
    op: Op,
    from: u64,
    through: u64,
    fault: Fault,
}

#[derive(Default)]
struct Counters {
    per_op: BTreeMap<Op, u64>,
    mutations: u64,
    log: Vec<OpRecord>,
}

struct State {
    root: PathBuf,
    rules: Mutex<Vec<Rule>>,
    counters: Mutex<Counters>,
    /// The mutation at which the process "dies" (0: never).
    crash_at: Mutex<u64>,
    crashed: AtomicBool,
    /// After a short write: every write, create and mkdir finds no space.
    full: AtomicBool,
    injected: Mutex<Vec<String>>,
    /// The power-loss model, when enabled.
    model: Mutex<Option<Model>>,
    /// The index directory as of its last sync (power-loss model).
    index_image: Mutex<Option<Tree>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn crashed_error() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

impl State {
    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// Count a call and decide its fate: `Err` to fail it, `Ok(true)` for
    /// a short write, `Ok(false)` to let it run.
    fn enter(&self, op: Op, what: impl FnOnce() -> String) -> io::Result<bool> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(crashed_error());
        }
        let what = what();
        let n = {
            let mut c = lock(&self.counters);
            let n = {
                let e = c.per_op.entry(op).or_default();
                *e += 1;
                *e
            };
            let seq = if op.is_mutation() {
                c.mutations += 1;
                c.mutations
            } else {
                0
            };
            c.log.push(OpRecord {
                seq,
                op,
                what: what.clone(),
            });
            if seq != 0 && seq == *lock(&self.crash_at) {
                // Decided under the counter lock, so that no other thread
                // slips a mutation in after the crash point.
                self.crashed.store(true, Ordering::SeqCst);
                lock(&self.injected).push(format!("crash at mutation {seq}: {op:?} {what}"));
                return Err(crashed_error());
            }
            n
        };
        if op.grows_space() && self.full.load(Ordering::SeqCst) {
            lock(&self.injected).push(format!("{op:?} #{n} {what}: disk full"));
            return Err(Fault::NoSpace.error());
        }
        let fault = lock(&self.rules)
            .iter()
            .find(|r| r.op == op && (r.from..=r.through).contains(&n))
            .map(|r| r.fault);
        match fault {
            None => Ok(false),
            Some(f) => {
                lock(&self.injected).push(format!("{op:?} #{n} {what}: {f:?}"));
                if f == Fault::ShortWrite && op == Op::Write {
                    Ok(true)
                } else {
                    Err(f.error())
                }
            }
        }
    }

    fn check_alive(&self) -> Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            Err(Error::io("index", crashed_error()))
        } else {
            Ok(())
        }
    }

    fn with_model(&self, f: impl FnOnce(&mut Model) -> io::Result<()>) -> io::Result<()> {
        match lock(&self.model).as_mut() {
            Some(m) => f(m),
            None => Ok(()),
        }
    }

    fn index_durable(&self) -> io::Result<()> {
        if lock(&self.model).is_some() {
            *lock(&self.index_image) = Some(read_tree(&self.root.join("index"))?);
        }
        Ok(())
    }
}

/// A handle on the injected faults of one datastore directory. Clones share
/// the same counters and rules.
#[derive(Clone)]
pub struct Faults {
    state: Arc<State>,
}

impl Faults {
    /// Count and fail calls under `root` (the datastore directory).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Faults {
            state: Arc::new(State {
                root: root.into(),
                rules: Mutex::new(Vec::new()),
                counters: Mutex::new(Counters::default()),
                crash_at: Mutex::new(0),
                crashed: AtomicBool::new(false),
                full: AtomicBool::new(false),
                injected: Mutex::new(Vec::new()),
                model: Mutex::new(None),
                index_image: Mutex::new(None),
            }),
        }
    }

    /// Like `new`, and also track what is durable, for [`Faults::power_loss`].
    /// Everything under `root` now counts as durable. Holds a copy of the
    /// datastore in memory: for small test datastores.
    pub fn with_power_loss_model(root: impl Into<PathBuf>) -> Result<Self> {
        let f = Self::new(root);
        let model = Model::load(&f.state.root)
            .map_err(|e| Error::io("power-loss model: read the datastore", e))?;
        *lock(&f.state.model) = Some(model);
        *lock(&f.state.index_image) = Some(
            read_tree(&f.state.root.join("index"))
                .map_err(|e| Error::io("power-loss model: read the index", e))?,
        );
        Ok(f)
    }

    /// The local backend of this directory, with these faults.
    pub fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(LocalBackend::with_fs(
            self.state.root.clone(),
            FaultFs {
                state: self.state.clone(),
            },
        ))
    }

    /// Fail the `n`th call (1-based) of kind `op`.
    pub fn fail_nth(&self, op: Op, n: u64, fault: Fault) {
        lock(&self.state.rules).push(Rule {
            op,
            from: n,
            through: n,
            fault,
        });
    }

    /// Fail the `n`th call of kind `op` and every later one (a disk that
    /// stays full, or a file system that stays read-only).
    pub fn fail_from(&self, op: Op, n: u64, fault: Fault) {
        lock(&self.state.rules).push(Rule {
            op,
            from: n,
            through: u64::MAX,
            fault,
        });
    }

    /// Every call that needs space (create, write, mkdir) fails with
    /// ENOSPC from now on; removes, renames, fsyncs and the index work.
    pub fn disk_full(&self) {
        for op in [Op::Create, Op::Write, Op::Mkdir] {
            let n = self.count(op) + 1;
            self.fail_from(op, n, Fault::NoSpace);
        }
    }

    /// Remove every rule and the full disk of a short write ("space was
    /// freed"). A crash stays a crash.
    pub fn clear(&self) {
        lock(&self.state.rules).clear();
        self.state.full.store(false, Ordering::SeqCst);
    }

    /// Crash at mutation `k` (1-based, counted as in [`Faults::mutations`]).
    pub fn crash_at(&self, k: u64) {
        *lock(&self.state.crash_at) = k;
    }

    /// Whether the simulated crash happened.
    pub fn crashed(&self) -> bool {
        self.state.crashed.load(Ordering::SeqCst)
    }

    /// Calls of kind `op` so far.
    pub fn count(&self, op: Op) -> u64 {
        lock(&self.state.counters)
            .per_op
            .get(&op)
            .copied()
            .unwrap_or(0)
    }

    /// Mutations so far (the crash points).
    pub fn mutations(&self) -> u64 {
        lock(&self.state.counters).mutations
    }

    /// Every counted call, in order.
    pub fn log(&self) -> Vec<OpRecord> {
        lock(&self.state.counters).log.clone()
    }

    /// The faults and the crash that were actually injected.
    pub fn injected(&self) -> Vec<String> {
        lock(&self.state.injected).clone()
    }

    /// Roll the directory back to what was durable (see the module
    /// documentation). Call it after the datastore is dropped, so that no
    /// thread of it is still running; needs [`Faults::with_power_loss_model`].
    pub fn power_loss(&self) -> Result<()> {
        self.state.crashed.store(true, Ordering::SeqCst);
        let model = lock(&self.state.model).take().ok_or_else(|| {
            Error::InvalidInput("power_loss needs Faults::with_power_loss_model".into())
        })?;
        model
            .restore()
            .map_err(|e| Error::io("power-loss model: restore the datastore", e))?;
        if let Some(image) = lock(&self.state.index_image).take() {
            let dir = self.state.root.join("index");
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::io("power-loss model: remove the index", e))
                }
                _ => {}
            }
            write_tree(&dir, &image)
                .map_err(|e| Error::io("power-loss model: restore the index", e))?;
        }
        Ok(())
    }
}

/// The [`FileOps`] of [`Faults`].
#[derive(Clone)]
pub struct FaultFs {
    state: Arc<State>,
}

/// A file written through [`FaultFs`].
pub struct FaultFile {
    file: File,
    path: PathBuf,
    state: Arc<State>,
}

impl Write for FaultFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let st = self.state.clone();
        let short = st.enter(Op::Write, || st.rel(&self.path))?;
        if short {
            let half = buf.len() / 2;
            self.state.full.store(true, Ordering::SeqCst);
            if half == 0 {
                return Err(Fault::NoSpace.error());
            }
            self.file.write_all(&buf[..half])?;
            return Ok(half);
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl FileOps for FaultFs {
    type File = FaultFile;

    fn create_new(&self, path: &Path) -> io::Result<FaultFile> {
        let st = &self.state;
        st.enter(Op::Create, || st.rel(path))?;
        let file = Direct.create_new(path)?;
        st.with_model(|m| {
            m.created(path);
            Ok(())
        })?;
        Ok(FaultFile {
            file,
            path: path.to_path_buf(),
            state: st.clone(),
        })
    }

    fn sync_file(&self, file: &mut FaultFile, path: &Path) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Fsync, || st.rel(path))?;
        file.file.sync_all()?;
        st.with_model(|m| m.synced_file(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Rename, || format!("{} -> {}", st.rel(from), st.rel(to)))?;
        fs::rename(from, to)?;
        st.with_model(|m| {
            m.renamed(from, to);
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Remove, || st.rel(path))?;
        fs::remove_file(path)?;
        st.with_model(|m| {
            m.removed(path);
            Ok(())
        })
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Mkdir, || st.rel(dir))?;
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(dir)?;
        st.with_model(|m| {
            m.dirs_created(&missing);
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Fsync, || format!("{}/", st.rel(dir)))?;
        Direct.sync_dir(dir)?;
        st.with_model(|m| m.synced_dir(dir))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = &self.state;
        st.enter(Op::Read, || st.rel(path))?;
        Direct.read(path)
    }

    fn read_at(&self, file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let st = &self.state;
        st.enter(Op::Read, || st.rel(path))?;
        Direct.read_at(file, path, offset, buf)
    }

    fn wrap_index(&self, index: Box<dyn Index>) -> Box<dyn Index> {
        // The index as opened is durable (RocksDB syncs what it writes at open).
        let _ = self.state.index_durable();
        Box::new(FaultIndex {
            inner: index,
            state: self.state.clone(),
        })
    }
}

/// Counts and fails the index's writes and syncs beside the files.
struct FaultIndex {
    inner: Box<dyn Index>,
    state: Arc<State>,
}

impl FaultIndex {
    fn enter(&self, op: Op, what: impl FnOnce() -> String) -> Result<()> {
        let what = what();
        self.state
            .enter(op, || format!("index {what}"))
            .map(|_| ())
            .map_err(|e| Error::io(format!("index {what}"), e))
    }

    fn durable(&self) -> Result<()> {
        self.state
            .index_durable()
            .map_err(|e| Error::io("power-loss model: copy the index", e))
    }
}

impl Index for FaultIndex {
    fn get(&self, id: &ChunkId) -> Result<Option<Location>> {
        self.state.check_alive()?;
        self.inner.get(id)
    }

    fn add_pack(&self, pack: &PackId, info: PackInfo, blobs: &[(ChunkId, Location)]) -> Result<()> {
        self.enter(Op::IndexWrite, || format!("add_pack {}", pack.short()))?;
        self.inner.add_pack(pack, info, blobs)
    }

    fn remove_blobs(&self, pack: &PackId, blobs: &[ChunkId], drop_pack: bool) -> Result<()> {
        self.enter(Op::IndexWrite, || format!("remove_blobs {}", pack.short()))?;
        self.inner.remove_blobs(pack, blobs, drop_pack)?;
        // A synced write.
        self.durable()
    }

    fn packs(&self) -> Result<Vec<(PackId, PackInfo)>> {
        self.state.check_alive()?;
        self.inner.packs()
    }

    fn for_each_blob(&self, f: &mut dyn FnMut(ChunkId, Location) -> Result<()>) -> Result<()> {
        self.state.check_alive()?;
        self.inner.for_each_blob(f)
    }

    fn sync(&self) -> Result<()> {
        self.enter(Op::IndexSync, || "sync".into())?;
        self.inner.sync()?;
        self.durable()
    }

    fn clear(&self) -> Result<()> {
        self.enter(Op::IndexWrite, || "clear".into())?;
        self.inner.clear()?;
        self.durable()
    }

    fn refresh(&self) -> Result<bool> {
        self.state.check_alive()?;
        self.inner.refresh()
    }
}

mod model;
use model::*;

#[cfg(test)]
mod tests;
