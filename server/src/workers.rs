//! The server's background workers: the scheduler (rule assignment, due
//! slots, maintenance, lease expiry of lost nodes, export expiry, the
//! embedded node's tasks) and RPO alerts, until the stop signal.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use arca_catalog::{Catalog, SourceId};
use arca_node::{Runner, Stop};
use arca_web::convert::ToApi;

use crate::Notifier;

/// Once a second, or when the API changed something: re-evaluate rule
/// assignments (at least once a minute), queue due slots, expire leases of
/// lost nodes, and start what the embedded node may run.
pub async fn scheduler(
    catalog: Arc<Catalog>,
    runner: Arc<Runner>,
    changed: Arc<tokio::sync::Notify>,
    notifier: Arc<Notifier>,
    node_timeout: i64,
    stop: Stop,
) {
    let mut last_assign = 0;
    // Sources already reported as missing their RPO (reported once per miss).
    let mut missed = HashSet::new();
    let mut stalls = StallGuard::default();
    while !stop.is_stopped() {
        let now = arca_catalog::now();
        let assign = now - last_assign >= 60;
        let (judge, stalled) = stalls.step(now);
        if let Some(secs) = stalled {
            tracing::warn!(
                stalled_s = secs,
                grace_s = arca_proto::LEASE_SECS,
                "the scheduler stalled (the catalog or the machine was blocked); nodes get time to report before leases expire or nodes go offline"
            );
        }
        // The step's catalog calls (and the runner's) run on the blocking
        // pool, not on the async workers that serve the API.
        let (c, r, n) = (catalog.clone(), runner.clone(), notifier.clone());
        let seen = std::mem::take(&mut missed);
        let (stepped, now_missed) = arca_catalog::blocking(move || {
            let missed = check_rpo(&c, &n, now, seen);
            (step(&c, &r, now, assign, judge, node_timeout), missed)
        })
        .await;
        missed = now_missed;
        match stepped {
            Ok(()) => {
                if assign {
                    last_assign = now;
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "scheduler step failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = changed.notified() => {}
            _ = stop.stopped() => {}
        }
    }
}

/// One scheduler step at `now` (on the blocking pool).
/// How long a gap between two scheduler steps counts as a stall (a step
/// starts about once a second).
const STALL_SECS: i64 = 10;

/// Keeps a stall of the server itself from being blamed on its nodes.
///
/// While the scheduler was blocked (a catalog write stuck behind the page
/// cache's writeback, a frozen VM), no heartbeat or progress call could be
/// recorded either, by remote nodes or by the embedded one. The first step
/// after such a gap would find every lease lapsed and every node silent,
/// and fail tasks that are running fine. So after a gap of more than
/// [`STALL_SECS`], lease expiry and offline marking wait one lease period
/// ([`arca_proto::LEASE_SECS`]) for the nodes to report again; what is
/// still silent after it is judged as usual.
#[derive(Debug, Default)]
struct StallGuard {
    last: Option<i64>,
    grace_until: i64,
}

impl StallGuard {
    /// A step starts at `now`: whether it may judge leases and heartbeats,
    /// and the length of the stall that just ended, if one did.
    fn step(&mut self, now: i64) -> (bool, Option<i64>) {
        let gap = self.last.map_or(0, |last| now - last);
        self.last = Some(now);
        let stalled = (gap > STALL_SECS).then(|| {
            self.grace_until = now + arca_proto::LEASE_SECS;
            gap
        });
        (now >= self.grace_until, stalled)
    }
}

fn step(
    catalog: &Catalog,
    runner: &Arc<Runner>,
    now: i64,
    assign: bool,
    judge: bool,
    node_timeout: i64,
) -> Result<()> {
    if assign {
        arca_control::assign_policies(catalog)?;
    }
    arca_control::schedule_due(catalog, now)?;
    arca_control::maintenance::schedule_maintenance(catalog, now)?;
    // The embedded node is alive while this runs.
    catalog.heartbeat(runner.coord.node_id())?;
    if judge {
        expire_lost(catalog, now, node_timeout)?;
    }
    catalog.expire_exports(now)?;
    runner.start_due().map_err(anyhow::Error::msg)?;
    Ok(())
}

/// Mark the nodes that missed their heartbeats offline and requeue or
/// fail the tasks whose leases lapsed.
fn expire_lost(catalog: &Catalog, now: i64, node_timeout: i64) -> Result<()> {
    let offline = catalog.mark_stale_nodes_offline(now - node_timeout)?;
    for id in &offline {
        tracing::warn!(
            target: "arca::node",
            node_id = id.get(),
            timeout_s = node_timeout,
            "node offline: it missed its heartbeats"
        );
    }
    let expired = catalog.expire_leases(
        now,
        &offline,
        "the node missed its heartbeats; lease expired",
    )?;
    if !expired.is_empty() {
        tracing::warn!(
            tasks = expired.len(),
            "requeued or failed the tasks of offline nodes"
        );
    }
    Ok(())
}

/// Notify of sources that missed their RPO and were not in `missed` (the
/// sources reported before); returns the sources missing it now. Without
/// notification targets nothing is checked and `missed` is kept. On the
/// blocking pool; the notifications are sent on threads of their own.
fn check_rpo(
    catalog: &Catalog,
    notifier: &Arc<Notifier>,
    now: i64,
    missed: HashSet<SourceId>,
) -> HashSet<SourceId> {
    if notifier.is_empty() {
        return missed;
    }
    match crate::rpo_misses(catalog, now) {
        Ok(misses) => {
            let now_missed: HashSet<SourceId> = misses.iter().map(|(s, _, _)| s.id).collect();
            for (s, p, newest) in misses {
                if missed.contains(&s.id) {
                    continue;
                }
                let n = notifier.clone();
                let s_name = s.name.clone();
                let subject = format!(
                    "arca: source {} missed its RPO of {} s (policy {})",
                    s.name,
                    p.rpo_seconds.unwrap_or(0),
                    p.name
                );
                let body = serde_json::json!({"source": s.to_api(), "policy": p.to_api(), "newest_restore_point": newest});
                tokio::task::spawn_blocking(move || {
                    for line in n.send("source.rpo_missed", &subject, &body) {
                        tracing::warn!(source = %s_name, "{line}");
                    }
                });
            }
            now_missed
        }
        Err(e) => {
            tracing::error!(error = %e, "rpo check failed");
            missed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_gives_the_nodes_one_lease_period_to_report() {
        let mut g = StallGuard::default();
        assert_eq!(g.step(1000), (true, None));
        assert_eq!(g.step(1001), (true, None));
        assert_eq!(g.step(1001 + STALL_SECS), (true, None), "not a stall yet");
        // 81 s without a step: nothing is judged until a lease period
        // after the stall ended.
        let t = 1001 + STALL_SECS + 81;
        assert_eq!(g.step(t), (false, Some(81)));
        for now in t + 1..t + arca_proto::LEASE_SECS {
            assert_eq!(g.step(now), (false, None), "{now}");
        }
        assert_eq!(g.step(t + arca_proto::LEASE_SECS), (true, None));
        assert_eq!(g.step(t + arca_proto::LEASE_SECS + 1), (true, None));
        // Another stall during a grace starts a new one.
        let u = t + arca_proto::LEASE_SECS + 20;
        assert_eq!(g.step(u), (false, Some(19)));
        assert_eq!(g.step(u + 1 + STALL_SECS), (false, Some(1 + STALL_SECS)));
        assert_eq!(
            g.step(u + 1 + STALL_SECS + arca_proto::LEASE_SECS),
            (false, Some(arca_proto::LEASE_SECS))
        );
    }
}
