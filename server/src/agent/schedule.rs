//! Agent-fed sources (docs/vm-ingest.md, "Agent-fed sources"): the
//! sources of a hypervisor reached by its agent, and image sources added
//! with `agent: true`. No node leases their backup tasks (the catalog
//! leaves them out); the scheduler and `POST /sources/{id}/backup` queue
//! them as for any source, and the agent claims them with `Next` and runs
//! them with `Begin(task_id)`. The agent also syncs its hypervisor's
//! inventory (`Sync`), and after an agent's commit the policy's retention
//! runs as a prune task, as a node applies it after its own backups.

use arca_catalog::{
    self as catalog, AuditResult, Hypervisor, LogLevel, NewTask, SeenDomain, Source, SourceKind,
    Task, TaskEffects, TaskKind, TaskState,
};
use arca_model::task::TaskSpec;
use arca_model::PruneParams;
use arca_proto::agent_pb as pb;
use arca_proto::LEASE_SECS;
use arca_web::auth::Principal;
use tonic::Status;

use super::{internal, one_to_manage, AgentService, Sess};

/// At most this many domains in one `Sync`.
const MAX_DOMAINS: usize = 4096;

/// Does an agent feed `s` (its backups run on the agent's host)?
pub fn agent_fed(s: &Source) -> bool {
    s.settings["agent"].as_bool() == Some(true)
}

impl AgentService {
    /// The task `id` the agent claimed for `src` with `Next`: a backup of
    /// that source, running, leased to this server's node.
    pub(super) fn claimed(&self, src: &Source, id: i64) -> Result<Task, Status> {
        let t = self
            .catalog
            .task(catalog::TaskId(id))
            .map_err(|_| Status::not_found(format!("task {id} not found")))?;
        let ok = t.kind == TaskKind::Backup
            && t.source_id == Some(src.id)
            && t.state == TaskState::Running
            && t.node_id == Some(self.node_id)
            && t.lease_until.is_some_and(|l| l >= catalog::now());
        if !ok {
            return Err(Status::failed_precondition(format!(
                "task {id} is not a running backup of {} claimed with Next (state {})",
                src.name, t.state
            )));
        }
        Ok(t)
    }

    /// Fail a claimed task whose session could not open.
    pub(super) fn fail_claimed(&self, t: &Task, why: &str) {
        let _ = self.catalog.add_task_log(t.id, LogLevel::Error, why);
        let _ = self.catalog.finish_task_leased(
            t.id,
            Some(&catalog::Lease {
                node_id: self.node_id,
                attempt: t.attempt,
            }),
            Err(why.to_string()),
            false,
            None,
            &TaskEffects::default(),
        );
    }

    /// The policy's retention after an agent's backup: a prune task of the
    /// source in the datastore the backup went to, which the node runs
    /// next (with the restore points it protects), as it applies
    /// retention after its own backups.
    pub(super) fn retention_after(&self, s: &Sess) {
        let m = &s.meta;
        let Some(pid) = m.source.policy_id else {
            return;
        };
        let Ok(policy) = self.catalog.policy(pid) else {
            return;
        };
        let params = PruneParams {
            retention: policy.retention.clone().into(),
            source: m.source.name.clone(),
            ..Default::default()
        };
        if params.retention.is_empty() {
            return;
        }
        let t = NewTask {
            spec: TaskSpec::Prune(params),
            project_id: m.source.project_id,
            source_id: Some(m.source.id),
            policy_id: Some(pid),
            datastore_id: Some(m.datastore_id),
            node_id: Some(self.node_id),
            priority: policy.priority,
            max_attempts: 1,
            not_before: catalog::now(),
            created_by: format!("agent backup, task {}", m.task_id),
            ..Default::default()
        };
        match self.catalog.add_task(&t) {
            Ok(Some(p)) => {
                let _ = self.catalog.add_task_log(
                    m.task_id,
                    LogLevel::Info,
                    &format!("the policy's retention runs as prune task {}", p.id),
                );
            }
            Ok(None) => {}
            Err(e) => {
                let _ = self.catalog.add_task_log(
                    m.task_id,
                    LogLevel::Warn,
                    &format!("backup succeeded, but queueing the policy's retention failed: {e}"),
                );
            }
        }
    }

    /// The hypervisor `name` reached by its agent, which `p` may manage.
    fn agent_hypervisor(&self, p: &Principal, name: &str) -> Result<Hypervisor, Status> {
        let all = self.catalog.hypervisor_named(name).map_err(internal)?;
        let h = one_to_manage(p, all, |h| h.project_id, "hypervisor", name)?;
        if h.access != "agent" {
            return Err(Status::failed_precondition(format!(
                "hypervisor {name:?} is reached over SSH by its node, not by an agent"
            )));
        }
        Ok(h)
    }

