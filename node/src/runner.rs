//! Running tasks on a node.
//!
//! A node talks to the control plane through a [`Coordinator`]: lease a
//! task, report progress (which renews the lease and carries cancellation
//! back), log, finish. The embedded node of `arca server` uses
//! arca-server's `Local`, which works on the catalog directly; a remote
//! `arca node` uses the gRPC client in [`crate::remote`], whose server side
//! calls the same `Local`. So the rules (at most `max_tasks` per node, a
//! node only touches the datastores it owns, retries with backoff,
//! notifications on failure) are enforced once, on the server, whatever
//! the transport.
//!
//! The [`Runner`] is the node's half: it owns the datastores' passphrases
//! and keeps its datastores open between tasks, runs each task on its own
//! thread, and reports what the task changed (a backup's restore point,
//! the restore points retention removed, the bytes on disk) with the
//! result, so the control plane records both in one transaction.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arca_catalog::{
    self as catalog, LogLevel, RestorePoint, Retention, SourceKind, TaskEffects, TaskId,
};
use arca_control::confine::Confinement;
use arca_ingest::Progress;
use arca_model::ids::RestorePointId;
use arca_model::task::{
    BackupParams, CommitExportParams, ForgetParams, GcParams, PruneParams, RestoreParams, TaskSpec,
    VerifyParams,
};
use arca_model::task_result::{
    BackupResult, CommitExportResult, ForgetResult, GcResult, PruneResult, RestoreResult,
    TaskResult, TreeRestore, VerifyReport, VerifyResult,
};
use arca_proto::{DatastoreRef, Finished, Leased};
use arca_repo::{Datastore, OpenOptions};

pub use crate::coordinator::Coordinator;
use crate::exports::ExportHost;

mod commit;
mod maintenance;

/// A node's datastore passphrases: datastore path → secret. They never
/// leave the node.
pub type Passphrases = HashMap<String, String>;

/// The error of a task interrupted by a shutdown of its node (the task
/// ends `cancelled` with it: docs/control-plane.md, "Shutdown").
pub const INTERRUPTED: &str = "interrupted by shutdown";

/// The tasks a runner is running, and whether it is shutting down.
#[derive(Default)]
struct Running {
    stopping: bool,
    tasks: HashMap<TaskId, Arc<Progress>>,
}

/// What [`Runner::shutdown`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks that were running: all are cancelled (or finished just then).
    pub interrupted: Vec<TaskId>,
    /// Those of them still running when the timeout passed: recorded as
    /// interrupted without their worker's result.
    pub abandoned: Vec<TaskId>,
}

/// Runs tasks for one node.
pub struct Runner {
    pub coord: Arc<dyn Coordinator>,
    passphrases: Passphrases,
    open: Mutex<HashMap<String, Arc<Datastore>>>,
    /// The node's exports: retention keeps what they serve, and commit
    /// tasks find overlays there.
    exports: std::sync::OnceLock<Arc<ExportHost>>,
    /// Who this node is, for the datastores' `HELD-BY` note:
    /// (process description, server URL).
    holder: std::sync::OnceLock<(String, String)>,
    /// Open file trees of restore points (downloads, S3, NFS).
    trees: std::sync::OnceLock<Arc<arca_frontends::tree::Trees>>,
    /// Files of those trees read lately by the server's file queries.
    files: crate::files::OpenFiles,
    running: Mutex<Running>,
    /// Woken when a task ends.
    ended: Condvar,
}

/// File trees kept open by a node (each holds its restore point's chunk
/// table or directory cache).
pub const TREES_OPEN: usize = 64;

/// A task's result, or why it failed.
type Outcome = Result<TaskResult, String>;

