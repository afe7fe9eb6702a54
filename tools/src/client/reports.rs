//! `arca report protection|storage|tasks`: the reports of
//! `GET /api/v1/reports/...` as tables (times local), as the API's JSON
//! (`--json`) or as its CSV (`--csv`).

use anyhow::{bail, Result};
use arca_model::api::{ProtectionReport, StorageReport, TaskReport};

use super::{show, Api};
use crate::table::{opt, Table};
use crate::units::{duration, human, local_time, local_time_opt, rate};
use crate::{Cli, ReportArgs, ReportCmd};

/// The query string of a report: the period, the filters, the format.
fn query(period: &ReportArgs, filters: &[(&str, Option<String>)]) -> String {
    let mut q: Vec<String> = Vec::new();
    for (k, v) in [("from", period.from), ("to", period.to)] {
        if let Some(v) = v {
            q.push(format!("{k}={v}"));
        }
    }
    for (k, v) in filters {
        if let Some(v) = v {
            q.push(format!("{k}={}", encode(v)));
        }
    }
    if period.csv {
        q.push("format=csv".into());
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Percent-encode a query value (names are letters, digits and `._-@`,
/// but a name from elsewhere may have anything).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent(f: Option<f64>) -> String {
    opt(f.map(|f| format!("{:.1} %", f * 100.0)))
}

fn ratio(r: Option<f64>) -> String {
    opt(r.map(|r| format!("{r:.2}x")))
}

fn bytes(b: i64) -> String {
    human(u64::try_from(b).unwrap_or(0))
}

pub fn report(cli: &Cli, c: &ReportCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    let (path, period) = match c {
        ReportCmd::Protection { period, project } => (
            format!(
                "/reports/protection{}",
                query(period, &[("project", project.clone())])
            ),
            period,
        ),
        ReportCmd::Storage { period, name } => (
            format!(
                "/reports/storage{}",
                query(period, &[("datastore", name.clone())])
            ),
            period,
        ),
        ReportCmd::Tasks {
            period,
            kind,
            source,
        } => (
            format!(
                "/reports/tasks{}",
                query(
                    period,
                    &[
                        ("kind", kind.map(|k| k.to_string())),
                        ("source", source.clone())
                    ]
                )
            ),
            period,
        ),
    };
    if period.csv {
        if cli.json {
            bail!("--csv and --json: choose one");
        }
        print!("{}", api.get_text(&path)?);
        return Ok(0);
    }
    match c {
        ReportCmd::Protection { .. } => {
            let r: ProtectionReport = api.get(&path, "a protection report")?;
            show(cli, &r, protection_text)
        }
        ReportCmd::Storage { .. } => {
            let r: StorageReport = api.get(&path, "a storage report")?;
            show(cli, &r, storage_text)
        }
        ReportCmd::Tasks { .. } => {
            let r: TaskReport = api.get(&path, "a tasks report")?;
            show(cli, &r, tasks_text)
        }
    }
}

fn period_line(from: i64, to: i64) -> String {
    format!("from {} to {}", local_time(from), local_time(to))
}

fn protection_text(r: &ProtectionReport) -> String {
    let mut t = Table::new(&[
        "SOURCE",
        "PROJECT",
        "POLICY",
        "RPO",
        "LAST GOOD",
        "NEXT RUN",
        "STATUS",
        "COMPLIANCE",
    ])
    .right(&[3, 7]);
    for x in &r.sources {
        t.row(vec![
            x.source.clone(),
            x.project.clone(),
            opt(x.policy.as_ref().map(|p| &p.name)),
            opt(x.rpo_seconds.map(duration)),
            local_time_opt(x.last_good.as_ref().map(|l| l.time)),
            local_time_opt(x.next_run),
            x.status.to_string(),
            percent(x.compliance),
        ]);
    }
    let mut p = Table::new(&[
        "POLICY",
        "PROJECT",
        "RPO",
        "SOURCES",
        "PROBLEMS",
        "COMPLIANCE",
    ])
    .right(&[2, 3, 4, 5]);
    for x in &r.policies {
        p.row(vec![
            x.policy.clone(),
            x.project.clone(),
            opt(x.rpo_seconds.map(duration)),
            x.sources.to_string(),
            x.problems.to_string(),
            percent(x.compliance),
        ]);
    }
    format!(
        "{}\n\n{}\n\n{}",
        period_line(r.from, r.to),
        t.render(),
        p.render()
    )
}

fn storage_text(r: &StorageReport) -> String {
    let mut out = period_line(r.from, r.to);
    for d in &r.datastores {
        out += &format!(
            "\n\n{}: {} used, {} logical, ratio {}\n",
            d.datastore,
            bytes(d.bytes_used),
            bytes(d.bytes_logical),
            ratio(d.ratio)
        );
        let mut t = Table::new(&["TIME", "USED", "LOGICAL", "RATIO"]).right(&[1, 2, 3]);
        for x in &d.samples {
            t.row(vec![
                local_time(x.time),
                bytes(x.bytes_used),
                bytes(x.bytes_logical),
                ratio(x.ratio),
            ]);
        }
        out += &t.render();
    }
    out
}

fn tasks_text(r: &TaskReport) -> String {
    let mut t = Table::new(&[
        "ID", "KIND", "STATE", "SOURCE", "NODE", "STARTED", "DURATION", "BYTES", "RATE",
    ])
    .right(&[0, 6, 7, 8]);
    for x in &r.tasks {
        t.row(vec![
            x.id.to_string(),
            x.kind.to_string(),
            x.state.to_string(),
            opt(x.source.as_ref()),
            opt(x.node.as_ref()),
            local_time_opt(x.started_at),
            opt(x.duration_s.map(duration)),
            bytes(x.bytes_done),
            opt(x.throughput.and_then(|b| rate(b.round() as u64, 1.0))),
        ]);
    }
    let mut k = Table::new(&[
        "KIND",
        "COUNT",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        "MEDIAN",
        "P95",
        "MEAN RATE",
    ])
    .right(&[1, 2, 3, 4, 5, 6, 7]);
    for x in &r.kinds {
        k.row(vec![
            x.kind.to_string(),
            x.count.to_string(),
            x.succeeded.to_string(),
            x.failed.to_string(),
            x.cancelled.to_string(),
            opt(x.median_duration_s.map(duration)),
            opt(x.p95_duration_s.map(duration)),
            opt(x.mean_throughput.and_then(|b| rate(b.round() as u64, 1.0))),
        ]);
    }
    format!(
        "{}\n\n{}\n\n{}",
        period_line(r.from, r.to),
        t.render(),
        k.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let p = ReportArgs {
            from: Some(5),
            to: None,
            csv: true,
        };
        assert_eq!(
            query(&p, &[("source", Some("a b&c".into())), ("kind", None)]),
            "?from=5&source=a%20b%26c&format=csv"
        );
        let p = ReportArgs {
            from: None,
            to: None,
            csv: false,
        };
        assert_eq!(query(&p, &[]), "");
    }
}
