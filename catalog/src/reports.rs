//! What the reports read (issue 16): datastore use over time, the
//! finished tasks of a period, and the moments each source had a good
//! restore point; and the RPO compliance computed from them.
//!
//! **Datastore use samples** (`datastore_usage`). Whenever a datastore's
//! numbers change ([`crate::datastores`]), the change is also written as a
//! sample. A sample younger than [`SAMPLE_SECS`] is updated instead of
//! adding another one, so a sample holds the last numbers of its five
//! minutes and its time is when they began. A new sample thins the older
//! ones of its datastore: older than [`FINE_SECS`] (two days), one an hour;
//! older than [`HOURLY_SECS`] (30 days), one a day; older than
//! [`KEEP_SECS`] (five years), none. The newest sample of each hour or day
//! stays (the numbers at its end). A datastore so keeps at most about
//! 576 + 672 + 1 800 samples, however long it lives.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{
    id_list, Catalog, DatastoreId, ProjectId, RestorePointId, Result, SourceId, Task, TaskKind,
};

/// A sample younger than this is updated rather than followed by another.
pub const SAMPLE_SECS: i64 = 300;
/// Samples younger than this keep their five-minute resolution.
pub const FINE_SECS: i64 = 2 * 86_400;
/// Samples younger than this (and older than [`FINE_SECS`]) are kept one
/// an hour; older ones one a day.
pub const HOURLY_SECS: i64 = 30 * 86_400;
/// Samples older than this are dropped.
pub const KEEP_SECS: i64 = 5 * 365 * 86_400;

/// A datastore's numbers at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageSample {
    pub datastore_id: DatastoreId,
    pub time: i64,
    pub bytes_used: i64,
    pub bytes_logical: i64,
}

/// A moment a source had a good backup: a restore point that is listed
/// and not damaged, or a backup that succeeded and whose restore point has
/// since been removed (by retention or forget).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoodPoint {
    pub source_id: SourceId,
    pub time: i64,
}

/// Write the datastore's current numbers as a sample at `now` (see the
/// module's doc), in the caller's transaction.
pub(crate) fn record_usage(db: &Connection, id: DatastoreId, now: i64) -> Result<()> {
    let last: Option<i64> = db
        .query_row(
            "SELECT MAX(time) FROM datastore_usage WHERE datastore_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let Some(t) = last.filter(|t| (*t..*t + SAMPLE_SECS).contains(&now)) {
        db.execute(
            "UPDATE datastore_usage SET (bytes_used, bytes_logical) =
                 (SELECT bytes_used, bytes_logical FROM datastores WHERE id = ?1)
             WHERE datastore_id = ?1 AND time = ?2",
            params![id, t],
        )?;
        return Ok(());
    }
    // INSERT OR REPLACE: after the clock went back, `now` may be taken.
    db.execute(
        "INSERT OR REPLACE INTO datastore_usage (datastore_id, time, bytes_used, bytes_logical)
         SELECT id, ?2, bytes_used, bytes_logical FROM datastores WHERE id = ?1",
        params![id, now],
    )?;
    thin(db, id, now)
}

/// Thin the samples of datastore `id` as the module's doc says.
fn thin(db: &Connection, id: DatastoreId, now: i64) -> Result<()> {
    // Keep the newest sample of each bucket of `secs` seconds, among the
    // samples taken before `before` and at or after `after`.
    let keep_newest = |secs: i64, after: i64, before: i64| {
        db.execute(
            "DELETE FROM datastore_usage
             WHERE datastore_id = ?1 AND time < ?2 AND time >= ?3
               AND EXISTS (SELECT 1 FROM datastore_usage b
                           WHERE b.datastore_id = datastore_usage.datastore_id
                             AND b.time > datastore_usage.time
                             AND b.time < (datastore_usage.time / ?4 + 1) * ?4)",
            params![id, before, after, secs],
        )
    };
    keep_newest(3600, now - HOURLY_SECS, now - FINE_SECS)?;
    keep_newest(86_400, i64::MIN, now - HOURLY_SECS)?;
    db.execute(
        "DELETE FROM datastore_usage WHERE datastore_id = ?1 AND time < ?2",
        params![id, now - KEEP_SECS],
    )?;
    Ok(())
}

