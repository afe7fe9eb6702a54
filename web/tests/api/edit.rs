//! Changing and removing sources and policies, and protecting restore
//! points: happy paths, malformed bodies, unknown ids, other projects'
//! ids, and what a running task holds (409).

use arca_catalog::{
    DatastoreId, NewTask, NodeId, PolicyId, ProjectId, RestorePoint, Role, RoleBinding, SourceId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

fn rp_id(c: char) -> String {
    c.to_string().repeat(64)
}

/// A restore point of `source` in project `project`.
fn add_rp(t: &T, id: &str, source: Option<SourceId>, project: ProjectId) {
    t.state
        .catalog
        .add_restore_point(&RestorePoint {
            id: id.parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_id: source,
            source_name: "web".into(),
            project_id: project,
            time: 5,
            ..Default::default()
        })
        .unwrap();
}

/// A running backup of `source` (and `policy`): queued, then leased.
fn running_task(t: &T, source: SourceId, policy: Option<PolicyId>) -> i64 {
    let c = &t.state.catalog;
    c.add_task(&NewTask {
        source_id: Some(source),
        policy_id: policy,
        datastore_id: Some(DatastoreId(1)),
        max_attempts: 1,
        created_by: "test".into(),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let leased = c
        .lease_task(NodeId(1), arca_catalog::now(), 60)
        .unwrap()
        .unwrap();
    leased.id.0
}

async fn add_source(t: &T, name: &str, project: i64) -> i64 {
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&t.admin),
            Some(json!({"name": name, "kind": "files", "path": "/srv/a", "project": project})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn add_policy(t: &T, name: &str, project: i64) -> i64 {
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/policies",
            Some(&t.admin),
            Some(json!({"name": name, "schedule": "daily", "project": project})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

/// `(status, message)` of a call expected to fail.
async fn fails(t: &T, m: Method, path: &str, token: &str, body: Option<Value>) -> (u16, String) {
    let (s, v) = t.call(m, path, Some(token), body).await;
    assert!(s.is_client_error(), "{path}: {s} {v}");
    (
        s.as_u16(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_source_is_changed_and_bad_changes_are_4xx() {
    let t = setup();
    let a = t.admin.clone();
    let id = add_source(&t, "web", 1).await;
    add_policy(&t, "gold", 1).await;
    let path = format!("/api/v1/sources/{id}");
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"name": "www", "path": "/x/www", "tags": ["blue"], "policy": "gold"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["name"], &v["path"], &v["tags"], &v["assigned_by"]),
        (
            &json!("www"),
            &json!("/x/www"),
            &json!(["blue"]),
            &json!("explicit")
        )
    );
    assert!(v["policy_id"].is_i64());
    // Stored, and only what was given changed.
    let (_, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"policy": null})),
        )
        .await;
    assert_eq!((&v["name"], &v["policy_id"]), (&json!("www"), &Value::Null));
    let (_, got) = t.call(Method::GET, &path, Some(&a), None).await;
    assert_eq!(got["path"], "/x/www");

    // Malformed or invalid bodies.
    let raw = t
        .raw(
            Method::PATCH,
            &path,
            Some(&a),
            Some("{nope".into()),
            "application/json",
        )
        .await;
    assert_eq!(raw.0, StatusCode::BAD_REQUEST, "{}", raw.1);
    for (body, want, says) in [
        (json!({"kind": "image"}), 422, "unknown field"),
        (json!({"tags": "blue"}), 422, ""),
        (json!({"name": "../x"}), 422, "name"),
        (json!({"path": "relative"}), 422, "absolute"),
        (json!({"path": "/etc"}), 422, "/etc"),
        (json!({"settings": [1]}), 422, "object"),
        (json!({"policy": "ghost"}), 422, "unknown policy"),
    ] {
        let (s, m) = fails(&t, Method::PATCH, &path, &a, Some(body.clone())).await;
        assert_eq!(s, want, "{body}: {m}");
        assert!(m.contains(says), "{body}: {m}");
    }
    // A name taken in the project: 409.
    add_source(&t, "db", 1).await;
    let (s, m) = fails(&t, Method::PATCH, &path, &a, Some(json!({"name": "db"}))).await;
    assert_eq!(s, 409, "{m}");
    // Unknown and malformed ids.
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/sources/999",
        &a,
        Some(json!({"tags": []})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/sources/x",
        &a,
        Some(json!({"tags": []})),
    )
    .await;
    assert_eq!(s, 400);
    // Another project's source is not there for an operator of project 1,
    // and a policy of another project is not a name the source knows.
    let other = add_source(&t, "theirs", 2).await;
    add_policy(&t, "silver", 2).await;
    let opr = token_for(
        &t.state.catalog,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, m) = fails(
        &t,
        Method::PATCH,
        &format!("/api/v1/sources/{other}"),
        &opr,
        Some(json!({"tags": []})),
    )
    .await;
    assert_eq!(
        (s, m.as_str()),
        (404, format!("source {other} not found").as_str())
    );
    let (s, m) = fails(
        &t,
        Method::PATCH,
        &path,
        &opr,
        Some(json!({"policy": "silver"})),
    )
    .await;
    assert_eq!(s, 422, "{m}");
    // Audited.
    let audit = t.state.catalog.audit_log(100, 0).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "source.update" && e.target == id.to_string()));
}

#[tokio::test]
async fn a_policy_is_changed_and_bad_changes_are_4xx() {
    let t = setup();
    let a = t.admin.clone();
    let id = add_policy(&t, "gold", 1).await;
    let path = format!("/api/v1/policies/{id}");
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({
                "schedule": "every 6h", "window": "22:00-06:00", "retention": {"keep_last": 3},
                "priority": 7, "match_pattern": "web*", "match_tags": ["blue"], "rpo_s": 3600,
                "enabled": false
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["retention"]["keep_last"], 3);
    assert_eq!(
        (
            &v["backup_window"],
            &v["priority"],
            &v["enabled"],
            &v["rpo_seconds"]
        ),
        (
            &json!("22:00-06:00"),
            &json!(7),
            &json!(false),
            &json!(3600)
        )
    );
    // null clears an optional field; absent ones stay.
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"window": null, "rpo_s": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["backup_window"], &v["rpo_seconds"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(
        (&v["priority"], &v["match_pattern"]),
        (&json!(7), &json!("web*"))
    );

    // (`{}` changes nothing and answers 200: patch.rs.)
    for body in [
        json!({"schedule": "dialy"}),
        json!({"window": "25:00-26:00"}),
        json!({"priority": 5000}),
        json!({"rpo_s": 0}),
        json!({"datastore": "ghost"}),
        json!({"retention": {"keep_forever": 1}}),
        json!({"enabled": "yes"}),
        json!({"name": "renamed"}),
    ] {
        let (s, m) = fails(&t, Method::PATCH, &path, &a, Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {m}");
    }
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/policies/999",
        &a,
        Some(json!({"priority": 1})),
    )
    .await;
    assert_eq!(s, 404);
    let other = add_policy(&t, "silver", 2).await;
    let opr = token_for(
        &t.state.catalog,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, _) = fails(
        &t,
        Method::PATCH,
        &format!("/api/v1/policies/{other}"),
        &opr,
        Some(json!({"priority": 1})),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn removing_what_a_running_task_uses_is_a_409_and_restore_points_stay() {
    let t = setup();
    let a = t.admin.clone();
    let src = add_source(&t, "web", 1).await;
    let pol = add_policy(&t, "gold", 1).await;
    let task = running_task(&t, SourceId(src), Some(PolicyId(pol)));
    let (s, m) = fails(
        &t,
        Method::DELETE,
        &format!("/api/v1/sources/{src}"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains(&format!("task {task}")), "{m}");
    let (s, m) = fails(
        &t,
        Method::DELETE,
        &format!("/api/v1/policies/{pol}"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains(&format!("task {task}")), "{m}");
    let state = t
        .state
        .catalog
        .finish_task(
            arca_catalog::TaskId(task),
            Err("stopped".into()),
            true,
            None,
        )
        .unwrap();
    assert_ne!(state, arca_catalog::TaskState::Running);

    // The task is over: the source goes, its restore points stay. A
    // protected one is not removed with it (web/tests/api/forget.rs has
    // the rest of restore_points=remove).
    add_rp(&t, &rp_id('a'), Some(SourceId(src)), ProjectId(1));
    t.state
        .catalog
        .set_restore_point_protection(rp_id('a').parse().unwrap(), Some(true), None)
        .unwrap();
    let (s, m) = fails(
        &t,
        Method::DELETE,
        &format!("/api/v1/sources/{src}?restore_points=remove"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains("1 protected restore point(s) of 1"), "{m}");
    let (s, _) = fails(
        &t,
        Method::DELETE,
        &format!("/api/v1/sources/{src}?restore_points=maybe"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/sources/{src}?restore_points=keep"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, rp) = t
        .call(
            Method::GET,
            &format!("/api/v1/restore-points/{}", rp_id('a')),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(
        (&rp["source_id"], &rp["source_name"]),
        (&Value::Null, &json!("web"))
    );
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/policies/{pol}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // A source without restore points may go with `remove`.
    let other = add_source(&t, "db", 1).await;
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/sources/{other}?restore_points=remove"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_restore_point_is_protected_with_a_note() {
    let t = setup();
    let a = t.admin.clone();
    let id = rp_id('b');
    add_rp(&t, &id, None, ProjectId(1));
    add_rp(&t, &rp_id('c'), None, ProjectId(2));
    // By a prefix, as every restore point route takes.
    let (s, v) = t
        .call(
            Method::PATCH,
            "/api/v1/restore-points/bbbb",
            Some(&a),
            Some(json!({"protected": true, "note": "before the migration"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["protected"], &v["note"]),
        (&json!(true), &json!("before the migration"))
    );
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/restore-points/{id}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(
        (&v["protected"], &v["note"]),
        (&json!(true), &json!("before the migration"))
    );
    // Unprotected: the note stays until changed.
    let (_, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/restore-points/{id}"),
            Some(&a),
            Some(json!({"protected": false})),
        )
        .await;
    assert_eq!(
        (&v["protected"], &v["note"]),
        (&json!(false), &json!("before the migration"))
    );
    let (_, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/restore-points/{id}"),
            Some(&a),
            Some(json!({"note": ""})),
        )
        .await;
    assert_eq!(v["note"], Value::Null);

    let path = format!("/api/v1/restore-points/{id}");
    for body in [
        json!({"protected": "yes"}),
        json!({"protected": true, "colour": 1}),
        json!({"note": "x".repeat(1025)}),
    ] {
        let (s, m) = fails(&t, Method::PATCH, &path, &a, Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {m}");
    }
    let raw = t
        .raw(
            Method::PATCH,
            &path,
            Some(&a),
            Some("[".into()),
            "application/json",
        )
        .await;
    assert_eq!(raw.0, StatusCode::BAD_REQUEST);
    let (s, _) = fails(
        &t,
        Method::PATCH,
        &format!("/api/v1/restore-points/{}", rp_id('d')),
        &a,
        Some(json!({"protected": true})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/restore-points/xyz",
        &a,
        Some(json!({"protected": true})),
    )
    .await;
    assert_eq!(s, 400);
    // Another project's: not there for an operator of project 1; an
    // auditor may not change it.
    let opr = token_for(
        &t.state.catalog,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let theirs = format!("/api/v1/restore-points/{}", rp_id('c'));
    let (s, _) = fails(
        &t,
        Method::PATCH,
        &theirs,
        &opr,
        Some(json!({"protected": true})),
    )
    .await;
    assert_eq!(s, 404);
    let aud = token_for(
        &t.state.catalog,
        "aud",
        &[RoleBinding {
            role: Role::Auditor,
            project_id: None,
        }],
    );
    let (s, _) = fails(
        &t,
        Method::PATCH,
        &theirs,
        &aud,
        Some(json!({"protected": true})),
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn a_node_is_removed_with_its_tokens_unless_something_uses_it() {
    let t = setup();
    let a = t.admin.clone();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/nodes",
            Some(&a),
            Some(json!({"name": "hv2"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["node"]["id"].as_i64().unwrap();
    let node_token = v["token"].as_str().unwrap().to_string();
    let path = format!("/api/v1/nodes/{id}");
    let token_of = |secret: &str| {
        t.state
            .catalog
            .token_by_secret(&arca_web::auth::secret_hash(secret))
            .unwrap()
    };
    assert!(token_of(&node_token).is_some());

    // The server's own node, a node with a source: 409 saying why.
    let (s, m) = fails(&t, Method::DELETE, "/api/v1/nodes/1", &a, None).await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains("own node"), "{m}");
    let src = t
        .state
        .catalog
        .add_source(
            "web",
            arca_catalog::SourceKind::Files,
            "/srv",
            NodeId(id),
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let (s, m) = fails(&t, Method::DELETE, &path, &a, None).await;
    assert_eq!(s, 409, "{m}");
    assert!(m.contains("1 source(s)"), "{m}");
    t.state.catalog.delete_source(src.id).unwrap();

    // Only admins of all projects; unknown and malformed ids.
    let opr = token_for(
        &t.state.catalog,
        "opr",
        &[RoleBinding {
            role: Role::Admin,
            project_id: Some(ProjectId(1)),
        }],
    );
    assert_eq!(fails(&t, Method::DELETE, &path, &opr, None).await.0, 403);
    assert_eq!(
        fails(&t, Method::DELETE, "/api/v1/nodes/99", &a, None)
            .await
            .0,
        404
    );
    assert_eq!(
        fails(&t, Method::DELETE, "/api/v1/nodes/x", &a, None)
            .await
            .0,
        400
    );

    let (s, v) = t.call(Method::DELETE, &path, Some(&a), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(token_of(&node_token).is_none());
    let (_, nodes) = t.call(Method::GET, "/api/v1/nodes", Some(&a), None).await;
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
}

#[tokio::test]
async fn an_admin_replaces_another_user_s_roles() {
    let t = setup();
    let a = t.admin.clone();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&a),
            Some(json!({"name": "ann", "password": "password123", "roles": [{"role": "auditor", "project": 1}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["user"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/users/{id}");
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"roles": [{"role": "operator", "project": 2}, {"role": "operator", "project": 2}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["roles"],
        json!([{"role": "operator", "project_id": 2}]),
        "{v}"
    );
    let (_, got) = t.call(Method::GET, &path, Some(&a), None).await;
    assert_eq!(got["roles"], v["roles"]);
    // An empty change answers the user unchanged.
    let (s, same) = t
        .call(Method::PATCH, &path, Some(&a), Some(json!({})))
        .await;
    assert_eq!((s, &same), (StatusCode::OK, &got));
    for (body, want) in [
        (json!({"disabled": "yes"}), 422),
        (json!({"roles": [{"role": "king"}]}), 422),
        (json!({"roles": [{"role": "admin", "project": 99}]}), 422),
        (json!({"name": "bob"}), 422),
    ] {
        let (s, m) = fails(&t, Method::PATCH, &path, &a, Some(body.clone())).await;
        assert_eq!(s, want, "{body}: {m}");
    }
    // Not one's own roles; unknown users; only admins of all projects.
    let (s, m) = fails(
        &t,
        Method::PATCH,
        "/api/v1/users/1",
        &a,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(s, 409, "{m}");
    let (s, m) = fails(
        &t,
        Method::PATCH,
        "/api/v1/users/1",
        &a,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(s, 409, "{m}");
    // Disabled, then enabled again: the roles stay (sessions: cli_json.rs).
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!((s, &v["disabled"]), (StatusCode::OK, &json!(true)), "{v}");
    assert_eq!(v["roles"], got["roles"], "roles unchanged");
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!((s, &v["disabled"]), (StatusCode::OK, &json!(false)), "{v}");
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/users/99",
        &a,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(s, 404);
    let adm1 = token_for(
        &t.state.catalog,
        "adm1",
        &[RoleBinding {
            role: Role::Admin,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, _) = fails(&t, Method::PATCH, &path, &adm1, Some(json!({"roles": []}))).await;
    assert_eq!(s, 403);
    let (s, v) = t
        .call(Method::PATCH, &path, Some(&a), Some(json!({"roles": []})))
        .await;
    assert_eq!((s, &v["roles"]), (StatusCode::OK, &json!([])));
}

#[tokio::test]
async fn a_token_is_renamed_by_its_owner_or_an_admin() {
    let t = setup();
    let a = t.admin.clone();
    let opr = token_for(
        &t.state.catalog,
        "opr",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&opr),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["info"]["id"].as_i64().unwrap();
    let scope = v["info"]["scope"].clone();
    let path = format!("/api/v1/tokens/{id}");
    let (s, v) = t
        .call(
            Method::PATCH,
            &path,
            Some(&opr),
            Some(json!({"name": "deploy"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((&v["name"], &v["scope"]), (&json!("deploy"), &scope));
    for body in [json!({"name": "../x"}), json!({"scope": "full"})] {
        let (s, m) = fails(&t, Method::PATCH, &path, &opr, Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {m}");
    }
    // Another user's token: only an admin of all projects; to others it
    // is not there.
    let other = token_for(&t.state.catalog, "bob", &[]);
    let (s, m) = fails(
        &t,
        Method::PATCH,
        &path,
        &other,
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!((s, m), (404, format!("token {id} not found")));
    let (s, v) = t
        .call(Method::PATCH, &path, Some(&a), Some(json!({"name": "ops"})))
        .await;
    assert_eq!((s, &v["name"]), (StatusCode::OK, &json!("ops")));
    let (s, _) = fails(
        &t,
        Method::PATCH,
        "/api/v1/tokens/999",
        &a,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 404);
}
