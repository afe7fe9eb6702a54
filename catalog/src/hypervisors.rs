//! Hypervisors (libvirt hosts) and the sources their inventory lists.
//!
//! The SSH private key is stored sealed by the caller (web's credentials
//! box): this module never sees it in the clear. A domain becomes a
//! source of kind `libvirt` named `<hypervisor>.<domain>` (characters a
//! source name cannot hold become `_`), its path the domain's name, its
//! settings `{"hypervisor_id", "uuid", "removed"}` (and `agent`), which a
//! sync sets anew while keeping the others (the admin's `hooks`). A
//! domain that is gone from the host keeps its source and restore points,
//! marked removed.

use rusqlite::{params, OptionalExtension, Row};

use crate::{
    now, unique, Catalog, Error, Hypervisor, HypervisorId, NodeId, ProjectId, Result, Source,
    SourceKind,
};

const COLS: &str = "id, name, kind, project_id, node_id, address, ssh_user, host_key, synced_at, sync_error, created_at, access";

fn row(r: &Row) -> rusqlite::Result<Hypervisor> {
    Ok(Hypervisor {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        project_id: r.get(3)?,
        node_id: r.get(4)?,
        address: r.get(5)?,
        user: r.get(6)?,
        host_key: r.get(7)?,
        synced_at: r.get(8)?,
        sync_error: r.get(9)?,
        created_at: r.get(10)?,
        access: r.get(11)?,
    })
}

/// A domain as the inventory saw it: name and uuid.
pub struct SeenDomain {
    pub name: String,
    pub uuid: String,
}

/// A source name for domain `domain` of hypervisor `hv`.
pub fn domain_source_name(hv: &str, domain: &str) -> String {
    let clean: String = domain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut n = format!("{hv}.{clean}");
    n.truncate(128);
    n
}

impl Catalog {
    #[allow(clippy::too_many_arguments)]
    pub fn add_hypervisor(
        &self,
        name: &str,
        project_id: ProjectId,
        node_id: NodeId,
        address: &str,
        user: &str,
        sealed_key: &[u8],
        host_key: Option<&str>,
        access: &str,
    ) -> Result<Hypervisor> {
        let db = self.db();
        db.execute(
            "INSERT INTO hypervisors (name, kind, project_id, node_id, address, ssh_user, ssh_key, host_key, created_at, access) VALUES (?1, 'libvirt', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![name, project_id, node_id, address, user, sealed_key, host_key, now(), access],
        )
        .map_err(unique(format!("hypervisor {name:?} in project {project_id}")))?;
        let id = HypervisorId(db.last_insert_rowid());
        drop(db);
        self.hypervisor(id)
    }

