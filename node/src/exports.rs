//! A node's exports: the restore points the catalog says this node must
//! serve over NBD, iSCSI or NFS (`arca mount`), kept in step with it.
//!
//! A node runs one NBD server, one iSCSI server and one NFS server for
//! all its exports;
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
//!   reads and writes fail. Revoking waits for the reads and writes in
//!   flight, then flushes the overlay (its pages and its map), so every
//!   write a client was told is done is in the overlay a commit reads;
//!   [`ExportHost::serves`] stays true until that flush is over.
//! - Credentials: every export has a random secret (made by the catalog).
//!   Over NBD the export's name is `<name>-<secret>` (`export-7-…`): the
//!   name alone, a wrong secret or an empty name are unknown exports, and
//!   nothing is listed. Over iSCSI the target is `<iqn prefix><name>` and
//!   logins (discovery included) need CHAP with user `<name>` and the
//!   secret; discovery lists only the export of that user.
//! - NFS exports (read-only, any restore point: a file backup's tree or
//!   an image's file tree) are the node's [`ExportsNamespace`]: each shows
//!   `/<source>/<restore point id>` to the clients of its own allow list
//!   only (NFSv3 has no user authentication: the address list, checked
//!   per connection and per request, and the project scope of the API are
//!   the access control). The secret is not used. A stopped export is
//!   gone from the namespace at once: its clients' next requests fail.
//! - The restore points being exported are *held*: retention keeps them
//!   (see [`ExportHost::held`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use arca_catalog::{ExportId, ExportOnStop, ExportProtocol, ExportState};
use arca_frontends::tree::Trees;
use arca_frontends::{overlay, BlockSource, Chap, ChunkCache, Exports, Extent, ImageReader};
use arca_nfs::{Cidr, ExportsNamespace, NfsExport};
use arca_repo::{Datastore, Error as RepoError, Result as RepoResult};

use arca_proto::DatastoreRef;
pub use arca_proto::ExportSpec;

use crate::coordinator::Coordinator;

/// The shortest secret a node serves an export with.
pub const MIN_SECRET: usize = 16;

/// A block source that can be cut off: after [`Revocable::revoke`],
/// reads and writes fail ("the export was stopped").
struct Revocable {
    inner: RwLock<Option<Arc<dyn BlockSource>>>,
    size: u64,
    writable: bool,
}

impl Revocable {
    /// Run `f` on the source, holding it for the call: [`Revocable::revoke`]
    /// waits until calls in flight are over.
    fn with<T>(&self, f: impl FnOnce(&dyn BlockSource) -> RepoResult<T>) -> RepoResult<T> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(s) => f(s.as_ref()),
            None => Err(RepoError::InvalidInput("the export was stopped".into())),
        }
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
        self.with(|s| s.read_at(offset, buf))
    }
    fn extents(&self, offset: u64, len: u64) -> RepoResult<Vec<Extent>> {
        self.with(|s| s.extents(offset, len))
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> RepoResult<()> {
        self.with(|s| s.write_at(offset, data))
    }
    fn flush(&self) -> RepoResult<()> {
        self.with(|s| s.flush())
    }
}

struct Served {
    spec: ExportSpec,
    source: Arc<Revocable>,
    description: String,
}

/// How clients name an export of a [`Table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// `<name>-<secret>` (NBD).
    SecretInName,
    /// `<name>`, with CHAP user `<name>` and the secret (iSCSI).
    Chap,
}

/// The exports one node serves over one protocol, by name. The list is
/// private: nothing is listed, and opening an export needs its secret.
pub struct Table {
    by_name: RwLock<BTreeMap<String, Served>>,
    naming: Naming,
}

impl Table {
    fn new(naming: Naming) -> Table {
        Table {
            by_name: RwLock::new(BTreeMap::new()),
            naming,
        }
    }

    /// Run `f` on the export clients call `name`, if the name (with its
    /// secret, over NBD) is right.
    fn find<T>(&self, name: &str, f: impl FnOnce(&Served) -> T) -> Option<T> {
        let t = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        match self.naming {
            Naming::Chap => t.get(name).map(f),
            Naming::SecretInName => {
                let (base, secret) = name.rsplit_once('-')?;
                let s = t.get(base)?;
                arca_frontends::same_secret(secret.as_bytes(), s.spec.secret.as_bytes())
                    .then(|| f(s))
            }
        }
    }
}

