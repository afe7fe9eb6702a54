//! Changing sources and policies, protecting restore points, and what a
//! running task holds.

use super::*;

fn rp(c: char, d: &Datastore, s: &Source, time: i64) -> RestorePoint {
    RestorePoint {
        id: c.to_string().repeat(64).parse().unwrap(),
        datastore_id: d.id,
        source_id: Some(s.id),
        source_name: s.name.clone(),
        time,
        ..Default::default()
    }
}

#[test]
fn a_catalog_of_the_last_version_upgrades_with_unprotected_restore_points() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("catalog.db");
    // Migration 7 added protection.
    let before = 6;
    {
        let conn = rusqlite::Connection::open(&p).unwrap();
        for m in &schema::MIGRATIONS[..before] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", before as i64)
            .unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO nodes (id, name, embedded, max_tasks, state, version, created_at) VALUES (1, 'n', 1, 2, 'online', 'v', 0);
             INSERT INTO datastores (id, name, node_id, path, created_at) VALUES (1, 'd', 1, '/d', 0);
             INSERT INTO restore_points (id, datastore_id, source_name, project_id, kind, time, bytes_total, bytes_added, files, hostname, created_at)
             VALUES ('{}', 1, 'web', 1, 'files', 5, 0, 0, 0, 'h', 0);",
            "e".repeat(64)
        ))
        .unwrap();
    }
    let c = Catalog::open(&p).unwrap();
    let r = c.restore_point("eee", None).unwrap();
    assert_eq!((r.protected, r.note), (false, None));
    c.set_restore_point_protection(r.id, Some(true), Some("why"))
        .unwrap();
    let r = c.restore_point("eee", None).unwrap();
    assert_eq!((r.protected, r.note.as_deref()), (true, Some("why")));
}

#[test]
fn protection_is_listed_apart_and_notes_set_and_cleared() {
    let (c, _, d, s) = setup();
    let (a, b) = (rp('a', &d, &s, 1), rp('b', &d, &s, 2));
    c.add_restore_points(&[a.clone(), b.clone()]).unwrap();
    c.set_restore_point_protection(a.id, Some(true), None)
        .unwrap();
    assert_eq!(
        c.restore_points_of_source(s.id, d.id).unwrap(),
        vec![(a.id, true), (b.id, false)]
    );
    assert_eq!(c.restore_point_counts_of_source(s.id).unwrap(), (2, 1));
    // None leaves the note; "" clears it; protection stays as it was.
    c.set_restore_point_protection(a.id, None, Some("n"))
        .unwrap();
    c.set_restore_point_protection(a.id, None, None).unwrap();
    let got = c.restore_point(&a.id.to_string(), None).unwrap();
    assert_eq!((got.protected, got.note.as_deref()), (true, Some("n")));
    c.set_restore_point_protection(a.id, None, Some(""))
        .unwrap();
    assert_eq!(c.restore_point(&a.id.to_string(), None).unwrap().note, None);
    let missing: RestorePointId = "f".repeat(64).parse().unwrap();
    assert!(matches!(
        c.set_restore_point_protection(missing, Some(true), None),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn sources_and_policies_change_and_running_tasks_hold_them() {
    let (c, n, d, mut s) = setup();
    s.name = "web2".into();
    s.tags = vec!["blue".into()];
    let got = c.update_source(&s).unwrap();
    assert_eq!(
        (got.name.as_str(), got.tags.clone()),
        ("web2", s.tags.clone())
    );
    let other = c
        .add_source(
            "db",
            SourceKind::Files,
            "/srv",
            n.id,
            ProjectId(1),
            &[],
            &serde_json::json!({}),
            None,
        )
        .unwrap();
    let mut clash = other.clone();
    clash.name = "web2".into();
    assert!(matches!(c.update_source(&clash), Err(Error::Conflict(_))));

    let mut pol = c
        .add_policy(
            "gold",
            ProjectId(1),
            "daily",
            None,
            &Default::default(),
            d.id,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    pol.enabled = false;
    pol.priority = 9;
    pol.backup_window = Some("22:00-06:00".into());
    let got = c.update_policy(&pol).unwrap();
    assert_eq!(
        (got.enabled, got.priority, got.backup_window.as_deref()),
        (false, 9, Some("22:00-06:00"))
    );

    c.assign_policy(other.id, Some(pol.id), AssignedBy::Explicit)
        .unwrap();
    assert_eq!(
        c.running_task_using(Some(other.id), Some(pol.id)).unwrap(),
        None
    );
    let t = c
        .add_task(&NewTask {
            source_id: Some(other.id),
            datastore_id: Some(d.id),
            max_attempts: 1,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
    // Queued: nothing is held yet.
    assert_eq!(c.running_task_using(Some(other.id), None).unwrap(), None);
    c.lease_task(n.id, now(), 60).unwrap().unwrap();
    assert_eq!(
        c.running_task_using(Some(other.id), None).unwrap(),
        Some(t.id)
    );
    // The policy through the source it is assigned to.
    assert_eq!(
        c.running_task_using(None, Some(pol.id)).unwrap(),
        Some(t.id)
    );
    assert_eq!(c.running_task_using(Some(s.id), None).unwrap(), None);
}