    pub fn hypervisor(&self, id: HypervisorId) -> Result<Hypervisor> {
        self.rd()
            .query_row(
                &format!("SELECT {COLS} FROM hypervisors WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("hypervisor {id}")))
    }

    pub fn hypervisors(&self) -> Result<Vec<Hypervisor>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!("SELECT {COLS} FROM hypervisors ORDER BY id"))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The sealed private key of a hypervisor.
    pub fn hypervisor_key(&self, id: HypervisorId) -> Result<Vec<u8>> {
        self.rd()
            .query_row("SELECT ssh_key FROM hypervisors WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("hypervisor {id}")))
    }

    /// The sources its inventory made.
    pub fn hypervisor_sources(&self, id: HypervisorId) -> Result<Vec<Source>> {
        Ok(self
            .sources()?
            .into_iter()
            .filter(|s| {
                s.kind == SourceKind::Libvirt
                    && s.settings["hypervisor_id"].as_i64() == Some(id.get())
            })
            .collect())
    }

    /// Delete a hypervisor that no source refers to any more.
    pub fn delete_hypervisor(&self, id: HypervisorId) -> Result<()> {
        let n = self.hypervisor_sources(id)?.len();
        if n > 0 {
            return Err(Error::Conflict(format!(
                "hypervisor {id} still has {n} source(s); delete them first"
            )));
        }
        let n = self
            .db()
            .execute("DELETE FROM hypervisors WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::NotFound(format!("hypervisor {id}")));
        }
        Ok(())
    }

    /// The hypervisors named `name` (one per project at most).
    pub fn hypervisor_named(&self, name: &str) -> Result<Vec<Hypervisor>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {COLS} FROM hypervisors WHERE name = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([name], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Record a failed sync.
    pub fn hypervisor_sync_failed(&self, id: HypervisorId, error: &str) -> Result<()> {
        self.db().execute(
            "UPDATE hypervisors SET sync_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Record a sync: pin the host key if none was, add a source per new
    /// domain, mark those gone as removed (and those back as present).
    /// Returns the names of the sources added, removed and present.
    pub fn hypervisor_synced(
        &self,
        hv: &Hypervisor,
        host_key: &str,
        domains: &[SeenDomain],
    ) -> Result<(Vec<Source>, Vec<String>, Vec<String>)> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let pinned: Option<String> = tx.query_row(
            "SELECT host_key FROM hypervisors WHERE id = ?1",
            [hv.id],
            |r| r.get(0),
        )?;
        match pinned {
            Some(p) if p != host_key => {
                return Err(Error::Conflict(format!(
                    "the host key of {} changed: pinned {p}, seen {host_key}",
                    hv.address
                )))
            }
            Some(_) => {}
            None => {
                tx.execute(
                    "UPDATE hypervisors SET host_key = ?2 WHERE id = ?1",
                    params![hv.id, host_key],
                )?;
            }
        }
        tx.execute(
            "UPDATE hypervisors SET synced_at = ?2, sync_error = NULL WHERE id = ?1",
            params![hv.id, now()],
        )?;
        let mut existing: Vec<(i64, String, String, serde_json::Value)> = Vec::new();
        {
            let mut st = tx.prepare(
                "SELECT id, name, path, settings FROM sources WHERE kind = 'libvirt' AND project_id = ?1",
            )?;
            for r in st.query_map([hv.project_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
            })? {
                let (id, name, path, settings) = r?;
                let settings: serde_json::Value =
                    serde_json::from_str(&settings).unwrap_or_default();
                if settings["hypervisor_id"].as_i64() == Some(hv.id.get()) {
                    existing.push((id, name, path, settings));
                }
            }
        }
        let (mut added, mut removed, mut present) = (Vec::new(), Vec::new(), Vec::new());
        for d in domains {
            let mut settings =
                serde_json::json!({"hypervisor_id": hv.id.get(), "uuid": d.uuid, "removed": false});
            if hv.access == "agent" {
                settings["agent"] = true.into();
            }
            match existing.iter().find(|e| e.2 == d.name) {
                Some((id, name, _, old)) => {
                    // The server's keys anew; the others (hooks) kept.
                    let mut kept = old.clone();
                    if let (Some(k), Some(new)) = (kept.as_object_mut(), settings.as_object()) {
                        k.remove("agent");
                        for (key, v) in new {
                            k.insert(key.clone(), v.clone());
                        }
                        settings = kept;
                    }
                    tx.execute(
                        "UPDATE sources SET settings = ?2 WHERE id = ?1",
                        params![id, settings.to_string()],
                    )?;
                    present.push(name.clone());
                }
                None => {
                    let name = domain_source_name(&hv.name, &d.name);
                    tx.execute(
                        "INSERT INTO sources (name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at) VALUES (?1, 'libvirt', ?2, ?3, ?4, '[]', ?5, NULL, 'none', ?6)",
                        params![name, d.name, hv.node_id, hv.project_id, settings.to_string(), now()],
                    )
                    .map_err(unique(format!("source {name:?} in project {}", hv.project_id)))?;
                    added.push(crate::SourceId(tx.last_insert_rowid()));
                }
            }
        }
        for (id, name, path, mut settings) in existing {
            if !domains.iter().any(|d| d.name == path) {
                settings["removed"] = true.into();
                tx.execute(
                    "UPDATE sources SET settings = ?2 WHERE id = ?1",
                    params![id, settings.to_string()],
                )?;
                removed.push(name);
            }
        }
        tx.commit()?;
        drop(db);
        let added = added
            .into_iter()
            .map(|id| self.source(id))
            .collect::<Result<Vec<_>>>()?;
        Ok((added, removed, present))
    }
}