impl Exports for Table {
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        self.find(name, |s| s.source.clone() as Arc<dyn BlockSource>)
    }
    fn description(&self, name: &str) -> Option<String> {
        self.find(name, |s| s.description.clone())
    }
    fn private(&self) -> bool {
        true
    }
    fn label(&self, name: &str) -> String {
        match (self.naming, name.rsplit_once('-')) {
            (Naming::SecretInName, Some((base, _))) => format!("{base}-<secret>"),
            _ => name.to_string(),
        }
    }
    fn by_target_name(&self, target: &str) -> Option<String> {
        if self.naming != Naming::Chap {
            return None;
        }
        let want = target.to_ascii_lowercase();
        let t = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        t.keys().find(|n| iqn(n) == want).cloned()
    }
    fn chap(&self, name: &str) -> Option<Chap> {
        if self.naming != Naming::Chap {
            return None;
        }
        self.find(name, |s| Chap {
            user: s.spec.name.clone(),
            secret: s.spec.secret.clone(),
        })
    }
    fn by_chap_user(&self, user: &str) -> Option<String> {
        // The CHAP user is the export's name.
        self.chap(user).map(|c| c.user)
    }
}

/// Where this node's protocol servers listen, as clients must dial them.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    pub nbd: Option<SocketAddr>,
    pub iscsi: Option<SocketAddr>,
    pub nfs: Option<SocketAddr>,
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
    /// What the NFS server serves: the NFS exports below, as clients see
    /// them (set whole whenever they change).
    pub nfs: Arc<ExportsNamespace>,
    /// The NFS exports served, by name.
    nfs_served: Mutex<BTreeMap<String, (ExportSpec, NfsExport)>>,
    trees: Arc<Trees>,
    listeners: Listeners,
    overlays: PathBuf,
    cache: Arc<ChunkCache>,
    open_datastore: Box<OpenDatastore>,
    /// Exports taken out of their table whose overlay is being flushed.
    closing: Mutex<HashSet<ExportId>>,
    /// Exports whose last flush failed, and why (a commit must not run).
    flush_failed: Mutex<HashMap<ExportId, String>>,
    /// Bumped (and waiters woken) whenever an export stops being served.
    unserved: (Mutex<u64>, Condvar),
    /// Set by [`ExportHost::stop`]: nothing is served any more.
    stopped: AtomicBool,
}

