//! The Arca control plane's engine: policy assignment, the scheduler, and
//! the task runner of a node.
//!
//! - **Assignment** ([`assign_policies`]): a source is protected by the
//!   policy it was given explicitly, or else by the first enabled policy
//!   (highest priority, then lowest id) whose name pattern or tags match it.
//!   Rules are re-evaluated whenever sources or policies change.
//! - **Scheduling** ([`schedule_due`]): for every assigned source, the most
//!   recent slot of its policy's schedule at or before now is queued as a
//!   backup task, unless that slot was queued already. The catalog keeps
//!   (policy, source, slot) unique, so a restart can neither lose a slot
//!   nor queue it twice, and after downtime only the newest missed slot
//!   runs, once. Slots before the policy or source existed are never run.
//!   A backup window delays the task until the window opens.
//! - **Running** ([`Runner`]): a node leases due tasks (highest priority
//!   first, one task per source at a time, at most `max_tasks` at once),
//!   renews the lease with every progress report, and finishes them.
//!   Failures are retried with exponential backoff (30 s, 60 s, 120 s …,
//!   at most 1 h) until `max_attempts`. A task whose lease runs out (its
//!   node died) is requeued or failed with the reason; its snapshot, if it
//!   was half written, was never committed, so no half restore point is
//!   ever listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use arca_calendar::{Schedule, Window};
use arca_catalog::{self as catalog, Catalog, NewTask, Policy, RestorePoint, Source, Task};
use arca_ingest::Progress;
use arca_repo::{Datastore, OpenOptions};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

pub mod notify;
pub use notify::{Notifier, SmtpConfig};

/// Seconds a node's lease on a running task lasts without a report.
pub const LEASE_SECS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Check a schedule expression (for the API): the parsed, normalised form.
pub fn parse_schedule(s: &str) -> Result<Schedule> {
    Schedule::from_str(s).map_err(|e| Error::Invalid(e.to_string()))
}

pub fn parse_window(s: &str) -> Result<Window> {
    Window::from_str(s).map_err(|e| Error::Invalid(e.to_string()))
}

fn matches(p: &Policy, s: &Source) -> bool {
    let by_name = p
        .match_pattern
        .as_deref()
        .and_then(|pat| glob::Pattern::new(pat).ok())
        .is_some_and(|pat| pat.matches(&s.name));
    let by_tag = p.match_tags.iter().any(|t| s.tags.contains(t));
    p.enabled && p.project_id == s.project_id && (by_name || by_tag)
}

/// Re-evaluate rule-based assignments. Returns how many sources changed.
pub fn assign_policies(c: &Catalog) -> Result<usize> {
    let mut policies = c.policies()?;
    policies.sort_by_key(|p| (-p.priority, p.id));
    let mut changes = Vec::new();
    for s in c.sources()? {
        if s.assigned_by == "explicit" {
            continue;
        }
        let want = policies.iter().find(|p| matches(p, &s)).map(|p| p.id);
        if want != s.policy_id {
            changes.push((s.id, want, "rule"));
        }
    }
    c.assign_policies_many(&changes)?;
    Ok(changes.len())
}

/// A backup the scheduler queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub task_id: i64,
    pub source_id: i64,
    pub policy_id: i64,
    pub slot: i64,
    pub not_before: i64,
}

