//! The audit log: who did what, from where, with what result.

use rusqlite::params;

use crate::{now, AuditEntry, AuditResult, Catalog, Result};

/// Which audit entries to list ([`Catalog::audit_log_filtered`]): every
/// filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor, exactly.
    pub actor: Option<String>,
    /// The action exactly, or a prefix of it when it ends with `.`.
    pub action: Option<String>,
    pub result: Option<AuditResult>,
    /// At or after.
    pub since: Option<i64>,
    /// At or before.
    pub until: Option<i64>,
}

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

    /// The audit log, newest first (all entries).
    pub fn audit_log(&self, limit: i64, offset: i64) -> Result<Vec<AuditEntry>> {
        self.audit_log_filtered(&AuditFilter::default(), limit, offset)
    }

    /// The entries that match every filter given, newest first.
    pub fn audit_log_filtered(
        &self,
        f: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>> {
        let mut conds: Vec<&str> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(a) = &f.actor {
            conds.push("actor = ?");
            args.push(a.clone().into());
        }
        match f.action.as_deref() {
            Some(a) if a.ends_with('.') => {
                // A prefix: compared as a range, so `_` and `%` in it are
                // plain characters (no LIKE).
                conds.push("substr(action, 1, ?) = ?");
                args.push((a.chars().count() as i64).into());
                args.push(a.to_string().into());
            }
            Some(a) => {
                conds.push("action = ?");
                args.push(a.to_string().into());
            }
            None => {}
        }
        if let Some(r) = f.result {
            conds.push("result = ?");
            args.push(r.as_str().to_string().into());
        }
        if let Some(t) = f.since {
            conds.push("time >= ?");
            args.push(t.into());
        }
        if let Some(t) = f.until {
            conds.push("time <= ?");
            args.push(t.into());
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        args.push(limit.clamp(1, 10_000).into());
        args.push(offset.max(0).into());
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT id, time, actor, action, target, remote, result, detail FROM audit {filter} ORDER BY id DESC LIMIT ? OFFSET ?"
        ))?;
        let rows = st.query_map(rusqlite::params_from_iter(args), |r| {
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
