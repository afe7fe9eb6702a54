//! The catalog schema, as numbered migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each
//! migration runs in one transaction together with the version bump, so a
//! crash leaves either the old or the new schema. A catalog newer than this
//! binary is refused rather than guessed at. Migrations are append-only:
//! never edit one that has shipped, add the next.

pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
INSERT INTO projects (id, name, created_at) VALUES (1, 'default', 0);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- A role in one project, or in all projects when project_id is NULL.
CREATE TABLE role_bindings (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'restore-only', 'auditor')),
    project_id  INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    UNIQUE (user_id, role, project_id)
);

-- Bearer tokens. Only a SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    node_id      INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('session', 'api', 'node')),
    secret_sha256 BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

CREATE TABLE nodes (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL CHECK (state IN ('online', 'offline')),
    embedded       INTEGER NOT NULL DEFAULT 0,
    max_tasks      INTEGER NOT NULL DEFAULT 2,
    version        TEXT NOT NULL DEFAULT '',
    last_heartbeat INTEGER,
    created_at     INTEGER NOT NULL
);

CREATE TABLE datastores (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    path        TEXT NOT NULL,
    bytes_used  INTEGER NOT NULL DEFAULT 0,
    bytes_logical INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    UNIQUE (node_id, path)
);

CREATE TABLE policies (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    schedule      TEXT NOT NULL,
    backup_window TEXT,
    retention     TEXT NOT NULL DEFAULT '{}',
    datastore_id  INTEGER NOT NULL REFERENCES datastores(id),
    priority      INTEGER NOT NULL DEFAULT 0,
    match_pattern TEXT,
    match_tags    TEXT NOT NULL DEFAULT '[]',
    rpo_seconds   INTEGER,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('files', 'image')),
    path        TEXT NOT NULL,
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    tags        TEXT NOT NULL DEFAULT '[]',
    settings    TEXT NOT NULL DEFAULT '{}',
    -- Set explicitly, or by a policy's pattern/tag rule (assigned_by = 'rule').
    policy_id   INTEGER REFERENCES policies(id) ON DELETE SET NULL,
    assigned_by TEXT NOT NULL DEFAULT 'none' CHECK (assigned_by IN ('none', 'explicit', 'rule')),
    created_at  INTEGER NOT NULL
);
CREATE INDEX sources_policy ON sources (policy_id);

-- One row per scheduled slot that produced a task: (policy, source, slot)
-- is unique, so a slot is never queued twice, whatever restarts happen.
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    source_id    INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    policy_id    INTEGER REFERENCES policies(id) ON DELETE SET NULL,
    datastore_id INTEGER REFERENCES datastores(id),
    node_id      INTEGER REFERENCES nodes(id),
    params       TEXT NOT NULL DEFAULT '{}',
    priority     INTEGER NOT NULL DEFAULT 0,
    slot         INTEGER,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    not_before   INTEGER NOT NULL,
    lease_until  INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    bytes_done   INTEGER NOT NULL DEFAULT 0,
    bytes_total  INTEGER NOT NULL DEFAULT 0,
    result       TEXT,
    error        TEXT,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (policy_id, source_id, slot)
);
CREATE INDEX tasks_state ON tasks (state, priority DESC, not_before, id);
CREATE INDEX tasks_source ON tasks (source_id, id DESC);

