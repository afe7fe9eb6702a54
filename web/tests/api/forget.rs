//! Deleting restore points: `DELETE /api/v1/restore-points/{id}` queues a
//! forget task (202), and `DELETE /api/v1/sources/{id}?restore_points=remove`
//! queues one per datastore and removes the source; what may not go now
//! (protected, exported, being removed already) is a 409, and nothing is
//! queued or removed then.

use arca_catalog::{
    DatastoreId, ExportProtocol, NewExport, NodeId, ProjectId, RestorePoint, Role, RoleBinding,
    SourceId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

fn rp_id(c: char) -> String {
    c.to_string().repeat(64)
}

fn add_rp(t: &T, id: &str, source: Option<SourceId>, project: ProjectId, ds: DatastoreId) {
    t.state
        .catalog
        .add_restore_point(&RestorePoint {
            id: id.parse().unwrap(),
            datastore_id: ds,
            source_id: source,
            source_name: "web".into(),
            project_id: project,
            time: 5,
            ..Default::default()
        })
        .unwrap();
}

fn user(t: &T, name: &str, role: Role) -> String {
    token_for(
        &t.state.catalog,
        name,
        &[RoleBinding {
            role,
            project_id: Some(ProjectId(1)),
        }],
    )
}

/// `(status, message)` of a DELETE expected to fail.
async fn refused(t: &T, path: &str, token: &str) -> (u16, String) {
    let (s, v) = t.call(Method::DELETE, path, Some(token), None).await;
    assert!(s.is_client_error(), "{path}: {s} {v}");
    (
        s.as_u16(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

async fn forget_tasks(t: &T) -> Vec<Value> {
    let (_, v) = t
        .call(Method::GET, "/api/v1/tasks", Some(&t.admin), None)
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "forget")
        .cloned()
        .collect()
}

#[tokio::test]
async fn deleting_a_restore_point_queues_a_forget_task() {
    let t = setup();
    let a = t.admin.clone();
    add_rp(&t, &rp_id('a'), None, ProjectId(1), DatastoreId(1));
    add_rp(&t, &rp_id('c'), None, ProjectId(2), DatastoreId(1));
    let opr = user(&t, "opr", Role::Operator);
    // An operator of the project, by a prefix as every route takes.
    let (s, task) = t
        .call(
            Method::DELETE,
            "/api/v1/restore-points/aaaa",
            Some(&opr),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["kind"], "forget");
    assert_eq!(task["state"], "queued");
    assert_eq!(task["datastore_id"], 1);
    assert_eq!(task["node_id"], 1);
    assert_eq!(task["created_by"], "opr");
    assert_eq!(task["params"], json!({"restore_points": [rp_id('a')]}));
    // Listed until the task has run.
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/restore-points/{}", rp_id('a')),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Not twice.
    let (s, m) = refused(&t, &format!("/api/v1/restore-points/{}", rp_id('a')), &a).await;
    assert_eq!(s, 409, "{m}");
    assert!(
        m.contains(&format!("being removed already: task {}", task["id"])),
        "{m}"
    );
    // Audited.
    let (_, audit) = t.call(Method::GET, "/api/v1/audit", Some(&a), None).await;
    let entries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "restore-point.delete")
        .collect();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(
        (
            &entries[1]["actor"],
            &entries[1]["result"],
            &entries[1]["target"]
        ),
        (&json!("opr"), &json!("ok"), &json!("aaaa"))
    );
    assert_eq!(entries[0]["result"], "failed");

    // Bad and unknown ids; another project's id is as unknown to an
    // operator of project 1.
    let (s, _) = refused(&t, "/api/v1/restore-points/xyz", &a).await;
    assert_eq!(s, 400);
    let (s, _) = refused(&t, &format!("/api/v1/restore-points/{}", rp_id('d')), &a).await;
    assert_eq!(s, 404);
    let theirs = format!("/api/v1/restore-points/{}", rp_id('c'));
    let (s, _) = refused(&t, &theirs, &opr).await;
    assert_eq!(s, 404);
    // Restore-only users and auditors may not delete.
    add_rp(&t, &rp_id('b'), None, ProjectId(1), DatastoreId(1));
    let mine = format!("/api/v1/restore-points/{}", rp_id('b'));
    for role in [Role::RestoreOnly, Role::Auditor] {
        let tok = user(&t, &format!("{role}"), role);
        let (s, m) = refused(&t, &mine, &tok).await;
        assert_eq!(s, 403, "{role}: {m}");
    }
    assert_eq!(forget_tasks(&t).await.len(), 1);
}

#[tokio::test]
async fn protected_and_exported_restore_points_stay() {
    let t = setup();
    let a = t.admin.clone();
    let c = &t.state.catalog;
    add_rp(&t, &rp_id('a'), None, ProjectId(1), DatastoreId(1));
    add_rp(&t, &rp_id('b'), None, ProjectId(1), DatastoreId(1));
    c.set_restore_point_protection(rp_id('a').parse().unwrap(), Some(true), None)
        .unwrap();
    let (s, m) = refused(&t, &format!("/api/v1/restore-points/{}", rp_id('a')), &a).await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains("is protected: unprotect it first"), "{m}");
    let e = c
        .add_export(&NewExport {
            restore_point_id: rp_id('b').parse().unwrap(),
            datastore_id: DatastoreId(1),
            node_id: NodeId(1),
            project_id: ProjectId(1),
            protocol: ExportProtocol::Nbd,
            writable: false,
            ttl_seconds: 3600,
            created_by: "t".into(),
            allow: Vec::new(),
        })
        .unwrap();
    let (s, m) = refused(&t, &format!("/api/v1/restore-points/{}", rp_id('b')), &a).await;
    assert_eq!(s, 409, "{m}");
    assert!(
        m.contains(&format!("served by export {}: stop the export first", e.id)),
        "{m}"
    );
    assert!(forget_tasks(&t).await.is_empty());
}

#[tokio::test]
async fn a_source_is_removed_with_its_restore_points() {
    let t = setup();
    let a = t.admin.clone();
    let c = &t.state.catalog;
    let d2 = c
        .add_datastore("second", NodeId(1), "/nonexistent/ds2")
        .unwrap();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&a),
            Some(json!({"name": "web", "kind": "files", "path": "/srv/a"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let src = SourceId(v["id"].as_i64().unwrap());
    add_rp(&t, &rp_id('a'), Some(src), ProjectId(1), DatastoreId(1));
    add_rp(&t, &rp_id('b'), Some(src), ProjectId(1), DatastoreId(1));
    add_rp(&t, &rp_id('e'), Some(src), ProjectId(1), d2.id);
    let path = format!("/api/v1/sources/{src}?restore_points=remove");
    // One protected: nothing happens, and the message says how many.
    c.set_restore_point_protection(rp_id('b').parse().unwrap(), Some(true), None)
        .unwrap();
    let (s, m) = refused(&t, &path, &a).await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains("1 protected restore point(s) of 3"), "{m}");
    assert!(c.source(src).is_ok());
    assert!(forget_tasks(&t).await.is_empty());
    // Unprotected: one forget task per datastore, and the source is gone.
    c.set_restore_point_protection(rp_id('b').parse().unwrap(), Some(false), None)
        .unwrap();
    let (s, tasks) = t.call(Method::DELETE, &path, Some(&a), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{tasks}");
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(
        (&tasks[0]["datastore_id"], &tasks[0]["params"]),
        (
            &json!(1),
            &json!({"restore_points": [rp_id('a'), rp_id('b')]})
        )
    );
    assert_eq!(
        (&tasks[1]["datastore_id"], &tasks[1]["params"]),
        (&json!(d2.id), &json!({"restore_points": [rp_id('e')]}))
    );
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/sources/{src}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(forget_tasks(&t).await.len(), 2);
}
