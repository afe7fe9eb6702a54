//! Bad input, table-driven, for every route family with an `{id}`
//! (sources, policies, tasks, restore points and their tree, exports,
//! nodes, users, tokens, datastores): an unknown id is a 404, a malformed
//! one a 400, an id of another project a 404 (as if it did not exist);
//! malformed PATCH bodies (not JSON, wrong types, unknown fields, huge
//! strings) are a 4xx (an empty change, `{}`, is not malformed: patch.rs). Every answer carries a message and none
//! is a 5xx ([`T::raw`] checks both on every call).

use arca_catalog::{
    Catalog, DatastoreId, ExportProtocol, NewExport, NewTask, NodeId, ProjectId, RestorePoint,
    Retention, Role, RoleBinding, SourceId, SourceKind,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

/// The ids of one project's objects.
pub(super) struct Ids {
    pub(super) source: i64,
    pub(super) policy: i64,
    pub(super) task: i64,
    pub(super) restore_point: String,
    pub(super) export: i64,
}

/// A source, policy, task, image restore point and export of `project`.
pub(super) fn populate(c: &Catalog, project: i64, rp_digit: char) -> Ids {
    let pid = ProjectId(project);
    let s = c
        .add_source(
            &format!("src{project}"),
            SourceKind::Image,
            "/srv/disk",
            NodeId(1),
            pid,
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let p = c
        .add_policy(
            &format!("pol{project}"),
            pid,
            "daily",
            None,
            &Retention::default(),
            DatastoreId(1),
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    let t = c
        .add_task(&NewTask {
            project_id: pid,
            source_id: Some(s.id),
            datastore_id: Some(DatastoreId(1)),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
    let rp = rp_digit.to_string().repeat(64);
    c.add_restore_point(&RestorePoint {
        id: rp.parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_id: Some(SourceId(s.id.get())),
        source_name: s.name.clone(),
        project_id: pid,
        kind: SourceKind::Image,
        time: 1000,
        ..Default::default()
    })
    .unwrap();
    let e = c
        .add_export(&NewExport {
            restore_point_id: rp.parse().unwrap(),
            datastore_id: DatastoreId(1),
            node_id: NodeId(1),
            project_id: pid,
            protocol: ExportProtocol::Nbd,
            writable: false,
            ttl_seconds: 3600,
            created_by: "test".into(),
            allow: Vec::new(),
        })
        .unwrap();
    Ids {
        source: s.id.get(),
        policy: p.id.get(),
        task: t.id.get(),
        restore_point: rp,
        export: e.id.get(),
    }
}

/// Every route with an `{id}`: method, path with `{id}`, a valid body.
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let none = None;
    vec![
        (Method::GET, "/api/v1/sources/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/sources/{id}",
            Some(json!({"tags": []})),
        ),
        (Method::DELETE, "/api/v1/sources/{id}", none.clone()),
        (Method::POST, "/api/v1/sources/{id}/backup", none.clone()),
        (Method::GET, "/api/v1/policies/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/policies/{id}",
            Some(json!({"priority": 1})),
        ),
        (Method::DELETE, "/api/v1/policies/{id}", none.clone()),
        (Method::POST, "/api/v1/policies/{id}/prune", none.clone()),
        (Method::GET, "/api/v1/tasks/{id}", none.clone()),
        (Method::GET, "/api/v1/tasks/{id}/logs", none.clone()),
        (Method::POST, "/api/v1/tasks/{id}/cancel", none.clone()),
        (Method::GET, "/api/v1/restore-points/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/restore-points/{id}",
            Some(json!({"protected": true})),
        ),
        (
            Method::GET,
            "/api/v1/restore-points/{id}/tree",
            none.clone(),
        ),
        (
            Method::GET,
            "/api/v1/restore-points/{id}/files",
            none.clone(),
        ),
        (
            Method::POST,
            "/api/v1/restore-points/{id}/restore",
            Some(json!({"target": "/tmp/r"})),
        ),
        (Method::GET, "/api/v1/exports/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/exports/{id}",
            Some(json!({"ttl": "1h"})),
        ),
        (Method::DELETE, "/api/v1/exports/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/nodes/{id}",
            Some(json!({"allow_block_devices": false})),
        ),
        (Method::DELETE, "/api/v1/nodes/{id}", none.clone()),
        (Method::GET, "/api/v1/users/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/users/{id}",
            Some(json!({"roles": []})),
        ),
        (Method::DELETE, "/api/v1/users/{id}", none.clone()),
        (
            Method::POST,
            "/api/v1/users/{id}/password",
            Some(json!({"new_password": "a-long-new-password"})),
        ),
        (
            Method::PATCH,
            "/api/v1/tokens/{id}",
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, "/api/v1/tokens/{id}", none.clone()),
        (Method::DELETE, "/api/v1/s3-keys/{id}", none.clone()),
        (
            Method::PATCH,
            "/api/v1/datastores/{id}",
            Some(json!({"verify_max_age_days": 5})),
        ),
        (Method::POST, "/api/v1/datastores/{id}/gc", Some(json!({}))),
        (
            Method::POST,
            "/api/v1/datastores/{id}/verify",
            Some(json!({})),
        ),
    ]
}

fn is_restore_point(path: &str) -> bool {
    path.starts_with("/api/v1/restore-points/")
}

/// Send and require a 4xx; its status and message.
async fn refused(
    t: &T,
    m: &Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (s, v) = t.call(m.clone(), path, Some(token), body).await;
    assert!(s.is_client_error(), "{m} {path}: {s} {v}");
    let msg = v["message"].as_str().unwrap_or_default().to_string();
    assert!(!msg.trim().is_empty(), "{m} {path}: {s} without a message");
    (s, msg)
}

/// Unknown ids are 404 and malformed ones 400, for an admin, on every
/// route with an `{id}`.
#[tokio::test]
async fn unknown_and_malformed_ids_are_404_and_400() {
    let t = setup();
    populate(&t.state.catalog, 1, 'a');
    let a = t.admin.clone();
    let unknown_rp = "f".repeat(64);
    for (m, tpl, body) in routes() {
        let unknown = if is_restore_point(tpl) {
            unknown_rp.as_str()
        } else {
            "999999"
        };
        let path = tpl.replace("{id}", unknown);
        let (s, msg) = refused(&t, &m, &path, &a, body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {path}: {msg}");
        let malformed: &[&str] = if is_restore_point(tpl) {
            &["zz", "not-hex"]
        } else {
            &["x", "1.5", "99999999999999999999999"]
        };
        for bad in malformed {
            let path = tpl.replace("{id}", bad);
            let (s, msg) = refused(&t, &m, &path, &a, body.clone()).await;
            assert!(
                s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
                "{m} {path}: {s} {msg}"
            );
        }
    }
}

/// For an operator of project 1, the objects of project 2 are not there:
/// 404 on every route of the project's families; the admin-only families
/// (nodes, users, datastores) are a 403 whatever the id; another user's
/// token is a 404.
#[tokio::test]
async fn another_project_s_ids_are_404() {
    let t = setup();
    let c = &t.state.catalog;
    populate(c, 1, 'a');
    let theirs = populate(c, 2, 'b');
    let opr = token_for(
        c,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (_, tokens) = t
        .call(Method::GET, "/api/v1/tokens", Some(&t.admin), None)
        .await;
    let admin_token = tokens[0]["id"].to_string();
    let admin_s3_key = c
        .add_s3_key(
            arca_catalog::UserId(1),
            "AKIAADMINKEY00000000",
            b"sealed",
            "",
        )
        .unwrap()
        .id
        .to_string();
    let (_, users) = t
        .call(Method::GET, "/api/v1/users", Some(&t.admin), None)
        .await;
    let admin_user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "admin")
        .unwrap()["id"]
        .to_string();
    let mut wrong = Vec::new();
    for (m, tpl, body) in routes() {
        let family = tpl.split('/').nth(3).unwrap();
        let (id, want) = match family {
            "sources" => (theirs.source.to_string(), StatusCode::NOT_FOUND),
            "policies" => (theirs.policy.to_string(), StatusCode::NOT_FOUND),
            "tasks" => (theirs.task.to_string(), StatusCode::NOT_FOUND),
            "restore-points" => (theirs.restore_point.clone(), StatusCode::NOT_FOUND),
            "exports" => (theirs.export.to_string(), StatusCode::NOT_FOUND),
            "tokens" => (admin_token.clone(), StatusCode::NOT_FOUND),
            "s3-keys" => (admin_s3_key.clone(), StatusCode::NOT_FOUND),
            "users" => (admin_user.clone(), StatusCode::FORBIDDEN),
            "nodes" | "datastores" => ("1".to_string(), StatusCode::FORBIDDEN),
            f => panic!("a family without a case: {f}"),
        };
        let path = tpl.replace("{id}", &id);
        let (s, msg) = refused(&t, &m, &path, &opr, body.clone()).await;
        if s != want {
            wrong.push(format!("{m} {path}: {s} {msg}, not {want}"));
        }
        // The same answer as for an id that exists nowhere.
        let nowhere = if is_restore_point(tpl) {
            "c".repeat(64)
        } else {
            "999999".to_string()
        };
        let (s2, msg2) = refused(&t, &m, &tpl.replace("{id}", &nowhere), &opr, body).await;
        if (s2, msg2.replace(&nowhere, &id)) != (s, msg.clone()) {
            wrong.push(format!(
                "{m} {tpl}: {s} {msg:?} for another project's {id}, {s2} {msg2:?} for {nowhere}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing of project 2 changed.
    let (_, s) = t
        .call(
            Method::GET,
            &format!("/api/v1/sources/{}", theirs.source),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s["name"], "src2");
}

/// Malformed PATCH bodies on every PATCH route: 4xx with a message.
#[tokio::test]
async fn malformed_patch_bodies_are_4xx() {
    let t = setup();
    let mine = populate(&t.state.catalog, 1, 'a');
    let a = t.admin.clone();
    let (_, tokens) = t.call(Method::GET, "/api/v1/tokens", Some(&a), None).await;
    let token_id = tokens[0]["id"].to_string();
    // Under the body limit (1 MiB), so that the field itself is judged.
    let huge = "x".repeat(256 << 10);
    // Route, a field of it and a value of the wrong type for that field,
    // and a change with a huge string where a string goes.
    let routes: Vec<(String, &str, Value, Value)> = vec![
        (
            format!("/api/v1/sources/{}", mine.source),
            "name",
            json!(5),
            json!({ "path": format!("/srv/{huge}") }),
        ),
        (
            format!("/api/v1/policies/{}", mine.policy),
            "priority",
            json!("high"),
            json!({ "schedule": huge }),
        ),
        (
            format!("/api/v1/restore-points/{}", mine.restore_point),
            "protected",
            json!("yes"),
            json!({ "note": huge }),
        ),
        (
            format!("/api/v1/exports/{}", mine.export),
            "ttl",
            json!(3600),
            json!({ "ttl": huge }),
        ),
        (
            "/api/v1/nodes/1".into(),
            "allow_block_devices",
            json!("no"),
            json!({ "source_roots": [format!("/{huge}")] }),
        ),
        (
            "/api/v1/users/1".into(),
            "roles",
            json!("admin"),
            json!({ "roles": [{ "role": huge }] }),
        ),
        (
            format!("/api/v1/tokens/{token_id}"),
            "name",
            json!(["a"]),
            json!({ "name": huge }),
        ),
        (
            "/api/v1/datastores/1".into(),
            "verify_max_age_days",
            json!("ten"),
            json!({ "gc_schedule": huge }),
        ),
        (
            "/api/v1/settings".into(),
            "token_max_lifetime_s",
            json!("long"),
            json!({ "token_max_lifetime_s": huge }),
        ),
    ];
    let mut wrong = Vec::new();
    let too_big = json!({ "name": "x".repeat(8 << 20) }).to_string();
    for (path, field, mistyped, long) in &routes {
        let cases = [
            ("not JSON", Some("{nope".to_string())),
            ("an array", Some("[]".to_string())),
            ("an array of values", Some(json!([mistyped]).to_string())),
            ("a string", Some("\"x\"".to_string())),
            ("null", Some("null".to_string())),
            ("no body", None),
            (
                "a wrong type",
                Some(json!({ *field: mistyped }).to_string()),
            ),
            (
                "an unknown field",
                Some(json!({"frobnicate": 1}).to_string()),
            ),
            ("a huge string", Some(long.to_string())),
            ("a body over the limit", Some(too_big.clone())),
            (
                "nested garbage",
                Some(json!({ *field: {"a": [[[]]]} }).to_string()),
            ),
        ];
        for (what, body) in cases {
            let (s, v) = t
                .raw(Method::PATCH, path, Some(&a), body, "application/json")
                .await;
            if !s.is_client_error() {
                wrong.push(format!("PATCH {path} with {what}: {s} {v}"));
            }
        }
        // JSON under another content type.
        let (s, v) = t
            .raw(
                Method::PATCH,
                path,
                Some(&a),
                Some(json!({ *field: mistyped }).to_string()),
                "text/plain",
            )
            .await;
        if !s.is_client_error() {
            wrong.push(format!("PATCH {path} as text/plain: {s} {v}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