/// The overlay file of a writable export.
pub fn overlay_path(dir: &Path, export_id: ExportId) -> PathBuf {
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
        trees: Arc<Trees>,
        open_datastore: impl Fn(&DatastoreRef) -> Result<Arc<Datastore>, String> + Send + Sync + 'static,
    ) -> ExportHost {
        ExportHost {
            nbd: Arc::new(Table::new(Naming::SecretInName)),
            iscsi: Arc::new(Table::new(Naming::Chap)),
            nfs: Arc::new(ExportsNamespace::new(trees.clone())),
            nfs_served: Mutex::new(BTreeMap::new()),
            trees,
            listeners,
            overlays,
            cache,
            open_datastore: Box::new(open_datastore),
            closing: Mutex::new(HashSet::new()),
            flush_failed: Mutex::new(HashMap::new()),
            unserved: (Mutex::new(0), Condvar::new()),
            stopped: AtomicBool::new(false),
        }
    }

    /// Wait until export `id` is no longer served (and its overlay is
    /// flushed), woken when exports stop, for at most `timeout`. Returns
    /// whether it is no longer served.
    pub fn wait_unserved(&self, id: ExportId, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let (lock, cv) = &self.unserved;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        // Whoever takes an export out bumps the counter under this lock
        // after the fact, so a check made holding it cannot miss a wake-up.
        while self.serves(id) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn wake_unserved(&self) {
        let (lock, cv) = &self.unserved;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_all();
    }

    /// Stop serving every export (clients' next reads and writes fail,
    /// overlays are flushed) and serve none from now on: the node is
    /// shutting down. The catalog keeps them: a restarted node serves
    /// them again. Returns how many were served.
    pub fn stop(&self) -> usize {
        self.stopped.store(true, Ordering::SeqCst);
        let mut n = 0;
        for (_, table) in self.tables() {
            n += table
                .by_name
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            self.reconcile_table(table, &[], &mut Vec::new());
        }
        n += self.nfs_names().len();
        self.reconcile_nfs(&[], &mut Vec::new());
        n
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub fn overlays(&self) -> &Path {
        &self.overlays
    }

    /// Whether export `id` is still served (its clients may still write),
    /// or its last writes are still being flushed to its overlay.
    pub fn serves(&self, id: ExportId) -> bool {
        // The table first: an export enters `closing` before it leaves
        // its table, and leaves `closing` after its flush.
        self.tables().iter().any(|(_, t)| {
            let t = t.by_name.read().unwrap_or_else(|e| e.into_inner());
            t.values().any(|s| s.spec.id == id)
        }) || self
            .nfs_served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|(s, _)| s.id == id)
            || self
                .closing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&id)
    }

    /// Why the overlay of export `id` could not be flushed when it was
    /// stopped, if it could not (its last writes may be missing).
    pub fn flush_error(&self, id: ExportId) -> Option<String> {
        self.flush_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn tables(&self) -> [(ExportProtocol, &Table); 2] {
        [
            (ExportProtocol::Nbd, &self.nbd),
            (ExportProtocol::Iscsi, &self.iscsi),
        ]
    }

    /// The restore points being exported (retention keeps them).
    pub fn held(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        for (_, t) in self.tables() {
            let t = t.by_name.read().unwrap_or_else(|e| e.into_inner());
            out.extend(t.values().map(|s| s.spec.restore_point.to_hex()));
        }
        let nfs = self.nfs_served.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(nfs.values().map(|(s, _)| s.restore_point.to_hex()));
        out
    }

    /// The names of the NFS exports served.
    fn nfs_names(&self) -> Vec<String> {
        self.nfs_served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn address(&self, spec: &ExportSpec) -> Result<String, String> {
        let addr = match spec.protocol {
            ExportProtocol::Nbd => self.listeners.nbd,
            ExportProtocol::Iscsi => self.listeners.iscsi,
            ExportProtocol::Nfs => self.listeners.nfs,
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
        // Both carry the secret: the address is what a client needs.
        Ok(match spec.protocol {
            ExportProtocol::Nbd if self.listeners.nbd_tls => {
                format!(
                    "nbds://{host}:{}/{}-{}",
                    addr.port(),
                    spec.name,
                    spec.secret
                )
            }
            ExportProtocol::Nbd => {
                format!("nbd://{host}:{}/{}-{}", addr.port(), spec.name, spec.secret)
            }
            ExportProtocol::Iscsi => format!(
                "iscsi://{}%{}@{host}:{}/{}/0",
                spec.name,
                spec.secret,
                addr.port(),
                iqn(&spec.name)
            ),
            // No secret: the allow list is the gate (see the module doc).
            ExportProtocol::Nfs => arca_nfs::url_at(
                &host,
                addr.port(),
                &format!(
                    "{}/{}",
                    arca_nfs::namespace::dir_name(&spec.source),
                    spec.restore_point
                ),
            ),
        })
    }

    /// Open an NFS export: its restore point's tree (any kind), shown to
    /// the clients of its allow list.
    fn open_nfs(&self, spec: &ExportSpec) -> Result<NfsExport, String> {
        self.address(spec)?;
        if spec.writable {
            return Err(format!("export {}: NFS exports are read-only", spec.id));
        }
        let allow = spec
            .allow
            .iter()
            .map(|a| Cidr::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("export {}: {e}", spec.id))?;
        if allow.is_empty() {
            return Err(format!(
                "export {} allows no client address (export it again with --allow)",
                spec.id
            ));
        }
        let ds = (self.open_datastore)(&spec.datastore)?;
        let snap = ds
            .resolve_snapshot(&spec.restore_point.to_hex(), None)
            .map_err(|e| format!("restore point {}: {e}", spec.restore_point))?;
        // Opened now, so that an unreadable restore point fails the export
        // instead of its clients' first requests.
        self.trees
            .get(&ds, &snap.id)
            .map_err(|e| format!("restore point {}: {e}", spec.restore_point))?;
        let source = if spec.source.is_empty() {
            snap.manifest.source.clone()
        } else {
            spec.source.clone()
        };
        Ok(NfsExport {
            source,
            snap: snap.id,
            time_ns: snap.manifest.time_ns,
            ds,
            allow,
        })
    }

    /// Serve exactly the live NFS exports of `specs` (the namespace is
    /// replaced whole, so a stopped one disappears at once). New exports
    /// are opened without holding the list: [`ExportHost::serves`] and
    /// [`ExportHost::held`] do not wait for a restore point to load.
    fn reconcile_nfs(
        &self,
        specs: &[&ExportSpec],
        reports: &mut Vec<(ExportId, Result<String, String>)>,
    ) {
        let live: BTreeMap<&str, &ExportSpec> = specs
            .iter()
            .filter(|s| s.is_live())
            .map(|s| (s.name.as_str(), *s))
            .collect();
        // Stop what is no longer wanted.
        let (stopped_some, new): (bool, Vec<&ExportSpec>) = {
            let mut served = self.nfs_served.lock().unwrap_or_else(|e| e.into_inner());
            let before = served.len();
            served.retain(|name, (spec, _)| {
                let keep = live.contains_key(name.as_str()) && !self.is_stopped();
                if !keep {
                    tracing::info!("export {} ({}) stopped", spec.id, spec.name);
                }
                keep
            });
            let stopped_some = served.len() < before;
            if stopped_some {
                self.nfs
                    .set(served.values().map(|(_, e)| e.clone()).collect());
            }
            let new = live
                .values()
                .filter(|s| !served.contains_key(&s.name))
                .copied()
                .collect();
            (stopped_some, new)
        };
        if stopped_some {
            self.wake_unserved();
        }
        // Start what is new (nothing once the host is stopped).
        let mut opened = Vec::new();
        for spec in new.into_iter().filter(|_| !self.is_stopped()) {
            match self.open_nfs(spec) {
                Ok(e) => {
                    // Its address names the source it is shown under.
                    let mut spec = spec.clone();
                    spec.source = e.source.clone();
                    opened.push((spec, e));
                }
                Err(e) => reports.push((spec.id, Err(e))),
            }
        }
        let mut served = self.nfs_served.lock().unwrap_or_else(|e| e.into_inner());
        // Stopped while they opened: [`ExportHost::stop`] took the lock
        // after this check, or clears them after this.
        if !opened.is_empty() && !self.is_stopped() {
            for (spec, e) in opened {
                tracing::info!("export {} ({}) started", spec.id, spec.name);
                served.insert(spec.name.clone(), (spec, e));
            }
            self.nfs
                .set(served.values().map(|(_, e)| e.clone()).collect());
        }
        // Report every live one still "starting" that is served.
        for spec in specs.iter().filter(|s| s.state == ExportState::Starting) {
            if let Some((spec, _)) = served.get(&spec.name) {
                reports.push((spec.id, self.address(spec)));
            }
        }
    }

    fn open(&self, spec: &ExportSpec) -> Result<Served, String> {
        self.address(spec)?;
        // Alphanumeric: it goes into URLs and NBD names as it is.
        let alnum = spec.secret.bytes().all(|b| b.is_ascii_alphanumeric());
        if spec.secret.len() < MIN_SECRET || !alnum {
            return Err(format!(
                "export {} has no usable secret (it was made before exports carried credentials): stop it and export the restore point again",
                spec.id
            ));
        }
        let ds = (self.open_datastore)(&spec.datastore)?;
        let snap = ds
            .resolve_snapshot(&spec.restore_point.to_hex(), None)
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
    pub fn reconcile(&self, specs: &[ExportSpec]) -> Vec<(ExportId, Result<String, String>)> {
        let mut reports = Vec::new();
        if self.is_stopped() {
            return reports;
        }
        for (protocol, table) in self.tables() {
            let mine: Vec<&ExportSpec> = specs.iter().filter(|s| s.protocol == protocol).collect();
            self.reconcile_table(table, &mine, &mut reports);
        }
        let nfs: Vec<&ExportSpec> = specs
            .iter()
            .filter(|s| s.protocol == ExportProtocol::Nfs)
            .collect();
        self.reconcile_nfs(&nfs, &mut reports);
        for spec in specs.iter().filter(|s| !s.is_live() && s.writable) {
            if spec.on_stop == ExportOnStop::Discard {
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
        reports: &mut Vec<(ExportId, Result<String, String>)>,
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
            let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .filter_map(|n| t.remove(n))
                .inspect(|g| {
                    closing.insert(g.spec.id);
                })
                .collect()
        };
        for g in gone {
            // Revoking waits for the writes in flight; the flush then
            // saves every acknowledged write (pages and map) for a commit.
            if let Some(src) = g.source.revoke() {
                if let Err(e) = src.flush() {
                    tracing::warn!(
                        "export {} ({}): flushing its overlay: {e}",
                        g.spec.id,
                        g.spec.name
                    );
                    self.flush_failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(g.spec.id, e.to_string());
                }
            }
            self.closing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&g.spec.id);
            self.wake_unserved();
            tracing::info!("export {} ({}) stopped", g.spec.id, g.spec.name);
        }
        // Start what is new (nothing once the host is stopped).
        for spec in live.values().filter(|_| !self.is_stopped()) {
            let known = {
                let t = table.by_name.read().unwrap_or_else(|e| e.into_inner());
                t.contains_key(&spec.name)
            };
            if known {
                continue;
            }
            match self.open(spec) {
                Ok(s) => {
                    let mut t = table.by_name.write().unwrap_or_else(|e| e.into_inner());
                    // Stopped while it opened: [`ExportHost::stop`] took the
                    // table's lock after this check, or sees it in the table.
                    if self.is_stopped() {
                        continue;
                    }
                    tracing::info!("export {} ({}) started", spec.id, spec.name);
                    t.insert(spec.name.clone(), s);
                }
                Err(e) => reports.push((spec.id, Err(e))),
            }
        }
        // Report every live one still "starting" that is served.
        for spec in specs.iter().filter(|s| s.state == ExportState::Starting) {
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

/// Keep `host` in step with the coordinator's exports until the host is
/// stopped (run it on its own thread).
pub fn run(coord: Arc<dyn Coordinator>, host: Arc<ExportHost>) {
    let mut seen = 0;
    while !host.is_stopped() {
        match coord.exports(seen, Duration::from_secs(25)) {
            // Stopped while the call waited: leave the exports down.
            Ok(_) if host.is_stopped() => break,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
