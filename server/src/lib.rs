//! The Arca server: the control plane's server side.
//!
//! - [`serve`]: `arca server` (REST API, node service, scheduler, an
//!   embedded node), with a clean shutdown on SIGTERM or SIGINT.
//! - [`Local`]: the control plane's side of a node, on the catalog (the
//!   embedded node's coordinator; the gRPC [`service`] calls it for remote
//!   nodes).
//! - [`agent`]: the agent service (`arca agent` pushing disk backups,
//!   only the chunks the datastore lacks).
//! - [`queries`]: questions for remote nodes (browsing their datastores),
//!   which they take and answer over gRPC.
//! - [`workers`]: the scheduler and RPO alerts, background workers with a
//!   stop signal; [`notify`]: webhook and e-mail notifications.
//! - [`datadir`]: the data directory (catalog, default datastore, secrets).

use std::collections::HashMap;

use arca_catalog::{
    self as catalog, Catalog, DatastoreId, Policy, PolicyId, ProjectId, RestorePoint, Source,
    SourceKind,
};
use arca_repo::Datastore;

pub mod agent;
pub mod browse;
pub mod datadir;
pub mod inventory;
mod local;
pub mod notify;
pub mod queries;
pub mod remote_tree;
pub mod s3;
pub mod serve;
pub mod service;
pub mod workers;

pub use arca_proto::LEASE_SECS;
pub use local::Local;
pub use notify::{Notifier, SmtpConfig};

pub type Result<T> = std::result::Result<T, arca_control::Error>;

/// Rebuild the catalog's restore points of one datastore from the
/// datastore itself (datastores describe themselves). Snapshots already
/// listed are left alone. A snapshot of a source the catalog knows joins
/// that source and its project; others (and those whose source name is
/// used in several projects) go to project 1 under their source name.
/// Returns how many restore points were added.
///
/// The restore points are recorded in batches
/// ([`Catalog::add_restore_points`]), not one transaction each: the
/// writer is free between batches, and a large import is several times
/// faster (docs/benchmarks/2026-12-02-busy-catalog.md).
pub fn import_datastore(c: &Catalog, ds: &Datastore, ds_id: DatastoreId) -> Result<usize> {
    let snaps = ds
        .snapshots()
        .map_err(|e| arca_control::Error::Invalid(format!("reading the datastore: {e}")))?;
    let mut sources: HashMap<String, Option<Source>> = HashMap::new();
    let mut rps = Vec::with_capacity(snaps.len());
    for snap in snaps {
        let m = &snap.manifest;
        let src = match sources.get(&m.source) {
            Some(s) => s.clone(),
            None => {
                // Names are unique per project only, and a snapshot names
                // no project: it joins a source only when one project has
                // a source of that name. Otherwise which project it
                // belongs to is unknown, and it goes where snapshots of
                // unknown sources go.
                let mut named = c.sources_named(&m.source)?;
                let s = if named.len() == 1 { named.pop() } else { None };
                sources.insert(m.source.clone(), s.clone());
                s
            }
        };
        let st = m.stats.clone().unwrap_or_default();
        rps.push(RestorePoint {
            id: snap.id.into(),
            datastore_id: ds_id,
            source_id: src.as_ref().map(|s| s.id),
            source_name: m.source.clone(),
            project_id: src.as_ref().map_or(ProjectId(1), |s| s.project_id),
            kind: if m.source_kind == "libvirt" {
                SourceKind::Libvirt
            } else if snap.is_image() {
                SourceKind::Image
            } else {
                SourceKind::Files
            },
            // The manifest's time, as the backup task reports it.
            time: RestorePoint::time_from_ns(m.time_ns),
            bytes_total: st.bytes_total as i64,
            bytes_added: st.bytes_added as i64,
            files: st.files as i64,
            hostname: m.hostname.clone(),
            task_id: None,
            created_at: catalog::now(),
            ..Default::default()
        });
    }
    Ok(c.add_restore_points(&rps)?)
}

/// Sources whose policy has an RPO and whose newest restore point is older
/// than it (or that have none, once the RPO has passed since the source or
/// policy was created). Returns (source, policy, newest restore point time).
pub fn rpo_misses(c: &Catalog, now: i64) -> Result<Vec<(Source, Policy, Option<i64>)>> {
    let policies: HashMap<PolicyId, Policy> =
        c.policies()?.into_iter().map(|p| (p.id, p)).collect();
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

#[cfg(test)]
mod tests;