impl Runner {
    pub fn new(coord: Arc<dyn Coordinator>, passphrases: Passphrases) -> Runner {
        Runner {
            coord,
            passphrases,
            open: Mutex::new(HashMap::new()),
            exports: std::sync::OnceLock::new(),
            holder: std::sync::OnceLock::new(),
            trees: std::sync::OnceLock::new(),
            files: Default::default(),
            running: Mutex::new(Running::default()),
            ended: Condvar::new(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether [`Runner::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.running().stopping
    }

    /// The ids of the tasks running now.
    pub fn running_tasks(&self) -> Vec<TaskId> {
        let mut v: Vec<TaskId> = self.running().tasks.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Stop for a shutdown: lease nothing more, cancel every running task
    /// and wait up to `timeout` for them to end. A cancelled task ends
    /// `cancelled` with the error [`INTERRUPTED`]; one that completed
    /// anyway keeps its result. Tasks still running after `timeout` are
    /// recorded as interrupted at once (their lease released; what they
    /// would report later is refused): the process is about to exit.
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let end = Instant::now() + timeout;
        // Exports first: their clients' writes end, overlays are flushed
        // (a commit task waiting for its export then goes on, cancelled).
        if let Some(h) = self.exports.get() {
            let n = h.stop();
            if n > 0 {
                tracing::info!(exports = n, "stopped serving exports");
            }
        }
        let mut g = self.running();
        g.stopping = true;
        let mut report = ShutdownReport {
            interrupted: g.tasks.keys().copied().collect(),
            abandoned: Vec::new(),
        };
        report.interrupted.sort_unstable();
        for p in g.tasks.values() {
            p.cancel.store(true, Ordering::Relaxed);
        }
        while !g.tasks.is_empty() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            g = self
                .ended
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        report.abandoned = g.tasks.keys().copied().collect();
        report.abandoned.sort_unstable();
        drop(g);
        for &id in &report.abandoned {
            self.coord.log(
                id,
                LogLevel::Warn,
                &format!("{INTERRUPTED}: the task did not stop within the shutdown timeout"),
            );
            let f = Finished {
                outcome: Err(INTERRUPTED.into()),
                cancelled: true,
                effects: TaskEffects::default(),
            };
            if let Err(e) = self.coord.finish(id, f) {
                tracing::warn!(task = id.get(), error = %e, "could not record the interrupted task");
            }
        }
        report
    }

    /// Say who holds this node's datastores (`what`, e.g. "arca server"
    /// or "arca node alpha") and where its server listens: a standalone
    /// `arca gc` refused by the lock then says how to run gc through it.
    pub fn set_holder(&self, what: &str, server_url: &str) {
        let _ = self.holder.set((what.to_string(), server_url.to_string()));
    }

    /// Open the node's datastores now and keep them open, so that the
    /// process holds them from its start (a standalone `arca gc` is then
    /// refused with `HELD-BY`'s text instead of racing the first task).
    /// A datastore that cannot be opened is reported and retried by the
    /// first task that needs it.
    pub fn hold(&self, datastores: &[DatastoreRef]) {
        for d in datastores {
            if let Err(e) = self.datastore(d) {
                tracing::warn!(datastore = %d.name, error = %e, "cannot open datastore");
            }
        }
    }

    /// The node's export host (set once, when the node starts serving).
    pub fn set_exports(&self, host: Arc<ExportHost>) {
        let _ = self.exports.set(host);
    }

    /// Read file trees through `trees` (set once, when the node starts
    /// serving; it shares the exports' chunk cache).
    pub fn set_trees(&self, trees: Arc<arca_frontends::tree::Trees>) {
        let _ = self.trees.set(trees);
    }

    /// The node's open file trees: those set by [`Runner::set_trees`], or
    /// (a runner that serves nothing else) its own, with a 256 MiB chunk
    /// cache.
    /// The files the server's file queries read lately, kept open.
    pub fn open_files(&self) -> &crate::files::OpenFiles {
        &self.files
    }

    pub fn trees(&self) -> &Arc<arca_frontends::tree::Trees> {
        self.trees.get_or_init(|| {
            Arc::new(arca_frontends::tree::Trees::new(
                arca_frontends::chunk_cache(256 << 20),
                TREES_OPEN,
            ))
        })
    }

    /// The datastore, opened once and kept open (no key derivation and no
    /// index open per task).
    pub fn datastore(&self, d: &DatastoreRef) -> Result<Arc<Datastore>, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ds) = open.get(&d.path) {
            return Ok(ds.clone());
        }
        let holder = self.holder.get().map(|(what, url)| {
            format!(
                "{what} (pid {}) serving {url}, as datastore {:?}; run maintenance through it: `arca --server {url} datastore gc {}` (or `verify`)",
                std::process::id(),
                d.name,
                d.name
            )
        });
        let opts = OpenOptions {
            passphrase: self.passphrases.get(&d.path).map(|p| p.as_bytes().to_vec()),
            holder,
            // This one open also serves prune and gc: it must work when the
            // file system is full (arca_repo::reserve).
            for_deletion: true,
            ..Default::default()
        };
        let ds = Datastore::open(Path::new(&d.path), &opts)
            .map_err(|e| format!("opening datastore {}: {e}", d.name))?;
        open.insert(d.path.clone(), ds.clone());
        Ok(ds)
    }

    /// Lease and start every task this node may run now, each on its own
    /// thread; returns their handles.
    /// Nothing is leased once the runner is shutting down.
    pub fn start_due(self: &Arc<Self>) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
        let mut handles = Vec::new();
        while !self.is_stopping() {
            let Some(l) = self.coord.lease()? else { break };
            let progress = match self.register(l.task.id) {
                Some(p) => p,
                // Shutting down since the lease: give the task back.
                None => {
                    self.interrupt_unstarted(l.task.id);
                    break;
                }
            };
            let me = Arc::clone(self);
            let id = l.task.id;
            let h = std::thread::Builder::new()
                .name(format!("task-{id}"))
                .spawn(move || me.run_registered(l, progress));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    self.unregister(id);
                    return Err(format!("starting a task thread: {e}"));
                }
            }
        }
        Ok(handles)
    }

    /// Count a task as running; `None` once shutting down.
    fn register(&self, id: TaskId) -> Option<Arc<Progress>> {
        let mut g = self.running();
        if g.stopping {
            return None;
        }
        let p = Arc::new(Progress::default());
        g.tasks.insert(id, p.clone());
        Some(p)
    }

    fn unregister(&self, id: TaskId) {
        self.running().tasks.remove(&id);
        self.ended.notify_all();
    }

    /// A task leased as the shutdown began: recorded as interrupted.
    fn interrupt_unstarted(&self, id: TaskId) {
        let f = Finished {
            outcome: Err(INTERRUPTED.into()),
            cancelled: true,
            effects: TaskEffects::default(),
        };
        if let Err(e) = self.coord.finish(id, f) {
            tracing::warn!(task = id.get(), error = %e, "could not record the interrupted task");
        }
    }

    /// Run one leased task to its end, reporting progress every second.
    pub fn run(&self, l: Leased) {
        match self.register(l.task.id) {
            Some(p) => self.run_registered(l, p),
            None => self.interrupt_unstarted(l.task.id),
        }
    }

    fn run_registered(&self, l: Leased, progress: Arc<Progress>) {
        let id = l.task.id;
        self.run_task(l, &progress);
        self.unregister(id);
    }

    fn run_task(&self, l: Leased, progress: &Progress) {
        let c = &self.coord;
        let id = l.task.id;
        let source = l
            .source
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let kind = l.task.kind();
        let node = c.node_id().get();
        tracing::info!(
            target: "arca::task",
            task = id.get(),
            kind = %kind,
            source = %source,
            node,
            attempt = l.task.attempt,
            "task started"
        );
        c.log(
            id,
            LogLevel::Info,
            &format!(
                "started on node {} (attempt {})",
                c.node_id(),
                l.task.attempt
            ),
        );
        let (outcome, effects) = std::thread::scope(|s| {
            let worker = s.spawn(|| self.execute(&l, progress));
            // Report progress and renew the lease until the work ends.
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(200));
                let tick = std::time::Instant::now();
                let done = progress.bytes.load(Ordering::Relaxed) as i64;
                let total = progress.total.load(Ordering::Relaxed) as i64;
                if let Ok(true) = c.progress(id, done, total) {
                    progress.cancel.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(800).saturating_sub(tick.elapsed()));
            }
            worker
                .join()
                .unwrap_or_else(|_| (Err("the task panicked".into()), TaskEffects::default()))
        });
        let mut cancelled = progress.cancel.load(Ordering::Relaxed);
        // Cancelled by a shutdown: a task that completed anyway keeps its
        // result; one that stopped says why.
        let interrupted = cancelled && self.is_stopping();
        let outcome = match outcome {
            Ok(v) if interrupted => {
                cancelled = false;
                Ok(v)
            }
            Err(_) if interrupted => Err(INTERRUPTED.to_string()),
            o => o,
        };
        let interrupted = interrupted && outcome.is_err();
        let done = progress.bytes.load(Ordering::Relaxed) as i64;
        let total = progress.total.load(Ordering::Relaxed) as i64;
        let _ = c.progress(id, done, total.max(done));
        let (level, msg) = match (&outcome, cancelled) {
            (_, true) if interrupted => (LogLevel::Warn, INTERRUPTED.to_string()),
            (_, true) => (LogLevel::Warn, "cancelled".to_string()),
            (Ok(v), _) => (LogLevel::Info, format!("succeeded: {}", v.to_json())),
            (Err(e), _) => (LogLevel::Error, format!("failed: {e}")),
        };
        c.log(id, level, &msg);
        match (&outcome, cancelled) {
            (_, true) if interrupted => tracing::warn!(
                target: "arca::task",
                task = id.get(),
                kind = %kind,
                source = %source,
                node,
                "task interrupted by shutdown"
            ),
            (_, true) => tracing::warn!(
                target: "arca::task",
                task = id.get(),
                kind = %kind,
                source = %source,
                node,
                "task cancelled"
            ),
            (Ok(_), _) => tracing::info!(
                target: "arca::task",
                task = id.get(),
                kind = %kind,
                source = %source,
                node,
                "task succeeded"
            ),
            (Err(e), _) => tracing::error!(
                target: "arca::task",
                task = id.get(),
                kind = %kind,
                source = %source,
                node,
                error = %e,
                "task failed"
            ),
        }
        let f = Finished {
            outcome,
            cancelled,
            effects,
        };
        if let Err(e) = c.finish(id, f) {
            // The lease was taken away (expired): the server decided already.
            c.log(
                id,
                LogLevel::Warn,
                &format!("could not record the result: {e}"),
            );
        }
    }

    fn execute(&self, l: &Leased, progress: &Progress) -> (Outcome, TaskEffects) {
        let mut fx = TaskEffects::default();
        let r = match &l.task.spec {
            TaskSpec::Backup(p) => self.backup(l, p, progress, &mut fx),
            TaskSpec::Restore(p) => self.restore(l, p, progress),
            TaskSpec::Verify(p) => self.verify(l, p, progress, &mut fx),
            TaskSpec::Prune(p) => self.prune(l, p, &mut fx),
            TaskSpec::Gc(p) => self.gc(l, p, progress, &mut fx),
            TaskSpec::CommitExport(p) => self.commit_export(l, p, progress, &mut fx),
            TaskSpec::Forget(p) => self.forget(l, p, &mut fx),
        };
        (r, fx)
    }

    fn task_datastore(&self, l: &Leased) -> Result<(DatastoreRef, Arc<Datastore>), String> {
        let d = l.datastore.as_ref().ok_or("the task names no datastore")?;
        Ok((d.clone(), self.datastore(d)?))
    }

    fn backup(
        &self,
        l: &Leased,
        p: &BackupParams,
        progress: &Progress,
        fx: &mut TaskEffects,
    ) -> Outcome {
        let task = &l.task;
        let source = l.source.as_ref().ok_or("backup task without a source")?;
        let (d, ds) = self.task_datastore(l)?;
        let mine = source_restore_points(p.source_restore_points.as_deref());
        let protected = source_restore_points(p.protected.as_deref()).unwrap_or_default();
        let parent = match &mine {
            // The newest of this source's own restore points, protected
            // ones included.
            Some(ids) => ds
                .snapshots()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|s| {
                    let id = s.id.to_hex();
                    ids.contains(&id) || protected.contains(&id)
                })
                .max_by_key(|s| s.manifest.time_ns),
            None => match ds.resolve_snapshot("latest", Some(&source.name)) {
                Ok(s) => Some(s),
                Err(arca_repo::Error::NotFound(_)) => None,
                Err(e) => return Err(e.to_string()),
            },
        };
        // Checked again here, on the real path: a link out of the node's
        // source roots fails the backup. (A libvirt source's path is its
        // domain's name on its host.)
        let path: PathBuf = match source.kind {
            SourceKind::Libvirt => PathBuf::new(),
            _ => confinement(p.confine.as_ref())?.real_source(&source.path)?,
        };
        let out = match source.kind {
            SourceKind::Files => {
                let opts = arca_ingest::files::FilesOptions {
                    source: source.name.clone(),
                    parent,
                    tags: source.tags.clone(),
                };
                arca_ingest::files::backup(&ds, &path, &opts, progress)
                    .map_err(|e| e.to_string())?
            }
            SourceKind::Image => {
                let opts = arca_ingest::image::ImageOptions {
                    source: source.name.clone(),
                    parent,
                    changed_extents: None,
                    tags: source.tags.clone(),
                    full_read: false,
                };
                arca_ingest::image::backup(&ds, &path, &opts, progress)
                    .map_err(|e| e.to_string())?
            }
            SourceKind::Libvirt => {
                let h = l
                    .hypervisor
                    .as_ref()
                    .ok_or("the lease of a libvirt backup names no hypervisor")?;
                let opts = crate::vm::with_hooks(
                    arca_ingest::libvirt::VmBackupOptions {
                        source: source.name.clone(),
                        parent,
                        tags: source.tags.clone(),
                        checkpoint_prefix: arca_ingest::image::qcow2::bitmap_prefix(&ds),
                        ..Default::default()
                    },
                    l.hooks.as_ref(),
                );
                crate::vm::backup(&ds, h, &source.path, &opts, progress)?
            }
        };
        for w in &out.warnings {
            // A VM's warnings are about the backup job (a pre command
            // that failed, a checkpoint left); a tree's, entries skipped.
            let w = match source.kind {
                SourceKind::Libvirt => w.clone(),
                _ => format!("skipped {w}"),
            };
            self.coord.log(task.id, LogLevel::Warn, &w);
        }
        // The snapshot is committed: it is listed together with the
        // result, at the time its manifest records.
        fx.restore_point = Some(RestorePoint {
            id: out.snapshot.into(),
            datastore_id: d.id,
            source_id: Some(source.id),
            source_name: source.name.clone(),
            project_id: source.project_id,
            kind: source.kind,
            time: snapshot_time(&ds, &out.snapshot)?,
            bytes_total: out.bytes_total as i64,
            bytes_added: out.bytes_added as i64,
            files: out.files as i64,
            hostname: arca_ingest::hostname(),
            task_id: Some(task.id),
            created_at: catalog::now(),
            ..Default::default()
        });
        // The policy's retention, right after a new restore point exists.
        let mut pruned = 0;
        if let Some(r) = l.retention.as_ref().filter(|r| !r.is_empty()) {
            let r: Retention = r.clone().into();
            let mut mine = mine;
            if let Some(m) = &mut mine {
                m.insert(out.snapshot.to_hex());
            }
            pruned = self
                .apply_retention(&ds, &source.name, mine.as_ref(), &protected, &r, fx)
                .map_err(|e| format!("backup succeeded, but retention failed: {e}"))?;
            if pruned > 0 {
                self.coord.log(
                    task.id,
                    LogLevel::Info,
                    &format!("retention removed {pruned} restore point(s)"),
                );
            }
        }
        fx.datastore_bytes_used = Some((d.id, bytes_used(&ds)));
        Ok(TaskResult::Backup(BackupResult {
            snapshot: out.snapshot.into(),
            bytes_read: out.bytes_read,
            pruned: pruned as u64,
            bytes_total: out.bytes_total,
            bytes_added: out.bytes_added,
            files: out.files,
            duration_s: out.duration_s,
            mode: out.mode,
            warnings: out.warnings.len() as u64,
            consistency: out.consistency.map(crate::vm::consistency),
        }))
    }

    fn restore(&self, l: &Leased, p: &RestoreParams, progress: &Progress) -> Outcome {
        if let Some(imp) = &p.import {
            // Onto a hypervisor: nothing is written on this node.
            let h = l
                .hypervisor
                .as_ref()
                .ok_or("the lease of an import names no hypervisor")?;
            let (_, ds) = self.task_datastore(l)?;
            let snap = ds
                .resolve_snapshot(&p.restore_point.to_hex(), None)
                .map_err(|e| e.to_string())?;
            let done = crate::vm::import(&ds, h, &snap, imp, progress)?;
            self.coord.log(
                l.task.id,
                LogLevel::Info,
                &format!(
                    "defined domain {} (uuid {}) on {}{}; disks: {}",
                    done.name,
                    done.uuid,
                    h.address,
                    if done.started { ", started" } else { "" },
                    done.disks
                        .iter()
                        .map(|(t, f)| format!("{t} = {f}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return Ok(TaskResult::Restore(RestoreResult {
                restore_point: snap.id.into(),
                target: format!("domain {} on {}", done.name, h.address),
                bytes: snap.manifest.disks.iter().map(|d| d.size).sum(),
                tree: None,
            }));
        }
        let subpath = p.path.as_deref();
        // The real target, under the node's restore roots.
        let conf = confinement(p.confine.as_ref())?;
        let target = &conf.real_restore(&p.target)?;
        let opts = arca_ingest::restore::RestoreOptions {
            overwrite: p.overwrite,
            allow_block_devices: conf.allow_block_devices,
            // Only an admin's request carries it (checked by the API).
            special_files: p.special_files,
        };
        let (_, ds) = self.task_datastore(l)?;
        let snap = ds
            .resolve_snapshot(&p.restore_point.to_hex(), None)
            .map_err(|e| e.to_string())?;
        if let (true, Some(path)) = (snap.is_image(), subpath) {
            // A file or directory of the image's file tree.
            let tree = self.trees().get(&ds, &snap.id).map_err(|e| e.to_string())?;
            let o = crate::tree_restore::restore(
                tree.as_ref(),
                &snap.id.to_hex(),
                path,
                target,
                &opts,
                progress,
            )
            .map_err(|e| format!("path {path:?}: {e}"))?;
            self.log_restore(l, &o);
            Ok(TaskResult::Restore(RestoreResult {
                restore_point: snap.id.into(),
                target: target.display().to_string(),
                bytes: o.bytes,
                tree: Some(TreeRestore {
                    files: o.files,
                    warnings: o.warnings,
                    devices_skipped: o.devices_skipped,
                    privileges_dropped: o.privileges_dropped,
                }),
            }))
        } else if snap.is_image() {
            let n = arca_ingest::image::restore(&ds, &snap, target, &opts, progress)
                .map_err(|e| e.to_string())?;
            Ok(TaskResult::Restore(RestoreResult {
                restore_point: snap.id.into(),
                target: target.display().to_string(),
                bytes: n,
                tree: None,
            }))
        } else {
            let o = arca_ingest::restore::restore(&ds, &snap, target, subpath, &opts, progress)
                .map_err(|e| e.to_string())?;
            self.log_restore(l, &o);
            Ok(TaskResult::Restore(RestoreResult {
                restore_point: snap.id.into(),
                target: target.display().to_string(),
                bytes: o.bytes,
                tree: Some(TreeRestore {
                    files: o.files,
                    warnings: o.warnings,
                    devices_skipped: o.devices_skipped,
                    privileges_dropped: o.privileges_dropped,
                }),
            }))
        }
    }

    /// What a file restore's task log says besides its result: a resumed
    /// run, special files left out.
    fn log_restore(&self, l: &Leased, o: &arca_ingest::restore::RestoreOutcome) {
        if o.skipped > 0 || o.temporaries_removed > 0 {
            self.coord.log(
                    l.task.id,
                    LogLevel::Info,
                    &format!(
                        "resumed an interrupted restore of this restore point: {} file(s) already restored and identical were skipped, {} temporary file(s) removed",
                        o.skipped, o.temporaries_removed
                    ),
                );
        }
        if o.devices_skipped > 0 || o.privileges_dropped > 0 {
            self.coord.log(
                    l.task.id,
                    LogLevel::Warn,
                    &format!(
                        "special files not restored: {} device node(s) skipped, setuid/setgid bits or capabilities cleared on {} file(s); an admin may restore them with special_files",
                        o.devices_skipped, o.privileges_dropped
                    ),
                );
        }
    }
}

/// The confinement rules the server put in a backup or restore task.
fn confinement(c: Option<&arca_model::Confinement>) -> Result<Confinement, String> {
    let arca_model::Confinement {
        node,
        source_roots,
        restore_roots,
        allow_block_devices,
        data_dir,
        datastores,
    } = c.cloned().ok_or(
        "the task carries no confinement rules (is the server older than this node?); not running it",
    )?;
    Ok(Confinement {
        node,
        source_roots,
        restore_roots,
        allow_block_devices,
        data_dir,
        datastores,
    })
}

/// The source's restore points as the server listed them for this task.
fn source_restore_points(ids: Option<&[RestorePointId]>) -> Option<HashSet<String>> {
    ids.map(|a| a.iter().map(|r| r.to_hex()).collect())
}

/// When snapshot `id` was taken, as its manifest says: the restore point's
/// `time`, whether the catalog learns of it from the task or by an import.
fn snapshot_time(ds: &Datastore, id: &arca_repo::SnapshotId) -> Result<i64, String> {
    let snap = ds
        .load_snapshot(id)
        .map_err(|e| format!("reading the new snapshot {}: {e}", id.short()))?;
    Ok(RestorePoint::time_from_ns(snap.manifest.time_ns))
}

/// Bytes of the datastore's packs on disk.
fn bytes_used(ds: &Datastore) -> i64 {
    ds.backend()
        .list(arca_repo::datastore::PACKS)
        .map(|l| l.iter().map(|o| o.size).sum::<u64>())
        .unwrap_or(0) as i64
}
