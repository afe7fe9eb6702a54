//! The control plane's side of a node, on the catalog: [`Local`], the
//! [`Coordinator`] of the server's embedded node, which the gRPC
//! `NodeService` also calls for remote nodes. So the rules (at most
//! `max_tasks` per node, a node only touches the datastores it owns,
//! retries with backoff, notifications on failure) are enforced once, on
//! the server, whatever the transport.

use std::sync::Arc;

use arca_catalog::{
    self as catalog, Catalog, ExportId, LogLevel, NodeId, Task, TaskId, TaskKind, TaskSpec,
};
use arca_node::leases::{not_held, Held};
use arca_node::{Coordinator, DatastoreRef, ExportSpec, Finished, Leased};
use arca_proto::{LeasedTask, LEASE_SECS};
use arca_web::convert::ToApi;
use serde_json::json;

use crate::{backoff_secs, Notifier};

/// The control plane's side of one node, on the catalog.
pub struct Local {
    pub catalog: Arc<Catalog>,
    pub node_id: NodeId,
    /// Told when a task fails for good.
    pub notifier: Arc<Notifier>,
    /// The tasks this node leased, and their attempts.
    held: Held,
    /// Opens hypervisors' sealed SSH keys for the leases of their backups.
    credentials: Option<Arc<arca_web::s3_secrets::SecretBox>>,
}

impl Local {
    pub fn new(catalog: Arc<Catalog>, node_id: NodeId) -> Local {
        Local {
            catalog,
            node_id,
            notifier: Arc::new(Notifier::default()),
            held: Default::default(),
            credentials: None,
        }
    }

    /// Open hypervisors' keys with `b` when leasing their backups.
    pub fn with_credentials(mut self, b: Option<Arc<arca_web::s3_secrets::SecretBox>>) -> Local {
        self.credentials = b;
        self
    }

    /// How to reach the hypervisor a task needs: a libvirt source's backup,
    /// or an import (None for other tasks), its key unsealed for this lease.
    fn hypervisor_for(
        &self,
        source: Option<&catalog::Source>,
        spec: &TaskSpec,
    ) -> Result<Option<arca_proto::HypervisorAccess>, String> {
        let id = match (source, spec) {
            (_, TaskSpec::Restore(r)) if r.import.is_some() => {
                r.import.as_ref().map(|i| i.hypervisor_id.get())
            }
            // Only a backup reaches the host (a prune or verify of the
            // source's restore points does not).
            (Some(s), TaskSpec::Backup(_)) if s.kind == arca_model::SourceKind::Libvirt => Some(
                s.settings["hypervisor_id"]
                    .as_i64()
                    .ok_or_else(|| format!("source {} names no hypervisor", s.name))?,
            ),
            _ => None,
        };
        let Some(id) = id else { return Ok(None) };
        let h = self
            .catalog
            .hypervisor(arca_model::HypervisorId(id))
            .map_err(|e| format!("hypervisor {id}: {e}"))?;
        let b = self
            .credentials
            .as_ref()
            .ok_or("this server keeps no credentials (no credentials key)")?;
        let sealed = self
            .catalog
            .hypervisor_key(h.id)
            .map_err(|e| e.to_string())?;
        let key = b
            .open(
                &arca_web::inventory::key_aad(h.project_id, &h.name),
                &sealed,
            )
            .map_err(|e| format!("the private key of hypervisor {}: {e}", h.name))?;
        Ok(Some(arca_proto::HypervisorAccess {
            id: h.id.get(),
            address: h.address,
            user: h.user,
            private_key: key,
            host_key: h.host_key.unwrap_or_default(),
        }))
    }

    pub fn with_notifier(mut self, n: Arc<Notifier>) -> Local {
        self.notifier = n;
        self
    }

    fn notify_failure(&self, task_id: TaskId) {
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
        let n = self.notifier.clone();
        let catalog = self.catalog.clone();
        // Delivery may take seconds (SMTP); never hold up the node's call.
        std::thread::spawn(move || {
            let task = task.map(ToApi::to_api);
            for line in n.send("task.failed", &subject, &json!({"task": task})) {
                let _ = catalog.add_task_log(task_id, LogLevel::Info, &line);
            }
        });
    }

    /// A catalog export as the node sees it.
    pub fn export_spec(&self, e: catalog::Export) -> Result<ExportSpec, String> {
        let d = self
            .catalog
            .datastore(e.datastore_id)
            .map_err(|e| e.to_string())?;
        // The source's name, for the NFS path (empty if the restore point
        // is gone from the catalog: the node then takes its manifest's).
        let source = if e.protocol == catalog::ExportProtocol::Nfs {
            self.catalog
                .restore_point(&e.restore_point_id.to_hex(), Some(&[e.project_id]))
                .map(|rp| rp.source_name)
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ExportSpec {
            id: e.id,
            restore_point: e.restore_point_id,
            datastore: DatastoreRef {
                id: d.id,
                name: d.name,
                path: d.path,
            },
            protocol: e.protocol,
            writable: e.writable,
            name: e.name,
            state: e.state,
            on_stop: e.on_stop,
            secret: e.secret,
            allow: e.allow,
            source,
        })
    }

