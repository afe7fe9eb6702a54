//! Restore points: the catalog's index of the datastores' snapshots,
//! listed, looked up by id or prefix within the caller's projects.

use rusqlite::{params, Connection, Row};

use crate::{
    id_list, unique, Catalog, DatastoreId, Error, ProjectId, RestorePoint, RestorePointFilter,
    RestorePointId, Result, SourceId,
};

/// A source's newest restore point and its policy's RPO
/// ([`Catalog::source_freshness`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceFreshness {
    pub source: String,
    /// The source's project, by name.
    pub project: String,
    /// Time and size of the newest restore point; none before the first.
    pub last_time: Option<i64>,
    pub last_bytes: Option<i64>,
    /// The RPO of the source's policy, when it has one and is enabled.
    pub rpo_seconds: Option<i64>,
    /// When the RPO started to count without a restore point: the later
    /// of the source's and the policy's creation.
    pub since: i64,
}

impl SourceFreshness {
    /// Whether the RPO is met at `now` (as the server's RPO check judges
    /// it); none without an RPO.
    pub fn rpo_met(&self, now: i64) -> Option<bool> {
        let rpo = self.rpo_seconds?;
        Some(now - self.last_time.unwrap_or(self.since) <= rpo)
    }
}

/// The columns a new restore point is written with (protection and note
/// start unset).
const RP_INSERT_COLS: &str = "id, datastore_id, source_id, source_name, project_id, kind, time, bytes_total, bytes_added, files, hostname, task_id, created_at, state, damage, verified_at";
pub(crate) const RP_COLS: &str = "id, datastore_id, source_id, source_name, project_id, kind, time, bytes_total, bytes_added, files, hostname, task_id, created_at, state, damage, verified_at, protected, note";

pub(crate) fn rp_row(r: &Row) -> rusqlite::Result<RestorePoint> {
    Ok(RestorePoint {
        id: r.get(0)?,
        datastore_id: r.get(1)?,
        source_id: r.get(2)?,
        source_name: r.get(3)?,
        project_id: r.get(4)?,
        kind: r.get(5)?,
        time: r.get(6)?,
        bytes_total: r.get(7)?,
        bytes_added: r.get(8)?,
        files: r.get(9)?,
        hostname: r.get(10)?,
        task_id: r.get(11)?,
        created_at: r.get(12)?,
        state: r.get(13)?,
        damage: r.get(14)?,
        verified_at: r.get(15)?,
        protected: r.get(16)?,
        note: r.get(17)?,
    })
}

/// Restore points per transaction of [`Catalog::add_restore_points`].
pub const IMPORT_BATCH: usize = 1000;

impl Catalog {
    /// Record a committed snapshot; re-adding the same id is a no-op.
    pub fn add_restore_point(&self, rp: &RestorePoint) -> Result<()> {
        insert_restore_point(&self.db(), rp).map(|_| ())
    }

    /// Record many restore points (an import), [`IMPORT_BATCH`] per
    /// transaction. The writer is free between batches, so another change
    /// (a lease, the end of a task, a sign-in) waits for one batch at most,
    /// not for the whole import; reads never wait. Ids already listed are
    /// skipped. Returns how many were added. A failure leaves the batches
    /// before it recorded: an import can be run again.
    pub fn add_restore_points(&self, rps: &[RestorePoint]) -> Result<usize> {
        self.add_restore_points_in(rps, IMPORT_BATCH)
    }

    /// [`Catalog::add_restore_points`] with `per_transaction` restore
    /// points per transaction (all of them in one: the benchmark's long
    /// write).
    pub fn add_restore_points_in(
        &self,
        rps: &[RestorePoint],
        per_transaction: usize,
    ) -> Result<usize> {
        let mut added = 0;
        for batch in rps.chunks(per_transaction.max(1)) {
            {
                let mut db = self.db();
                let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for rp in batch {
                    added += insert_restore_point(&tx, rp)?;
                }
                tx.commit()?;
            }
            // Let a thread waiting for the writer have it between batches
            // (the mutex is not fair).
            std::thread::yield_now();
        }
        Ok(added)
    }

