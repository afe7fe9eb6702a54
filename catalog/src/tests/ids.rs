//! Issue 18: ids are never reused (migration 5), names are unique per
//! project, restore-point lookups stay inside the caller's projects.

use super::*;
use rusqlite::types::Value;
use serde_json::json;

/// Every table whose rows can be deleted, and an insert of a fresh row
/// that nothing refers to (`{n}` makes it unique).
const DELETABLE: &[(&str, &str)] = &[
    ("projects", "INSERT INTO projects (name, created_at) VALUES ('p{n}', 0)"),
    (
        "users",
        "INSERT INTO users (name, password_hash, created_at) VALUES ('u{n}', 'h', 0)",
    ),
    (
        "role_bindings",
        "INSERT INTO role_bindings (user_id, role, project_id) VALUES (1, 'auditor', NULL)",
    ),
    (
        "tokens",
        "INSERT INTO tokens (name, kind, secret_sha256, created_at) VALUES ('t', 'api', randomblob(32), 0)",
    ),
    (
        "s3_keys",
        "INSERT INTO s3_keys (user_id, access_key_id, secret_sealed, created_at) VALUES (1, 'AKIA{n}', x'00', 0)",
    ),
    (
        "nodes",
        "INSERT INTO nodes (name, state, created_at) VALUES ('n{n}', 'offline', 0)",
    ),
    (
        "datastores",
        "INSERT INTO datastores (name, node_id, path, created_at) VALUES ('d{n}', 1, '/d{n}', 0)",
    ),
    (
        "policies",
        "INSERT INTO policies (name, project_id, schedule, datastore_id, created_at) VALUES ('p{n}', 1, 'daily', 1, 0)",
    ),
    (
        "sources",
        "INSERT INTO sources (name, kind, path, node_id, project_id, created_at) VALUES ('s{n}', 'files', '/', 1, 1, 0)",
    ),
    (
        "hypervisors",
        "INSERT INTO hypervisors (name, kind, project_id, node_id, address, ssh_user, ssh_key, created_at) VALUES ('h{n}', 'libvirt', 1, 1, 'kvm', 'root', x'00', 0)",
    ),
    (
        "tasks",
        "INSERT INTO tasks (kind, state, project_id, not_before, created_by, created_at) VALUES ('backup', 'queued', 1, 0, 't', 0)",
    ),
    (
        "exports",
        "INSERT INTO exports (restore_point_id, datastore_id, node_id, project_id, protocol, name, state, on_stop, created_by, created_at, expires_at) VALUES ('ab', 1, 1, 1, 'nbd', 'e{n}', 'active', 'discard', 't', 0, 0)",
    ),
    (
        "audit",
        "INSERT INTO audit (time, actor, action, result) VALUES (0, 'a', 'x', 'ok')",
    ),
];

#[test]
fn a_deleted_row_s_id_goes_to_no_new_row() {
    let (c, ..) = super::setup();
    c.add_user("first", "h", &[]).unwrap();
    let db = c.db();
    let mut n = 0;
    let mut insert = |table: &str, sql: &str| -> i64 {
        n += 1;
        db.execute(&sql.replace("{n}", &n.to_string()), [])
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        db.last_insert_rowid()
    };
    for (table, sql) in DELETABLE {
        let a = insert(table, sql);
        let b = insert(table, sql);
        assert!(b > a, "{table}");
        // The newest row goes: a plain rowid table would hand its id out again.
        db.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [b])
            .unwrap();
        let next = insert(table, sql);
        assert!(
            next > b,
            "{table}: {next} reuses a deleted id (newest was {b})"
        );
    }
    // Every table with an integer id is in the list and never reuses ids:
    // a table added later without AUTOINCREMENT fails here.
    let mut st = db
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%INTEGER PRIMARY KEY%'")
        .unwrap();
    let tables: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(tables.len() >= DELETABLE.len());
    for (name, sql) in tables {
        assert!(
            sql.contains("INTEGER PRIMARY KEY AUTOINCREMENT"),
            "{name} can reuse ids: {sql}"
        );
        assert!(
            DELETABLE.iter().any(|(t, _)| *t == name),
            "{name} is not tested here"
        );
    }
}

