//! Where datastore objects live.
//!
//! A backend stores named, immutable objects ("config", "keyfile",
//! "packs/ab/ab12…", "snapshots/…"). Names use '/' separators and never
//! start with '.'.
//!
//! Contract, for every implementation:
//! - `put` is atomic and durable: when it returns `Ok`, the whole object is
//!   stored and survives a crash or power loss; a reader never sees a partial
//!   object. An existing object of the same name is replaced atomically.
//!   When it returns `Err` (including a timeout), the object may or may not
//!   exist afterwards, but never partially: the caller may retry the same put.
//! - `get`/`get_range` return exactly the bytes stored, or
//!   `Error::NotFound` when the object does not exist, or `Error::Corrupt`
//!   when a range reaches past the end (a truncated object).
//! - `delete` is durable when it returns and succeeds when the object is
//!   already gone (so a retried delete is harmless).
//! - `list` returns the objects under a prefix folder; objects being written
//!   (temporary names) are not listed.
//! - `remove_stale_temporaries` removes temporaries untouched for longer
//!   than asked, except those a writer of this process is still writing.
//!   gc calls it with its grace period while it holds the writer lock: a
//!   temporary that no writer of this process owns then belongs to a writer
//!   that is gone (killed), and nothing will ever finish it.
//!
//! Wrappers: [`fault`] injects errors (ENOSPC, EIO, EROFS, short writes)
//! and crashes, with a power-loss model, under the local backend's real
//! write sequence.

pub mod fault;
mod fdcache;
mod local;

pub use local::{Direct, FileOps, LocalBackend};

use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::index::Index;

#[derive(Clone, Debug)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// An object being written piece by piece (packs). Nothing is visible under
/// any name until `commit`, which has the durability and atomicity of `put`.
/// Dropping a writer without committing leaves nothing behind but, at worst,
/// an unlisted temporary that `gc` removes.
pub trait ObjectWriter: Send {
    fn write(&mut self, data: &[u8]) -> Result<()>;
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

pub trait Backend: Send + Sync {
    fn put(&self, name: &str, data: &[u8]) -> Result<()>;
    /// Start a streamed object under the prefix folder `dir`.
    fn writer(&self, dir: &str) -> Result<Box<dyn ObjectWriter>>;
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    fn get_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    fn size(&self, name: &str) -> Result<u64>;
    fn exists(&self, name: &str) -> Result<bool>;
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    fn delete(&self, name: &str) -> Result<()>;
    /// Remove unfinished writes (temporaries left by a killed process)
    /// under `prefix` that have not been modified for `older_than`.
    /// Returns how many were removed and their bytes.
    fn remove_stale_temporaries(&self, prefix: &str, older_than: Duration) -> Result<(u64, u64)>;
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Called once when a datastore opens its index on this backend. The
    /// index's writes and syncs are part of the datastore's durability, so a
    /// fault-injecting wrapper counts and fails them beside its own; every
    /// other backend returns the index unchanged.
    fn wrap_index(&self, index: Box<dyn Index>) -> Box<dyn Index> {
        index
    }
}