CREATE TABLE task_logs (
    task_id  INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- Restore points are listed only once their snapshot is committed.
CREATE TABLE restore_points (
    id           TEXT PRIMARY KEY,
    datastore_id INTEGER NOT NULL REFERENCES datastores(id),
    source_id    INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    source_name  TEXT NOT NULL,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    kind         TEXT NOT NULL,
    time         INTEGER NOT NULL,
    bytes_total  INTEGER NOT NULL DEFAULT 0,
    bytes_added  INTEGER NOT NULL DEFAULT 0,
    files        INTEGER NOT NULL DEFAULT 0,
    hostname     TEXT NOT NULL DEFAULT '',
    task_id      INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX restore_points_source ON restore_points (source_name, time DESC);
CREATE INDEX restore_points_time ON restore_points (time DESC);
CREATE INDEX restore_points_project ON restore_points (project_id, time DESC);

-- Append-only: there is no UPDATE or DELETE of audit rows in the code.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    remote  TEXT NOT NULL DEFAULT '',
    result  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time DESC);
"#,
    // 2: indexes that serve the API's list orders without sorting
    // (found by benches/api.sh: offsets and state filters sorted 100k rows).
    r#"
DROP INDEX restore_points_time;
DROP INDEX restore_points_source;
DROP INDEX restore_points_project;
CREATE INDEX restore_points_time ON restore_points (time DESC, id);
CREATE INDEX restore_points_source ON restore_points (source_name, time DESC, id);
CREATE INDEX restore_points_project ON restore_points (project_id, time DESC, id);
CREATE INDEX tasks_state_id ON tasks (state, id);
CREATE INDEX tasks_project_id ON tasks (project_id, id);
"#,
    // 3: exports of restore points over NBD and iSCSI (`arca mount`).
    // No foreign key to restore_points: retention keeps exported restore
    // points, and an export's history outlives its restore point.
    r#"
CREATE TABLE exports (
    id               INTEGER PRIMARY KEY,
    restore_point_id TEXT NOT NULL,
    datastore_id     INTEGER NOT NULL REFERENCES datastores(id),
    node_id          INTEGER NOT NULL REFERENCES nodes(id),
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    protocol         TEXT NOT NULL CHECK (protocol IN ('nbd', 'iscsi')),
    writable         INTEGER NOT NULL DEFAULT 0,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('starting', 'active', 'failed', 'stopped', 'expired')),
    address          TEXT,
    error            TEXT,
    on_stop          TEXT NOT NULL CHECK (on_stop IN ('discard', 'commit')),
    commit_task_id   INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    stopped_at       INTEGER
);
CREATE INDEX exports_node ON exports (node_id, state);
CREATE INDEX exports_state ON exports (state, expires_at);
"#,
    // 4: operations and safety (issue 10).
    // Nodes: where sources may live and restores may be written
    // (confinement; JSON arrays of absolute paths), whether restores may
    // write block devices, and the node's data directory (the default
    // restore root is `<data_dir>/restores`).
    // Datastores: maintenance schedules (gc, verify) and how old a
    // restore point's last verification may be before verify reads it again.
    // Restore points: the outcome of the last verify that read them.
    // Exports: the per-export secret (NBD export name part, iSCSI CHAP).
    r#"
ALTER TABLE nodes ADD COLUMN source_roots TEXT NOT NULL DEFAULT '[]';
ALTER TABLE nodes ADD COLUMN restore_roots TEXT NOT NULL DEFAULT '[]';
ALTER TABLE nodes ADD COLUMN allow_block_devices INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN data_dir TEXT NOT NULL DEFAULT '';
ALTER TABLE datastores ADD COLUMN gc_schedule TEXT NOT NULL DEFAULT 'daily';
ALTER TABLE datastores ADD COLUMN verify_schedule TEXT NOT NULL DEFAULT 'weekly';
ALTER TABLE datastores ADD COLUMN verify_max_age_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE restore_points ADD COLUMN state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'damaged'));
ALTER TABLE restore_points ADD COLUMN damage TEXT;
ALTER TABLE restore_points ADD COLUMN verified_at INTEGER;
ALTER TABLE exports ADD COLUMN secret TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_datastore_kind ON tasks (datastore_id, kind, slot);
"#,
    // 5: ids are never reused (issue 18). Every table whose rows can be
    // deleted gets `INTEGER PRIMARY KEY AUTOINCREMENT`, so a deleted row's
    // id never goes to a new row; source and policy names are unique per
    // project, not across projects. SQLite's table rebuild: create the new
    // table, copy, drop the old one, rename, recreate the indexes. The
    // runner runs migrations with foreign keys off (DROP TABLE would fire
    // ON DELETE actions) and checks them before it commits.
    // Every column, constraint and index is kept, in the same order.
    r#"
CREATE TABLE new_projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
INSERT INTO new_projects (id, name, created_at) SELECT id, name, created_at FROM projects;
DROP TABLE projects;
ALTER TABLE new_projects RENAME TO projects;

CREATE TABLE new_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
INSERT INTO new_users (id, name, password_hash, disabled, created_at)
    SELECT id, name, password_hash, disabled, created_at FROM users;
DROP TABLE users;
ALTER TABLE new_users RENAME TO users;

CREATE TABLE new_role_bindings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'restore-only', 'auditor')),
    project_id  INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    UNIQUE (user_id, role, project_id)
);
INSERT INTO new_role_bindings (id, user_id, role, project_id)
    SELECT id, user_id, role, project_id FROM role_bindings;
DROP TABLE role_bindings;
ALTER TABLE new_role_bindings RENAME TO role_bindings;