/// Queue the due backups at `now`, in one transaction. Returns them.
pub fn schedule_due(c: &Catalog, now: i64) -> Result<Vec<Queued>> {
    let policies: HashMap<i64, Policy> = c.policies()?.into_iter().map(|p| (p.id, p)).collect();
    let mut parsed: HashMap<i64, Option<(Schedule, Option<Window>)>> = HashMap::new();
    let last_slots = c.last_slots()?;
    let mut due = Vec::new();
    for s in c.sources()? {
        let Some(p) = s.policy_id.and_then(|id| policies.get(&id)) else {
            continue;
        };
        if !p.enabled {
            continue;
        }
        let entry = parsed.entry(p.id).or_insert_with(|| {
            let sched = Schedule::from_str(&p.schedule).ok()?;
            let window = match p.backup_window.as_deref() {
                Some(w) => Some(Window::from_str(w).ok()?),
                None => None,
            };
            Some((sched, window))
        });
        let Some((sched, window)) = entry else {
            continue;
        };
        let Some(slot) = sched.last_at_or_before(at(now)).map(ts) else {
            continue;
        };
        // Never run slots from before the policy or the source existed.
        if slot < p.created_at.max(s.created_at) {
            continue;
        }
        if last_slots
            .get(&(p.id, s.id))
            .is_some_and(|&last| last >= slot)
        {
            continue;
        }
        let not_before = match window {
            Some(w) => w.next_open(at(now)).map_or(now, ts),
            None => now,
        };
        due.push(NewTask {
            kind: "backup".into(),
            project_id: s.project_id,
            source_id: Some(s.id),
            policy_id: Some(p.id),
            datastore_id: Some(p.datastore_id),
            node_id: Some(s.node_id),
            params: json!({}),
            priority: p.priority,
            slot: Some(slot),
            max_attempts: 3,
            not_before,
            created_by: format!("policy {}", p.name),
        });
    }
    let ids = c.add_tasks(&due)?;
    Ok(due
        .into_iter()
        .zip(ids)
        .filter_map(|(t, id)| {
            Some(Queued {
                task_id: id?,
                source_id: t.source_id?,
                policy_id: t.policy_id?,
                slot: t.slot?,
                not_before: t.not_before,
            })
        })
        .collect())
}

/// Rebuild the catalog's restore points of one datastore from the
/// datastore itself (datastores describe themselves). Snapshots already
/// listed are left alone. A snapshot of a source the catalog knows joins
/// that source and its project; others go to project 1 under their source
/// name. Returns how many restore points were added.
pub fn import_datastore(c: &Catalog, ds: &Datastore, ds_id: i64) -> Result<usize> {
    let before = c.restore_point_count()?;
    let snaps = ds
        .snapshots()
        .map_err(|e| Error::Invalid(format!("reading the datastore: {e}")))?;
    let mut sources: HashMap<String, Option<Source>> = HashMap::new();
    for snap in snaps {
        let m = &snap.manifest;
        let src = match sources.get(&m.source) {
            Some(s) => s.clone(),
            None => {
                let s = c.source_by_name(&m.source)?;
                sources.insert(m.source.clone(), s.clone());
                s
            }
        };
        let st = m.stats.clone().unwrap_or_default();
        c.add_restore_point(&RestorePoint {
            id: snap.id.to_hex(),
            datastore_id: ds_id,
            source_id: src.as_ref().map(|s| s.id),
            source_name: m.source.clone(),
            project_id: src.as_ref().map_or(1, |s| s.project_id),
            kind: if snap.is_image() {
                "image".into()
            } else {
                "files".into()
            },
            time: snap.time().timestamp(),
            bytes_total: st.bytes_total as i64,
            bytes_added: st.bytes_added as i64,
            files: st.files as i64,
            hostname: m.hostname.clone(),
            task_id: None,
            created_at: catalog::now(),
        })?;
    }
    Ok((c.restore_point_count()? - before).max(0) as usize)
}

/// Sources whose policy has an RPO and whose newest restore point is older
/// than it (or that have none, once the RPO has passed since the source or
/// policy was created). Returns (source, policy, newest restore point time).
pub fn rpo_misses(c: &Catalog, now: i64) -> Result<Vec<(Source, Policy, Option<i64>)>> {
    let policies: HashMap<i64, Policy> = c.policies()?.into_iter().map(|p| (p.id, p)).collect();
    let mut out = Vec::new();
    for s in c.sources()? {
        let Some(p) = s.policy_id.and_then(|id| policies.get(&id)) else {
            continue;
        };
        let Some(rpo) = p.rpo_seconds.filter(|_| p.enabled) else {
            continue;
        };
        let newest = c.newest_restore_point_time(s.id)?;
        let since = newest.unwrap_or(p.created_at.max(s.created_at));
        if now - since > rpo {
            out.push((s, p.clone(), newest));
        }
    }
    Ok(out)
}

/// Delay before retry number `attempt` (1-based): 30 s doubling, ≤ 1 h.
pub fn backoff_secs(attempt: i64) -> i64 {
    (30i64 << attempt.clamp(1, 8).saturating_sub(1)).min(3600)
}

