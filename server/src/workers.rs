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
    while !stop.is_stopped() {
        let now = arca_catalog::now();
        let assign = now - last_assign >= 60;
        // The step's catalog calls (and the runner's) run on the blocking
        // pool, not on the async workers that serve the API.
        let (c, r, n) = (catalog.clone(), runner.clone(), notifier.clone());
        let seen = std::mem::take(&mut missed);
        let (stepped, now_missed) = arca_catalog::blocking(move || {
            let missed = check_rpo(&c, &n, now, seen);
            (step(&c, &r, now, assign, node_timeout), missed)
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
fn step(
    catalog: &Catalog,
    runner: &Arc<Runner>,
    now: i64,
    assign: bool,
    node_timeout: i64,
) -> Result<()> {
    if assign {
        arca_control::assign_policies(catalog)?;
    }
    arca_control::schedule_due(catalog, now)?;
    arca_control::maintenance::schedule_maintenance(catalog, now)?;
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
    catalog.expire_exports(now)?;
    catalog.heartbeat(runner.coord.node_id())?;
    runner.start_due().map_err(anyhow::Error::msg)?;
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
