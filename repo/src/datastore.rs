//! Opening a datastore and reading from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prost::Message;

use crate::backend::{Backend, LocalBackend};
use crate::blob::{self, BlobKind};
use crate::config::{Config, Encryption, KeyFile};
use crate::crypto::{MasterKeys, SealKey, SALT_LEN};
use crate::error::{Error, Result};
use crate::format::{self, Manifest, Tree};
use crate::id::{ChunkId, PackId, SnapshotId};
use crate::index::mem::MemIndex;
use crate::index::{Index, Location};
pub use crate::options::{IndexKind, OpenOptions};
use crate::pack;
pub use crate::reserve::HELD_BY;
use crate::sessions::SessionRegistry;

pub const CONFIG: &str = "config";
pub const KEYFILE: &str = "keyfile";
pub const SNAPSHOTS: &str = "snapshots";
pub const PACKS: &str = "packs";
/// File in the index directory that marks a complete index.
const INDEX_COMPLETE: &str = "ARCA-INDEX-COMPLETE";
const SNAPSHOT_MAGIC: [u8; 8] = *b"arcaSNAP";
/// Largest tree, catalog or table blob the readers accept.
pub const MAX_STRUCT_BLOB: usize = blob::MAX_PLAINTEXT;

/// An open datastore. Reading needs only `&self`; writing goes through a
/// [`crate::session::BackupSession`], GC and prune.
pub struct Datastore {
    root: PathBuf,
    pub(crate) backend: Arc<dyn Backend>,
    config: Config,
    pub(crate) keys: MasterKeys,
    pub(crate) index: Box<dyn Index>,
    pack_keys: Mutex<HashMap<PackId, SealKey>>,
    /// Frame tables of framed blobs, for partial reads ([`crate::range`]).
    pub(crate) tables: crate::range::Tables,
    pub(crate) sessions: SessionRegistry,
    /// Held shared by sessions while they check the index and record a
    /// reference, exclusively by GC while it decides what to delete.
    pub(crate) gc_lock: RwLock<()>,
    read_only: bool,
    /// The index was built from the packs at open (read-only, no complete
    /// index on disk): it is refreshed from the packs, not by the engine.
    built_from_packs: bool,
    /// Refreshes of the index view so far, and the lock that makes
    /// concurrent readers that found the same stale view refresh it once.
    view_epoch: AtomicU64,
    refresh_lock: Mutex<()>,
    /// A writer's lock on `<datastore>/lock`. Last, so that it is released
    /// after the index has closed (fields drop in order).
    _writer_lock: Option<crate::reserve::WriterLock>,
}

/// How many times a reader refreshes its view of the index and looks again
/// before it believes that a chunk or its pack is gone. One is enough for
/// one repack; more cover repacks that follow each other while it reads.
const VIEW_REFRESHES: u32 = 4;

/// Readable snapshots (oldest first) and unreadable ones (name, error).
pub type SnapshotListing = (Vec<Snapshot>, Vec<(String, Error)>);

/// What a snapshot id or prefix names: a readable snapshot or a damaged
/// snapshot file (its id and why it cannot be read).
#[derive(Debug)]
pub enum Resolved {
    Ok(Box<Snapshot>),
    Damaged(SnapshotId, Error),
}

impl Resolved {
    pub fn id(&self) -> SnapshotId {
        match self {
            Resolved::Ok(s) => s.id,
            Resolved::Damaged(id, _) => *id,
        }
    }
}

/// A snapshot and its decoded manifest.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub manifest: Manifest,
}

impl Snapshot {
    pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.manifest.time_ns)
    }
    /// A restore point of disks (read as images by restores and the
    /// frontends): an `image` source's, or any other source's that
    /// recorded disks (a `libvirt` domain's).
    pub fn is_image(&self) -> bool {
        self.manifest.source_kind == "image" || !self.manifest.disks.is_empty()
    }
}