/// The part of `[start, end)` during which the newest of `points` (times,
/// in any order) at or before each moment was at most `rpo` seconds old,
/// as a fraction of its length; `None` for an empty or inverted period.
/// A point covers `[p, p + rpo]`.
pub fn rpo_compliance(points: &[i64], rpo: i64, start: i64, end: i64) -> Option<f64> {
    if end <= start {
        return None;
    }
    let mut ps: Vec<i64> = points.iter().copied().filter(|p| *p < end).collect();
    ps.sort_unstable();
    let rpo = rpo.max(0);
    let mut covered = 0i64;
    // The end of the coverage counted so far (the intervals are merged).
    let mut reach = start;
    for p in ps {
        let from = p.max(reach);
        let to = p.saturating_add(rpo).min(end);
        if to > from {
            covered += to - from;
            reach = to;
        }
    }
    Some(covered as f64 / (end - start) as f64)
}

impl Catalog {
    /// Refresh the numbers of datastore `id` as at `now` (tests and
    /// imports of old numbers; the runner's updates use the clock).
    pub fn refresh_datastore_usage_at(&self, id: DatastoreId, used: i64, now: i64) -> Result<()> {
        crate::datastores::update_usage(&self.db(), id, used, now)
    }

    /// The samples of one datastore or of all, taken in `[from, to]`,
    /// by datastore and then oldest first.
    pub fn usage_samples(
        &self,
        datastore: Option<DatastoreId>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageSample>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT datastore_id, time, bytes_used, bytes_logical FROM datastore_usage
             WHERE (?1 IS NULL OR datastore_id = ?1) AND time >= ?2 AND time <= ?3
             ORDER BY datastore_id, time",
        )?;
        let rows = st.query_map(params![datastore, from, to], |r| {
            Ok(UsageSample {
                datastore_id: r.get(0)?,
                time: r.get(1)?,
                bytes_used: r.get(2)?,
                bytes_logical: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tasks that ended (succeeded, failed or cancelled) in `[from, to]`,
    /// of the given projects, kind and sources (none: all), the last to
    /// end first.
    pub fn finished_tasks(
        &self,
        from: i64,
        to: i64,
        projects: Option<&[ProjectId]>,
        kind: Option<TaskKind>,
        sources: Option<&[SourceId]>,
    ) -> Result<Vec<Task>> {
        let mut sql = format!(
            "SELECT {} FROM tasks WHERE state IN ('succeeded', 'failed', 'cancelled')
             AND finished_at >= ?1 AND finished_at <= ?2 AND (?3 IS NULL OR kind = ?3)",
            crate::tasks::TASK_COLS
        );
        if let Some(p) = projects {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        if let Some(s) = sources {
            sql += &format!(" AND source_id IN ({})", id_list(s));
        }
        sql += " ORDER BY finished_at DESC, id DESC";
        let db = self.rd();
        let mut st = db.prepare(&sql)?;
        let rows = st.query_map(params![from, to, kind], crate::tasks::task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Each source's newest restore point that is not damaged, of the
    /// given projects (none: all).
    pub fn newest_good_restore_points(
        &self,
        projects: Option<&[ProjectId]>,
    ) -> Result<HashMap<SourceId, (RestorePointId, i64)>> {
        let only = projects
            .map(|p| format!(" AND project_id IN ({})", id_list(p)))
            .unwrap_or_default();
        // SQLite takes the bare `id` from the row of `MAX(time)`.
        let sql = format!(
            "SELECT source_id, id, MAX(time) FROM restore_points
             WHERE source_id IS NOT NULL AND state = 'ok'{only} GROUP BY source_id"
        );
        let db = self.rd();
        let mut st = db.prepare(&sql)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The moments sources of the given projects (none: all) had a good
    /// backup up to `to` ([`GoodPoint`]), by source, oldest first.
    pub fn good_points(&self, projects: Option<&[ProjectId]>, to: i64) -> Result<Vec<GoodPoint>> {
        let only = projects
            .map(|p| format!(" AND project_id IN ({})", id_list(p)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT source_id, time FROM restore_points
             WHERE source_id IS NOT NULL AND state = 'ok' AND time <= ?1{only}
             UNION ALL
             SELECT source_id, COALESCE(started_at, finished_at) FROM tasks
             WHERE kind = 'backup' AND state = 'succeeded' AND source_id IS NOT NULL
               AND COALESCE(started_at, finished_at) <= ?1{only}
               AND NOT EXISTS (SELECT 1 FROM restore_points r
                               WHERE r.id = json_extract(tasks.result, '$.snapshot'))
             ORDER BY 1, 2"
        );
        let db = self.rd();
        let mut st = db.prepare(&sql)?;
        let rows = st.query_map([to], |r| {
            Ok(GoodPoint {
                source_id: r.get(0)?,
                time: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_is_the_covered_part_of_the_period() {
        // A day with an RPO of 6 h: backups at 0 h and 12 h cover 12 h.
        let h = 3600;
        assert_eq!(rpo_compliance(&[0, 12 * h], 6 * h, 0, 24 * h), Some(0.5));
        // Overlapping coverage counts once; order does not matter.
        assert_eq!(
            rpo_compliance(&[3 * h, 0, 12 * h], 6 * h, 0, 24 * h),
            Some(15.0 / 24.0)
        );
        // A point before the period covers its start; one after it nothing.
        assert_eq!(
            rpo_compliance(&[-2 * h, 30 * h], 6 * h, 0, 24 * h),
            Some(4.0 / 24.0)
        );
        assert_eq!(rpo_compliance(&[], 6 * h, 0, 24 * h), Some(0.0));
        assert_eq!(rpo_compliance(&[0], 48 * h, 0, 24 * h), Some(1.0));
        assert_eq!(rpo_compliance(&[0], h, 5, 5), None);
    }

    #[test]
    fn the_migration_starts_each_datastore_with_its_numbers() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for (i, m) in crate::schema::MIGRATIONS[..9].iter().enumerate() {
            conn.execute_batch(m).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO nodes (name, state, created_at) VALUES ('local', 'online', 0);
             INSERT INTO datastores (name, node_id, path, created_at, bytes_used, bytes_logical)
                 VALUES ('a', 1, '/a', 0, 100, 300), ('b', 1, '/b', 0, 0, 0);",
        )
        .unwrap();
        let before = crate::now();
        let c = Catalog::setup(conn, "schema-9", None).unwrap();
        let s = c.usage_samples(None, 0, i64::MAX).unwrap();
        let got: Vec<_> = s
            .iter()
            .map(|x| (x.datastore_id.0, x.bytes_used, x.bytes_logical))
            .collect();
        assert_eq!(got, [(1, 100, 300), (2, 0, 0)]);
        assert!(s.iter().all(|x| x.time >= before && x.time <= crate::now()));
    }

    #[test]
    fn samples_merge_within_five_minutes_and_thin_with_age() {
        let c = Catalog::open_in_memory().unwrap();
        let n = c.upsert_node("local", true, 2, "t").unwrap();
        let ds = c.add_datastore("d", n.id, "/d").unwrap().id;
        // After the sample the datastore got when it was added (now).
        let t0 = crate::now() + 1000;
        // Two changes within five minutes: one sample, the later numbers.
        c.refresh_datastore_usage_at(ds, 10, t0).unwrap();
        c.refresh_datastore_usage_at(ds, 20, t0 + 299).unwrap();
        let s = c.usage_samples(Some(ds), 0, i64::MAX).unwrap();
        let last = s.last().unwrap();
        assert_eq!((last.time, last.bytes_used), (t0, 20));
        let before = s.len();
        c.refresh_datastore_usage_at(ds, 30, t0 + 300).unwrap();
        assert_eq!(
            c.usage_samples(Some(ds), 0, i64::MAX).unwrap().len(),
            before + 1
        );
        // A change every 10 minutes for 40 days.
        let start = t0 + 600;
        let end = start + 40 * 86_400;
        let mut t = start;
        while t <= end {
            c.refresh_datastore_usage_at(ds, t - start, t).unwrap();
            t += 600;
        }
        let s = c.usage_samples(Some(ds), start, end).unwrap();
        let count = |from: i64, to: i64| s.iter().filter(|x| x.time >= from && x.time < to).count();
        let last = end - (end - start) % 600;
        // The last two days: every sample (one each 10 minutes).
        assert_eq!(
            count(last - FINE_SECS + 1, last + 1),
            (FINE_SECS / 600) as usize
        );
        // Two to thirty days old: one an hour.
        let hourly = count(last - HOURLY_SECS + 3600, last - FINE_SECS - 3600);
        let hours = ((HOURLY_SECS - FINE_SECS) / 3600 - 2) as usize;
        assert!((hours - 1..=hours + 1).contains(&hourly), "{hourly}");
        // Older: at most one a day.
        assert!(count(start, last - HOURLY_SECS - 86_400) <= 10);
        // Each kept sample has the newest numbers of its hour.
        let h = s
            .iter()
            .find(|x| x.time < last - FINE_SECS - 7200 && x.time > last - HOURLY_SECS)
            .unwrap();
        assert!(h.time % 3600 >= 3000, "{h:?}");
        assert_eq!(h.bytes_used, h.time - start);
        // The datastore's current numbers are the newest sample's.
        let d = c.datastore(ds).unwrap();
        assert_eq!(s.last().unwrap().bytes_used, d.bytes_used);
    }
}
