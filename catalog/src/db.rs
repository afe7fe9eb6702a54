//! Opening the catalog: the connections, WAL mode and the migrations.
//!
//! One writer connection, behind a mutex, makes every change: SQLite
//! serialises writers anyway. Reads go to a small pool of read-only
//! connections ([`READERS`]): in WAL mode a reader sees the last committed
//! state and never waits for a writer, so a long write (an import of
//! 100 000 restore points, a big transaction) does not hold up the API's
//! reads. An in-memory catalog (tests), or a file on which WAL cannot be
//! turned on, reads through the writer connection instead.
//!
//! A read method takes one connection for the length of the call and
//! never calls another read method while holding it (so the pool cannot
//! run dry by nesting). What a call has committed is visible to every
//! later read, from any connection.

use std::ops::Deref;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{schema, Catalog, Error, Result};

/// Read-only connections of a catalog file.
pub const READERS: usize = 4;

/// How long a statement waits for a lock held by another process (the
/// `arca` CLI, another server) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The idle read-only connections.
pub(crate) struct Readers {
    n: usize,
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    fn open(path: &Path, n: usize) -> Result<Readers> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let c = Connection::open_with_flags(path, flags)?;
            c.busy_timeout(BUSY_TIMEOUT)?;
            idle.push(c);
        }
        Ok(Readers {
            n,
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }
}

/// The writer connection, held: released (and the write generation
/// moved on) when dropped.
pub(crate) struct Writer<'a> {
    conn: MutexGuard<'a, Connection>,
    gen: &'a std::sync::atomic::AtomicU64,
}

impl Deref for Writer<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        // Before the mutex is released (the field drops after this): the
        // commit, if any, is done, so a reader that sees the new value
        // also sees what was written.
        self.gen.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A connection for reading: one of the pool's (back to the pool when
/// dropped), or the writer's when there is no pool.
pub(crate) enum Reader<'a> {
    Pooled(&'a Readers, Option<Connection>),
    Writer(Writer<'a>),
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Reader::Pooled(_, Some(c)) => c,
            // Taken only by drop.
            Reader::Pooled(_, None) => unreachable!("a pooled reader without its connection"),
            Reader::Writer(g) => g,
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Reader::Pooled(pool, conn) = self {
            if let Some(c) = conn.take() {
                pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                pool.returned.notify_one();
            }
        }
    }
}

impl Catalog {
    /// Open (creating if needed) the catalog at `path` and migrate it.
    pub fn open(path: &Path) -> Result<Catalog> {
        Self::open_with_readers(path, READERS)
    }

    /// [`Catalog::open`] with `readers` read-only connections; 0 reads
    /// through the writer connection (what the benchmark compares with).
    pub fn open_with_readers(path: &Path, readers: usize) -> Result<Catalog> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        // Without WAL a reader would wait for the writer (and the writer
        // for readers): read through the writer then, as one connection.
        let readers = (mode.eq_ignore_ascii_case("wal") && readers > 0).then_some((path, readers));
        Self::setup(conn, &path.display().to_string(), readers)
    }

    pub fn open_in_memory() -> Result<Catalog> {
        Self::setup(Connection::open_in_memory()?, ":memory:", None)
    }

    pub(crate) fn setup(
        mut conn: Connection,
        name: &str,
        readers: Option<(&Path, usize)>,
    ) -> Result<Catalog> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
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
        // The readers open after the migrations: they never see an older
        // schema.
        let readers = readers.map(|(p, n)| Readers::open(p, n)).transpose()?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            readers,
            exports_gen: Default::default(),
            write_gen: Default::default(),
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
            .rd()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// How many read-only connections serve reads (0: reads go through
    /// the writer connection, as for an in-memory catalog).
    pub fn read_connections(&self) -> usize {
        self.readers.as_ref().map_or(0, |r| r.n)
    }

    /// The writer connection: every change, and the reads that must see
    /// a transaction's own writes.
    pub(crate) fn db(&self) -> Writer<'_> {
        Writer {
            conn: self.conn.lock().unwrap_or_else(|e| e.into_inner()),
            gen: &self.write_gen,
        }
    }

    /// A number that changes after anything may have been written through
    /// this catalog: it moves each time the writer connection is released,
    /// after the commit. A value derived from reads is still current while
    /// the generation read *before* those reads is unchanged, which is
    /// how callers cache (the API's token check). Writes by another
    /// process are not seen; in this design only `arca server import`
    /// writes from outside, and never to accounts or tokens.
    pub fn write_generation(&self) -> u64 {
        self.write_gen.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A connection for a read: an idle one of the pool (waiting for one
    /// when all are in use, which is short: each is held for one call),
    /// or the writer's when there is no pool.
    pub(crate) fn rd(&self) -> Reader<'_> {
        let Some(pool) = &self.readers else {
            return Reader::Writer(self.db());
        };
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = idle.pop() {
                return Reader::Pooled(pool, Some(c));
            }
            idle = pool.returned.wait(idle).unwrap_or_else(|e| e.into_inner());
        }
    }
}