impl Datastore {
    /// Create a new datastore directory. Fails if one exists there.
    pub fn init(
        path: &Path,
        encryption: Encryption,
        passphrase: Option<&[u8]>,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Config> {
        let backend = LocalBackend::new(path);
        if backend.exists(CONFIG)? {
            return Err(Error::AlreadyExists(path.display().to_string()));
        }
        if encryption == Encryption::Repokey && passphrase.is_none_or(|p| p.is_empty()) {
            return Err(Error::PassphraseRequired);
        }
        let mut config = Config::new(encryption);
        configure(&mut config);
        config.validate()?;
        let keys = MasterKeys::generate(encryption == Encryption::Repokey);
        let keyfile = KeyFile::create(&keys, passphrase, &config.id)?;
        // The keyfile first: a directory with a config but no keyfile would
        // look like a damaged datastore, the other way round like none.
        backend.put(KEYFILE, &to_json(&keyfile))?;
        backend.put(CONFIG, &to_json(&config))?;
        Ok(config)
    }

    /// Open the datastore at `path`. A writer takes the writer lock
    /// (`<datastore>/lock`, see [`crate::reserve::lock_writer`]) before the
    /// index opens and holds it as long as the datastore is open. A
    /// read-only open (`opts.read_only`) writes nothing under `path`: with
    /// no complete index on disk it builds one in memory from the packs.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Arc<Self>> {
        Self::open_with_backend(path, Arc::new(LocalBackend::new(path)), opts)
    }

    /// Open for writing, discarding the index on disk and building it again
    /// from the packs (under the writer lock): what `arca index rebuild`
    /// does when the index is too damaged to open
    /// ([`Error::IndexCorrupt`]). The index is a cache of the pack
    /// headers; nothing else is touched.
    pub fn open_discarding_index(path: &Path, opts: &OpenOptions) -> Result<Arc<Self>> {
        if opts.read_only {
            return Err(Error::InvalidInput(
                "rebuilding the index needs a writable open".into(),
            ));
        }
        Self::open_inner(path, Arc::new(LocalBackend::new(path)), opts, true)
    }

    /// Open the datastore at `path` with its objects reached through
    /// `backend` (the local backend of `path`, or a wrapper of it such as
    /// [`crate::backend::fault`]). The index stays under `path`.
    pub fn open_with_backend(
        path: &Path,
        backend: Arc<dyn Backend>,
        opts: &OpenOptions,
    ) -> Result<Arc<Self>> {
        Self::open_inner(path, backend, opts, false)
    }

    fn open_inner(
        path: &Path,
        backend: Arc<dyn Backend>,
        opts: &OpenOptions,
        discard_index: bool,
    ) -> Result<Arc<Self>> {
        let config = match backend.get(CONFIG) {
            Ok(b) => Config::parse(&b)?,
            Err(Error::NotFound(_)) => {
                return Err(Error::NotADatastore(path.display().to_string()))
            }
            Err(e) => return Err(e),
        };
        let keyfile = KeyFile::parse(&backend.get(KEYFILE)?)?;
        if (config.encryption == Encryption::Repokey) != keyfile.kdf.is_some() {
            return Err(Error::Corrupt(
                "config and keyfile disagree about encryption".into(),
            ));
        }
        let keys = keyfile.unwrap_keys(opts.passphrase.as_deref(), &config.id)?;
        let (index, fresh, writer_lock): crate::reserve::Opened = match opts.index {
            IndexKind::Memory => (Box::new(MemIndex::new()), true, None),
            IndexKind::Rocks => crate::reserve::open_index(path, opts, discard_index, open_rocks)?,
        };
        if writer_lock.is_some() {
            // Best effort: only a message for whoever is refused next. A
            // writer that does not say who it is removes an older note, so
            // that nobody is told about a holder that is gone.
            match &opts.holder {
                Some(h) => {
                    let _ = std::fs::write(path.join(HELD_BY), format!("{h}\n"));
                }
                None => {
                    let _ = std::fs::remove_file(path.join(HELD_BY));
                }
            }
        }
        let index = backend.wrap_index(index);
        let ds = Arc::new(Datastore {
            root: path.to_path_buf(),
            backend,
            config,
            keys,
            index,
            pack_keys: Mutex::new(HashMap::new()),
            tables: Default::default(),
            sessions: SessionRegistry::default(),
            gc_lock: RwLock::new(()),
            // From the start: nothing below may write for a reader.
            read_only: opts.read_only,
            built_from_packs: fresh && opts.read_only,
            view_epoch: AtomicU64::new(0),
            refresh_lock: Mutex::new(()),
            _writer_lock: writer_lock,
        });
        if fresh {
            // The index is a cache: a missing one is rebuilt from the packs
            // (a reader's in memory, and only a writer marks it complete).
            ds.build_index(&mut |_, _| {})?;
        }
        Ok(ds)
    }