    pub(super) fn sync_blocking(
        &self,
        p: Principal,
        remote: String,
        r: pb::SyncRequest,
    ) -> Result<pb::SyncReply, Status> {
        let h = self.agent_hypervisor(&p, &r.hypervisor)?;
        if r.domains.len() > MAX_DOMAINS
            || r.hostname.is_empty()
            || r.hostname.len() > 255
            || r.domains
                .iter()
                .any(|d| d.name.is_empty() || d.name.len() > 255 || d.uuid.len() > 64)
        {
            return Err(Status::invalid_argument(format!(
                "an inventory has a host name and at most {MAX_DOMAINS} domains, each named (≤ 255 bytes) with a UUID (≤ 64)"
            )));
        }
        let seen: Vec<SeenDomain> = r
            .domains
            .iter()
            .map(|d| SeenDomain {
                name: d.name.clone(),
                uuid: d.uuid.clone(),
            })
            .collect();
        // The agent's host is pinned on the first sync, as an SSH host
        // key is: another host syncing this hypervisor is refused.
        let pin = format!("agent on {}", r.hostname);
        let (added, removed, _) = match self.catalog.hypervisor_synced(&h, &pin, &seen) {
            Ok(x) => x,
            Err(catalog::Error::Conflict(_)) => {
                let m = format!(
                    "hypervisor {} is synced by the agent on another host ({}); remove and add it again if it moved",
                    h.name,
                    h.host_key.clone().unwrap_or_default()
                );
                let _ = self.catalog.hypervisor_sync_failed(h.id, &m);
                return Err(Status::failed_precondition(m));
            }
            Err(e) => return Err(internal(e)),
        };
        // New sources are placed under policies by their rules.
        let _ = arca_control::assign_policies(&self.catalog);
        let _ = self.catalog.audit(
            p.name(),
            "hypervisor.sync",
            &h.id.to_string(),
            &remote,
            AuditResult::Ok,
            &format!(
                "agent on {}: {} domain(s), {} added, {} removed",
                r.hostname,
                seen.len(),
                added.len(),
                removed.len()
            ),
        );
        tracing::info!(
            target: "arca::agent",
            hypervisor = %h.name,
            host = %r.hostname,
            user = %p.name(),
            domains = seen.len(),
            added = added.len(),
            removed = removed.len(),
            "agent synced its hypervisor"
        );
        let sources = self
            .catalog
            .hypervisor_sources(h.id)
            .map_err(internal)?
            .into_iter()
            .map(|s| pb::SyncSource {
                removed: s.settings["removed"].as_bool() == Some(true),
                name: s.name,
                domain: s.path,
            })
            .collect();
        Ok(pb::SyncReply {
            added: added.into_iter().map(|s| s.name).collect(),
            removed,
            sources,
        })
    }

    pub(super) fn next_blocking(
        &self,
        p: Principal,
        r: pb::NextRequest,
    ) -> Result<pb::NextReply, Status> {
        let mut mine: Vec<Source> = Vec::new();
        if !r.hypervisor.is_empty() {
            let h = self.agent_hypervisor(&p, &r.hypervisor)?;
            mine.extend(
                self.catalog
                    .hypervisor_sources(h.id)
                    .map_err(internal)?
                    .into_iter()
                    .filter(|s| agent_fed(s) && s.settings["removed"].as_bool() != Some(true)),
            );
        }
        for name in &r.sources {
            let s = self.source(&p, name)?;
            if s.kind != SourceKind::Image || !agent_fed(&s) {
                return Err(Status::failed_precondition(format!(
                    "source {name:?} is not fed by an agent (add it with --agent)"
                )));
            }
            mine.push(s);
        }
        let ids: Vec<_> = mine.iter().map(|s| s.id).collect();
        let Some(t) = self
            .catalog
            .claim_agent_task(&ids, self.node_id, LEASE_SECS)
            .map_err(internal)?
        else {
            return Ok(pb::NextReply::default());
        };
        let s = mine
            .into_iter()
            .find(|s| Some(s.id) == t.source_id)
            .ok_or_else(|| Status::internal("the claimed task's source"))?;
        let _ = self.catalog.add_task_log(
            t.id,
            LogLevel::Info,
            &format!("claimed by the agent of {} (user {})", s.name, p.name()),
        );
        tracing::info!(
            target: "arca::agent",
            task = t.id.get(),
            source = %s.name,
            user = %p.name(),
            "agent claimed a backup task"
        );
        Ok(pb::NextReply {
            task_id: t.id.get(),
            domain: if s.kind == SourceKind::Libvirt {
                s.path.clone()
            } else {
                String::new()
            },
            source: s.name,
        })
    }
}
