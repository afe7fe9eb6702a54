//! Retention: which snapshots to keep, and why.
//!
//! Snapshots are grouped by source. Within a group, newest first, each rule
//! keeps the newest snapshot of each of its N most recent periods (hour,
//! day, ISO week, month, year, in UTC); `keep_last` keeps the N newest. A
//! snapshot kept by any rule is kept; the reasons are all rules that chose
//! it. Periods without a snapshot do not count against N.
//!
//! The rules themselves are [`decide`], a pure function over one group's
//! (time, id) items: [`plan`] applies it to a datastore's snapshots (the
//! node's prune and the retention after a backup), and the server applies
//! it to the catalog's restore points to preview what a prune would do.
//! One implementation, so the preview and the prune cannot disagree.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};

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

/// What retention decided for one snapshot of a [`plan`].
#[derive(Clone, Debug)]
pub struct Decision {
    pub snapshot: Snapshot,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// What [`decide`] says of one item: kept or not, and the rules that
/// chose it ("last 1", "daily 2026-11-03", ...), in rule order (last,
/// hourly, daily, weekly, monthly, yearly).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// A rule's period of a time, as its reasons name it.
type Bucket = fn(&DateTime<Utc>) -> String;

/// The period rules in order, with their counts in `r`.
fn period_rules(r: &Retention) -> [(&'static str, u32, Bucket); 5] {
    [
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
    ]
}

/// The retention rules over one group's items (one source's snapshots):
/// each item is its time and an id; of two items the newer is the one
/// with the greater (time, id). Returns one verdict per item, in the
/// order of `items`. Pure: no I/O, no clock. Rules that are all zero keep
/// nothing (callers refuse that before: [`plan`] does).
pub fn decide<K: Ord>(items: &[(DateTime<Utc>, K)], r: &Retention) -> Vec<Verdict> {
    let mut out = vec![Verdict::default(); items.len()];
    // Newest first.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (ta, ka) = &items[a];
        let (tb, kb) = &items[b];
        (tb, kb).cmp(&(ta, ka))
    });
    for (rank, &i) in order.iter().enumerate() {
        if (rank as u64) < u64::from(r.keep_last) {
            out[i].keep = true;
            out[i].reasons.push(format!("last {}", rank + 1));
        }
    }
    for (name, n, bucket) in period_rules(r) {
        let mut left = n;
        let mut last: Option<String> = None;
        for &i in &order {
            if left == 0 {
                break;
            }
            let b = bucket(&items[i].0);
            if last.as_ref() != Some(&b) {
                out[i].keep = true;
                out[i].reasons.push(format!("{name} {b}"));
                left -= 1;
                last = Some(b);
            }
        }
    }
    out
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
    let mut out = Vec::new();
    for (_, mut snaps) in groups {
        snaps.sort_by_key(|s| (s.manifest.time_ns, s.id));
        let items: Vec<_> = snaps.iter().map(|s| (s.time(), s.id)).collect();
        out.extend(snaps.iter().zip(decide(&items, r)).map(|(s, v)| Decision {
            snapshot: (*s).clone(),
            keep: v.keep,
            reasons: v.reasons,
        }));
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

    fn at(time: &str) -> DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(time)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The rule engine alone, over (time, id) items in any order, as the
    /// server's preview calls it with catalog restore points.
    #[test]
    fn decide_answers_in_input_order_with_reasons() {
        let items = vec![
            (at("2026-11-02T09:00:00Z"), "c"),
            (at("2026-11-03T09:00:00Z"), "d"),
            (at("2026-11-01T10:00:00Z"), "a"),
            (at("2026-11-01T18:00:00Z"), "b"),
        ];
        let r = Retention {
            keep_last: 1,
            keep_daily: 2,
            ..Default::default()
        };
        let v = decide(&items, &r);
        let keep: Vec<bool> = v.iter().map(|v| v.keep).collect();
        assert_eq!(keep, vec![true, true, false, false]);
        assert_eq!(v[0].reasons, vec!["daily 2026-11-02"]);
        assert_eq!(v[1].reasons, vec!["last 1", "daily 2026-11-03"]);
        assert!(v[2].reasons.is_empty() && v[3].reasons.is_empty());
        // Same time: the greater id is the newer.
        let tie = vec![
            (at("2026-11-01T00:00:00Z"), 1),
            (at("2026-11-01T00:00:00Z"), 2),
        ];
        let v = decide(
            &tie,
            &Retention {
                keep_last: 1,
                ..Default::default()
            },
        );
        assert_eq!((v[0].keep, v[1].keep), (false, true));
        // No rules keep nothing (plan refuses them before).
        assert!(decide(&items, &Retention::default())
            .iter()
            .all(|v| !v.keep));
        assert!(decide::<u8>(&[], &r).is_empty());
    }

    /// `plan` is `decide` per source: the same verdicts for the same
    /// snapshots, whichever order they come in.
    #[test]
    fn plan_is_decide_per_source() {
        let snaps = vec![
            snap(4, "a", "2026-11-03T09:00:00Z"),
            snap(5, "b", "2026-11-01T09:00:00Z"),
            snap(1, "a", "2026-09-01T10:00:00Z"),
            snap(3, "a", "2026-10-02T09:00:00Z"),
            snap(2, "a", "2026-09-20T18:00:00Z"),
        ];
        let r = Retention {
            keep_last: 1,
            keep_monthly: 2,
            ..Default::default()
        };
        let p = plan(&snaps, &r).unwrap();
        let a: Vec<_> = snaps
            .iter()
            .filter(|s| s.manifest.source == "a")
            .map(|s| (s.time(), s.id))
            .collect();
        for (item, v) in a.iter().zip(decide(&a, &r)) {
            let d = p.iter().find(|d| d.snapshot.id == item.1).unwrap();
            assert_eq!((d.keep, &d.reasons), (v.keep, &v.reasons));
        }
        let order: Vec<u8> = p.iter().map(|d| d.snapshot.id.0[0]).collect();
        assert_eq!(order, vec![1, 2, 3, 4, 5], "oldest first per source");
    }
}
