//! The audit log: who did what, from where, with what result.

use rusqlite::params;

use crate::{now, AuditEntry, AuditResult, Catalog, Result};

impl Catalog {
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        remote: &str,
        result: AuditResult,
        detail: &str,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO audit (time, actor, action, target, remote, result, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![now(), actor, action, target, remote, result, detail],
        )?;
        Ok(())
    }

    pub fn audit_log(&self, limit: i64, offset: i64) -> Result<Vec<AuditEntry>> {
        let db = self.rd();
        let mut st = db.prepare_cached(
            "SELECT id, time, actor, action, target, remote, result, detail FROM audit ORDER BY id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = st.query_map(params![limit.clamp(1, 10_000), offset.max(0)], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                time: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                remote: r.get(5)?,
                result: r.get(6)?,
                detail: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
