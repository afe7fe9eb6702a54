//! Retention: which snapshots to keep, and why.
//!
//! Snapshots are grouped by source. Within a group, newest first, each rule
//! keeps the newest snapshot of each of its N most recent periods (hour,
//! day, ISO week, month, year, in UTC); `keep_last` keeps the N newest. A
//! snapshot kept by any rule is kept; the reasons are all rules that chose
//! it. Periods without a snapshot do not count against N.

use std::collections::BTreeMap;

use chrono::{Datelike, Timelike};

use crate::datastore::{Datastore, Snapshot};
use crate::error::{Error, Result};

/// Keep rules; in JSON (policies) every field is optional and unknown
/// fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub keep_last: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_hourly == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
            && self.keep_monthly == 0
            && self.keep_yearly == 0
    }
}

#[derive(Clone, Debug)]
pub struct Decision {
    pub snapshot: Snapshot,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// Decide for every snapshot whether it stays. Oldest first per source.
pub fn plan(snapshots: &[Snapshot], r: &Retention) -> Result<Vec<Decision>> {
    if r.is_empty() {
        return Err(Error::InvalidInput(
            "no --keep-* rule given; refusing to remove every snapshot".into(),
        ));
    }
    let mut groups: BTreeMap<&str, Vec<&Snapshot>> = BTreeMap::new();
    for s in snapshots {
        groups
            .entry(s.manifest.source.as_str())
            .or_default()
            .push(s);
    }
    type Bucket = fn(&chrono::DateTime<chrono::Utc>) -> String;
    let rules: [(&str, u32, Bucket); 5] = [
        ("hourly", r.keep_hourly, |t| {
            format!(
                "{}-{:02}-{:02} {:02}:00",
                t.year(),
                t.month(),
                t.day(),
                t.hour()
            )
        }),
        ("daily", r.keep_daily, |t| {
            format!("{}-{:02}-{:02}", t.year(), t.month(), t.day())
        }),
        ("weekly", r.keep_weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", r.keep_monthly, |t| {
            format!("{}-{:02}", t.year(), t.month())
        }),
        ("yearly", r.keep_yearly, |t| format!("{}", t.year())),
    ];
    let mut out = Vec::new();
    for (_, mut snaps) in groups {
        snaps.sort_by_key(|s| std::cmp::Reverse((s.manifest.time_ns, s.id)));
        let mut decisions: Vec<Decision> = snaps
            .iter()
            .map(|s| Decision {
                snapshot: (*s).clone(),
                keep: false,
                reasons: Vec::new(),
            })
            .collect();
        for (i, d) in decisions.iter_mut().enumerate() {
            if (i as u32) < r.keep_last {
                d.keep = true;
                d.reasons.push(format!("last {}", i + 1));
            }
        }
        for (name, n, bucket) in rules {
            let mut left = n;
            let mut last: Option<String> = None;
            for d in decisions.iter_mut() {
                if left == 0 {
                    break;
                }
                let b = bucket(&d.snapshot.time());
                if last.as_ref() != Some(&b) {
                    d.keep = true;
                    d.reasons.push(format!("{name} {b}"));
                    left -= 1;
                    last = Some(b);
                }
            }
        }
        decisions.reverse();
        out.extend(decisions);
    }
    Ok(out)
}

/// Apply a plan: delete the manifests of snapshots not kept. Each deletion
/// is one atomic, durable unlink, so a crash leaves every snapshot either
/// whole or gone. Data is reclaimed later by `gc`.
pub fn apply(ds: &Datastore, plan: &[Decision]) -> Result<usize> {
    let mut n = 0;
    for d in plan.iter().filter(|d| !d.keep) {
        ds.delete_snapshot(&d.snapshot.id)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Manifest;
    use crate::id::SnapshotId;

    fn snap(i: u8, source: &str, time: &str) -> Snapshot {
        let t = chrono::DateTime::parse_from_rfc3339(time).unwrap();
        Snapshot {
            id: SnapshotId([i; 32]),
            manifest: Manifest {
                source: source.into(),
                time_ns: t.timestamp_nanos_opt().unwrap(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn daily_and_last() {
        let snaps = vec![
            snap(1, "a", "2026-11-01T10:00:00Z"),
            snap(2, "a", "2026-11-01T18:00:00Z"),
            snap(3, "a", "2026-11-02T09:00:00Z"),
            snap(4, "a", "2026-11-03T09:00:00Z"),
            snap(5, "b", "2026-11-01T09:00:00Z"),
        ];
        let r = Retention {
            keep_last: 1,
            keep_daily: 2,
            ..Default::default()
        };
        let p = plan(&snaps, &r).unwrap();
        let kept: Vec<u8> = p
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.snapshot.id.0[0])
            .collect();
        assert_eq!(kept, vec![3, 4, 5]);
        let d4 = p.iter().find(|d| d.snapshot.id.0[0] == 4).unwrap();
        assert_eq!(d4.reasons, vec!["last 1", "daily 2026-11-03"]);
        assert!(plan(&snaps, &Retention::default()).is_err());
    }

    #[test]
    fn monthly_keeps_newest_of_each_month() {
        let snaps = vec![
            snap(1, "a", "2026-09-01T00:00:00Z"),
            snap(2, "a", "2026-09-30T00:00:00Z"),
            snap(3, "a", "2026-10-15T00:00:00Z"),
            snap(4, "a", "2026-11-15T00:00:00Z"),
        ];
        let r = Retention {
            keep_monthly: 2,
            ..Default::default()
        };
        let kept: Vec<u8> = plan(&snaps, &r)
            .unwrap()
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.snapshot.id.0[0])
            .collect();
        assert_eq!(kept, vec![3, 4]);
        let r = Retention {
            keep_yearly: 1,
            keep_weekly: 10,
            ..Default::default()
        };
        let kept: Vec<u8> = plan(&snaps, &r)
            .unwrap()
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.snapshot.id.0[0])
            .collect();
        assert_eq!(kept, vec![1, 2, 3, 4]);
    }
}