CREATE TABLE new_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    node_id      INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('session', 'api', 'node')),
    secret_sha256 BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
INSERT INTO new_tokens (id, user_id, node_id, name, kind, secret_sha256, created_at, expires_at, revoked_at, last_used_at)
    SELECT id, user_id, node_id, name, kind, secret_sha256, created_at, expires_at, revoked_at, last_used_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE new_tokens RENAME TO tokens;

CREATE TABLE new_nodes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL CHECK (state IN ('online', 'offline')),
    embedded       INTEGER NOT NULL DEFAULT 0,
    max_tasks      INTEGER NOT NULL DEFAULT 2,
    version        TEXT NOT NULL DEFAULT '',
    last_heartbeat INTEGER,
    created_at     INTEGER NOT NULL,
    source_roots   TEXT NOT NULL DEFAULT '[]',
    restore_roots  TEXT NOT NULL DEFAULT '[]',
    allow_block_devices INTEGER NOT NULL DEFAULT 0,
    data_dir       TEXT NOT NULL DEFAULT ''
);
INSERT INTO new_nodes (id, name, state, embedded, max_tasks, version, last_heartbeat, created_at, source_roots, restore_roots, allow_block_devices, data_dir)
    SELECT id, name, state, embedded, max_tasks, version, last_heartbeat, created_at, source_roots, restore_roots, allow_block_devices, data_dir FROM nodes;
DROP TABLE nodes;
ALTER TABLE new_nodes RENAME TO nodes;

CREATE TABLE new_datastores (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    path        TEXT NOT NULL,
    bytes_used  INTEGER NOT NULL DEFAULT 0,
    bytes_logical INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    gc_schedule TEXT NOT NULL DEFAULT 'daily',
    verify_schedule TEXT NOT NULL DEFAULT 'weekly',
    verify_max_age_days INTEGER NOT NULL DEFAULT 30,
    UNIQUE (node_id, path)
);
INSERT INTO new_datastores (id, name, node_id, path, bytes_used, bytes_logical, created_at, gc_schedule, verify_schedule, verify_max_age_days)
    SELECT id, name, node_id, path, bytes_used, bytes_logical, created_at, gc_schedule, verify_schedule, verify_max_age_days FROM datastores;
DROP TABLE datastores;
ALTER TABLE new_datastores RENAME TO datastores;

CREATE TABLE new_policies (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    schedule      TEXT NOT NULL,
    backup_window TEXT,
    retention     TEXT NOT NULL DEFAULT '{}',
    datastore_id  INTEGER NOT NULL REFERENCES datastores(id),
    priority      INTEGER NOT NULL DEFAULT 0,
    match_pattern TEXT,
    match_tags    TEXT NOT NULL DEFAULT '[]',
    rpo_seconds   INTEGER,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
INSERT INTO new_policies (id, name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, enabled, created_at)
    SELECT id, name, project_id, schedule, backup_window, retention, datastore_id, priority, match_pattern, match_tags, rpo_seconds, enabled, created_at FROM policies;
DROP TABLE policies;
ALTER TABLE new_policies RENAME TO policies;

CREATE TABLE new_sources (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('files', 'image')),
    path        TEXT NOT NULL,
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    tags        TEXT NOT NULL DEFAULT '[]',
    settings    TEXT NOT NULL DEFAULT '{}',
    policy_id   INTEGER REFERENCES policies(id) ON DELETE SET NULL,
    assigned_by TEXT NOT NULL DEFAULT 'none' CHECK (assigned_by IN ('none', 'explicit', 'rule')),
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
INSERT INTO new_sources (id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at)
    SELECT id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at FROM sources;
DROP TABLE sources;
ALTER TABLE new_sources RENAME TO sources;
CREATE INDEX sources_policy ON sources (policy_id);

CREATE TABLE new_tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    source_id    INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    policy_id    INTEGER REFERENCES policies(id) ON DELETE SET NULL,
    datastore_id INTEGER REFERENCES datastores(id),
    node_id      INTEGER REFERENCES nodes(id),
    params       TEXT NOT NULL DEFAULT '{}',
    priority     INTEGER NOT NULL DEFAULT 0,
    slot         INTEGER,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    not_before   INTEGER NOT NULL,
    lease_until  INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    bytes_done   INTEGER NOT NULL DEFAULT 0,
    bytes_total  INTEGER NOT NULL DEFAULT 0,
    result       TEXT,
    error        TEXT,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (policy_id, source_id, slot)
);
INSERT INTO new_tasks (id, kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, attempt, max_attempts, not_before, lease_until, cancel_requested, bytes_done, bytes_total, result, error, created_by, created_at, started_at, finished_at)
    SELECT id, kind, state, project_id, source_id, policy_id, datastore_id, node_id, params, priority, slot, attempt, max_attempts, not_before, lease_until, cancel_requested, bytes_done, bytes_total, result, error, created_by, created_at, started_at, finished_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE new_tasks RENAME TO tasks;
