//! Opening the catalog: the connection, WAL mode and the migrations.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::{schema, Catalog, Error, Result};

impl Catalog {
    /// Open (creating if needed) the catalog at `path` and migrate it.
    pub fn open(path: &Path) -> Result<Catalog> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::setup(conn, &path.display().to_string())
    }

    pub fn open_in_memory() -> Result<Catalog> {
        Self::setup(Connection::open_in_memory()?, ":memory:")
    }

    fn setup(mut conn: Connection, name: &str) -> Result<Catalog> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = schema::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(Error::TooNew {
                path: name.to_string(),
                found: version,
                supported,
            });
        }
        if version < supported {
            // Foreign keys off while migrating (the pragma is a no-op inside
            // a transaction): a table rebuild drops the old table, and
            // DROP TABLE would run the ON DELETE actions of the tables that
            // refer to it. Each migration checks them before it commits.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            let r = Self::migrate(&mut conn, version);
            conn.pragma_update(None, "foreign_keys", "ON")?;
            r?;
        }
        Ok(Catalog {
            conn: Mutex::new(conn),
            exports_gen: Default::default(),
        })
    }

    /// Apply the migrations after `version`, each in its own transaction
    /// with its version bump. Runs with foreign keys off; a migration that
    /// leaves a row referring to nothing is rolled back.
    fn migrate(conn: &mut Connection, version: i64) -> Result<()> {
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            let broken: Vec<String> = {
                let mut st = tx.prepare("PRAGMA foreign_key_check")?;
                let rows = st.query_map([], |r| {
                    Ok(format!(
                        "{} row {} -> {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                        r.get::<_, String>(2)?
                    ))
                })?;
                rows.take(10).collect::<rusqlite::Result<_>>()?
            };
            if !broken.is_empty() {
                // Dropping the transaction rolls it back.
                return Err(Error::Invalid(format!(
                    "catalog migration {} would leave rows referring to nothing: {}",
                    i + 1,
                    broken.join(", ")
                )));
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .db()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}
