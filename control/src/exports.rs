//! A node's exports: the restore points the catalog says this node must
//! serve over NBD or iSCSI (`arca mount`), kept in step with it.
//!
//! A node runs one NBD server and one iSCSI server for all its exports;
//! [`ExportHost::reconcile`] adds and removes exports as the catalog's
//! list changes, and reports each one's address (or why it failed).
//! [`run`] waits on the coordinator for changes, so a new export is
//! served within milliseconds of the API call.
//!
//! - Writable exports keep writes in an overlay `<overlays>/<id>.overlay`
//!   whose flushed pages survive a restart of the node. When the export
//!   ends, the overlay is deleted, unless it is to be committed: then the
//!   commit task (kind `commit-export`) writes it as a new restore point
//!   and deletes it.
//! - A stopped or expired export is revoked at once: its clients' next
//!   reads and writes fail.
//! - The restore points being exported are *held*: retention keeps them
//!   (see [`ExportHost::held`]).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arca_frontends::{overlay, BlockSource, ChunkCache, Exports, Extent, ImageReader};
use arca_repo::{Datastore, Error as RepoError, Result as RepoResult};

use crate::runner::{Coordinator, DatastoreRef};

/// An export as the node needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSpec {
    pub id: i64,
    pub restore_point: String,
    pub datastore: DatastoreRef,
    pub protocol: String,
    pub writable: bool,
    pub name: String,
    pub state: String,
    pub on_stop: String,
}

impl ExportSpec {
    pub fn is_live(&self) -> bool {
        arca_catalog::LIVE_EXPORT_STATES.contains(&self.state.as_str())
    }
}

/// A block source that can be cut off: after [`Revocable::revoke`],
/// reads and writes fail ("the export was stopped").
struct Revocable {
    inner: RwLock<Option<Arc<dyn BlockSource>>>,
    size: u64,
    writable: bool,
}

impl Revocable {
    fn get(&self) -> RepoResult<Arc<dyn BlockSource>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| RepoError::InvalidInput("the export was stopped".into()))
    }

    fn revoke(&self) -> Option<Arc<dyn BlockSource>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl BlockSource for Revocable {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> RepoResult<()> {
        self.get()?.read_at(offset, buf)
    }
    fn extents(&self, offset: u64, len: u64) -> RepoResult<Vec<Extent>> {
        self.get()?.extents(offset, len)
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> RepoResult<()> {
        self.get()?.write_at(offset, data)
    }
    fn flush(&self) -> RepoResult<()> {
        self.get()?.flush()
    }
}

struct Served {
    spec: ExportSpec,
    source: Arc<Revocable>,
    description: String,
}

/// The exports one node serves, by name.
#[derive(Default)]
pub struct Table {
    by_name: RwLock<BTreeMap<String, Served>>,
}

impl Exports for Table {
    fn names(&self) -> Vec<String> {
        let t = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        t.keys().cloned().collect()
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        let t = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        t.get(name)
            .map(|s| s.source.clone() as Arc<dyn BlockSource>)
    }
    fn description(&self, name: &str) -> Option<String> {
        let t = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        t.get(name).map(|s| s.description.clone())
    }
}

/// Where this node's protocol servers listen, as clients must dial them.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    pub nbd: Option<SocketAddr>,
    pub iscsi: Option<SocketAddr>,
    /// The host name or address put in export addresses (default: the
    /// listening address).
    pub host: Option<String>,
    /// The NBD server requires TLS (addresses are `nbds://`).
    pub nbd_tls: bool,
}

/// Opens a datastore of the node (the runner's, kept open).
type OpenDatastore = dyn Fn(&DatastoreRef) -> Result<Arc<Datastore>, String> + Send + Sync;

/// A node's export tables (one per protocol) and the servers' addresses.
pub struct ExportHost {
    /// What the NBD server serves.
    pub nbd: Arc<Table>,
    /// What the iSCSI target serves.
    pub iscsi: Arc<Table>,
    listeners: Listeners,
    overlays: PathBuf,
    cache: Arc<ChunkCache>,
    open_datastore: Box<OpenDatastore>,
}

