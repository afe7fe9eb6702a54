//! Arca's frontends: restore points exposed over standard protocols.
//!
//! - [`reader`]: the shared restore-point reader (chunk table, bounded
//!   chunk cache, parallel fetch and read-ahead, holes without I/O).
//! - [`nbd`]: image restore points as NBD exports.
//! - [`tree`]: the read-only file tree of every restore point (files
//!   inside images too), for downloads, S3 and NFS.
//!
//! [`DatastoreExports`] names every image restore point of a datastore by
//! its full snapshot id, and `<SOURCE>/latest` the newest of a source.

mod inflight;
pub mod iscsi;
pub mod nbd;
pub mod overlay;
pub mod reader;
pub mod tree;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arca_repo::{Datastore, SnapshotId};

pub use reader::{cache_usage, chunk_cache, BlockSource, ChunkCache, Extent, ImageReader};
pub use tree::snapshot::quiesce;

/// The IQN prefix of Arca's iSCSI targets.
pub const IQN_PREFIX: &str = "iqn.2026-11.io.arca:";

/// The iSCSI target name of the export called `name`: the IQN prefix and
/// the name in lower case, with every character an IQN does not allow
/// (anything but `a-z 0-9 - . :`) replaced by `.` (so `web01/latest`
/// becomes `iqn.2026-11.io.arca:web01.latest`).
pub fn iscsi_target_name(name: &str) -> String {
    let mut out = String::from(IQN_PREFIX);
    out.extend(name.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == ':' {
            c
        } else {
            '.'
        }
    }));
    out
}

/// A CHAP credential (RFC 1994, as iSCSI uses it): the user name the
/// initiator gives and the secret both sides know.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    pub user: String,
    pub secret: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chap {{ user: {:?}, secret: <hidden> }}", self.user)
    }
}

/// What a block frontend (NBD, iSCSI) exports: disks by name.
///
/// An export list is *public* (the default: `arca serve`), or *private*
/// (exports started through the server, each with its own secret): then
/// nothing is listed (`NBD_OPT_LIST` is refused, an empty NBD name picks
/// nothing), and iSCSI discovery needs an export's CHAP credential and
/// shows only that export.
pub trait Exports: Send + Sync {
    /// Every export's name (NBD_OPT_LIST, iSCSI SendTargets); empty for
    /// a private list.
    fn names(&self) -> Vec<String>;
    /// The export called `name`, if there is one.
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>>;
    /// A line describing the export (`NBD_INFO_DESCRIPTION`).
    fn description(&self, _name: &str) -> Option<String> {
        None
    }
    /// Whether the list is private (see the trait's documentation).
    fn private(&self) -> bool {
        false
    }
    /// How logs name the export `name` (a name that carries a secret is
    /// logged without it).
    fn label(&self, name: &str) -> String {
        name.to_string()
    }
    /// The export whose iSCSI target name ([`iscsi_target_name`]) is `iqn`.
    fn by_target_name(&self, iqn: &str) -> Option<String> {
        let want = iqn.to_ascii_lowercase();
        self.names()
            .into_iter()
            .find(|n| iscsi_target_name(n) == want)
    }
    /// The CHAP credential a login to export `name` must present, when
    /// the export has its own (else the target-wide setting applies).
    fn chap(&self, _name: &str) -> Option<Chap> {
        None
    }
    /// The export whose own CHAP user is `user` (discovery of a private
    /// list authenticates as an export's user).
    fn by_chap_user(&self, _user: &str) -> Option<String> {
        None
    }
}

/// Compare secrets in time that depends only on their lengths.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)))
            == 0
}

/// The image restore points of one datastore, opened on first use and
/// kept open (the chunk table is read once).
pub struct DatastoreExports {
    ds: Arc<Datastore>,
    cache: Arc<ChunkCache>,
    open: Mutex<HashMap<SnapshotId, Arc<dyn BlockSource>>>,
    /// Writable: each export gets an overlay file in this directory.
    overlays: Option<std::path::PathBuf>,
}

impl DatastoreExports {
    pub fn new(ds: Arc<Datastore>, cache: Arc<ChunkCache>) -> Self {
        DatastoreExports {
            ds,
            cache,
            open: Mutex::new(HashMap::new()),
            overlays: None,
        }
    }

    /// Writable exports: writes go to an overlay per restore point in
    /// `dir` (the restore points never change). Overlays last as long as
    /// this process.
    pub fn writable(mut self, dir: std::path::PathBuf) -> Self {
        self.overlays = Some(dir);
        self
    }

    /// "read-only", or "writable (overlays)".
    pub fn mode(&self) -> &'static str {
        if self.overlays.is_some() {
            "writable (overlays)"
        } else {
            "read-only"
        }
    }

    fn snapshot(&self, name: &str) -> Option<arca_repo::Snapshot> {
        let snap = match name.strip_suffix("/latest") {
            Some(source) => self.ds.resolve_snapshot("latest", Some(source)).ok()?,
            None if name.len() == 64 => self.ds.resolve_snapshot(name, None).ok()?,
            None => return None,
        };
        snap.is_image().then_some(snap)
    }
}

impl Exports for DatastoreExports {
    fn names(&self) -> Vec<String> {
        let Ok(snaps) = self.ds.snapshots() else {
            return Vec::new();
        };
        let mut names = Vec::new();
        let mut sources = std::collections::BTreeSet::new();
        for s in snaps.iter().filter(|s| s.is_image()) {
            names.push(s.id.to_hex());
            sources.insert(s.manifest.source.clone());
        }
        names.extend(sources.into_iter().map(|s| format!("{s}/latest")));
        names
    }

    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        let snap = self.snapshot(name)?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = open.get(&snap.id) {
            return Some(r.clone());
        }
        let opened = ImageReader::open(self.ds.clone(), &snap, self.cache.clone()).and_then(|r| {
            let r: Arc<dyn BlockSource> = Arc::new(r);
            match &self.overlays {
                None => Ok(r),
                Some(dir) => {
                    let path = dir.join(format!("{}.overlay", snap.id));
                    overlay::remove(&path)?;
                    Ok(Arc::new(overlay::Overlay::create(r, &path)?) as Arc<dyn BlockSource>)
                }
            }
        });
        match opened {
            Ok(r) => {
                open.insert(snap.id, r.clone());
                Some(r)
            }
            Err(e) => {
                tracing::warn!("opening restore point {}: {e}", snap.id);
                None
            }
        }
    }

    fn description(&self, name: &str) -> Option<String> {
        let s = self.snapshot(name)?;
        Some(format!(
            "arca restore point {} of {} ({})",
            s.id,
            s.manifest.source,
            s.time().format("%Y-%m-%d %H:%M:%S UTC")
        ))
    }
}

/// Logs a client's use of an export: one record when it connects to the
/// export, one when the connection ends (on drop, whatever the way out).
/// The peer address is in the enclosing `client` span.
pub(crate) struct ClientLog {
    protocol: &'static str,
    export: String,
}

impl ClientLog {
    pub(crate) fn connected(protocol: &'static str, export: String) -> ClientLog {
        tracing::info!(target: "arca::export", protocol, export = %export, "export client connected");
        ClientLog { protocol, export }
    }
}

impl Drop for ClientLog {
    fn drop(&mut self) {
        tracing::info!(
            target: "arca::export",
            protocol = self.protocol,
            export = %self.export,
            "export client disconnected"
        );
    }
}
