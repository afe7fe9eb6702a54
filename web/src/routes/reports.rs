//! Reports over a period (issue 16): protection (RPO compliance per source
//! and policy), storage (datastore use over time) and tasks (durations and
//! throughput); JSON, or CSV with `format=csv` (crate::csv). Every role
//! that may read a project may read its part of each report; datastores
//! belong to no project, any role reads the storage report. The rules are
//! in docs/control-plane.md, "Reports".

use std::collections::HashMap;

use arca_catalog::{self as catalog, reports::GoodPoint, ProjectId, SourceId, TaskState};
use arca_model::api::{self, ProtectionStatus, ReportFormat};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::csv::{num, opt, text, Csv};
use crate::error::{ApiError, ApiResult};
use crate::routes::{any_role, restore_points::project};
use crate::AppState;

/// The default length of a period: 7 days before `to`.
const DEFAULT_PERIOD: i64 = 7 * 86_400;

/// `[from, to]` from the query: `to` defaults to now, `from` to 7 days
/// before `to`; 400 when negative or inverted.
fn period(from: Option<i64>, to: Option<i64>, now: i64) -> ApiResult<(i64, i64)> {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to.saturating_sub(DEFAULT_PERIOD).max(0));
    if from < 0 || to < 0 {
        return Err(ApiError::bad_request(
            "from and to are Unix seconds, not negative",
        ));
    }
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok((from, to))
}

fn ratio(logical: i64, used: i64) -> Option<f64> {
    (used > 0).then(|| logical as f64 / used as f64)
}

// ---- protection ----

pub async fn protection(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::ProtectionQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let now = catalog::now();
    let (from, to) = period(q.from, q.to, now)?;
    let report = s
        .call(move |s| {
            let projects = match &q.project {
                Some(name) => Some(vec![project(s, &p, name)?]),
                None => p.projects(Action::Read),
            };
            protection_report(&s.catalog, projects.as_deref(), from, to, now)
        })
        .await?;
    Ok(match q.format.unwrap_or_default() {
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Csv => protection_csv(&report),
    })
}

/// The protection report of `projects` (none: all) over `[from, to]` as
/// at `now`.
pub(crate) fn protection_report(
    c: &catalog::Catalog,
    projects: Option<&[ProjectId]>,
    from: i64,
    to: i64,
    now: i64,
) -> ApiResult<api::ProtectionReport> {
    let seen = |p: ProjectId| projects.is_none_or(|v| v.contains(&p));
    let names: HashMap<ProjectId, String> =
        c.projects()?.into_iter().map(|p| (p.id, p.name)).collect();
    let policies: HashMap<_, _> = c
        .policies()?
        .into_iter()
        .filter(|p| seen(p.project_id))
        .map(|p| (p.id, p))
        .collect();
    let end = to.min(now);
    let mut points: HashMap<SourceId, Vec<i64>> = HashMap::new();
    for GoodPoint { source_id, time } in c.good_points(projects, end)? {
        points.entry(source_id).or_default().push(time);
    }
    let last_good = c.newest_good_restore_points(projects)?;
    let mut rows = Vec::new();
    for src in c.sources()?.into_iter().filter(|x| seen(x.project_id)) {
        let pol = src.policy_id.and_then(|id| policies.get(&id));
        let rpo = pol.filter(|p| p.enabled).and_then(|p| p.rpo_seconds);
        let last = last_good
            .get(&src.id)
            .map(|&(id, time)| api::RestorePointRef { id, time });
        // As the server's RPO alert: the RPO counts from the later of
        // the source's and the policy's creation, as if a backup had
        // been made then.
        let since = src.created_at.max(pol.map_or(0, |p| p.created_at));
        let compliance = rpo.and_then(|rpo| {
            let mut ps = points.get(&src.id).cloned().unwrap_or_default();
            ps.push(since);
            catalog::reports::rpo_compliance(&ps, rpo, from.max(src.created_at), end)
        });
        let status = match (pol, &last) {
            (None, _) => ProtectionStatus::NoPolicy,
            (Some(_), None) => ProtectionStatus::NeverBackedUp,
            (Some(_), Some(l)) if rpo.is_some_and(|r| now - l.time > r) => {
                ProtectionStatus::RpoMissed
            }
            _ => ProtectionStatus::Ok,
        };
        rows.push(api::ProtectionRow {
            source_id: src.id,
            project: names.get(&src.project_id).cloned().unwrap_or_default(),
            project_id: src.project_id,
            source: src.name,
            policy: pol.map(|p| api::PolicyRef {
                id: p.id,
                name: p.name.clone(),
            }),
            rpo_seconds: rpo,
            last_good: last,
            next_run: pol.and_then(|p| arca_control::next_run(p, now)),
            status,
            compliance,
        });
    }
    let lowest_first = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        // Unknown last.
        (a, b) => a.is_none().cmp(&b.is_none()),
    };
    rows.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then(lowest_first(a.compliance, b.compliance))
            .then_with(|| a.project.cmp(&b.project))
            .then_with(|| a.source.cmp(&b.source))
    });
    let mut summary: Vec<api::PolicyCompliance> = policies
        .values()
        .map(|pol| {
            let mine: Vec<_> = rows
                .iter()
                .filter(|r| r.policy.as_ref().is_some_and(|p| p.id == pol.id))
                .collect();
            let known: Vec<f64> = mine.iter().filter_map(|r| r.compliance).collect();
            api::PolicyCompliance {
                policy_id: pol.id,
                policy: pol.name.clone(),
                project_id: pol.project_id,
                project: names.get(&pol.project_id).cloned().unwrap_or_default(),
                rpo_seconds: pol.rpo_seconds.filter(|_| pol.enabled),
                sources: mine.len() as u64,
                problems: mine
                    .iter()
                    .filter(|r| r.status != ProtectionStatus::Ok)
                    .count() as u64,
                compliance: (!known.is_empty())
                    .then(|| known.iter().sum::<f64>() / known.len() as f64),
            }
        })
        .collect();
    summary.sort_by(|a, b| {
        lowest_first(a.compliance, b.compliance)
            .then(b.problems.cmp(&a.problems))
            .then_with(|| a.project.cmp(&b.project))
            .then_with(|| a.policy.cmp(&b.policy))
    });
    Ok(api::ProtectionReport {
        from,
        to,
        sources: rows,
        policies: summary,
    })
}