    pub fn restore_points(&self, f: &RestorePointFilter) -> Result<Vec<RestorePoint>> {
        let mut sql = format!("SELECT {RP_COLS} FROM restore_points WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = &f.source {
            args.push(Box::new(s.clone()));
            sql += &format!(" AND source_name = ?{}", args.len());
        }
        if let Some(k) = f.kind {
            args.push(Box::new(k));
            sql += &format!(" AND kind = ?{}", args.len());
        }
        if let Some(t) = f.since {
            args.push(Box::new(t));
            sql += &format!(" AND time >= ?{}", args.len());
        }
        if let Some(t) = f.until {
            args.push(Box::new(t));
            sql += &format!(" AND time <= ?{}", args.len());
        }
        if let Some(p) = &f.project_ids {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        args.push(Box::new(f.limit.clamp(1, 10_000)));
        sql += &format!(" ORDER BY time DESC, id LIMIT ?{}", args.len());
        args.push(Box::new(f.offset.max(0)));
        sql += &format!(" OFFSET ?{}", args.len());
        let db = self.rd();
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), rp_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A restore point by full id or unique prefix, among the restore
    /// points of `projects` (`None`: all projects). Restore points of
    /// other projects do not exist for this lookup: a prefix that matches
    /// only there is not found, and one that matches one restore point
    /// here and others there is not ambiguous. So the answer (and its
    /// message, which names only what the caller asked for) is the same
    /// as if the other projects had no restore points at all.
    pub fn restore_point(
        &self,
        id_or_prefix: &str,
        projects: Option<&[ProjectId]>,
    ) -> Result<RestorePoint> {
        if id_or_prefix.is_empty()
            || id_or_prefix.len() > 64
            || !id_or_prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "restore point id {id_or_prefix:?} is not a hex id or prefix"
            )));
        }
        let mut sql =
            format!("SELECT {RP_COLS} FROM restore_points WHERE id >= ?1 AND id < ?1 || 'g'");
        if let Some(p) = projects {
            sql += &format!(" AND project_id IN ({})", id_list(p));
        }
        sql += " ORDER BY id LIMIT 2";
        let db = self.rd();
        let mut st = db.prepare_cached(&sql)?;
        let found: Vec<RestorePoint> = st
            .query_map([id_or_prefix.to_ascii_lowercase()], rp_row)?
            .collect::<rusqlite::Result<_>>()?;
        match found.len() {
            1 => Ok(found
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound(format!("restore point {id_or_prefix}")))?),
            0 => Err(Error::NotFound(format!("restore point {id_or_prefix}"))),
            _ => Err(Error::Invalid(format!(
                "restore point prefix {id_or_prefix} is ambiguous"
            ))),
        }
    }

    pub fn delete_restore_point(&self, id: RestorePointId) -> Result<()> {
        self.db()
            .execute("DELETE FROM restore_points WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn restore_point_count(&self) -> Result<i64> {
        Ok(self
            .rd()
            .query_row("SELECT COUNT(*) FROM restore_points", [], |r| r.get(0))?)
    }

    /// Ids of a source's restore points in one datastore, oldest first.
    pub fn restore_point_ids_of_source(
        &self,
        source_id: SourceId,
        datastore_id: DatastoreId,
    ) -> Result<Vec<RestorePointId>> {
        Ok(self
            .restore_points_of_source(source_id, datastore_id)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// A source's restore points in one datastore, oldest first, each
    /// with whether it is protected.
    pub fn restore_points_of_source(
        &self,
        source_id: SourceId,
        datastore_id: DatastoreId,
    ) -> Result<Vec<(RestorePointId, bool)>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT id, protected FROM restore_points WHERE source_id = ?1 AND datastore_id = ?2 ORDER BY time",
        )?;
        let rows = st.query_map(params![source_id, datastore_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A source's restore points in one datastore, whole: those a
    /// backup's or prune's retention of the source chooses among (the
    /// protected ones too), oldest first.
    pub fn restore_points_in(
        &self,
        source_id: SourceId,
        datastore_id: DatastoreId,
    ) -> Result<Vec<RestorePoint>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {RP_COLS} FROM restore_points WHERE source_id = ?1 AND datastore_id = ?2 ORDER BY time, id"
        ))?;
        let rows = st.query_map(params![source_id, datastore_id], rp_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many restore points a source has (in any datastore), and how
    /// many of them are protected.
    pub fn restore_point_counts_of_source(&self, source_id: SourceId) -> Result<(i64, i64)> {
        Ok(self.rd().query_row(
            "SELECT COUNT(*), COALESCE(SUM(protected), 0) FROM restore_points WHERE source_id = ?1",
            [source_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Protect a restore point (retention never removes it) or lift that,
    /// and set its note (`None`: leave the note as it is; `Some("")`:
    /// clear it).
    pub fn set_restore_point_protection(
        &self,
        id: RestorePointId,
        protected: Option<bool>,
        note: Option<&str>,
    ) -> Result<()> {
        let note = note.map(|n| (!n.is_empty()).then_some(n));
        let n = self.db().execute(
            "UPDATE restore_points SET protected = COALESCE(?2, protected),
                 note = CASE WHEN ?3 THEN ?4 ELSE note END
             WHERE id = ?1",
            params![id, protected, note.is_some(), note.flatten()],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("restore point {id}")));
        }
        Ok(())
    }

    pub fn newest_restore_point_time(&self, source_id: SourceId) -> Result<Option<i64>> {
        Ok(self.rd().query_row(
            "SELECT MAX(time) FROM restore_points WHERE source_id = ?1",
            [source_id],
            |r| r.get(0),
        )?)
    }

    /// Every source with its newest restore point and its policy's RPO,
    /// in one query (for `/metrics`).
    pub fn source_freshness(&self) -> Result<Vec<SourceFreshness>> {
        let db = self.rd();
        // SQLite takes the bare `bytes_total` from the row of `MAX(time)`.
        let mut st = db.prepare_cached(
            "SELECT s.name, pr.name, s.created_at, last.time, last.bytes_total, \
                    CASE WHEN pol.enabled THEN pol.rpo_seconds END, pol.created_at \
             FROM sources s \
             JOIN projects pr ON pr.id = s.project_id \
             LEFT JOIN policies pol ON pol.id = s.policy_id \
             LEFT JOIN (SELECT source_id, MAX(time) AS time, bytes_total FROM restore_points \
                        WHERE source_id IS NOT NULL GROUP BY source_id) last \
                    ON last.source_id = s.id \
             ORDER BY s.id",
        )?;
        let rows = st.query_map([], |r| {
            let source_created: i64 = r.get(2)?;
            let policy_created: Option<i64> = r.get(6)?;
            Ok(SourceFreshness {
                source: r.get(0)?,
                project: r.get(1)?,
                last_time: r.get(3)?,
                last_bytes: r.get(4)?,
                rpo_seconds: r.get(5)?,
                since: source_created.max(policy_created.unwrap_or(0)),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn bytes_backed_up(&self) -> Result<i64> {
        Ok(self.rd().query_row(
            "SELECT COALESCE(SUM(bytes_added), 0) FROM restore_points",
            [],
            |r| r.get(0),
        )?)
    }

    /// Move every policy's and source's creation time `secs` into the past
    /// (benchmarks and tests of schedules that started earlier).
    pub fn backdate_for_bench(&self, secs: i64) -> Result<()> {
        let db = self.db();
        db.execute("UPDATE policies SET created_at = created_at - ?1", [secs])?;
        db.execute("UPDATE sources SET created_at = created_at - ?1", [secs])?;
        Ok(())
    }
}

/// Insert a restore point unless its id is listed; returns 1 when it was
/// added, 0 when it was there already.
pub(crate) fn insert_restore_point(db: &Connection, rp: &RestorePoint) -> Result<usize> {
    let mut st = db.prepare_cached(&format!(
        "INSERT INTO restore_points ({RP_INSERT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (id) DO NOTHING"
    ))?;
    st.execute(params![
        rp.id,
        rp.datastore_id,
        rp.source_id,
        rp.source_name,
        rp.project_id,
        rp.kind,
        rp.time,
        rp.bytes_total,
        rp.bytes_added,
        rp.files,
        rp.hostname,
        rp.task_id,
        rp.created_at,
        rp.state,
        rp.damage,
        rp.verified_at
    ])
    .map_err(unique("restore point"))
}