    fn spec(&self, mut task: Task) -> Result<Leased, String> {
        let c = &self.catalog;
        let e = |e: catalog::Error| e.to_string();
        arca_control::confine::attach(c, self.node_id, &mut task)?;
        let source = match task.source_id {
            Some(id) => Some(c.source(id).map_err(e)?),
            None => None,
        };
        let retention = match (task.kind, task.policy_id) {
            (TaskKind::Backup, Some(id)) => c.policy(id).ok().map(|p| p.retention),
            _ => None,
        };
        let datastore = match task.datastore_id {
            Some(id) => {
                let d = c.datastore(id).map_err(e)?;
                if d.node_id != self.node_id {
                    let owner = c.node(d.node_id).map(|n| n.name).unwrap_or_default();
                    return Err(format!(
                        "datastore {} belongs to node {owner}; a node only writes the datastores it owns (give this node a datastore of the same name, or run the source on {owner})",
                        d.name
                    ));
                }
                Some(DatastoreRef {
                    id,
                    name: d.name,
                    path: d.path,
                })
            }
            None => None,
        };
        // What the node needs from the catalog, in the task's parameters
        // (not stored: computed at each lease).
        if !task.params.is_object() {
            task.params = json!({});
        }
        if let (Some(s), Some(d)) = (&source, &datastore) {
            // Retention and the parent are chosen among the restore points
            // of this source (by id), never by source name: a new source
            // that reuses a deleted source's name, or a source of another
            // project with the same name, is someone else's history.
            // Protected restore points are left out of those retention
            // chooses among (so that no node removes them, even one that
            // does not know `protected`) and named apart.
            let (prot, mine): (Vec<_>, Vec<_>) = c
                .restore_points_of_source(s.id, d.id)
                .map_err(e)?
                .into_iter()
                .partition(|(_, p)| *p);
            let ids = |v: Vec<(catalog::RestorePointId, bool)>| {
                Some(v.into_iter().map(|x| x.0).collect())
            };
            let (mine, prot) = (ids(mine), ids(prot));
            match task.spec() {
                Ok(TaskSpec::Backup(mut b)) => {
                    b.source_restore_points = mine;
                    b.protected = prot;
                    task.params = TaskSpec::Backup(b).params();
                }
                Ok(TaskSpec::Prune(mut p)) => {
                    p.source_restore_points = mine;
                    p.protected = prot;
                    task.params = TaskSpec::Prune(p).params();
                }
                _ => {}
            }
        }
        // A forget keeps what is protected now (it may have been
        // protected since the task was queued).
        if let Ok(TaskSpec::Forget(mut f)) = task.spec() {
            f.protected = Some(c.protected_among(&f.restore_points).map_err(e)?);
            task.params = TaskSpec::Forget(f).params();
        }
        // Parameters that do not parse are left as they are, and fail the
        // task below saying what is wrong with them.
        if let (Some(d), Ok(TaskSpec::Verify(mut v))) = (&datastore, task.spec()) {
            if !v.all && v.restore_points.is_none() {
                let max_age = c.datastore(d.id).map_err(e)?.verify_max_age_days;
                let due = c
                    .restore_points_to_verify(d.id, catalog::now() - max_age * 86400)
                    .map_err(e)?;
                v.restore_points = Some(due);
                v.verify_max_age_days = Some(max_age);
                task.params = TaskSpec::Verify(v).params();
            }
        }
        // The kind and parameters as typed values: a task stored with
        // parameters that do not fit fails with what is wrong.
        let spec = task.spec().map_err(|e| e.to_string())?;
        let hypervisor = self.hypervisor_for(source.as_ref(), &spec)?;
        let hooks = match (&source, &spec) {
            (Some(s), TaskSpec::Backup(_)) if s.kind == arca_model::SourceKind::Libvirt => {
                arca_model::api::VmHooks::of_settings(&s.settings)
                    .map_err(|e| format!("source {}: {e}", s.name))?
            }
            _ => None,
        };
        Ok(Leased {
            task: LeasedTask {
                id: task.id,
                attempt: task.attempt,
                max_attempts: task.max_attempts,
                project_id: task.project_id,
                policy_id: task.policy_id,
                source_id: task.source_id,
                spec,
            },
            source,
            retention: retention.map(Into::into),
            datastore,
            hypervisor,
            hooks,
        })
    }

