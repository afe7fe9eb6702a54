//! Exports: restore points served over NBD, iSCSI or NFS by the node that
//! owns their datastore (`arca mount`, `POST /api/v1/exports`).
//!
//! The catalog holds what *should* be exported; each node reconciles its
//! servers with that list ([`Catalog::wait_exports`] wakes it within
//! milliseconds of a change) and reports the address it serves at.
//!
//! Every export gets a random secret when it is made ([`new_secret`]):
//! NBD clients name the export `<name>-<secret>`, iSCSI logins use CHAP
//! with user `<name>` and the secret. The REST API shows the secret (and
//! the address, which carries it) only to users who may restore in the
//! export's project.
//!
//! States: `starting` → `active` (the node serves it) or `failed`;
//! `starting`/`active` → `stopped` (asked) or `expired` (TTL passed).
//! Only `starting` and `active` exports are served.

use std::time::{Duration, Instant};

use crate::{
    now, Catalog, DatastoreId, Error, ExportId, ExportOnStop, ExportProtocol, ExportState, NodeId,
    ProjectId, RestorePointId, Result, TaskId,
};
use rusqlite::{params, OptionalExtension, Row};

/// An export: a restore point served by its datastore's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub id: ExportId,
    pub restore_point_id: RestorePointId,
    pub datastore_id: DatastoreId,
    pub node_id: NodeId,
    pub project_id: ProjectId,
    pub protocol: ExportProtocol,
    pub writable: bool,
    /// The export's name on its node, `export-<id>` (not secret): the
    /// iSCSI target name and CHAP user are made from it.
    pub name: String,
    pub state: ExportState,
    /// Where clients connect, once the node serves it, credentials
    /// included: `nbd://host:port/<name>-<secret>` (or `nbds://`), or
    /// `iscsi://<name>%<secret>@host:port/iqn/0`.
    pub address: Option<String>,
    pub error: Option<String>,
    /// What happens to a writable export's overlay when it ends:
    /// `discard`, or `commit` (a task writes it as a new restore point).
    pub on_stop: ExportOnStop,
    /// The task that commits the overlay, once queued.
    pub commit_task_id: Option<TaskId>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub stopped_at: Option<i64>,
    /// The per-export secret clients need (part of the NBD export name;
    /// the iSCSI CHAP secret). Only users of the export's project see it.
    /// NFS exports do not use it (NFSv3 has no user authentication).
    pub secret: String,
    /// NFS: the address blocks whose clients may mount it (validated by
    /// the API; stored comma-joined). Empty for NBD and iSCSI.
    pub allow: Vec<String>,
}

/// Characters of an export secret: letters and digits, so that it goes
/// into URLs, NBD names and libiscsi's `user%secret@` as it is.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of an export secret: 16 characters (about 95 bits). Also a
/// CHAP secret length every initiator takes (some refuse fewer than 12
/// or more than 16).
pub const SECRET_LEN: usize = 16;