/// Where a node keeps its datastores' passphrases: datastore id → secret.
pub type Passphrases = HashMap<i64, String>;

/// Runs tasks for one node.
pub struct Runner {
    pub catalog: Arc<Catalog>,
    pub node_id: i64,
    pub max_tasks: i64,
    passphrases: Passphrases,
    open: Mutex<HashMap<i64, Arc<Datastore>>>,
    /// Told when a task fails for good.
    notifier: Arc<Notifier>,
}

impl Runner {
    pub fn new(
        catalog: Arc<Catalog>,
        node_id: i64,
        max_tasks: i64,
        passphrases: Passphrases,
    ) -> Runner {
        Runner {
            catalog,
            node_id,
            max_tasks,
            passphrases,
            open: Mutex::new(HashMap::new()),
            notifier: Arc::new(Notifier::default()),
        }
    }

    /// Who to tell when a task fails for good.
    pub fn with_notifier(mut self, n: Arc<Notifier>) -> Runner {
        self.notifier = n;
        self
    }

    fn notify_failure(&self, task_id: i64) {
        if self.notifier.is_empty() {
            return;
        }
        let task = self.catalog.task(task_id).ok();
        let subject = match &task {
            Some(t) => format!(
                "arca: {} task {} failed: {}",
                t.kind,
                t.id,
                t.error.as_deref().unwrap_or("")
            ),
            None => format!("arca: task {task_id} failed"),
        };
        for line in self
            .notifier
            .send("task.failed", &subject, &json!({"task": task}))
        {
            let _ = self.catalog.add_task_log(task_id, "info", &line);
        }
    }