/// The overlay file of a writable export.
pub fn overlay_path(dir: &Path, export_id: i64) -> PathBuf {
    dir.join(format!("{export_id}.overlay"))
}

/// The iSCSI target name of an export called `name`.
pub fn iqn(name: &str) -> String {
    arca_frontends::iscsi_target_name(name)
}

impl ExportHost {
    pub fn new(
        listeners: Listeners,
        overlays: PathBuf,
        cache: Arc<ChunkCache>,
        open_datastore: impl Fn(&DatastoreRef) -> Result<Arc<Datastore>, String> + Send + Sync + 'static,
    ) -> ExportHost {
        ExportHost {
            nbd: Arc::new(Table::default()),
            iscsi: Arc::new(Table::default()),
            listeners,
            overlays,
            cache,
            open_datastore: Box::new(open_datastore),
        }
    }

    pub fn overlays(&self) -> &Path {
        &self.overlays
    }

    /// Whether export `id` is still served (its clients may still write).
    pub fn serves(&self, id: i64) -> bool {
        self.tables().iter().any(|(_, t)| {
            let t = t.by_name.read().unwrap_or_else(|e| e.into_inner());
            t.values().any(|s| s.spec.id == id)
        })
    }

    fn tables(&self) -> [(&'static str, &Table); 2] {
        [("nbd", &self.nbd), ("iscsi", &self.iscsi)]
    }

    /// The restore points being exported (retention keeps them).
    pub fn held(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for (_, t) in self.tables() {
            let t = t.by_name.read().unwrap_or_else(|e| e.into_inner());
            out.extend(t.values().map(|s| s.spec.restore_point.clone()));
        }
        out
    }

    fn address(&self, spec: &ExportSpec) -> Result<String, String> {
        let (addr, scheme) = match spec.protocol.as_str() {
            "nbd" => (self.listeners.nbd, "nbd"),
            "iscsi" => (self.listeners.iscsi, "iscsi"),
            p => return Err(format!("unknown protocol {p:?}")),
        };
        let addr = addr.ok_or_else(|| {
            format!(
                "this node does not serve {} (start it with --{}-listen)",
                spec.protocol, spec.protocol
            )
        })?;
        let host = match &self.listeners.host {
            Some(h) => h.clone(),
            None if addr.ip().is_unspecified() => arca_ingest::hostname(),
            None => addr.ip().to_string(),
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(match scheme {
            "nbd" if self.listeners.nbd_tls => {
                format!("nbds://{host}:{}/{}", addr.port(), spec.name)
            }
            "nbd" => format!("nbd://{host}:{}/{}", addr.port(), spec.name),
            _ => format!("iscsi://{host}:{}/{}/0", addr.port(), iqn(&spec.name)),
        })
    }

    fn open(&self, spec: &ExportSpec) -> Result<Served, String> {
        self.address(spec)?;
        let ds = (self.open_datastore)(&spec.datastore)?;
        let snap = ds
            .resolve_snapshot(&spec.restore_point, None)
            .map_err(|e| format!("restore point {}: {e}", spec.restore_point))?;
        if !snap.is_image() {
            return Err(format!(
                "restore point {} is a file backup; only image restore points can be exported as disks",
                spec.restore_point
            ));
        }
        let reader: Arc<dyn BlockSource> =
            Arc::new(ImageReader::open(ds, &snap, self.cache.clone()).map_err(|e| e.to_string())?);
        let source: Arc<dyn BlockSource> = if spec.writable {
            std::fs::create_dir_all(&self.overlays)
                .map_err(|e| format!("create {}: {e}", self.overlays.display()))?;
            Arc::new(
                overlay::Overlay::open(reader, &overlay_path(&self.overlays, spec.id))
                    .map_err(|e| e.to_string())?,
            )
        } else {
            reader
        };
        Ok(Served {
            spec: spec.clone(),
            description: format!(
                "arca restore point {} of {} ({})",
                snap.id,
                snap.manifest.source,
                snap.time().format("%Y-%m-%d %H:%M:%S UTC")
            ),
            source: Arc::new(Revocable {
                size: source.size(),
                writable: source.writable(),
                inner: RwLock::new(Some(source)),
            }),
        })
    }

    /// Serve exactly the live exports of `specs`; clean up after the
    /// ended ones. Returns, per export to report, its address or error.
    pub fn reconcile(&self, specs: &[ExportSpec]) -> Vec<(i64, Result<String, String>)> {
        let mut reports = Vec::new();
        for (protocol, table) in self.tables() {
            let mine: Vec<&ExportSpec> = specs.iter().filter(|s| s.protocol == protocol).collect();
            self.reconcile_table(table, &mine, &mut reports);
        }
        // Exports of a protocol this node does not know.
        for spec in specs
            .iter()
            .filter(|s| s.is_live() && s.state == "starting")
        {
            if !self.tables().iter().any(|(p, _)| *p == spec.protocol) {
                reports.push((spec.id, self.address(spec)));
            }
        }
        for spec in specs.iter().filter(|s| !s.is_live() && s.writable) {
            if spec.on_stop == "discard" {
                let p = overlay_path(&self.overlays, spec.id);
                if p.exists() {
                    if let Err(e) = overlay::remove(&p) {
                        tracing::warn!("discarding the overlay of export {}: {e}", spec.id);
                    }
                }
            }
        }
        reports
    }

    fn reconcile_table(
        &self,
        table: &Table,
        specs: &[&ExportSpec],
        reports: &mut Vec<(i64, Result<String, String>)>,
    ) {
        let live: BTreeMap<&str, &ExportSpec> = specs
            .iter()
            .filter(|s| s.is_live())
            .map(|s| (s.name.as_str(), *s))
            .collect();
        // Stop what is no longer wanted.
        let gone: Vec<Served> = {
            let mut t = table.by_name.write().unwrap_or_else(|e| e.into_inner());
            let names: Vec<String> = t
                .keys()
                .filter(|n| !live.contains_key(n.as_str()))
                .cloned()
                .collect();
            names.iter().filter_map(|n| t.remove(n)).collect()
        };
        for g in gone {
            if let Some(src) = g.source.revoke() {
                // Keep what the clients wrote up to now for a commit.
                let _ = src.flush();
            }
            tracing::info!("export {} ({}) stopped", g.spec.id, g.spec.name);
        }
        // Start what is new.
        for spec in live.values() {
            let known = {
                let t = table.by_name.read().unwrap_or_else(|e| e.into_inner());
                t.contains_key(&spec.name)
            };
            if known {
                continue;
            }
            match self.open(spec) {
                Ok(s) => {
                    tracing::info!("export {} ({}) started", spec.id, spec.name);
                    table
                        .by_name
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(spec.name.clone(), s);
                }
                Err(e) => reports.push((spec.id, Err(e))),
            }
        }
        // Report every live one still "starting" that is served (several
        // read-only exports may share a name).
        for spec in specs
            .iter()
            .filter(|s| s.is_live() && s.state == "starting")
        {
            let served = table
                .by_name
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&spec.name);
            if served {
                reports.push((spec.id, self.address(spec)));
            }
        }
    }
}

/// Keep `host` in step with the coordinator's exports until the process
/// ends (run it on its own thread).
pub fn run(coord: Arc<dyn Coordinator>, host: Arc<ExportHost>) {
    let mut seen = 0;
    loop {
        match coord.exports(seen, Duration::from_secs(25)) {
            Ok((generation, specs)) => {
                seen = generation;
                for (id, r) in host.reconcile(&specs) {
                    if let Err(e) = coord.export_state(id, r) {
                        tracing::warn!("reporting export {id}: {e}");
                    }
                }
            }
            Err(e) => {
                tracing::warn!("fetching exports: {e}");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}