/// The sources of the protection report (the policies' summary is in the
/// JSON only).
fn protection_csv(r: &api::ProtectionReport) -> Response {
    let mut c = Csv::new(&[
        "source_id",
        "source",
        "project",
        "policy_id",
        "policy",
        "rpo_seconds",
        "last_good_id",
        "last_good_time",
        "next_run",
        "status",
        "compliance",
    ]);
    for x in &r.sources {
        c.row(vec![
            num(x.source_id),
            text(&x.source),
            text(&x.project),
            opt(x.policy.as_ref().map(|p| p.id)),
            text(x.policy.as_ref().map_or("", |p| &p.name)),
            opt(x.rpo_seconds),
            opt(x.last_good.as_ref().map(|l| l.id.to_string())),
            opt(x.last_good.as_ref().map(|l| l.time)),
            opt(x.next_run),
            num(x.status),
            opt(x.compliance),
        ]);
    }
    c.response(&format!("arca-protection-{}-{}.csv", r.from, r.to))
}

// ---- storage ----

pub async fn storage(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::StorageQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    any_role(&p)?;
    let (from, to) = period(q.from, q.to, catalog::now())?;
    let report = s
        .call(move |s| {
            let mut all = s.catalog.datastores()?;
            if let Some(name) = &q.datastore {
                let found = all
                    .iter()
                    .position(|d| d.id.to_string() == *name)
                    .or_else(|| all.iter().position(|d| d.name == *name))
                    .ok_or_else(|| catalog::Error::NotFound(format!("datastore {name:?}")))?;
                all = vec![all.swap_remove(found)];
            }
            let only = (all.len() == 1).then(|| all[0].id);
            let mut samples: HashMap<_, Vec<_>> = HashMap::new();
            for x in s.catalog.usage_samples(only, from, to)? {
                samples
                    .entry(x.datastore_id)
                    .or_default()
                    .push(api::StorageSample {
                        time: x.time,
                        bytes_used: x.bytes_used,
                        bytes_logical: x.bytes_logical,
                        ratio: ratio(x.bytes_logical, x.bytes_used),
                    });
            }
            let datastores = all
                .into_iter()
                .map(|d| api::DatastoreStorage {
                    datastore_id: d.id,
                    ratio: ratio(d.bytes_logical, d.bytes_used),
                    samples: samples.remove(&d.id).unwrap_or_default(),
                    datastore: d.name,
                    bytes_used: d.bytes_used,
                    bytes_logical: d.bytes_logical,
                })
                .collect();
            Ok(api::StorageReport {
                from,
                to,
                datastores,
            })
        })
        .await?;
    Ok(match q.format.unwrap_or_default() {
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Csv => {
            let mut c = Csv::new(&[
                "datastore_id",
                "datastore",
                "time",
                "bytes_used",
                "bytes_logical",
                "ratio",
            ]);
            for d in &report.datastores {
                for x in &d.samples {
                    c.row(vec![
                        num(d.datastore_id),
                        text(&d.datastore),
                        num(x.time),
                        num(x.bytes_used),
                        num(x.bytes_logical),
                        opt(x.ratio),
                    ]);
                }
            }
            c.response(&format!("arca-storage-{from}-{to}.csv"))
        }
    })
}

// ---- tasks ----