    /// Tell whoever listens that verify found damaged restore points.
    fn notify_damage(&self, task_id: TaskId, v: &catalog::VerifyEffects) {
        if v.damaged.is_empty() || self.notifier.is_empty() {
            return;
        }
        let task = self.catalog.task(task_id).ok();
        let ds = task
            .as_ref()
            .and_then(|t| t.datastore_id)
            .and_then(|d| self.catalog.datastore(d).ok())
            .map(|d| d.name)
            .unwrap_or_default();
        let subject = format!(
            "arca: verify of datastore {ds} found {} damaged restore point(s)",
            v.damaged.len()
        );
        let body = json!({
            "datastore": ds,
            "task": task_id,
            "restore_points": v.damaged.iter().map(|(id, why)| json!({"id": id, "damage": why})).collect::<Vec<_>>(),
        });
        let n = self.notifier.clone();
        let catalog = self.catalog.clone();
        std::thread::spawn(move || {
            for line in n.send("verify.damaged", &subject, &body) {
                let _ = catalog.add_task_log(task_id, LogLevel::Info, &line);
            }
        });
    }
}

impl Coordinator for Local {
    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn exports(
        &self,
        seen: u64,
        wait: std::time::Duration,
    ) -> Result<(u64, Vec<ExportSpec>), String> {
        let (generation, list) = self
            .catalog
            .wait_exports(self.node_id, seen, wait)
            .map_err(|e| e.to_string())?;
        let specs = list
            .into_iter()
            .map(|e| self.export_spec(e))
            .collect::<Result<_, _>>()?;
        Ok((generation, specs))
    }

    fn export_state(&self, id: ExportId, r: Result<String, String>) -> Result<(), String> {
        match r {
            Ok(addr) => self.catalog.export_active(id, self.node_id, &addr),
            Err(e) => self.catalog.export_failed(id, self.node_id, &e),
        }
        .map_err(|e| e.to_string())
    }

    fn lease(&self) -> Result<Option<Leased>, String> {
        let c = &self.catalog;
        let e = |e: catalog::Error| e.to_string();
        loop {
            let node = c.node(self.node_id).map_err(e)?;
            if c.running_on_node(self.node_id).map_err(e)? >= node.max_tasks {
                return Ok(None);
            }
            let Some(task) = c
                .lease_task(self.node_id, catalog::now(), LEASE_SECS)
                .map_err(e)?
            else {
                return Ok(None);
            };
            let id = task.id;
            match self.spec(task) {
                Ok(l) => {
                    self.held.hold(l.task.id, l.task.attempt);
                    return Ok(Some(l));
                }
                // A task this node cannot run: fail it with the reason
                // (no retry: the same node would get it again) and go on.
                Err(msg) => {
                    let _ = c.add_task_log(id, LogLevel::Error, &msg);
                    if let Ok(catalog::TaskState::Failed) = c.finish_task(id, Err(msg), false, None)
                    {
                        self.notify_failure(id);
                    }
                }
            }
        }
    }

    fn progress(&self, task_id: TaskId, done: i64, total: i64) -> Result<bool, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| not_held(task_id))?;
        self.catalog
            .task_progress_leased(task_id, &lease, done, total, LEASE_SECS)
            .map_err(|e| e.to_string())
    }

    fn log(&self, task_id: TaskId, level: LogLevel, message: &str) {
        let _ = self.catalog.add_task_log(task_id, level, message);
    }

    fn finish(&self, task_id: TaskId, f: Finished) -> Result<catalog::TaskState, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| not_held(task_id))?;
        let r = self.finish_leased(task_id, lease, f);
        self.held.release(task_id);
        r.map_err(|e| e.to_string())
    }
}

impl Local {
    /// Record a task's end for the holder of `lease`: refused, with
    /// nothing recorded, unless the lease holds the task now and the
    /// effects stay inside the task (arca-catalog's leases module).
    pub fn finish_leased(
        &self,
        task_id: TaskId,
        lease: catalog::Lease,
        f: Finished,
    ) -> Result<catalog::TaskState, catalog::Error> {
        let c = &self.catalog;
        let attempt = lease.attempt;
        let retry_at = catalog::now() + backoff_secs(attempt);
        let state = c.finish_task_leased(
            task_id,
            Some(&lease),
            f.outcome.map(|r| r.to_json()),
            f.cancelled,
            Some(retry_at),
            &f.effects,
        )?;
        if let Some(v) = &f.effects.verify {
            self.notify_damage(task_id, v);
        }
        match state {
            catalog::TaskState::Queued => {
                let _ = c.add_task_log(
                    task_id,
                    LogLevel::Info,
                    &format!("retry after {} s", backoff_secs(attempt)),
                );
            }
            catalog::TaskState::Failed => self.notify_failure(task_id),
            _ => {}
        }
        Ok(state)
    }
}
