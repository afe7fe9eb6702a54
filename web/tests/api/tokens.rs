//! Token lifetimes, inheritance and scopes; /metrics behind a token
//! (issue 18).

use arca_catalog::{
    DatastoreId, ExportId, ExportProtocol, NewExport, NewTask, NodeId, PolicyId, ProjectId,
    RestorePoint, Role, RoleBinding, SourceId, SourceKind, TaskId, TokenId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

const DAY: i64 = 86_400;

/// Mint a token with `with`; the secret and the token's record.
async fn mint(t: &T, with: &str, body: Value) -> (String, Value) {
    let (s, v) = t
        .call(Method::POST, "/api/v1/tokens", Some(with), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (v["token"].as_str().unwrap().to_string(), v["info"].clone())
}

async fn status(t: &T, m: Method, path: &str, token: Option<&str>, body: Option<Value>) -> u16 {
    t.call(m, path, token, body).await.0.as_u16()
}

async fn login(t: &T, user: &str) -> String {
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": user, "password": "password123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_string()
}

fn now() -> i64 {
    arca_catalog::now()
}

#[tokio::test]
async fn the_max_lifetime_is_enforced_and_admin_set() {
    let t = setup();
    let a = Some(t.admin.as_str());
    let (s, v) = t.call(Method::GET, "/api/v1/settings", a, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_max_lifetime_s"], 90 * DAY);

    // Longer than the maximum: 400 naming it.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            a,
            Some(json!({"name": "ten-years", "expires_in_s": 10 * 365 * DAY})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("maximum token lifetime, 7776000 s (90d)"), "{m}");
    // Without expires_in_s: the maximum.
    let (_, info) = mint(&t, &t.admin, json!({"name": "default"})).await;
    let e = info["expires_at"].as_i64().unwrap();
    assert!(
        (now() + 90 * DAY - 60..=now() + 90 * DAY).contains(&e),
        "{info}"
    );
    assert_eq!(info["scope"], "full");
    assert_eq!(info["state"], "active");
    // Exactly the maximum is fine; zero and negative are invalid.
    mint(
        &t,
        &t.admin,
        json!({"name": "max", "expires_in_s": 90 * DAY}),
    )
    .await;
    for bad in [0, -5] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/tokens",
                a,
                Some(json!({"name": "bad", "expires_in_s": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }

    // An admin lowers it to 7 days.
    let (s, v) = t
        .call(
            Method::PATCH,
            "/api/v1/settings",
            a,
            Some(json!({"token_max_lifetime_s": 7 * DAY})),
        )
        .await;
    assert_eq!(
        (s, v["token_max_lifetime_s"].as_i64()),
        (StatusCode::OK, Some(7 * DAY))
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            a,
            Some(json!({"name": "month", "expires_in_s": 30 * DAY})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("(7d)"), "{v}");
    let (_, info) = mint(&t, &t.admin, json!({"name": "week"})).await;
    assert!(info["expires_at"].as_i64().unwrap() <= now() + 7 * DAY);
    // Sign-in sessions stay at 12 hours while that is shorter.
    let session = login(&t, "admin").await;
    let (_, me) = t
        .call(Method::GET, "/api/v1/me", Some(&session), None)
        .await;
    let e = me["token"]["expires_at"].as_i64().unwrap();
    assert!(e <= now() + 12 * 3600 && e > now() + 11 * 3600, "{me}");

    // No "unlimited", nor anything outside an hour to ten years.
    for bad in [
        json!(0),
        json!(-1),
        json!(3599),
        json!(316_224_001),
        json!(null),
    ] {
        let (s, v) = t
            .call(
                Method::PATCH,
                "/api/v1/settings",
                a,
                Some(json!({"token_max_lifetime_s": bad})),
            )
            .await;
        if bad.is_null() {
            // Nothing to change: the settings as they are.
            assert_eq!(v["token_max_lifetime_s"], 7 * DAY, "{v}");
        } else {
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        }
    }
    let (s, _) = t
        .call(
            Method::PATCH,
            "/api/v1/settings",
            a,
            Some(json!({"unlimited": true})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = t.call(Method::GET, "/api/v1/settings", a, None).await;
    assert_eq!(v["token_max_lifetime_s"], 7 * DAY);
    // The change is audited.
    let (_, audit) = t.call(Method::GET, "/api/v1/audit", a, None).await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "settings.update" && e["result"] == "ok"));
    // A session's expiry is capped by a maximum shorter than 12 hours.
    let (s, _) = t
        .call(
            Method::PATCH,
            "/api/v1/settings",
            a,
            Some(json!({"token_max_lifetime_s": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let session = login(&t, "admin").await;
    let (_, me) = t
        .call(Method::GET, "/api/v1/me", Some(&session), None)
        .await;
    assert!(
        me["token"]["expires_at"].as_i64().unwrap() <= now() + 3600,
        "{me}"
    );
}

#[tokio::test]
async fn revoking_a_token_kills_its_children_and_grandchildren() {
    let t = setup();
    let session = login(&t, "admin").await;
    // Made with a session: a root.
    let (t1, i1) = mint(&t, &session, json!({"name": "t1", "expires_in_s": 3600})).await;
    assert!(i1["parent_token_id"].is_null(), "{i1}");
    let (t2, i2) = mint(&t, &t1, json!({"name": "t2"})).await;
    assert_eq!(i2["parent_token_id"], i1["id"]);
    // Without expires_in_s a child gets its parent's end, not the maximum.
    assert_eq!(i2["expires_at"], i1["expires_at"]);
    let (t3, i3) = mint(&t, &t2, json!({"name": "t3", "expires_in_s": 60})).await;
    assert_eq!(i3["parent_token_id"], i2["id"]);
    // A child cannot outlive its parent.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&t1),
            Some(json!({"name": "long", "expires_in_s": 7200})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("outlive"), "{v}");
    for tok in [&t1, &t2, &t3] {
        assert_eq!(
            status(&t, Method::GET, "/api/v1/me", Some(tok), None).await,
            200
        );
    }
    // Revoking t1 (with the session that made it) revokes t2 and t3.
    let id1 = i1["id"].as_i64().unwrap();
    assert_eq!(
        status(
            &t,
            Method::DELETE,
            &format!("/api/v1/tokens/{id1}"),
            Some(&session),
            None
        )
        .await,
        204
    );
    for tok in [&t1, &t2, &t3] {
        let (s, v) = t.call(Method::GET, "/api/v1/me", Some(tok), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(v["message"].as_str().unwrap().contains("revoked"), "{v}");
    }
    let (_, list) = t
        .call(Method::GET, "/api/v1/tokens", Some(&session), None)
        .await;
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["state"].as_str().unwrap()))
        .collect();
    for n in ["t1", "t2", "t3"] {
        assert!(states.contains(&(n, "revoked")), "{states:?}");
    }
    // The session itself is untouched.
    assert_eq!(
        status(&t, Method::GET, "/api/v1/me", Some(&session), None).await,
        200
    );

    // A password change that revokes the API tokens revokes their
    // descendants too.
    let (p, ip) = mint(&t, &session, json!({"name": "p", "expires_in_s": 3600})).await;
    let (c, _) = mint(&t, &p, json!({"name": "c"})).await;
    let (g, _) = mint(&t, &c, json!({"name": "g"})).await;
    let (s, _) = t.call(Method::GET, "/api/v1/me", Some(&g), None).await;
    assert_eq!(s, StatusCode::OK);
    let pid = ip["id"].as_i64().unwrap();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&session),
            Some(json!({"current_password": "password123", "new_password": "password456", "revoke_api_tokens": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for tok in [&p, &c, &g] {
        let (s, v) = t.call(Method::GET, "/api/v1/me", Some(tok), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    assert!(t
        .state
        .catalog
        .token(TokenId(pid))
        .unwrap()
        .revoked_at
        .is_some());
}

/// Objects in projects 1 and 2: a source, a policy, a task, a files and an
/// image restore point, and an export of the image.
struct World {
    source: [SourceId; 2],
    policy: [PolicyId; 2],
    task: [TaskId; 2],
    rp: [String; 2],
    image: [String; 2],
    export: [ExportId; 2],
}

fn world(t: &T) -> World {
    let c = &t.state.catalog;
    let mut w = World {
        source: [SourceId(0); 2],
        policy: [PolicyId(0); 2],
        task: [TaskId(0); 2],
        rp: [String::new(), String::new()],
        image: [String::new(), String::new()],
        export: [ExportId(0); 2],
    };
    let ds = DatastoreId(1);
    for (i, p) in [ProjectId(1), ProjectId(2)].into_iter().enumerate() {
        w.source[i] = c
            .add_source(
                &format!("src-{p}"),
                SourceKind::Files,
                "/srv",
                NodeId(1),
                p,
                &[],
                &json!({}),
                None,
            )
            .unwrap()
            .id;
        w.policy[i] = c
            .add_policy(
                &format!("pol-{p}"),
                p,
                "daily",
                None,
                &Default::default(),
                ds,
                0,
                None,
                &[],
                None,
            )
            .unwrap()
            .id;
        w.task[i] = c
            .add_task(&NewTask {
                project_id: p,
                source_id: Some(w.source[i]),
                datastore_id: Some(ds),
                max_attempts: 1,
                created_by: "test".into(),
                ..Default::default()
            })
            .unwrap()
            .unwrap()
            .id;
        for (id, kind) in [
            (format!("{p:02}{}", "a".repeat(62)), SourceKind::Files),
            (format!("1{p}{}", "b".repeat(62)), SourceKind::Image),
        ] {
            c.add_restore_point(&RestorePoint {
                id: id.parse().unwrap(),
                datastore_id: ds,
                source_name: format!("src-{p}"),
                project_id: p,
                kind,
                time: 1,
                ..Default::default()
            })
            .unwrap();
            if kind == SourceKind::Files {
                w.rp[i] = id;
            } else {
                w.image[i] = id;
            }
        }
        w.export[i] = c
            .add_export(&NewExport {
                restore_point_id: w.image[i].parse().unwrap(),
                datastore_id: ds,
                node_id: NodeId(1),
                project_id: p,
                protocol: ExportProtocol::Nbd,
                writable: false,
                ttl_seconds: 3600,
                created_by: "test".into(),
                allow: Vec::new(),
            })
            .unwrap()
            .id;
    }
    w
}

#[tokio::test]
async fn a_read_only_token_reads_and_changes_nothing() {
    let t = setup();
    let w = world(&t);
    let (ro, info) = mint(&t, &t.admin, json!({"name": "ro", "scope": "read-only"})).await;
    assert_eq!(info["scope"], "read-only");
    let ro = Some(ro.as_str());
    // Reads: 200, the admin's lists included.
    for path in [
        "/api/v1/me".to_string(),
        "/api/v1/sources".into(),
        format!("/api/v1/sources/{}", w.source[1]),
        format!("/api/v1/policies/{}", w.policy[0]),
        format!("/api/v1/tasks/{}/logs", w.task[0]),
        format!("/api/v1/restore-points/{}", w.rp[1]),
        "/api/v1/users".into(),
        "/api/v1/audit".into(),
        "/api/v1/settings".into(),
        "/api/v1/tokens".into(),
        "/metrics".into(),
    ] {
        let (s, v) = t.call(Method::GET, &path, ro, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
    }
    // Writes: 403, whatever the admin may do.
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/sources".into(),
            Some(json!({"name": "new", "kind": "files", "path": "/srv"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/sources/{}", w.source[0]),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/sources/{}/backup", w.source[0]),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{}/cancel", w.task[0]),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/restore-points/{}/restore", w.rp[0]),
            Some(json!({"target": "/tmp/r"})),
        ),
        (
            Method::POST,
            "/api/v1/exports".into(),
            Some(json!({"restore_point": w.image[0]})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/exports/{}", w.export[0]),
            Some(json!({"ttl": "1h"})),
        ),
        (
            Method::PATCH,
            "/api/v1/settings".into(),
            Some(json!({"token_max_lifetime_s": 3600})),
        ),
        (
            Method::PATCH,
            "/api/v1/datastores/1".into(),
            Some(json!({"gc_schedule": "never"})),
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "more"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tokens/{}", info["id"]),
            None,
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            Some(json!({"current_password": "password123", "new_password": "password456"})),
        ),
    ];
    for (m, path, body) in writes {
        let (s, v) = t.call(m.clone(), &path, ro, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("read-only"), "{v}");
    }
    // Nothing changed.
    assert_eq!(t.state.catalog.sources().unwrap().len(), 2);
    assert_eq!(
        t.state.catalog.settings().unwrap().token_max_lifetime_s,
        90 * DAY
    );
    // An export is shown without its credentials (they read the disk).
    let path = format!("/api/v1/exports/{}", w.export[0]);
    let (_, e) = t.call(Method::GET, &path, ro, None).await;
    assert!(
        e.get("secret").is_none() && e.get("address").is_none(),
        "{e}"
    );
    let (_, e) = t.call(Method::GET, &path, Some(&t.admin), None).await;
    assert!(e["secret"].is_string(), "{e}");
    // A full token cannot be minted from it, nor anything else.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            ro,
            Some(json!({"name": "m", "scope": "metrics"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// A request on an object of project 2: method, collection, the object's
/// id, an id that does not exist, the rest of the path, the body.
type Hidden<'a> = (Method, &'a str, String, &'a str, &'a str, Option<Value>);

#[tokio::test]
async fn a_project_token_sees_only_its_projects() {
    let t = setup();
    let w = world(&t);
    // An operator of every project limits a token to project 1.
    let all = token_for(
        &t.state.catalog,
        "ops",
        &[RoleBinding {
            role: Role::Operator,
            project_id: None,
        }],
    );
    let (p1_secret, info) = mint(&t, &all, json!({"name": "p1", "projects": [1]})).await;
    assert_eq!(info["projects"], json!([1]));
    let p1 = Some(p1_secret.as_str());
    let (_, me) = t.call(Method::GET, "/api/v1/me", p1, None).await;
    assert_eq!(
        me["roles"],
        json!([{"role": "operator", "project_id": 1}]),
        "{me}"
    );
    // Lists: project 1 only.
    for path in [
        "/api/v1/sources",
        "/api/v1/policies",
        "/api/v1/tasks",
        "/api/v1/restore-points",
        "/api/v1/exports",
    ] {
        let (s, v) = t.call(Method::GET, path, p1, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let items = v.as_array().unwrap();
        assert!(!items.is_empty(), "{path}");
        assert!(items.iter().all(|x| x["project_id"] == 1), "{path}: {v}");
    }
    let (_, v) = t.call(Method::GET, "/api/v1/projects", p1, None).await;
    assert_eq!(v, json!([{"id": 1, "name": "default"}]));
    // Objects of project 2: 404, answered exactly as for an object that
    // does not exist (only the id differs).
    let rp_missing = format!("99{}", "a".repeat(62));
    let hidden: Vec<Hidden> = vec![
        (
            Method::GET,
            "sources",
            w.source[1].to_string(),
            "999",
            "",
            None,
        ),
        (
            Method::GET,
            "policies",
            w.policy[1].to_string(),
            "999",
            "",
            None,
        ),
        (Method::GET, "tasks", w.task[1].to_string(), "999", "", None),
        (
            Method::GET,
            "tasks",
            w.task[1].to_string(),
            "999",
            "/logs",
            None,
        ),
        (
            Method::GET,
            "restore-points",
            w.rp[1].clone(),
            &rp_missing,
            "",
            None,
        ),
        (
            Method::GET,
            "exports",
            w.export[1].to_string(),
            "999",
            "",
            None,
        ),
        (
            Method::DELETE,
            "sources",
            w.source[1].to_string(),
            "999",
            "",
            None,
        ),
        (
            Method::DELETE,
            "policies",
            w.policy[1].to_string(),
            "999",
            "",
            None,
        ),
        (
            Method::POST,
            "sources",
            w.source[1].to_string(),
            "999",
            "/backup",
            None,
        ),
        (
            Method::POST,
            "tasks",
            w.task[1].to_string(),
            "999",
            "/cancel",
            None,
        ),
        (
            Method::POST,
            "restore-points",
            w.rp[1].clone(),
            &rp_missing,
            "/restore",
            Some(json!({"target": "/tmp/r"})),
        ),
        (
            Method::DELETE,
            "exports",
            w.export[1].to_string(),
            "999",
            "",
            None,
        ),
        (
            Method::PATCH,
            "exports",
            w.export[1].to_string(),
            "999",
            "",
            Some(json!({"ttl": "1h"})),
        ),
    ];
    for (m, what, id, missing, tail, body) in hidden {
        let path = format!("/api/v1/{what}/{id}{tail}");
        let (s, v) = t.call(m.clone(), &path, p1, body.clone()).await;
        assert_eq!(
            (s, &v["error"]),
            (StatusCode::NOT_FOUND, &json!("not_found")),
            "{m} {path}: {v}"
        );
        let other = format!("/api/v1/{what}/{missing}{tail}");
        let (s2, v2) = t.call(m.clone(), &other, p1, body).await;
        assert_eq!(s2, StatusCode::NOT_FOUND, "{m} {other}: {v2}");
        assert_eq!(
            v["message"].as_str().unwrap().replace(&id, "ID"),
            v2["message"].as_str().unwrap().replace(missing, "ID"),
            "{m} {path}"
        );
    }
    // Exporting another project's restore point: as unknown (422) as one
    // that does not exist.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/exports",
            p1,
            Some(json!({"restore_point": w.image[1]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Creating in project 2: 403 naming the token's limit.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            p1,
            Some(json!({"name": "n2", "kind": "files", "path": "/srv", "project": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("limited to project(s) 1"),
        "{v}"
    );
    // Project 1: the operator's rights.
    for (m, path, body, want) in [
        (
            Method::GET,
            format!("/api/v1/sources/{}", w.source[0]),
            None,
            200,
        ),
        (
            Method::POST,
            "/api/v1/sources".to_string(),
            Some(json!({"name": "n1", "kind": "files", "path": "/srv", "project": 1})),
            201,
        ),
        (
            Method::POST,
            format!("/api/v1/sources/{}/backup", w.source[0]),
            None,
            202,
        ),
    ] {
        let (s, v) = t.call(m.clone(), &path, p1, body).await;
        assert_eq!(s.as_u16(), want, "{m} {path}: {v}");
    }
    // The user's own token still sees project 2.
    assert_eq!(
        status(
            &t,
            Method::GET,
            &format!("/api/v1/sources/{}", w.source[1]),
            Some(&all),
            None
        )
        .await,
        200
    );

    // Children: no more projects; without a list, the parent's.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            p1,
            Some(json!({"name": "wider", "projects": [1, 2]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, child) = mint(&t, &p1_secret, json!({"name": "child"})).await;
    assert_eq!(child["projects"], json!([1]));
    // Unknown projects, or empty lists: 422.
    for bad in [json!([99]), json!([])] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(&all),
                Some(json!({"name": "bad", "projects": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }

    // A project token of an all-projects admin administers nothing.
    let (ap, _) = mint(&t, &t.admin, json!({"name": "adm-p1", "projects": [1]})).await;
    for (m, path, body) in [
        (Method::GET, "/api/v1/users", None),
        (Method::GET, "/api/v1/audit", None),
        (Method::GET, "/api/v1/settings", None),
        (Method::POST, "/api/v1/projects", Some(json!({"name": "x"}))),
    ] {
        let (s, v) = t.call(m.clone(), path, Some(&ap), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {path}: {v}");
    }
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/api/v1/sources/{}", w.source[1]),
            Some(&ap),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_a_token_and_a_metrics_token_reads_only_metrics() {
    let t = setup();
    let (s, v) = t.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(
        status(&t, Method::GET, "/metrics", Some("arca_0000"), None).await,
        401
    );
    // /healthz stays open.
    assert_eq!(status(&t, Method::GET, "/healthz", None, None).await, 200);

    let (m, info) = mint(&t, &t.admin, json!({"name": "prom", "scope": "metrics"})).await;
    assert_eq!(info["scope"], "metrics");
    let (s, body) = t.call(Method::GET, "/metrics", Some(&m), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body
        .as_str()
        .unwrap()
        .contains("arca_node_up{node=\"local\"} 1"));
    for (method, path) in [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/sources"),
        (Method::GET, "/api/v1/tokens"),
        (Method::POST, "/api/v1/tokens"),
        (Method::DELETE, "/api/v1/tokens/1"),
    ] {
        let (s, v) = t.call(method.clone(), path, Some(&m), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("metrics"), "{v}");
    }
    // Read-only and full tokens read it too; a token of a user without a
    // role does not.
    let (ro, _) = mint(&t, &t.admin, json!({"name": "ro", "scope": "read-only"})).await;
    assert_eq!(
        status(&t, Method::GET, "/metrics", Some(&ro), None).await,
        200
    );
    assert_eq!(
        status(&t, Method::GET, "/metrics", Some(&t.admin), None).await,
        200
    );
    let nobody = token_for(&t.state.catalog, "nobody", &[]);
    assert_eq!(
        status(&t, Method::GET, "/metrics", Some(&nobody), None).await,
        403
    );
    // A revoked metrics token: 401.
    t.state
        .catalog
        .revoke_token(TokenId(info["id"].as_i64().unwrap()))
        .unwrap();
    assert_eq!(
        status(&t, Method::GET, "/metrics", Some(&m), None).await,
        401
    );
    // Unknown scopes are refused.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&t.admin),
            Some(json!({"name": "x", "scope": "root"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}