CREATE INDEX tasks_state ON tasks (state, priority DESC, not_before, id);
CREATE INDEX tasks_source ON tasks (source_id, id DESC);
CREATE INDEX tasks_state_id ON tasks (state, id);
CREATE INDEX tasks_project_id ON tasks (project_id, id);
CREATE INDEX tasks_datastore_kind ON tasks (datastore_id, kind, slot);

CREATE TABLE new_exports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    restore_point_id TEXT NOT NULL,
    datastore_id     INTEGER NOT NULL REFERENCES datastores(id),
    node_id          INTEGER NOT NULL REFERENCES nodes(id),
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    protocol         TEXT NOT NULL CHECK (protocol IN ('nbd', 'iscsi')),
    writable         INTEGER NOT NULL DEFAULT 0,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('starting', 'active', 'failed', 'stopped', 'expired')),
    address          TEXT,
    error            TEXT,
    on_stop          TEXT NOT NULL CHECK (on_stop IN ('discard', 'commit')),
    commit_task_id   INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    stopped_at       INTEGER,
    secret           TEXT NOT NULL DEFAULT ''
);
INSERT INTO new_exports (id, restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, address, error, on_stop, commit_task_id, created_by, created_at, expires_at, stopped_at, secret)
    SELECT id, restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, address, error, on_stop, commit_task_id, created_by, created_at, expires_at, stopped_at, secret FROM exports;
DROP TABLE exports;
ALTER TABLE new_exports RENAME TO exports;
CREATE INDEX exports_node ON exports (node_id, state);
CREATE INDEX exports_state ON exports (state, expires_at);

CREATE TABLE new_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    remote  TEXT NOT NULL DEFAULT '',
    result  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
INSERT INTO new_audit (id, time, actor, action, target, remote, result, detail)
    SELECT id, time, actor, action, target, remote, result, detail FROM audit;
DROP TABLE audit;
ALTER TABLE new_audit RENAME TO audit;
CREATE INDEX audit_time ON audit (time DESC);

-- Ids deleted before this migration are not reused either: each table's
-- sequence starts above the largest id it ever handed out, as far as the
-- catalog remembers it (its own rows, the columns that refer to it, and
-- the ids that successful changes wrote into the audit log).
CREATE TEMP VIEW audit_ids AS
    SELECT action, CAST(target AS INTEGER) AS id FROM audit
    WHERE result = 'ok' AND length(target) BETWEEN 1 AND 18
      AND target NOT GLOB '*[^0-9]*';
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence (name, seq)
SELECT 'projects', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM projects
    UNION ALL SELECT MAX(project_id) FROM role_bindings
    UNION ALL SELECT MAX(project_id) FROM policies
    UNION ALL SELECT MAX(project_id) FROM sources
    UNION ALL SELECT MAX(project_id) FROM tasks
    UNION ALL SELECT MAX(project_id) FROM restore_points
    UNION ALL SELECT MAX(project_id) FROM exports)
UNION ALL
SELECT 'users', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM users
    UNION ALL SELECT MAX(user_id) FROM role_bindings
    UNION ALL SELECT MAX(user_id) FROM tokens
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action = 'user.delete')
UNION ALL
SELECT 'role_bindings', COALESCE(MAX(id), 0) FROM role_bindings
UNION ALL
SELECT 'tokens', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM tokens
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action = 'token.revoke')
UNION ALL
SELECT 'nodes', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM nodes
    UNION ALL SELECT MAX(node_id) FROM tokens
    UNION ALL SELECT MAX(node_id) FROM datastores
    UNION ALL SELECT MAX(node_id) FROM sources
    UNION ALL SELECT MAX(node_id) FROM tasks
    UNION ALL SELECT MAX(node_id) FROM exports)
UNION ALL
SELECT 'datastores', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM datastores
    UNION ALL SELECT MAX(datastore_id) FROM policies
    UNION ALL SELECT MAX(datastore_id) FROM tasks
    UNION ALL SELECT MAX(datastore_id) FROM restore_points
    UNION ALL SELECT MAX(datastore_id) FROM exports)
