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
//! - `remove_stale_temporaries` removes only temporaries untouched for
//!   longer than asked; gc calls it with a day or its grace period, whichever
//!   is longer, so an active writer is never disturbed.

mod local;

pub use local::LocalBackend;

use std::time::{Duration, SystemTime};

use crate::error::Result;

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
}
