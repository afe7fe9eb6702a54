//! Sources: what is backed up, from which node, and the policy assigned
//! to each (explicitly or by a policy's match rule).

use rusqlite::{params, OptionalExtension, Row};

use crate::{
    json_val, json_vec, now, unique, AssignedBy, Catalog, Error, NodeId, PolicyId, ProjectId,
    Result, Source, SourceId, SourceKind,
};

const SOURCE_COLS: &str =
    "id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at";

fn source_row(r: &Row) -> rusqlite::Result<Source> {
    Ok(Source {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        path: r.get(3)?,
        node_id: r.get(4)?,
        project_id: r.get(5)?,
        tags: json_vec(r.get(6)?),
        settings: json_val(r.get(7)?),
        policy_id: r.get(8)?,
        assigned_by: r.get(9)?,
        created_at: r.get(10)?,
    })
}

impl Catalog {
    #[allow(clippy::too_many_arguments)]
    pub fn add_source(
        &self,
        name: &str,
        kind: SourceKind,
        path: &str,
        node_id: NodeId,
        project_id: ProjectId,
        tags: &[String],
        settings: &serde_json::Value,
        policy_id: Option<PolicyId>,
    ) -> Result<Source> {
        let db = self.db();
        db.execute(
            "INSERT INTO sources (name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                name,
                kind,
                path,
                node_id,
                project_id,
                serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()),
                settings.to_string(),
                policy_id,
                if policy_id.is_some() {
                    AssignedBy::Explicit
                } else {
                    AssignedBy::None
                },
                now()
            ],
        )
        .map_err(unique(format!("source {name:?} in project {project_id}")))?;
        let id = SourceId(db.last_insert_rowid());
        drop(db);
        self.source(id)
    }

    pub fn source(&self, id: SourceId) -> Result<Source> {
        self.rd()
            .query_row(
                &format!("SELECT {SOURCE_COLS} FROM sources WHERE id = ?1"),
                [id],
                source_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("source {id}")))
    }

    /// The source of this name in `project_id` (names are unique per
    /// project, not across projects).
    pub fn source_by_name(&self, project_id: ProjectId, name: &str) -> Result<Option<Source>> {
        Ok(self
            .rd()
            .query_row(
                &format!("SELECT {SOURCE_COLS} FROM sources WHERE project_id = ?1 AND name = ?2"),
                params![project_id, name],
                source_row,
            )
            .optional()?)
    }

    /// The sources of this name, in every project, oldest first.
    pub fn sources_named(&self, name: &str) -> Result<Vec<Source>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {SOURCE_COLS} FROM sources WHERE name = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([name], source_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn sources(&self) -> Result<Vec<Source>> {
        let db = self.rd();
        let mut st =
            db.prepare_cached(&format!("SELECT {SOURCE_COLS} FROM sources ORDER BY id"))?;
        let rows = st.query_map([], source_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_source(&self, id: SourceId) -> Result<()> {
        let n = self
            .db()
            .execute("DELETE FROM sources WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("source {id}")));
        }
        Ok(())
    }

    /// Write a source's name, path, tags and settings as `src` has them
    /// (the other fields are not changed here: the policy with
    /// [`Catalog::assign_policy`]).
    pub fn update_source(&self, src: &Source) -> Result<Source> {
        let n = self
            .db()
            .execute(
                "UPDATE sources SET name = ?2, path = ?3, tags = ?4, settings = ?5 WHERE id = ?1",
                params![
                    src.id,
                    src.name,
                    src.path,
                    serde_json::to_string(&src.tags).unwrap_or_else(|_| "[]".into()),
                    src.settings.to_string(),
                ],
            )
            .map_err(unique(format!(
                "source {:?} in project {}",
                src.name, src.project_id
            )))?;
        if n == 0 {
            return Err(Error::NotFound(format!("source {}", src.id)));
        }
        self.source(src.id)
    }

    /// Assign a policy (`assigned_by`: explicit or rule; `None` clears).
    pub fn assign_policy(
        &self,
        source_id: SourceId,
        policy_id: Option<PolicyId>,
        assigned_by: AssignedBy,
    ) -> Result<()> {
        let by = if policy_id.is_some() {
            assigned_by
        } else {
            AssignedBy::None
        };
        let n = self
            .db()
            .execute(
                "UPDATE sources SET policy_id = ?2, assigned_by = ?3 WHERE id = ?1",
                params![source_id, policy_id, by],
            )
            .map_err(unique("policy assignment"))?;
        if n == 0 {
            return Err(Error::NotFound(format!("source {source_id}")));
        }
        Ok(())
    }
}