/// A new random export secret, from the operating system's generator.
pub fn new_secret() -> Result<String> {
    let mut out = String::with_capacity(SECRET_LEN);
    // Rejection sampling: only bytes below a multiple of the alphabet's
    // size, so every character is equally likely.
    let limit = (256 / SECRET_ALPHABET.len() * SECRET_ALPHABET.len()) as u8;
    while out.len() < SECRET_LEN {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf)
            .map_err(|e| Error::Invalid(format!("the random number generator failed: {e}")))?;
        for b in buf.into_iter().filter(|b| *b < limit) {
            if out.len() < SECRET_LEN {
                out.push(SECRET_ALPHABET[b as usize % SECRET_ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// What to export.
#[derive(Clone, Debug)]
pub struct NewExport {
    pub restore_point_id: RestorePointId,
    pub datastore_id: DatastoreId,
    pub node_id: NodeId,
    pub project_id: ProjectId,
    pub protocol: ExportProtocol,
    pub writable: bool,
    pub ttl_seconds: i64,
    pub created_by: String,
    /// NFS: the address blocks of its clients (see [`Export::allow`]).
    pub allow: Vec<String>,
}

const COLS: &str = "id, restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, address, error, on_stop, commit_task_id, created_by, created_at, expires_at, stopped_at, secret, allow";

/// The `allow` column: comma-joined (address blocks have no commas).
fn split_allow(s: String) -> Vec<String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn row(r: &Row) -> rusqlite::Result<Export> {
    Ok(Export {
        id: r.get(0)?,
        restore_point_id: r.get(1)?,
        datastore_id: r.get(2)?,
        node_id: r.get(3)?,
        project_id: r.get(4)?,
        protocol: r.get(5)?,
        writable: r.get(6)?,
        name: r.get(7)?,
        state: r.get(8)?,
        address: r.get(9)?,
        error: r.get(10)?,
        on_stop: r.get(11)?,
        commit_task_id: r.get(12)?,
        created_by: r.get(13)?,
        created_at: r.get(14)?,
        expires_at: r.get(15)?,
        stopped_at: r.get(16)?,
        secret: r.get(17)?,
        allow: split_allow(r.get(18)?),
    })
}

/// The states in which a node serves an export.
pub const LIVE: [ExportState; 2] = [ExportState::Starting, ExportState::Active];

impl Export {
    /// Is it served (starting or active)?
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}

impl Catalog {
    pub fn add_export(&self, e: &NewExport) -> Result<Export> {
        let secret = new_secret()?;
        let db = self.db();
        let t = now();
        db.execute(
            "INSERT INTO exports (restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, on_stop, created_by, created_at, expires_at, secret, allow) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', 'starting', 'discard', ?7, ?8, ?9, ?10, ?11)",
            params![
                e.restore_point_id,
                e.datastore_id,
                e.node_id,
                e.project_id,
                e.protocol,
                e.writable,
                e.created_by,
                t,
                t.saturating_add(e.ttl_seconds),
                secret,
                e.allow.join(",")
            ],
        )?;
        let id = ExportId(db.last_insert_rowid());
        // Each export has its own name and secret (and, when writable,
        // its own overlay).
        let name = format!("export-{id}");
        db.execute(
            "UPDATE exports SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        drop(db);
        self.exports_changed();
        self.export(id)
    }

    pub fn export(&self, id: ExportId) -> Result<Export> {
        self.rd()
            .query_row(
                &format!("SELECT {COLS} FROM exports WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("export {id}")))
    }

    /// Exports, newest first: all of them, or only the live ones.
    pub fn exports(
        &self,
        live_only: bool,
        project_ids: Option<&[ProjectId]>,
    ) -> Result<Vec<Export>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {COLS} FROM exports WHERE (?1 = 0 OR state IN ('starting', 'active')) ORDER BY id DESC LIMIT 1000"
        ))?;
        let rows = st.query_map([live_only], row)?;
        let all: Vec<Export> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(match project_ids {
            Some(p) => all
                .into_iter()
                .filter(|e| p.contains(&e.project_id))
                .collect(),
            None => all,
        })
    }

    /// The node serves the export at `address`.
    pub fn export_active(&self, id: ExportId, node_id: NodeId, address: &str) -> Result<()> {
        self.db().execute(
            "UPDATE exports SET state = 'active', address = ?3, error = NULL WHERE id = ?1 AND node_id = ?2 AND state IN ('starting', 'active')",
            params![id, node_id, address],
        )?;
        Ok(())
    }

    /// The node could not serve the export.
    pub fn export_failed(&self, id: ExportId, node_id: NodeId, error: &str) -> Result<()> {
        let n = self.db().execute(
            "UPDATE exports SET state = 'failed', error = ?3, stopped_at = ?4 WHERE id = ?1 AND node_id = ?2 AND state IN ('starting', 'active')",
            params![id, node_id, error, now()],
        )?;
        if n > 0 {
            self.exports_changed();
        }
        Ok(())
    }

    /// Stop a live export; `commit_task` when its overlay is to be
    /// committed by that task. Returns the export as it now is.
    pub fn stop_export(&self, id: ExportId, commit_task: Option<TaskId>) -> Result<Export> {
        let n = self.db().execute(
            "UPDATE exports SET state = 'stopped', stopped_at = ?2, on_stop = ?3, commit_task_id = ?4 WHERE id = ?1 AND state IN ('starting', 'active')",
            params![
                id,
                now(),
                if commit_task.is_some() {
                    ExportOnStop::Commit
                } else {
                    ExportOnStop::Discard
                },
                commit_task
            ],
        )?;
        if n == 0 {
            let e = self.export(id)?;
            return Err(Error::State(format!("export {id} is already {}", e.state)));
        }
        self.exports_changed();
        self.export(id)
    }

    /// Give a live export a new end, `ttl_seconds` from now.
    pub fn extend_export(&self, id: ExportId, ttl_seconds: i64) -> Result<Export> {
        let n = self.db().execute(
            "UPDATE exports SET expires_at = ?2 WHERE id = ?1 AND state IN ('starting', 'active')",
            params![id, now().saturating_add(ttl_seconds)],
        )?;
        if n == 0 {
            let e = self.export(id)?;
            return Err(Error::State(format!("export {id} is already {}", e.state)));
        }
        self.export(id)
    }

    /// End exports whose TTL passed. Returns how many.
    pub fn expire_exports(&self, now: i64) -> Result<usize> {
        let n = self.db().execute(
            "UPDATE exports SET state = 'expired', stopped_at = ?1 WHERE state IN ('starting', 'active') AND expires_at <= ?1",
            [now],
        )?;
        if n > 0 {
            self.exports_changed();
        }
        Ok(n)
    }

    /// The exports a node must serve (live) or must clean up after
    /// (ended in the last day, for their overlays).
    pub fn node_exports(&self, node_id: NodeId) -> Result<Vec<Export>> {
        let db = self.rd();
        let mut st = db.prepare_cached(&format!(
            "SELECT {COLS} FROM exports WHERE node_id = ?1 AND (state IN ('starting', 'active') OR stopped_at >= ?2) ORDER BY id"
        ))?;
        let rows = st.query_map(params![node_id, now() - 86_400], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Note that exports changed, waking [`Catalog::wait_exports`].
    pub fn exports_changed(&self) {
        let mut g = self.exports_gen.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.exports_gen.1.notify_all();
    }

    /// Wait up to `timeout` for the exports to change after generation
    /// `seen`; return the current generation and the node's exports.
    pub fn wait_exports(
        &self,
        node_id: NodeId,
        seen: u64,
        timeout: Duration,
    ) -> Result<(u64, Vec<Export>)> {
        let deadline = Instant::now() + timeout;
        let mut g = self.exports_gen.0.lock().unwrap_or_else(|e| e.into_inner());
        while *g == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            g = self
                .exports_gen
                .1
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let gen = *g;
        drop(g);
        Ok((gen, self.node_exports(node_id)?))
    }
}
