//! Prune on demand (`POST /api/v1/policies/{id}/prune`): one prune task
//! per source the policy applies to, in the datastore its backups go to,
//! with the policy's retention. The node applies it as it does after a
//! backup (node/src/runner/maintenance.rs); what it would remove is what
//! [`crate::preview::preview_retention`] shows.

use arca_catalog::{Catalog, NewTask, Policy, TaskSpec};
use arca_model::PruneParams;

use crate::{place, Result};

/// The prune tasks of `policy` now: one per source assigned to it (by
/// name, then id), none when it applies to no source. `created_by`: who
/// asked.
pub fn prune_tasks(c: &Catalog, policy: &Policy, created_by: &str) -> Result<Vec<NewTask>> {
    let datastores = c.datastores()?;
    let sources = crate::policy_sources(c, policy)?;
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let ds = place(&datastores, policy.datastore_id, s.node_id);
        let node = datastores
            .iter()
            .find(|d| d.id == ds)
            .map_or(s.node_id, |d| d.node_id);
        out.push(NewTask {
            spec: TaskSpec::Prune(PruneParams {
                retention: policy.retention.clone().into(),
                source: s.name.clone(),
                ..Default::default()
            }),
            project_id: s.project_id,
            source_id: Some(s.id),
            policy_id: Some(policy.id),
            datastore_id: Some(ds),
            node_id: Some(node),
            priority: policy.priority,
            slot: None,
            // As gc and verify on demand: reported, not retried.
            max_attempts: 1,
            not_before: arca_catalog::now(),
            created_by: created_by.into(),
        });
    }
    Ok(out)
}