UNION ALL
SELECT 'policies', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM policies
    UNION ALL SELECT MAX(policy_id) FROM sources
    UNION ALL SELECT MAX(policy_id) FROM tasks
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action = 'policy.delete')
UNION ALL
SELECT 'sources', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM sources
    UNION ALL SELECT MAX(source_id) FROM tasks
    UNION ALL SELECT MAX(source_id) FROM restore_points
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action IN ('source.delete', 'source.backup'))
UNION ALL
SELECT 'tasks', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM tasks
    UNION ALL SELECT MAX(task_id) FROM task_logs
    UNION ALL SELECT MAX(task_id) FROM restore_points
    UNION ALL SELECT MAX(commit_task_id) FROM exports
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action = 'task.cancel')
UNION ALL
SELECT 'exports', COALESCE(MAX(m), 0) FROM (
    SELECT MAX(id) AS m FROM exports
    UNION ALL SELECT MAX(id) FROM audit_ids WHERE action IN ('export.extend', 'export.stop', 'export.commit'))
UNION ALL
SELECT 'audit', COALESCE(MAX(id), 0) FROM audit;
DROP VIEW audit_ids;
"#,
    // 6: token lifetimes and scopes (issue 18).
    // Tokens: the token whose request minted this one (NULL for sign-in
    // sessions, node tokens and tokens minted by a session: those are
    // roots); revoking or expiring a token makes every descendant
    // unusable. Scope: `full` (the user's rights), `read-only` (GET only)
    // or `metrics` (GET /metrics only). Projects: a JSON array of project
    // ids the token is limited to, NULL for all of the user's projects.
    // Settings: admin-set key/value pairs (`token_max_lifetime_s`; absent
    // means the built-in default of 90 days).
    // Only ADD COLUMN, CREATE and an UPDATE of a column that exists since
    // migration 1, so that this migration holds after one that rebuilds
    // tables. The UPDATE gives API tokens that would have lived longer
    // than the new 90-day default (no expiry, or a later one) 90 days
    // from the upgrade.
    r#"
ALTER TABLE tokens ADD COLUMN parent_token_id INTEGER REFERENCES tokens(id) ON DELETE CASCADE;
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read-only', 'metrics'));
ALTER TABLE tokens ADD COLUMN projects TEXT;
CREATE INDEX tokens_parent ON tokens (parent_token_id);
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
UPDATE tokens SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) + 7776000
 WHERE kind = 'api' AND revoked_at IS NULL
   AND (expires_at IS NULL OR expires_at > CAST(strftime('%s', 'now') AS INTEGER) + 7776000);
"#,
    // 7: protected restore points and notes (issue 13). Retention (and
    // removing a source with its restore points) never removes a
    // protected one; the note is free text.
    r#"
ALTER TABLE restore_points ADD COLUMN protected INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1));
ALTER TABLE restore_points ADD COLUMN note TEXT;
"#,
    // 8: S3 access keys (issue 15). The secret is stored sealed
    // (AES-256-GCM under a key file of the server's data directory), never
    // in the clear; a revoked key stays, with revoked_at, for the audit
    // trail, and its access key id is never handed out again.
    r#"
CREATE TABLE s3_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_key_id TEXT NOT NULL UNIQUE,
    secret_sealed BLOB NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX s3_keys_user ON s3_keys (user_id);
"#,
    // 9: NFS exports (issue 15): `arca mount --nfs` serves a restore
    // point's files over NFSv3 to the address blocks of `allow`
    // (comma-joined, empty for NBD and iSCSI). The table is rebuilt for the
    // protocol's CHECK (every column, constraint and index is kept, in the
    // same order); its id sequence is carried over, so that ids of
    // exports deleted before stay unused.
    r#"
CREATE TEMP TABLE exports_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'exports';
CREATE TABLE new_exports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    restore_point_id TEXT NOT NULL,
    datastore_id     INTEGER NOT NULL REFERENCES datastores(id),
    node_id          INTEGER NOT NULL REFERENCES nodes(id),
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    protocol         TEXT NOT NULL CHECK (protocol IN ('nbd', 'iscsi', 'nfs')),
    writable         INTEGER NOT NULL DEFAULT 0,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('starting', 'active', 'failed', 'stopped', 'expired')),
    address          TEXT,
    error            TEXT,
    on_stop          TEXT NOT NULL CHECK (on_stop IN ('discard', 'commit')),
    commit_task_id   INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    stopped_at       INTEGER,
    secret           TEXT NOT NULL DEFAULT '',
    allow            TEXT NOT NULL DEFAULT ''
);
INSERT INTO new_exports (id, restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, address, error, on_stop, commit_task_id, created_by, created_at, expires_at, stopped_at, secret)
    SELECT id, restore_point_id, datastore_id, node_id, project_id, protocol, writable, name, state, address, error, on_stop, commit_task_id, created_by, created_at, expires_at, stopped_at, secret FROM exports;
