//! The secrets the catalog keeps sealed by the server (hypervisors' SSH
//! keys, S3 secret keys; web's `SecretBox`): resealed in one transaction
//! when the server rotates their key file, and one of each kind to tell
//! which key file they are sealed under after a crash mid-rotation.

use rusqlite::{params, OptionalExtension};

use crate::{Catalog, Error, ProjectId, Result};

/// Reseals a hypervisor's key: ((project, name), sealed) -> sealed anew.
pub type HypervisorReseal<'f> =
    dyn for<'a> Fn((ProjectId, &'a str), &[u8]) -> std::result::Result<Vec<u8>, String> + 'f;
/// Reseals an S3 secret: (access key id, sealed) -> sealed anew.
pub type S3Reseal<'f> = dyn Fn(&str, &[u8]) -> std::result::Result<Vec<u8>, String> + 'f;

impl Catalog {
    /// Reseal every hypervisor's SSH key (agents' hypervisors have none)
    /// with `f((project, name), sealed)`: all or none.
    pub fn reseal_hypervisor_keys(&self, f: &HypervisorReseal) -> Result<usize> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let rows: Vec<(i64, ProjectId, String, Vec<u8>)> = {
            let mut st = tx.prepare(
                "SELECT id, project_id, name, ssh_key FROM hypervisors WHERE length(ssh_key) > 0",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, project, name, sealed) in &rows {
            let again = f((*project, name), sealed)
                .map_err(|e| Error::State(format!("the key of hypervisor {name}: {e}")))?;
            tx.execute(
                "UPDATE hypervisors SET ssh_key = ?1 WHERE id = ?2",
                params![again, id],
            )?;
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// Reseal every S3 secret key, revoked ones too, with `f(access key
    /// id, sealed)`: all or none.
    pub fn reseal_s3_secrets(&self, f: &S3Reseal) -> Result<usize> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let rows: Vec<(i64, String, Vec<u8>)> = {
            let mut st = tx.prepare("SELECT id, access_key_id, secret_sealed FROM s3_keys")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, key_id, sealed) in &rows {
            let again = f(key_id, sealed)
                .map_err(|e| Error::State(format!("the secret of S3 key {key_id}: {e}")))?;
            tx.execute(
                "UPDATE s3_keys SET secret_sealed = ?1 WHERE id = ?2",
                params![again, id],
            )?;
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// One sealed hypervisor key: (project, name, sealed), if any.
    pub fn a_sealed_hypervisor_key(&self) -> Result<Option<(ProjectId, String, Vec<u8>)>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT project_id, name, ssh_key FROM hypervisors WHERE length(ssh_key) > 0 ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// One sealed S3 secret: (access key id, sealed), if any.
    pub fn a_sealed_s3_secret(&self) -> Result<Option<(String, Vec<u8>)>> {
        Ok(self
            .rd()
            .query_row(
                "SELECT access_key_id, secret_sealed FROM s3_keys ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Catalog, ProjectId};

    #[test]
    fn resealing_is_all_or_nothing() {
        let c = Catalog::open_in_memory().unwrap();
        let n = c.upsert_node("local", true, 2, "t").unwrap();
        for name in ["a", "b"] {
            c.add_hypervisor(
                name,
                ProjectId(1),
                n.id,
                "h:22",
                "root",
                name.as_bytes(),
                None,
                "ssh",
            )
            .unwrap();
        }
        c.add_hypervisor("ag", ProjectId(1), n.id, "", "", &[], None, "agent")
            .unwrap();
        // The second fails: the first is left as it was.
        let e = c
            .reseal_hypervisor_keys(&|(_, name), s| {
                if name == "b" {
                    Err("does not open".into())
                } else {
                    Ok([s, b"!"].concat())
                }
            })
            .unwrap_err();
        assert!(e.to_string().contains("hypervisor b: does not open"), "{e}");
        let key = |name: &str| {
            let h = c
                .hypervisors()
                .unwrap()
                .into_iter()
                .find(|h| h.name == name)
                .unwrap();
            c.hypervisor_key(h.id).unwrap()
        };
        assert_eq!(key("a"), b"a");
        // Both, and not the agent's (no key).
        let n = c
            .reseal_hypervisor_keys(&|(p, name), s| {
                assert_eq!(p, ProjectId(1));
                assert_ne!(name, "ag");
                Ok([s, b"!"].concat())
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            (key("a"), key("b"), key("ag")),
            (b"a!".to_vec(), b"b!".to_vec(), vec![])
        );
        assert_eq!(
            c.a_sealed_hypervisor_key().unwrap(),
            Some((ProjectId(1), "a".to_string(), b"a!".to_vec()))
        );
        // S3 secrets.
        assert_eq!(c.a_sealed_s3_secret().unwrap(), None);
        let u = c.add_user("alice", "x", &[]).unwrap();
        c.add_s3_key(u.id, "AKIAAAAAAAAAAAAAAAAA", b"s", "x")
            .unwrap();
        assert_eq!(
            c.reseal_s3_secrets(&|id, s| Ok([id.as_bytes(), s].concat()))
                .unwrap(),
            1
        );
        assert_eq!(
            c.a_sealed_s3_secret().unwrap(),
            Some((
                "AKIAAAAAAAAAAAAAAAAA".to_string(),
                b"AKIAAAAAAAAAAAAAAAAAs".to_vec()
            ))
        );
    }
}