    /// Fail unless the datastore was opened for writing.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::InvalidInput("datastore is open read-only".into()))
        } else {
            Ok(())
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn keys(&self) -> &MasterKeys {
        &self.keys
    }
    pub fn index(&self) -> &dyn Index {
        self.index.as_ref()
    }
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Recreate the index from the pack headers. `progress(done, total)`.
    pub fn rebuild_index(&self, progress: &mut dyn FnMut(usize, usize)) -> Result<RebuildReport> {
        self.check_writable()?;
        self.build_index(progress)
    }

    /// Fill the index from the pack headers. A writer's index is on disk
    /// and marked complete at the end; a reader's is the in-memory one of
    /// its open and nothing is written.
    fn build_index(&self, progress: &mut dyn FnMut(usize, usize)) -> Result<RebuildReport> {
        let _g = self.gc_lock.write().unwrap_or_else(|e| e.into_inner());
        // Copies that verify found bad never come back (see quarantine).
        let quarantined = self.quarantined().unwrap_or_default();
        self.index.clear()?;
        let packs = self.backend.list(PACKS)?;
        let mut report = RebuildReport::default();
        for (i, obj) in packs.iter().enumerate() {
            progress(i, packs.len());
            let Some(id) = pack::id_from_name(&obj.name) else {
                continue;
            };
            match self.read_pack_header(&id, obj.size) {
                Ok(entries) => {
                    let blobs: Vec<_> = entries
                        .iter()
                        .filter(|e| !quarantined.contains(&(e.0, id)))
                        .map(|&(cid, kind, offset, length, raw_length)| {
                            (
                                cid,
                                Location {
                                    pack: id,
                                    offset,
                                    length,
                                    raw_length,
                                    kind,
                                },
                            )
                        })
                        .collect();
                    report.blobs += blobs.len() as u64;
                    let info = crate::index::PackInfo {
                        size: obj.size,
                        blobs: blobs.len() as u32,
                    };
                    self.index.add_pack(&id, info, &blobs)?;
                    report.packs += 1;
                }
                Err(e) => report.damaged.push((id, e.to_string())),
            }
        }
        progress(packs.len(), packs.len());
        if self.read_only {
            return Ok(report);
        }
        self.index.sync()?;
        let marker = self.root.join("index").join(INDEX_COMPLETE);
        if marker.parent().is_some_and(|p| p.exists()) {
            std::fs::write(&marker, b"rebuilt from packs\n")
                .map_err(|e| Error::io("write index marker", e))?;
        }
        Ok(report)
    }

    /// Read and decode the header of a pack of known size.
    pub fn read_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<pack::HeaderEntry>> {
        let name = pack::object_name(id);
        if size < pack::TRAILER_LEN as u64 {
            return Err(Error::Corrupt(format!("pack {id} is truncated")));
        }
        let t =
            self.backend
                .get_range(&name, size - pack::TRAILER_LEN as u64, pack::TRAILER_LEN)?;
        let t = pack::parse_trailer(&t)?;
        let data_len = size
            .checked_sub(pack::TRAILER_LEN as u64 + t.header_len as u64)
            .ok_or_else(|| Error::Corrupt(format!("pack {id}: header longer than the pack")))?;
        if t.header_len as usize > pack::MAX_HEADER {
            return Err(Error::Corrupt(format!("pack {id}: header too large")));
        }
        let h = self
            .backend
            .get_range(&name, data_len, t.header_len as usize)?;
        pack::decode_header(&h, &t, &self.keys, data_len)
    }

    /// The sealing key of a pack (cached), or `None` if unencrypted.
    pub(crate) fn pack_key(&self, id: &PackId) -> Result<Option<SealKey>> {
        if self.keys.enc_key.is_none() {
            return Ok(None);
        }
        if let Some(k) = self
            .pack_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Some(k.clone()));
        }
        let name = pack::object_name(id);
        let size = self.backend.size(&name)?;
        if size < pack::TRAILER_LEN as u64 {
            return Err(Error::Corrupt(format!("pack {id} is truncated")));
        }
        let t =
            self.backend
                .get_range(&name, size - pack::TRAILER_LEN as u64, pack::TRAILER_LEN)?;
        let t = pack::parse_trailer(&t)?;
        let key = self
            .keys
            .subkey(&t.salt)
            .ok_or_else(|| Error::Corrupt("encrypted datastore without key".into()))?;
        let mut cache = self.pack_keys.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(*id, key.clone());
        Ok(Some(key))
    }

    /// Decode a blob read from `loc` and check that it hashes to `id`.
    pub fn decode_blob(&self, id: &ChunkId, loc: &Location, bytes: &[u8]) -> Result<Vec<u8>> {
        let key = self.pack_key(&loc.pack)?;
        let mac = self.frame_mac();
        let (kind, plain) = blob::decode_with_mac(id, bytes, key.as_ref(), Some(&mac))
            .map_err(|e| Error::Corrupt(format!("blob {id} in pack {}: {e}", loc.pack.short())))?;
        if kind != loc.kind {
            return Err(Error::Corrupt(format!("blob {id}: kind mismatch")));
        }
        if self.keys.chunk_id(&plain) != *id {
            return Err(Error::Corrupt(format!(
                "blob {id} in pack {}: content does not match its id",
                loc.pack.short()
            )));
        }
        Ok(plain)
    }

    /// Where a blob is in the current view of the index, or
    /// [`Error::ChunkMissing`].
    pub fn locate(&self, id: &ChunkId) -> Result<Location> {
        self.index.get(id)?.ok_or(Error::ChunkMissing(*id))
    }

    /// Read, authenticate, decompress and verify one blob.
    ///
    /// Readers follow gc: when the index sends them to a pack that is gone
    /// (a repack moved the blob, and a read-only view of the index still
    /// has the old place) or does not know the chunk (written after the
    /// view was taken), the view is refreshed and the chunk looked up
    /// again, a bounded number of times. Only then is the chunk reported
    /// missing ([`Error::PackMissing`], [`Error::ChunkMissing`]).
    pub fn read_blob(&self, id: &ChunkId) -> Result<Vec<u8>> {
        self.following_gc(|| {
            let loc = self.locate(id)?;
            self.read_blob_at(id, &loc)
        })
    }

    /// Run `read` (which looks `id` up and reads it), refreshing the view
    /// of the index and running it again when it finds the chunk or its
    /// pack missing, as [`Datastore::read_blob`] describes.
    pub(crate) fn following_gc<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        let mut refreshes = 0;
        loop {
            let epoch = self.view_epoch();
            match read() {
                Err(Error::PackMissing { .. } | Error::ChunkMissing(_))
                    if refreshes < VIEW_REFRESHES && self.refresh_view(epoch)? =>
                {
                    refreshes += 1;
                }
                r => return r,
            }
        }
    }

    /// How many times the view of the index was refreshed so far.
    pub fn view_epoch(&self) -> u64 {
        self.view_epoch.load(Ordering::Acquire)
    }

    /// Bring a read-only view of the index up to date with the writer
    /// (see [`Index::refresh`]); nothing for a writer, whose index is
    /// always current. Verify calls it after listing snapshots, so that
    /// every snapshot it judges is judged against an index that has it.
    pub fn refresh_index(&self) -> Result<()> {
        if self.read_only {
            self.refresh_view(self.view_epoch())?;
        }
        Ok(())
    }

    /// Refresh the view unless another thread did since `seen` (then its
    /// refresh serves this caller too). Returns whether looking again can
    /// find something new: always for a writer, whose index is live (a gc
    /// of this process may have moved the blob since it was located).
    fn refresh_view(&self, seen: u64) -> Result<bool> {
        if !self.read_only {
            return Ok(true);
        }
        let _g = self.refresh_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.view_epoch() != seen {
            return Ok(true);
        }
        let changed = if self.built_from_packs {
            self.catch_up_from_packs()?;
            true
        } else {
            self.index.refresh()?
        };
        self.view_epoch.fetch_add(1, Ordering::AcqRel);
        Ok(changed)
    }

    /// Refresh an index that was built from the packs at open: index the
    /// packs that appeared since, forget those that are gone.
    fn catch_up_from_packs(&self) -> Result<()> {
        let quarantined = self.quarantined().unwrap_or_default();
        let on_disk: HashMap<PackId, u64> = self
            .backend
            .list(PACKS)?
            .into_iter()
            .filter_map(|o| pack::id_from_name(&o.name).map(|id| (id, o.size)))
            .collect();
        let indexed: std::collections::HashSet<PackId> =
            self.index.packs()?.into_iter().map(|(p, _)| p).collect();
        for (id, size) in &on_disk {
            if indexed.contains(id) {
                continue;
            }
            // A pack that cannot be read is left out, as a rebuild does.
            let Ok(entries) = self.read_pack_header(id, *size) else {
                continue;
            };
            let blobs: Vec<_> = entries
                .iter()
                .filter(|e| !quarantined.contains(&(e.0, *id)))
                .map(|&(cid, kind, offset, length, raw_length)| {
                    let loc = Location {
                        pack: *id,
                        offset,
                        length,
                        raw_length,
                        kind,
                    };
                    (cid, loc)
                })
                .collect();
            let info = crate::index::PackInfo {
                size: *size,
                blobs: blobs.len() as u32,
            };
            self.index.add_pack(id, info, &blobs)?;
        }
        let gone: std::collections::HashSet<PackId> = indexed
            .into_iter()
            .filter(|p| !on_disk.contains_key(p))
            .collect();
        if !gone.is_empty() {
            let mut by_pack: HashMap<PackId, Vec<ChunkId>> = HashMap::new();
            self.index.for_each_blob(&mut |cid, loc| {
                if gone.contains(&loc.pack) {
                    by_pack.entry(loc.pack).or_default().push(cid);
                }
                Ok(())
            })?;
            for p in gone {
                let ids = by_pack.remove(&p).unwrap_or_default();
                self.index.remove_pack(&p, &ids)?;
            }
        }
        Ok(())
    }

    /// Read and decode the whole blob of `id` at `loc`.
    pub(crate) fn read_blob_at(&self, id: &ChunkId, loc: &Location) -> Result<Vec<u8>> {
        // The pack is read twice when its key is not cached (the range,
        // then the trailer): gone at either read is a missing pack.
        let missing = |e| match e {
            Error::NotFound(_) => Error::PackMissing {
                pack: loc.pack,
                chunk: *id,
            },
            e => e,
        };
        let bytes = self
            .backend
            .get_range(
                &pack::object_name(&loc.pack),
                loc.offset,
                loc.length as usize,
            )
            .map_err(missing)?;
        self.decode_blob(id, loc, &bytes).map_err(missing)
    }

    pub fn read_tree(&self, id: &ChunkId) -> Result<Tree> {
        format::decode("tree", &self.read_blob(id)?)
    }

    // ---- snapshots ----

    pub(crate) fn encode_snapshot(&self, m: &Manifest) -> (SnapshotId, Vec<u8>) {
        let plain = m.encode_to_vec();
        let id = self.keys.chunk_id(&plain);
        let salt = crate::crypto::random_bytes::<SALT_LEN>();
        let key = self.keys.subkey(&salt);
        let mut out = Vec::with_capacity(plain.len() + 100);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&blob::encode(
            &id,
            BlobKind::Manifest,
            &plain,
            3,
            key.as_ref(),
        ));
        (SnapshotId(id.0), out)
    }

    pub fn decode_snapshot(&self, id: &SnapshotId, bytes: &[u8]) -> Result<Manifest> {
        if bytes.len() < 8 + SALT_LEN || bytes[..8] != SNAPSHOT_MAGIC {
            return Err(Error::Corrupt(format!("snapshot {id}: bad magic")));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[8..8 + SALT_LEN]);
        let cid = ChunkId(id.0);
        let key = self.keys.subkey(&salt);
        let (_, plain) = blob::decode(&cid, &bytes[8 + SALT_LEN..], key.as_ref())?;
        if self.keys.chunk_id(&plain) != cid {
            return Err(Error::Corrupt(format!(
                "snapshot {id}: content does not match its id"
            )));
        }
        format::decode("manifest", &plain)
    }

    pub fn write_snapshot(&self, m: &Manifest) -> Result<SnapshotId> {
        self.check_writable()?;
        let (id, bytes) = self.encode_snapshot(m);
        self.backend.put(&format!("{SNAPSHOTS}/{id}"), &bytes)?;
        Ok(id)
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = self
            .backend
            .get(&format!("{SNAPSHOTS}/{id}"))
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound(format!("snapshot {id}")),
                e => e,
            })?;
        Ok(Snapshot {
            id: *id,
            manifest: self.decode_snapshot(id, &bytes)?,
        })
    }

    /// All snapshots, oldest first. Unreadable ones are returned as errors
    /// beside the list so that one damaged manifest hides nothing else.
    pub fn snapshots_checked(&self) -> Result<SnapshotListing> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for obj in self.backend.list(SNAPSHOTS)? {
            let name = obj.name.rsplit('/').next().unwrap_or_default().to_string();
            let Ok(id) = SnapshotId::from_hex(&name) else {
                continue;
            };
            match self.load_snapshot(&id) {
                Ok(s) => out.push(s),
                // Deleted since the listing (prune, forget): not damage.
                Err(Error::NotFound(_)) => {}
                Err(e) => bad.push((name, e)),
            }
        }
        out.sort_by_key(|s| (s.manifest.time_ns, s.id));
        Ok((out, bad))
    }

    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        Ok(self.snapshots_checked()?.0)
    }

    /// Resolve a full id, a unique id prefix, or `latest` (of `source` if
    /// given). A damaged snapshot file is [`Error::SnapshotDamaged`], not
    /// "not found".
    pub fn resolve_snapshot(&self, spec: &str, source: Option<&str>) -> Result<Snapshot> {
        match self.resolve(spec, source)? {
            Resolved::Ok(s) => Ok(*s),
            Resolved::Damaged(id, e) => Err(Error::SnapshotDamaged {
                id,
                reason: e.to_string(),
            }),
        }
    }

    /// Like [`Datastore::resolve_snapshot`], but ids and prefixes also
    /// resolve to damaged snapshot files (to remove them). `latest` only
    /// considers readable snapshots: a damaged one has no time or source.
    pub fn resolve(&self, spec: &str, source: Option<&str>) -> Result<Resolved> {
        if spec == "latest" {
            let all = self.snapshots()?;
            let of_source = |s: &&Snapshot| source.is_none_or(|src| s.manifest.source == src);
            return all
                .iter()
                .rev()
                .find(of_source)
                .cloned()
                .map(|s| Resolved::Ok(Box::new(s)))
                .ok_or_else(|| {
                    Error::NotFound(match source {
                        Some(s) => format!("no snapshot of source {s:?}"),
                        None => "no snapshots in this datastore".into(),
                    })
                });
        }
        if let Some((src, "latest")) = spec.rsplit_once('/') {
            return self.resolve("latest", Some(src));
        }
        let want = spec.to_ascii_lowercase();
        if want.is_empty() || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput(format!(
                "{spec:?} is not a snapshot id, id prefix or 'latest'"
            )));
        }
        let mut matches = Vec::new();
        for id in self.snapshot_files()? {
            if id.to_hex().starts_with(&want) {
                matches.push(id);
            }
        }
        match matches.as_slice() {
            [] => Err(Error::NotFound(format!("snapshot {spec}"))),
            [id] => match self.load_snapshot(id) {
                Ok(s) => Ok(Resolved::Ok(Box::new(s))),
                Err(e) if is_damage(&e) => Ok(Resolved::Damaged(*id, e)),
                Err(e) => Err(e),
            },
            m => Err(Error::InvalidInput(format!(
                "snapshot prefix {spec} is ambiguous ({} matches)",
                m.len()
            ))),
        }
    }

    /// The ids of all snapshot files, readable or not.
    pub fn snapshot_files(&self) -> Result<Vec<SnapshotId>> {
        let mut out = Vec::new();
        for obj in self.backend.list(SNAPSHOTS)? {
            let name = obj.name.rsplit('/').next().unwrap_or_default();
            if let Ok(id) = SnapshotId::from_hex(name) {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.check_writable()?;
        self.backend.delete(&format!("{SNAPSHOTS}/{id}"))
    }
}

/// Whether an error reading a snapshot file means its bytes are damaged
/// (as opposed to an I/O error, or a manifest of a newer arca, which are
/// not the file's fault and must never let gc or forget treat it as junk).
pub fn is_damage(e: &Error) -> bool {
    matches!(e, Error::Corrupt(_))
}

#[derive(Debug, Default)]
pub struct RebuildReport {
    pub packs: u64,
    pub blobs: u64,
    pub damaged: Vec<(PackId, String)>,
}

#[cfg(feature = "rocksdb")]
fn open_rocks(path: &Path, read_only: bool) -> Result<(Box<dyn Index>, bool)> {
    use crate::index::rocks::RocksIndex;
    // The marker is written after a complete rebuild, so an interrupted
    // first build is redone at the next open.
    let fresh = !path.join(INDEX_COMPLETE).exists();
    if read_only && fresh {
        // Nothing to open read-only: use a throwaway index built from packs.
        return Ok((Box::new(MemIndex::new()), true));
    }
    let idx = if read_only {
        RocksIndex::open_read_only(path, &Default::default())?
    } else {
        RocksIndex::open(path, &Default::default())?
    };
    Ok((Box::new(idx), fresh))
}

#[cfg(not(feature = "rocksdb"))]
fn open_rocks(_path: &Path, _read_only: bool) -> Result<(Box<dyn Index>, bool)> {
    Err(Error::Index("built without RocksDB support".into()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
