//! Policies: schedule, window, retention, datastore and the match rule
//! that assigns them to sources.

use rusqlite::{params, OptionalExtension, Row};

use crate::{
    json_vec, now, unique, Catalog, DatastoreId, Error, Policy, PolicyId, ProjectId, Result,
    Retention,
};

const POLICY_COLS: &str = "id, name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, enabled, created_at";

fn policy_row(r: &Row) -> rusqlite::Result<Policy> {
    Ok(Policy {
        id: r.get(0)?,
        name: r.get(1)?,
        project_id: r.get(2)?,
        schedule: r.get(3)?,
        backup_window: r.get(4)?,
        retention: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        datastore_id: r.get(6)?,
        priority: r.get(7)?,
        match_pattern: r.get(8)?,
        match_tags: json_vec(r.get(9)?),
        rpo_seconds: r.get(10)?,
        enabled: r.get(11)?,
        created_at: r.get(12)?,
    })
}

impl Catalog {
    #[allow(clippy::too_many_arguments)]
    pub fn add_policy(
        &self,
        name: &str,
        project_id: ProjectId,
        schedule: &str,
        backup_window: Option<&str>,
        retention: &Retention,
        datastore_id: DatastoreId,
        priority: i64,
        match_pattern: Option<&str>,
        match_tags: &[String],
        rpo_seconds: Option<i64>,
    ) -> Result<Policy> {
        let db = self.db();
        db.execute(
            "INSERT INTO policies (name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                name,
                project_id,
                schedule,
                backup_window,
                serde_json::to_string(retention).unwrap_or_else(|_| "{}".into()),
                datastore_id,
                priority,
                match_pattern,
                serde_json::to_string(match_tags).unwrap_or_else(|_| "[]".into()),
                rpo_seconds,
                now()
            ],
        )
        .map_err(unique(format!("policy {name:?} in project {project_id}")))?;
        let id = PolicyId(db.last_insert_rowid());
        drop(db);
        self.policy(id)
    }

    pub fn policy(&self, id: PolicyId) -> Result<Policy> {
        self.rd()
            .query_row(
                &format!("SELECT {POLICY_COLS} FROM policies WHERE id = ?1"),
                [id],
                policy_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("policy {id}")))
    }

    /// The policy of this name in `project_id` (names are unique per
    /// project, not across projects).
    pub fn policy_by_name(&self, project_id: ProjectId, name: &str) -> Result<Option<Policy>> {
        Ok(self
            .rd()
            .query_row(
                &format!("SELECT {POLICY_COLS} FROM policies WHERE project_id = ?1 AND name = ?2"),
                params![project_id, name],
                policy_row,
            )
            .optional()?)
    }

    pub fn policies(&self) -> Result<Vec<Policy>> {
        let db = self.rd();
        let mut st =
            db.prepare_cached(&format!("SELECT {POLICY_COLS} FROM policies ORDER BY id"))?;
        let rows = st.query_map([], policy_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Write a policy's schedule, window, retention, datastore, priority,
    /// match rules, RPO and `enabled` as `pol` has them (its name and
    /// project stay).
    pub fn update_policy(&self, pol: &Policy) -> Result<Policy> {
        let n = self.db().execute(
            "UPDATE policies SET schedule = ?2, backup_window = ?3, retention = ?4, datastore_id = ?5, priority = ?6, match_pattern = ?7, match_tags = ?8, rpo_seconds = ?9, enabled = ?10 WHERE id = ?1",
            params![
                pol.id,
                pol.schedule,
                pol.backup_window,
                serde_json::to_string(&pol.retention).unwrap_or_else(|_| "{}".into()),
                pol.datastore_id,
                pol.priority,
                pol.match_pattern,
                serde_json::to_string(&pol.match_tags).unwrap_or_else(|_| "[]".into()),
                pol.rpo_seconds,
                pol.enabled,
            ],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("policy {}", pol.id)));
        }
        self.policy(pol.id)
    }

    pub fn delete_policy(&self, id: PolicyId) -> Result<()> {
        let n = self
            .db()
            .execute("DELETE FROM policies WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("policy {id}")));
        }
        Ok(())
    }
}