#[test]
fn deleted_sources_policies_and_users_leave_their_ids_behind() {
    let (c, n, d, web) = super::setup();
    let rp = |id: &str, source: &Source| RestorePoint {
        id: id.repeat(32).parse().unwrap(),
        datastore_id: d.id,
        source_id: Some(source.id),
        source_name: source.name.clone(),
        project_id: source.project_id,
        kind: SourceKind::Files,
        ..Default::default()
    };
    c.add_restore_point(&rp("ab", &web)).unwrap();
    c.delete_source(web.id).unwrap();
    let again = c
        .add_source(
            "web1",
            SourceKind::Files,
            "/srv",
            n.id,
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    assert!(again.id > web.id);
    // The old restore point is not the new source's history.
    assert!(c
        .restore_point_ids_of_source(again.id, d.id)
        .unwrap()
        .is_empty());
    let old = c.restore_point(&"ab".repeat(32), None).unwrap();
    assert_eq!((old.source_id, old.source_name.as_str()), (None, "web1"));

    let pol = |name: &str| {
        c.add_policy(
            name,
            ProjectId(1),
            "daily",
            None,
            &Retention::default(),
            d.id,
            0,
            None,
            &[],
            None,
        )
        .unwrap()
    };
    let p1 = pol("p1");
    let p2 = pol("p2");
    c.delete_policy(p2.id).unwrap();
    assert!(pol("p2").id > p2.id && p2.id > p1.id);

    let u = c.add_user("ann", "h", &[]).unwrap();
    c.delete_user(u.id).unwrap();
    assert!(c.add_user("ann", "h", &[]).unwrap().id > u.id);
}

#[test]
fn names_are_unique_per_project() {
    let (c, n, d, web) = super::setup();
    let p2 = c.add_project("b").unwrap();
    let src = |project| {
        c.add_source(
            "web1",
            SourceKind::Files,
            "/srv",
            n.id,
            project,
            &[],
            &json!({}),
            None,
        )
    };
    let other = src(p2.id).unwrap();
    assert_ne!(other.id, web.id);
    match src(ProjectId(1)) {
        Err(Error::Conflict(m)) => assert_eq!(m, "source \"web1\" in project 1"),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        c.source_by_name(ProjectId(1), "web1").unwrap().unwrap().id,
        web.id
    );
    assert_eq!(
        c.source_by_name(p2.id, "web1").unwrap().unwrap().id,
        other.id
    );
    assert!(c.source_by_name(ProjectId(3), "web1").unwrap().is_none());
    assert_eq!(c.sources_named("web1").unwrap().len(), 2);

    let pol = |project| {
        c.add_policy(
            "gold",
            project,
            "daily",
            None,
            &Retention::default(),
            d.id,
            0,
            None,
            &[],
            None,
        )
    };
    let g1 = pol(ProjectId(1)).unwrap();
    let g2 = pol(p2.id).unwrap();
    assert!(matches!(pol(p2.id), Err(Error::Conflict(_))));
    assert_eq!(
        c.policy_by_name(ProjectId(1), "gold").unwrap().unwrap().id,
        g1.id
    );
    assert_eq!(c.policy_by_name(p2.id, "gold").unwrap().unwrap().id, g2.id);
}

#[test]
fn restore_point_prefixes_see_only_the_given_projects() {
    let (c, _, d, _) = super::setup();
    c.add_project("b").unwrap();
    for (id, project) in [("ab01", 1), ("ab02", 2), ("cd01", 1)] {
        c.add_restore_point(&RestorePoint {
            id: format!("{id}{}", "0".repeat(60)).parse().unwrap(),
            datastore_id: d.id,
            source_name: "s".into(),
            project_id: ProjectId(project),
            kind: SourceKind::Files,
            ..Default::default()
        })
        .unwrap();
    }
    // All projects: "ab" is ambiguous.
    assert!(matches!(
        c.restore_point("ab", None),
        Err(Error::Invalid(_))
    ));
    // Project 2 alone: "ab" is its one restore point; project 1's do not
    // exist, with the message of a prefix that matches nothing.
    let (p1, p2) = (ProjectId(1), ProjectId(2));
    assert_eq!(c.restore_point("ab", Some(&[p2])).unwrap().project_id, p2);
    for asked in ["cd", "cd01", "ab01", "ee"] {
        match c.restore_point(asked, Some(&[p2])) {
            Err(Error::NotFound(m)) => assert_eq!(m, format!("restore point {asked}")),
            r => panic!("{asked}: {r:?}"),
        }
    }
    assert_eq!(
        c.restore_point("AB01", Some(&[p1, p2])).unwrap().project_id,
        p1
    );
    assert!(matches!(
        c.restore_point("ab", Some(&[])),
        Err(Error::NotFound(_))
    ));
}

/// The rows of `table`, columns `cols`, in id order.
fn rows(db: &Connection, table: &str, cols: &[String]) -> Vec<Vec<Value>> {
    let mut st = db
        .prepare(&format!(
            "SELECT {} FROM {table} ORDER BY 1, 2",
            cols.join(", ")
        ))
        .unwrap();
    let n = cols.len();
    st.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// (name, type, not null, default, pk) of every column.
fn columns(db: &Connection, table: &str) -> Vec<(String, String, bool, Option<String>, i64)> {
    let mut st = db.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    st.query_map([], |r| {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// Foreign keys: (column, table, column, on update, on delete), sorted.
type ForeignKey = (String, String, Option<String>, String, String);

fn foreign_keys(db: &Connection, table: &str) -> Vec<ForeignKey> {
    let mut st = db
        .prepare(&format!("PRAGMA foreign_key_list({table})"))
        .unwrap();
    let mut v: Vec<_> = st
        .query_map([], |r| {
            Ok((r.get(3)?, r.get(2)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    v.sort();
    v
}

/// Indexes: (name, or "unique" for constraints, unique?, columns), sorted.
fn indexes(db: &Connection, table: &str) -> Vec<(String, bool, Vec<String>)> {
    let list: Vec<(String, bool, String)> = {
        let mut st = db.prepare(&format!("PRAGMA index_list({table})")).unwrap();
        st.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let mut out: Vec<_> = list
        .into_iter()
        .map(|(name, unique, origin)| {
            let mut st = db.prepare(&format!("PRAGMA index_info({name})")).unwrap();
            let cols: Vec<String> = st
                .query_map([], |r| r.get(2))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            // Constraint indexes are named by SQLite, by position.
            let name = if origin == "c" { name } else { origin };
            (name, unique, cols)
        })
        .collect();
    out.sort();
    out
}

const TABLES: &[&str] = &[
    "projects",
    "users",
    "role_bindings",
    "tokens",
    "nodes",
    "datastores",
    "policies",
    "sources",
    "tasks",
    "task_logs",
    "restore_points",
    "exports",
    "audit",
];

/// `conn` at schema 4, as the runner before migration 5 left it.
fn schema_4(conn: Connection) -> Connection {
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for (i, m) in schema::MIGRATIONS[..4].iter().enumerate() {
        conn.execute_batch(m).unwrap();
        conn.pragma_update(None, "user_version", i as i64 + 1)
            .unwrap();
    }
    conn
}

#[test]
fn a_schema_4_catalog_upgrades_keeping_every_row_and_never_reuses_ids() {
    let conn = schema_4(Connection::open_in_memory().unwrap());
    conn.execute_batch(
        "
INSERT INTO projects (name, created_at) VALUES ('b', 5);
INSERT INTO users (name, password_hash, created_at) VALUES ('ann', 'h', 1), ('bob', 'h', 2);
INSERT INTO role_bindings (user_id, role, project_id) VALUES (1, 'admin', NULL), (2, 'operator', 2);
INSERT INTO nodes (name, state, created_at, source_roots) VALUES ('local', 'online', 0, '[\"/srv\"]');
INSERT INTO tokens (user_id, node_id, name, kind, secret_sha256, created_at) VALUES (1, NULL, 't', 'api', x'01', 0), (NULL, 1, 'n', 'node', x'02', 0);
INSERT INTO datastores (name, node_id, path, created_at, gc_schedule) VALUES ('default', 1, '/ds', 0, 'weekly');
INSERT INTO policies (name, project_id, schedule, datastore_id, created_at) VALUES ('gold', 2, 'daily', 1, 0);
INSERT INTO sources (name, kind, path, node_id, project_id, policy_id, assigned_by, created_at) VALUES ('web', 'files', '/srv/a', 1, 2, 1, 'explicit', 0);
INSERT INTO sources (name, kind, path, node_id, project_id, created_at) VALUES ('db', 'files', '/srv/b', 1, 2, 0);
INSERT INTO sources (name, kind, path, node_id, project_id, created_at) VALUES ('gone', 'image', '/srv/c', 1, 1, 0);
INSERT INTO tasks (kind, state, project_id, source_id, policy_id, datastore_id, node_id, slot, not_before, created_by, created_at)
    VALUES ('backup', 'succeeded', 2, 1, 1, 1, 1, 100, 0, 'policy gold', 0),
           ('backup', 'succeeded', 1, 3, NULL, 1, 1, NULL, 0, 'ann', 0);
INSERT INTO task_logs (task_id, seq, time, level, message) VALUES (1, 1, 0, 'info', 'hello'), (2, 1, 0, 'info', 'gone');
INSERT INTO restore_points (id, datastore_id, source_id, source_name, project_id, kind, time, task_id, created_at, state)
    VALUES ('aa', 1, 1, 'web', 2, 'files', 10, 1, 0, 'ok'), ('bb', 1, 3, 'gone', 1, 'image', 20, 2, 0, 'damaged');
INSERT INTO exports (restore_point_id, datastore_id, node_id, project_id, protocol, name, state, on_stop, commit_task_id, created_by, created_at, expires_at, secret)
    VALUES ('bb', 1, 1, 1, 'nbd', 'export-1', 'stopped', 'commit', 2, 'ann', 0, 0, 's3cret');
INSERT INTO audit (time, actor, action, target, result) VALUES (0, 'ann', 'source.delete', '3', 'ok'), (0, 'ann', 'source.delete', '99', 'failed');
-- The newest source goes, as the API deletes it.
DELETE FROM sources WHERE id = 3;
",
    )
    .unwrap();
    // What the upgrade must keep: every column of schema 4, every row,
    // every foreign key and index.
    let mut before = Vec::new();
    for t in TABLES {
        let cols: Vec<String> = columns(&conn, t).into_iter().map(|c| c.0).collect();
        before.push((
            *t,
            columns(&conn, t),
            rows(&conn, t, &cols),
            foreign_keys(&conn, t),
            indexes(&conn, t),
        ));
    }
    let c = Catalog::setup(conn, "schema-4", None).unwrap();
    assert_eq!(c.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    {
        let db = c.db();
        let fk: i64 = db
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1, "foreign keys are on again");
        let broken: i64 = db
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
        for (t, cols, data, fks, idx) in &before {
            let now = columns(&db, t);
            // Later migrations may add columns at the end.
            assert_eq!(&now[..cols.len()], &cols[..], "{t}: columns");
            let names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
            let mut got = rows(&db, t, &names);
            let mut data = data.clone();
            if *t == "tokens" {
                // Migration 6 gives API tokens without an end one (90
                // days from the upgrade); compare the rest.
                let exp = names.iter().position(|n| n == "expires_at").unwrap();
                for r in got.iter_mut().chain(data.iter_mut()) {
                    r[exp] = Value::Null;
                }
            }
            assert_eq!(got, data, "{t}: rows");
            // Later migrations may add foreign keys and indexes.
            let now_fks = foreign_keys(&db, t);
            assert!(
                fks.iter().all(|f| now_fks.contains(f)),
                "{t}: foreign keys {now_fks:?} lost some of {fks:?}"
            );
            let mut want = idx.clone();
            if matches!(*t, "sources" | "policies") {
                // The one change: names are unique per project.
                for i in &mut want {
                    if i.2 == ["name"] {
                        i.2 = vec!["project_id".into(), "name".into()];
                    }
                }
                want.sort();
            }
            let now_idx = indexes(&db, t);
            assert!(
                want.iter().all(|i| now_idx.contains(i)),
                "{t}: indexes {now_idx:?} lost some of {want:?}"
            );
        }
    }
    // The deleted source's id 3 is known only to the audit log: it is
    // not handed out again, and the old restore point stays nobody's.
    let s = c
        .add_source(
            "gone",
            SourceKind::Image,
            "/srv/c",
            NodeId(1),
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    assert_eq!(s.id, SourceId(4));
    assert!(c
        .restore_point_ids_of_source(s.id, DatastoreId(1))
        .unwrap()
        .is_empty());
    let web = |project| {
        c.add_source(
            "web",
            SourceKind::Files,
            "/srv/d",
            NodeId(1),
            ProjectId(project),
            &[],
            &json!({}),
            None,
        )
    };
    // Names per project; ids of the other tables continue after theirs.
    assert_eq!(web(1).unwrap().project_id, ProjectId(1));
    assert!(matches!(web(2), Err(Error::Conflict(_))));
    assert_eq!(c.add_project("c").unwrap().id, ProjectId(3));
    let t = c
        .add_task(&NewTask {
            project_id: ProjectId(1),
            created_by: "t".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
    assert_eq!(t.id, TaskId(3));
    // Deleting still runs the ON DELETE actions.
    c.delete_policy(PolicyId(1)).unwrap();
    assert_eq!(c.source(SourceId(1)).unwrap().policy_id, None);
    assert_eq!(c.task(TaskId(1)).unwrap().policy_id, None);
}

/// Migration 9 rebuilds `exports` (NFS): its rows stay, and an export id
/// deleted before the upgrade is not handed out again.
#[test]
fn the_nfs_migration_keeps_the_exports_id_sequence() {
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    for (i, m) in schema::MIGRATIONS[..8].iter().enumerate() {
        conn.execute_batch(m).unwrap();
        conn.pragma_update(None, "user_version", i as i64 + 1)
            .unwrap();
    }
    conn.execute_batch(
        "
INSERT INTO nodes (name, state, created_at) VALUES ('local', 'online', 0);
INSERT INTO datastores (name, node_id, path, created_at) VALUES ('default', 1, '/ds', 0);
INSERT INTO exports (restore_point_id, datastore_id, node_id, project_id, protocol, name, state, on_stop, created_by, created_at, expires_at, secret)
    VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 1, 1, 'iscsi', 'export-1', 'active', 'discard', 'ann', 0, 9, 's1'),
           ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 1, 1, 1, 'nbd', 'export-2', 'stopped', 'discard', 'ann', 0, 9, 's2');
DELETE FROM exports WHERE id = 2;
",
    )
    .unwrap();
    let c = Catalog::setup(conn, "schema-8", None).unwrap();
    let old = c.export(ExportId(1)).unwrap();
    assert_eq!(
        (old.protocol, old.secret.as_str(), old.allow.len()),
        (ExportProtocol::Iscsi, "s1", 0)
    );
    let e = c
        .add_export(&NewExport {
            restore_point_id: "ab".repeat(32).parse().unwrap(),
            datastore_id: DatastoreId(1),
            node_id: NodeId(1),
            project_id: ProjectId(1),
            protocol: ExportProtocol::Nfs,
            writable: false,
            ttl_seconds: 60,
            created_by: "t".into(),
            allow: vec!["10.0.0.0/8".into()],
        })
        .unwrap();
    assert_eq!((e.id, e.allow), (ExportId(3), vec!["10.0.0.0/8".into()]));
}

#[test]
fn a_migration_that_breaks_a_reference_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let conn = schema_4(Connection::open(&path).unwrap());
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    conn.execute(
        "INSERT INTO sources (name, kind, path, node_id, project_id, created_at) VALUES ('x', 'files', '/', 42, 1, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    match Catalog::open(&path) {
        Err(Error::Invalid(m)) => assert!(m.contains("sources row 1 -> nodes"), "{m}"),
        Ok(_) => panic!("migrated a catalog with a broken reference"),
        Err(e) => panic!("{e}"),
    }
    // Nothing of migration 5 stayed.
    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 4);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'sources'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
}