pub async fn tasks(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::TaskReportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let (from, to) = period(q.from, q.to, catalog::now())?;
    let report = s
        .call(move |s| {
            let projects = p.projects(Action::Read);
            let seen = |x: ProjectId| projects.as_ref().is_none_or(|v| v.contains(&x));
            let sources: Vec<_> = s
                .catalog
                .sources()?
                .into_iter()
                .filter(|x| seen(x.project_id))
                .collect();
            // The source filter: an id first, else a name (in any of the
            // caller's projects).
            let only = match &q.source {
                None => None,
                Some(name) => {
                    let by_id: Vec<_> = sources
                        .iter()
                        .filter(|x| x.id.to_string() == *name)
                        .map(|x| x.id)
                        .collect();
                    let ids = if by_id.is_empty() {
                        sources
                            .iter()
                            .filter(|x| x.name == *name)
                            .map(|x| x.id)
                            .collect()
                    } else {
                        by_id
                    };
                    if ids.is_empty() {
                        return Err(catalog::Error::NotFound(format!("source {name:?}")).into());
                    }
                    Some(ids)
                }
            };
            let names: HashMap<_, _> = sources.into_iter().map(|x| (x.id, x.name)).collect();
            let nodes: HashMap<_, _> = s
                .catalog
                .nodes()?
                .into_iter()
                .map(|n| (n.id, n.name))
                .collect();
            let tasks =
                s.catalog
                    .finished_tasks(from, to, projects.as_deref(), q.kind, only.as_deref())?;
            let rows: Vec<_> = tasks
                .into_iter()
                .map(|t| {
                    let finished = t.finished_at.unwrap_or_default();
                    let duration = t.started_at.map(|s| (finished - s).max(0));
                    api::TaskReportRow {
                        id: t.id,
                        kind: t.kind,
                        state: t.state,
                        source_id: t.source_id,
                        source: t.source_id.and_then(|id| names.get(&id).cloned()),
                        node_id: t.node_id,
                        node: t.node_id.and_then(|id| nodes.get(&id).cloned()),
                        started_at: t.started_at,
                        finished_at: finished,
                        duration_s: duration,
                        bytes_done: t.bytes_done,
                        throughput: duration
                            .filter(|d| *d > 0)
                            .map(|d| t.bytes_done as f64 / d as f64),
                    }
                })
                .collect();
            let kinds = kind_summaries(&rows);
            Ok(api::TaskReport {
                from,
                to,
                tasks: rows,
                kinds,
            })
        })
        .await?;
    Ok(match q.format.unwrap_or_default() {
        ReportFormat::Json => Json(report).into_response(),
        ReportFormat::Csv => {
            let mut c = Csv::new(&[
                "id",
                "kind",
                "state",
                "source_id",
                "source",
                "node",
                "started_at",
                "finished_at",
                "duration_s",
                "bytes_done",
                "throughput",
            ]);
            for t in &report.tasks {
                c.row(vec![
                    num(t.id),
                    num(t.kind),
                    num(t.state),
                    opt(t.source_id),
                    text(t.source.as_deref().unwrap_or("")),
                    text(t.node.as_deref().unwrap_or("")),
                    opt(t.started_at),
                    num(t.finished_at),
                    opt(t.duration_s),
                    num(t.bytes_done),
                    opt(t.throughput),
                ]);
            }
            c.response(&format!("arca-tasks-{from}-{to}.csv"))
        }
    })
}

/// The `p`-th percentile of sorted `v` by nearest rank: the smallest
/// value with at least `p` % of the values at or below it.
fn nearest_rank(v: &[i64], p: u32) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let rank = (v.len() * p as usize).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

/// Per kind (by name): counts by state; durations and the mean
/// throughput of the succeeded tasks.
fn kind_summaries(rows: &[api::TaskReportRow]) -> Vec<api::TaskKindSummary> {
    let mut kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
    kinds.sort_by_key(|k| k.to_string());
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let mine: Vec<_> = rows.iter().filter(|r| r.kind == kind).collect();
            let count = |s: TaskState| mine.iter().filter(|r| r.state == s).count() as u64;
            let ok: Vec<_> = mine
                .iter()
                .filter(|r| r.state == TaskState::Succeeded)
                .collect();
            let mut durations: Vec<i64> = ok.iter().filter_map(|r| r.duration_s).collect();
            durations.sort_unstable();
            let rates: Vec<f64> = ok.iter().filter_map(|r| r.throughput).collect();
            api::TaskKindSummary {
                kind,
                count: mine.len() as u64,
                succeeded: count(TaskState::Succeeded),
                failed: count(TaskState::Failed),
                cancelled: count(TaskState::Cancelled),
                median_duration_s: nearest_rank(&durations, 50),
                p95_duration_s: nearest_rank(&durations, 95),
                mean_throughput: (!rates.is_empty())
                    .then(|| rates.iter().sum::<f64>() / rates.len() as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(nearest_rank(&v, 50), Some(10));
        assert_eq!(nearest_rank(&v, 95), Some(19));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn periods() {
        let now = 1_000_000;
        assert_eq!(
            period(None, None, now).ok(),
            Some((now - DEFAULT_PERIOD, now))
        );
        assert_eq!(period(None, Some(100), now).ok(), Some((0, 100)));
        assert_eq!(period(Some(4), Some(4), now).ok(), Some((4, 4)));
        assert!(period(Some(5), Some(4), now).is_err());
        assert!(period(Some(-1), None, now).is_err());
    }
}