    /// The datastore, opened once and kept open (no key derivation and no
    /// index open per task).
    pub fn datastore(&self, id: i64) -> std::result::Result<Arc<Datastore>, String> {
        if let Some(ds) = self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(ds.clone());
        }
        let rec = self.catalog.datastore(id).map_err(|e| e.to_string())?;
        let opts = OpenOptions {
            passphrase: self.passphrases.get(&id).map(|p| p.as_bytes().to_vec()),
            ..Default::default()
        };
        let ds = Datastore::open(Path::new(&rec.path), &opts)
            .map_err(|e| format!("opening datastore {}: {e}", rec.name))?;
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, ds.clone());
        Ok(ds)
    }

    /// Lease and start every task this node may run now. Each runs on a
    /// blocking thread; returns their handles.
    pub fn start_due(self: &Arc<Self>) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut handles = Vec::new();
        while self.catalog.running_on_node(self.node_id)? < self.max_tasks {
            let Some(task) = self
                .catalog
                .lease_task(self.node_id, catalog::now(), LEASE_SECS)?
            else {
                break;
            };
            let me = Arc::clone(self);
            handles.push(tokio::task::spawn_blocking(move || me.run(task)));
        }
        Ok(handles)
    }

    /// Run one leased task to its end, reporting progress every second.
    pub fn run(&self, task: Task) {
        let c = &self.catalog;
        let _ = c.add_task_log(
            task.id,
            "info",
            &format!(
                "started on node {} (attempt {})",
                self.node_id, task.attempt
            ),
        );
        let progress = Progress::default();
        let outcome = std::thread::scope(|s| {
            let worker = s.spawn(|| self.execute(&task, &progress));
            // Report progress and renew the lease until the work ends.
            while !worker.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let tick = std::time::Instant::now();
                let done = progress.bytes.load(Ordering::Relaxed) as i64;
                let total = progress.total.load(Ordering::Relaxed) as i64;
                if let Ok(true) = c.task_progress(task.id, done, total, catalog::now() + LEASE_SECS)
                {
                    progress.cancel.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(
                    std::time::Duration::from_millis(800).saturating_sub(tick.elapsed()),
                );
            }
            worker
                .join()
                .unwrap_or_else(|_| Err("the task panicked".into()))
        });
        let cancelled = progress.cancel.load(Ordering::Relaxed);
        let done = progress.bytes.load(Ordering::Relaxed) as i64;
        let total = progress.total.load(Ordering::Relaxed) as i64;
        let _ = c.task_progress(task.id, done, total.max(done), catalog::now() + LEASE_SECS);
        let (level, msg) = match (&outcome, cancelled) {
            (_, true) => ("warn", "cancelled".to_string()),
            (Ok(v), _) => ("info", format!("succeeded: {v}")),
            (Err(e), _) => ("error", format!("failed: {e}")),
        };
        let _ = c.add_task_log(task.id, level, &msg);
        let retry_at = catalog::now() + backoff_secs(task.attempt);
        match c.finish_task(task.id, outcome, cancelled, Some(retry_at)) {
            Ok(catalog::TaskState::Queued) => {
                let _ = c.add_task_log(
                    task.id,
                    "info",
                    &format!("retry after {} s", backoff_secs(task.attempt)),
                );
            }
            Ok(catalog::TaskState::Failed) => self.notify_failure(task.id),
            Ok(_) => {}
            // The lease was taken away (expired): the server decided already.
            Err(e) => {
                let _ = c.add_task_log(
                    task.id,
                    "warn",
                    &format!("could not record the result: {e}"),
                );
            }
        }
    }

    fn execute(&self, task: &Task, progress: &Progress) -> std::result::Result<Value, String> {
        match task.kind.as_str() {
            "backup" => self.backup(task, progress),
            "restore" => self.restore(task, progress),
            "verify" => self.verify(task),
            "prune" => self.prune(task),
            "gc" => self.gc(task),
            k => Err(format!("unknown task kind {k:?}")),
        }
    }

    fn task_datastore(&self, task: &Task) -> std::result::Result<(i64, Arc<Datastore>), String> {
        let id = task.datastore_id.ok_or("the task names no datastore")?;
        Ok((id, self.datastore(id)?))
    }

    fn backup(&self, task: &Task, progress: &Progress) -> std::result::Result<Value, String> {
        let c = &self.catalog;
        let source = c
            .source(task.source_id.ok_or("backup task without a source")?)
            .map_err(|e| e.to_string())?;
        let (ds_id, ds) = self.task_datastore(task)?;
        let parent = match ds.resolve_snapshot("latest", Some(&source.name)) {
            Ok(s) => Some(s),
            Err(arca_repo::Error::NotFound(_)) => None,
            Err(e) => return Err(e.to_string()),
        };
        let path = PathBuf::from(&source.path);
        let out = match source.kind.as_str() {
            "files" => {
                let _prefetch = arca_ingest::prefetch::Prefetch::start(&path);
                let opts = arca_ingest::files::FilesOptions {
                    source: source.name.clone(),
                    parent,
                    tags: source.tags.clone(),
                };
                arca_ingest::files::backup(&ds, &path, &opts, progress)
            }
            "image" => {
                let opts = arca_ingest::image::ImageOptions {
                    source: source.name.clone(),
                    parent,
                    changed_extents: None,
                    tags: source.tags.clone(),
                };
                arca_ingest::image::backup(&ds, &path, &opts, progress)
            }
            k => return Err(format!("unknown source kind {k:?}")),
        }
        .map_err(|e| e.to_string())?;
        for w in &out.warnings {
            let _ = c.add_task_log(task.id, "warn", &format!("skipped {w}"));
        }
        // Listed only now that the snapshot is committed.
        c.add_restore_point(&RestorePoint {
            id: out.snapshot.to_hex(),
            datastore_id: ds_id,
            source_id: Some(source.id),
            source_name: source.name.clone(),
            project_id: source.project_id,
            kind: source.kind.clone(),
            time: catalog::now(),
            bytes_total: out.bytes_total as i64,
            bytes_added: out.bytes_added as i64,
            files: out.files as i64,
            hostname: arca_ingest::hostname(),
            task_id: Some(task.id),
            created_at: catalog::now(),
        })
        .map_err(|e| e.to_string())?;
        // The policy's retention, right after a new restore point exists.
        let mut pruned = 0;
        if let Some(policy) = task.policy_id.and_then(|id| c.policy(id).ok()) {
            if !policy.retention.is_empty() {
                pruned = self
                    .apply_retention(&ds, &source.name, &policy.retention)
                    .map_err(|e| format!("backup succeeded, but retention failed: {e}"))?;
                if pruned > 0 {
                    let _ = c.add_task_log(
                        task.id,
                        "info",
                        &format!("retention removed {pruned} restore point(s)"),
                    );
                }
            }
        }
        self.refresh_usage(ds_id, &ds);
        Ok(json!({
            "snapshot": out.snapshot.to_hex(), "bytes_read": out.bytes_read, "pruned": pruned,
            "bytes_total": out.bytes_total, "bytes_added": out.bytes_added,
            "files": out.files, "duration_s": out.duration_s, "mode": out.mode,
            "warnings": out.warnings.len(),
        }))
    }

    fn restore(&self, task: &Task, progress: &Progress) -> std::result::Result<Value, String> {
        let p = &task.params;
        let rp_id = p["restore_point"]
            .as_str()
            .ok_or("restore task without restore_point")?;
        let target = p["target"].as_str().ok_or("restore task without target")?;
        let subpath = p["path"].as_str();
        let (_, ds) = self.task_datastore(task)?;
        let snap = ds
            .resolve_snapshot(rp_id, None)
            .map_err(|e| e.to_string())?;
        let target = Path::new(target);
        if snap.is_image() {
            if subpath.is_some() {
                return Err("path applies to tree restore points only".into());
            }
            let n = arca_ingest::image::restore(&ds, &snap, target, progress)
                .map_err(|e| e.to_string())?;
            Ok(json!({"restore_point": snap.id.to_hex(), "target": target, "bytes": n}))
        } else {
            let o = arca_ingest::restore::restore(&ds, &snap, target, subpath, progress)
                .map_err(|e| e.to_string())?;
            Ok(
                json!({"restore_point": snap.id.to_hex(), "target": target, "files": o.files, "bytes": o.bytes, "warnings": o.warnings}),
            )
        }
    }

    fn verify(&self, task: &Task) -> std::result::Result<Value, String> {
        let (_, ds) = self.task_datastore(task)?;
        let opts = arca_repo::verify::VerifyOptions {
            read_data_percent: task.params["read_data_percent"].as_f64().unwrap_or(100.0),
            ..Default::default()
        };
        let r = arca_repo::verify::verify(&ds, &opts, &|_, _, _| {}).map_err(|e| e.to_string())?;
        let v = serde_json::to_value(&r).map_err(|e| e.to_string())?;
        if r.is_clean() {
            Ok(v)
        } else {
            Err(format!("verify found damage: {v}"))
        }
    }

    /// Record the datastore's size on disk and the logical size of its
    /// restore points (for the dedup ratio).
    fn refresh_usage(&self, ds_id: i64, ds: &Datastore) {
        let used: u64 = ds
            .backend()
            .list(arca_repo::datastore::PACKS)
            .map(|l| l.iter().map(|o| o.size).sum())
            .unwrap_or(0);
        let _ = self.catalog.refresh_datastore_usage(ds_id, used as i64);
    }

    /// Remove the restore points of `source` that `r` does not keep, from
    /// the datastore and the catalog. Returns how many went.
    fn apply_retention(
        &self,
        ds: &Datastore,
        source: &str,
        r: &catalog::Retention,
    ) -> std::result::Result<usize, String> {
        let snaps: Vec<_> = ds
            .snapshots()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| s.manifest.source == source)
            .collect();
        let plan = arca_repo::prune::plan(&snaps, r).map_err(|e| e.to_string())?;
        let removed = arca_repo::prune::apply(ds, &plan).map_err(|e| e.to_string())?;
        for d in plan.iter().filter(|d| !d.keep) {
            let _ = self.catalog.delete_restore_point(&d.snapshot.id.to_hex());
        }
        Ok(removed)
    }

    fn prune(&self, task: &Task) -> std::result::Result<Value, String> {
        let (_, ds) = self.task_datastore(task)?;
        let r: catalog::Retention =
            serde_json::from_value(task.params["retention"].clone()).map_err(|e| e.to_string())?;
        let source = task.params["source"]
            .as_str()
            .ok_or("prune task without a source")?;
        let removed = self.apply_retention(&ds, source, &r)?;
        Ok(json!({"removed": removed}))
    }

    fn gc(&self, task: &Task) -> std::result::Result<Value, String> {
        let (_, ds) = self.task_datastore(task)?;
        let r = arca_repo::gc::gc(&ds, &Default::default(), &|_, _, _| {})
            .map_err(|e| e.to_string())?;
        serde_json::to_value(&r).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