DROP TABLE exports;
ALTER TABLE new_exports RENAME TO exports;
CREATE INDEX exports_node ON exports (node_id, state);
CREATE INDEX exports_state ON exports (state, expires_at);
DELETE FROM sqlite_sequence WHERE name = 'exports';
INSERT INTO sqlite_sequence (name, seq) SELECT 'exports', MAX(
    COALESCE((SELECT MAX(seq) FROM temp.exports_seq), 0),
    COALESCE((SELECT MAX(id) FROM exports), 0));
DROP TABLE temp.exports_seq;
"#,
    // 10: datastore use over time (issue 16, reports): a sample of a
    // datastore's bytes on disk and logical bytes whenever they change, at
    // most one per five minutes, thinned with age (catalog/src/reports.rs;
    // docs/control-plane.md, "Reports"). Every datastore starts with its
    // numbers of now. The tasks report reads tasks by when they ended.
    r#"
CREATE INDEX tasks_finished ON tasks (finished_at);
CREATE TABLE datastore_usage (
    datastore_id  INTEGER NOT NULL REFERENCES datastores(id) ON DELETE CASCADE,
    time          INTEGER NOT NULL,
    bytes_used    INTEGER NOT NULL,
    bytes_logical INTEGER NOT NULL,
    PRIMARY KEY (datastore_id, time)
) WITHOUT ROWID;
INSERT INTO datastore_usage (datastore_id, time, bytes_used, bytes_logical)
    SELECT id, CAST(strftime('%s', 'now') AS INTEGER), bytes_used, bytes_logical FROM datastores;
"#,
    // 11: libvirt hosts (issue 17, VM ingest): a hypervisor is reached over
    // SSH with a private key kept sealed (AES-256-GCM under the server's
    // credentials.key, never returned by the API) and a host key pinned on
    // first contact; its inventory sync lists its domains as sources of
    // kind 'libvirt' (settings: hypervisor_id, uuid, removed). The sources
    // table is rebuilt for the kind's CHECK, every column, constraint,
    // index and the id sequence kept.
    r#"
CREATE TABLE hypervisors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('libvirt')),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    address     TEXT NOT NULL,
    ssh_user    TEXT NOT NULL,
    ssh_key     BLOB NOT NULL,
    host_key    TEXT,
    synced_at   INTEGER,
    sync_error  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TEMP TABLE sources_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'sources';
CREATE TABLE new_sources (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('files', 'image', 'libvirt')),
    path        TEXT NOT NULL,
    node_id     INTEGER NOT NULL REFERENCES nodes(id),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    tags        TEXT NOT NULL DEFAULT '[]',
    settings    TEXT NOT NULL DEFAULT '{}',
    policy_id   INTEGER REFERENCES policies(id) ON DELETE SET NULL,
    assigned_by TEXT NOT NULL DEFAULT 'none' CHECK (assigned_by IN ('none', 'explicit', 'rule')),
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
INSERT INTO new_sources (id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at)
    SELECT id, name, kind, path, node_id, project_id, tags, settings, policy_id, assigned_by, created_at FROM sources;
DROP TABLE sources;
ALTER TABLE new_sources RENAME TO sources;
CREATE INDEX sources_policy ON sources (policy_id);
DELETE FROM sqlite_sequence WHERE name = 'sources';
INSERT INTO sqlite_sequence (name, seq) SELECT 'sources', MAX(
    COALESCE((SELECT MAX(seq) FROM temp.sources_seq), 0),
    COALESCE((SELECT MAX(id) FROM sources), 0));
DROP TABLE temp.sources_seq;
"#,
    // 12: a hypervisor is reached over SSH (the server's node connects)
    // or by an agent running on it (docs/vm-ingest.md, "Agent-fed
    // sources"): the agent syncs the inventory and runs the backups of its
    // sources, which no node leases. A source fed by an agent has
    // `"agent": true` in its settings.
    r#"
ALTER TABLE hypervisors ADD COLUMN access TEXT NOT NULL DEFAULT 'ssh' CHECK (access IN ('ssh', 'agent'));
"#,
];
