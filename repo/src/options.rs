//! How a datastore is opened.

/// Which index implementation to open.
#[derive(Clone, Debug, Default)]
pub enum IndexKind {
    /// RocksDB under `<datastore>/index` (requires the `rocksdb` feature).
    #[default]
    Rocks,
    /// In memory, rebuilt from the packs at open: for tests.
    Memory,
}

#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub passphrase: Option<Vec<u8>>,
    pub index: IndexKind,
    /// Open for reading only: no lock is taken, and every write fails.
    pub read_only: bool,
    /// Who holds the datastore while it is open for writing (for example
    /// `arca server (pid 12) at http://host:8080; run gc through it: ...`).
    /// Written to `HELD-BY` so that a second process refused by the lock
    /// can say who holds it and how to work through that process.
    pub holder: Option<String>,
    /// Open to free space (prune, gc): on a full file system, the space
    /// reserve is released so that the index can open (see the `reserve`
    /// module).
    pub for_deletion: bool,
}
