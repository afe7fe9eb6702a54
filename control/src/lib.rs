//! The Arca control plane's catalog-side rules, as the REST API and the
//! server's scheduler use them: policy assignment, due slots, placement,
//! maintenance tasks, confinement. Running tasks is arca-node's (the
//! runner), serving the node protocol and the scheduler's loop
//! arca-server's.
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
//! - **Running** (arca-node's `Runner`): a node leases due tasks (highest priority
//!   first, one task per source at a time, at most `max_tasks` at once),
//!   renews the lease with every progress report, and finishes them.
//!   Failures are retried with exponential backoff (30 s, 60 s, 120 s …,
//!   at most 1 h) until `max_attempts`. A task whose lease runs out (its
//!   node died) is requeued or failed with the reason; its snapshot, if it
//!   was half written, was never committed, so no half restore point is
//!   ever listed.

use std::collections::HashMap;
use std::str::FromStr;

use arca_calendar::{Schedule, Window};
pub(crate) use arca_catalog as catalog;
use arca_catalog::{
    AssignedBy, Catalog, DatastoreId, NewTask, NodeId, Policy, PolicyId, Source, SourceId, TaskId,
    TaskSpec,
};
use chrono::{DateTime, TimeZone, Utc};

pub mod confine;
pub mod maintenance;
pub mod preview;
pub mod prune;

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
        if s.assigned_by == AssignedBy::Explicit {
            continue;
        }
        let want = policies.iter().find(|p| matches(p, &s)).map(|p| p.id);
        if want != s.policy_id {
            changes.push((s.id, want, AssignedBy::Rule));
        }
    }
    c.assign_policies_many(&changes)?;
    Ok(changes.len())
}

/// The sources `policy` is assigned to, by name (then id): those its
/// retention applies to (preview and prune).
pub(crate) fn policy_sources(c: &Catalog, policy: &Policy) -> Result<Vec<Source>> {
    let mut sources: Vec<_> = c
        .sources()?
        .into_iter()
        .filter(|s| s.policy_id == Some(policy.id))
        .collect();
    sources.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
    Ok(sources)
}

/// A backup the scheduler queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub task_id: TaskId,
    pub source_id: SourceId,
    pub policy_id: PolicyId,
    pub slot: i64,
    pub not_before: i64,
}

/// A datastore's name within its node: remote nodes register theirs as
/// `<node>/<name>`, the embedded node's have no prefix.
pub fn local_name(datastore: &str) -> &str {
    datastore.rsplit('/').next().unwrap_or(datastore)
}

/// Where a backup of a source on `node` into datastore `ds_id` goes. A
/// node writes only the datastores it owns, so a policy's datastore
/// stands, on other nodes, for their datastore of the same local name
/// (every node has a `default`): one policy protects sources on many
/// nodes, each writing its own datastore. Without such a datastore the
/// policy's own is returned and the task fails with the reason when the
/// node leases it.
pub fn place(datastores: &[catalog::Datastore], ds_id: DatastoreId, node: NodeId) -> DatastoreId {
    let Some(want) = datastores.iter().find(|d| d.id == ds_id) else {
        return ds_id;
    };
    if want.node_id == node {
        return ds_id;
    }
    datastores
        .iter()
        .find(|d| d.node_id == node && local_name(&d.name) == local_name(&want.name))
        .map_or(ds_id, |d| d.id)
}

/// Queue the due backups at `now`, in one transaction. Returns them.
pub fn schedule_due(c: &Catalog, now: i64) -> Result<Vec<Queued>> {
    let policies: HashMap<PolicyId, Policy> =
        c.policies()?.into_iter().map(|p| (p.id, p)).collect();
    let datastores = c.datastores()?;
    let mut parsed: HashMap<PolicyId, Option<(Schedule, Option<Window>)>> = HashMap::new();
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
            spec: TaskSpec::Backup(Default::default()),
            project_id: s.project_id,
            source_id: Some(s.id),
            policy_id: Some(p.id),
            datastore_id: Some(place(&datastores, p.datastore_id, s.node_id)),
            node_id: Some(s.node_id),
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

/// When `p`'s next backup is due to start after `now`: the first slot of
/// its schedule after `now` (the slot at or before `now` is the one
/// [`schedule_due`] queues now), delayed to the opening of its window
/// as the scheduler delays it. `None` when the policy is disabled, its
/// schedule is `never` or does not parse, or has no later slot.
pub fn next_run(p: &Policy, now: i64) -> Option<i64> {
    if !p.enabled || p.schedule.is_empty() || p.schedule == "never" {
        return None;
    }
    let sched = Schedule::from_str(&p.schedule).ok()?;
    let slot = sched.next_after(at(now))?;
    let start = match p.backup_window.as_deref() {
        Some(w) => Window::from_str(w).ok()?.next_open(slot).unwrap_or(slot),
        None => slot,
    };
    Some(ts(start))
}

#[cfg(test)]
mod tests;
