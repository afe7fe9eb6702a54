//! The one error type at the datastore's public boundary.

use std::io;

use crate::id::{ChunkId, PackId, SnapshotId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not an Arca datastore (no config file)")]
    NotADatastore(String),
    #[error("{what} format version {found} is newer than this arca supports ({supported}); upgrade arca")]
    UnsupportedVersion {
        /// What carries the version: "datastore", "keyfile", "blob", "pack".
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("this datastore is encrypted: give the passphrase with ARCA_PASSPHRASE or --passphrase-file")]
    PassphraseRequired,
    #[error("datastore already exists at {0}")]
    AlreadyExists(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Another writer holds the datastore's writer lock (`<datastore>/lock`,
    /// an exclusive `flock`); the text names the lock file.
    #[error("the datastore is in use by another arca process (writer lock {0} is held); try again when it finishes")]
    Locked(String),
    /// The writer lock is held by a long-running process that said who it
    /// is (an `arca server` or `arca node`), with how to work through it.
    #[error("the datastore is held by {0}")]
    Held(String),
    #[error("index: {0}")]
    Index(String),
    /// RocksDB reports corruption in the index (a checksum mismatch, a
    /// damaged CURRENT or MANIFEST). The index is a cache of the pack
    /// headers, so nothing is lost: `arca index rebuild` discards it and
    /// builds it again from the packs.
    #[error("the index is damaged ({0}); it is rebuilt from the packs with `arca index rebuild`")]
    IndexCorrupt(String),
    #[error("a previous write failed ({0}); refusing further writes in this session")]
    Poisoned(String),
    #[error("cancelled")]
    Cancelled,
    /// The index places a chunk in a pack that is not there. A reader
    /// whose view of the index is older than a repack sees this for a
    /// chunk that was moved; [`crate::Datastore::read_blob`] refreshes the
    /// view and looks again, and returns this error only when the pack is
    /// still missing after that: the chunk is lost.
    #[error("pack {pack} of chunk {chunk} is missing (the index was refreshed and still points there; run `arca verify`)")]
    PackMissing { pack: PackId, chunk: ChunkId },
    /// The index does not know a chunk that something references (after
    /// the view was refreshed: a chunk written since the view was taken is
    /// found).
    #[error("chunk {0} is not in the datastore")]
    ChunkMissing(ChunkId),
    /// A snapshot file exists but cannot be read back (damaged bytes).
    #[error("snapshot {id} is damaged ({reason})")]
    SnapshotDamaged { id: SnapshotId, reason: String },
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is the file system running out of space (ENOSPC), from
    /// our own I/O or from the index's.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.raw_os_error() == Some(28),
            Error::Index(s) => s.contains("No space left on device"),
            _ => false,
        }
    }
}

/// Attach a context string to I/O results.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
