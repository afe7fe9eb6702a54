//! What a datastore knows of its open backup sessions: the registry GC
//! asks for the chunks and roots they hold, and each session's shared
//! state (references, roots, poisoning, counters). The write pipeline
//! itself is in the `session` module.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, Result};
use crate::id::ChunkId;

/// Live sessions of a datastore, for GC.
#[derive(Default)]
pub struct SessionRegistry {
    inner: Mutex<Vec<Weak<SessionShared>>>,
}

impl SessionRegistry {
    pub(crate) fn register(&self, s: &Arc<SessionShared>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|w| w.strong_count() > 0);
        g.push(Arc::downgrade(s));
    }

    /// Chunk ids referenced by open sessions, and the roots they build on.
    pub(crate) fn live(&self) -> (HashSet<ChunkId>, Vec<ChunkId>) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids = HashSet::new();
        let mut roots = Vec::new();
        for s in g.iter().filter_map(Weak::upgrade) {
            ids.extend(
                s.referenced
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter(),
            );
            roots.extend(s.roots.lock().unwrap_or_else(|e| e.into_inner()).iter());
        }
        (ids, roots)
    }

    pub fn open_sessions(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().filter(|w| w.strong_count() > 0).count()
    }
}

#[derive(Default)]
pub(crate) struct SessionShared {
    pub(crate) referenced: Mutex<HashSet<ChunkId>>,
    pub(crate) roots: Mutex<Vec<ChunkId>>,
    pub(crate) poisoned: Mutex<Option<String>>,
    /// The error that poisoned the session, kept whole (with its path and
    /// OS error) for the caller: every later failure is only its echo.
    pub(crate) first_error: Mutex<Option<Error>>,
    pub(crate) counters: Counters,
}

/// Running totals of a session, readable while it runs.
#[derive(Default, Debug)]
pub struct Counters {
    /// Stored bytes of new blobs (after compression and encryption).
    pub bytes_added: AtomicU64,
    /// Plaintext bytes submitted.
    pub bytes_submitted: AtomicU64,
    pub chunks_new: AtomicU64,
    pub chunks_total: AtomicU64,
    pub packs_written: AtomicU64,
}

impl SessionShared {
    pub(crate) fn poison(&self, msg: String) {
        let mut g = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(msg);
        }
    }
    /// Poison the session with `e`, keeping it if it is the first error.
    /// Returns its message.
    pub(crate) fn fail(&self, e: Error) -> String {
        let msg = e.to_string();
        let mut g = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(msg.clone());
            *self.first_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
        msg
    }
    pub(crate) fn check(&self) -> Result<()> {
        match &*self.poisoned.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(m) => Err(Error::Poisoned(m.clone())),
            None => Ok(()),
        }
    }
}
