//! Projects: the unit that roles, sources, policies and restore points
//! belong to.

use rusqlite::{params, OptionalExtension};

use crate::{now, unique, Catalog, Error, Project, ProjectId, Result};

impl Catalog {
    pub fn projects(&self) -> Result<Vec<Project>> {
        let db = self.rd();
        let mut st = db.prepare_cached("SELECT id, name FROM projects ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(Project {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn project_by_name(&self, name: &str) -> Result<Project> {
        self.rd()
            .query_row(
                "SELECT id, name FROM projects WHERE name = ?1",
                [name],
                |r| {
                    Ok(Project {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("project {name:?}")))
    }

    pub fn add_project(&self, name: &str) -> Result<Project> {
        let db = self.db();
        db.execute(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2)",
            params![name, now()],
        )
        .map_err(unique(format!("project {name:?}")))?;
        Ok(Project {
            id: ProjectId(db.last_insert_rowid()),
            name: name.to_string(),
        })
    }
}
