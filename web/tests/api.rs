//! In-process API tests: the router is driven with `oneshot`, no sockets.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arca_catalog::{
    Catalog, DatastoreId, ExportId, NodeId, ProjectId, Role, RoleBinding, SourceKind, TokenKind,
    UserId,
};
use arca_web::auth::{self, Action};
use arca_web::{app, AppState};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

#[path = "api/accounts.rs"]
mod accounts;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/bad_input.rs"]
mod bad_input;
#[path = "api/browse.rs"]
mod browse;

/// The credentials key of the test server.
pub(crate) const CREDENTIALS_KEY: [u8; 32] = [7u8; 32];

/// An inventory with one domain, `vm1` (the routes' permissions are
/// tested here; real inventories over SSH in tests/libvirt).
struct OneDomain;

impl arca_web::inventory::Inventory for OneDomain {
    fn list(
        &self,
        _: &arca_web::inventory::InventoryTarget,
    ) -> Result<(String, Vec<arca_model::api::InventoryDomain>), arca_web::inventory::InventoryError>
    {
        Ok((
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            vec![arca_model::api::InventoryDomain {
                name: "vm1".into(),
                uuid: "00000000-0000-0000-0000-000000000001".into(),
                state: "running".into(),
                disks: vec!["vda".into()],
            }],
        ))
    }
}
#[path = "api/cache.rs"]
mod cache;
#[path = "api/download.rs"]
mod download;
#[path = "api/edit.rs"]
mod edit;
#[path = "api/forget.rs"]
mod forget;
#[path = "api/ids.rs"]
mod ids;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/patch.rs"]
mod patch;
#[path = "api/preview.rs"]
mod preview;
#[path = "api/prune.rs"]
mod prune;
#[path = "api/rbac.rs"]
mod rbac;
#[path = "api/reports.rs"]
mod reports;
#[path = "api/search.rs"]
mod search;
#[path = "api/session_cookie.rs"]
mod session_cookie;
#[path = "api/tokens.rs"]
mod tokens;

struct T {
    state: AppState,
    admin: String,
}

fn token_for(c: &Catalog, name: &str, roles: &[RoleBinding]) -> String {
    let u = c
        .add_user(name, &auth::hash_password("password123").unwrap(), roles)
        .unwrap();
    let (secret, hash) = auth::new_secret();
    c.add_token(Some(u.id), None, "t", TokenKind::Api, &hash, None)
        .unwrap();
    secret
}

fn setup() -> T {
    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let n = c.upsert_node("local", true, 2, "t").unwrap();
    c.add_datastore("default", n.id, "/nonexistent/ds").unwrap();
    // Where the tests below put sources and restores (confinement).
    c.set_node_confinement(
        n.id,
        &arca_catalog::NodeConfinement {
            source_roots: Some(vec!["/srv".into(), "/x".into(), "/a".into()]),
            restore_roots: Some(vec!["/tmp".into()]),
            allow_block_devices: None,
        },
    )
    .unwrap();
    c.add_project("other").unwrap(); // id 2
    let admin = token_for(
        &c,
        "admin",
        &[RoleBinding {
            role: Role::Admin,
            project_id: None,
        }],
    );
    T {
        state: AppState::new(c)
            .with_browse(Arc::new(browse::Fake))
            .with_s3(
                Arc::new(arca_web::s3_secrets::SecretBox::from_key(&[9u8; 32]).unwrap()),
                Some("http://127.0.0.1:8444".into()),
            )
            .with_hypervisors(
                Arc::new(arca_web::s3_secrets::SecretBox::from_key(&CREDENTIALS_KEY).unwrap()),
                Arc::new(OneDomain),
            ),
        admin,
    }
}

impl T {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.raw(
            method,
            path,
            token,
            body.map(|b| b.to_string()),
            "application/json",
        )
        .await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        ctype: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", ctype).body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        if status.is_client_error() || status.is_server_error() {
            assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{status} without a JSON error: {v}"
            );
        }
        assert!(!status.is_server_error(), "{path}: {status} {v}");
        (status, v)
    }
}

#[tokio::test]
async fn login_tokens_and_revocation() {
    let t = setup();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "password123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let session = v["token"].as_str().unwrap().to_string();
    assert!(session.starts_with("arca_"));
    let (s, me) = t
        .call(Method::GET, "/api/v1/me", Some(&session), None)
        .await;
    assert_eq!(
        (s, me["user"]["name"].as_str()),
        (StatusCode::OK, Some("admin"))
    );
    assert!(me["user"].get("password_hash").is_none());

    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ghost", "password": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // API token: created, used, revoked.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&session),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let api = v["token"].as_str().unwrap().to_string();
    let id = v["info"]["id"].as_i64().unwrap();
    assert_eq!(
        t.call(Method::GET, "/api/v1/sources", Some(&api), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&session),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (s, v) = t
        .call(Method::GET, "/api/v1/sources", Some(&api), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("revoked"));

    // Expired.
    let c = &t.state.catalog;
    let (secret, hash) = auth::new_secret();
    c.add_token(
        Some(UserId(1)),
        None,
        "old",
        TokenKind::Api,
        &hash,
        Some(arca_catalog::now() - 1),
    )
    .unwrap();
    let (s, v) = t.call(Method::GET, "/api/v1/me", Some(&secret), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("expired"));
    // Missing, malformed, unknown.
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", Some("arca_00"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sources_policies_tasks_and_audit() {
    let t = setup();
    let a = Some(t.admin.as_str());
    let (s, pol) = t.call(Method::POST, "/api/v1/policies", a, Some(json!({
        "name": "nightly", "schedule": "daily", "retention": {"keep_daily": 7}, "match_pattern": "web-*"
    }))).await;
    assert_eq!(s, StatusCode::CREATED, "{pol}");
    let (s, src) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            a,
            Some(json!({
                "name": "web-1", "kind": "files", "path": "/srv/www", "tags": ["prod"]
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{src}");
    // Assigned by the policy's name pattern.
    assert_eq!(src["policy_id"], pol["id"]);
    assert_eq!(src["assigned_by"], "rule");
    let id = src["id"].as_i64().unwrap();
    let (s, task) = t
        .call(
            Method::POST,
            &format!("/api/v1/sources/{id}/backup"),
            a,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{task}");
    assert_eq!(task["state"], "queued");
    let tid = task["id"].as_i64().unwrap();
    let (s, list) = t
        .call(Method::GET, "/api/v1/tasks?state=queued", a, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Filters by kind and by source (the UI's task list has them).
    for (q, n) in [
        (format!("kind=backup&source={id}"), 1),
        (format!("kind=backup&source={}", id + 1000), 0),
        ("kind=prune".to_string(), 0),
        (format!("state=queued&kind=backup&source={id}"), 1),
    ] {
        let (s, list) = t
            .call(Method::GET, &format!("/api/v1/tasks?{q}"), a, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{q}: {list}");
        assert_eq!(list.as_array().unwrap().len(), n, "{q}: {list}");
    }
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{tid}/cancel"),
            a,
            None,
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(
        t.call(
            Method::POST,
            &format!("/api/v1/tasks/{tid}/cancel"),
            a,
            None
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    // Duplicates conflict.
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            a,
            Some(json!({"name": "web-1", "kind": "files", "path": "/x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The audit log names who did what.
    let (s, audit) = t.call(Method::GET, "/api/v1/audit", a, None).await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in ["policy.add", "source.add", "source.backup", "task.cancel"] {
        assert!(actions.contains(&want), "{actions:?}");
    }
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "admin"));
    let failed = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["result"] == "failed")
        .unwrap();
    assert_eq!(failed["action"], "source.add");
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let t = setup();
    let a = Some(t.admin.as_str());
    let cases: Vec<(Method, &str, Option<String>, &str, StatusCode)> = vec![
        (
            Method::POST,
            "/api/v1/sources",
            Some("{not json".into()),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(r#"{"name":"a","kind":"files","path":"/x","colour":"red"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(r#"{"name":"a","kind":"tape","path":"/x"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(r#"{"name":"../a","kind":"files","path":"/x"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(r#"{"name":"a","kind":"files","path":"relative"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(r#"{"name":"a"}"#.into()),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/api/v1/sources",
            Some(format!(
                r#"{{"name":"{}","kind":"files","path":"/x"}}"#,
                "a".repeat(2 << 20)
            )),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/api/v1/policies",
            Some(r#"{"name":"p","schedule":"Mon..Fri 25:00"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/policies",
            Some(r#"{"name":"p","schedule":"every 0s"}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/policies",
            Some(r#"{"name":"p","schedule":"daily","retention":{"keep_forever":1}}"#.into()),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::GET,
            "/api/v1/sources/999",
            None,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/sources/abc",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks/99999999999999999999",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks?state=sleeping",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks?kind=nap",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks?source=abc",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks?limit=0",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/tasks?limit=abc",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/restore-points/xyz",
            None,
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/restore-points/abcd",
            None,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/restore-points/abcd/restore",
            Some(r#"{"target":"/tmp/x"}"#.into()),
            "application/json",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/nothing",
            None,
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/sources",
            None,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (m, path, body, ctype, want) in cases {
        let (s, v) = t.raw(m.clone(), path, a, body, ctype).await;
        assert_eq!(s, want, "{m} {path}: {v}");
    }
}

/// Each role × each guarded endpoint × own and other project.
#[tokio::test]
async fn rbac_matrix() {
    let t = setup();
    let c = t.state.catalog.clone();
    let a = Some(t.admin.as_str());
    // One source and policy in each project, and a restore point in each.
    for (proj, suffix) in [(1, "own"), (2, "other")] {
        let (s, v) = t.call(Method::POST, "/api/v1/sources", a, Some(json!({"name": format!("src-{suffix}"), "kind": "files", "path": "/srv", "project": proj}))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/policies",
                a,
                Some(
                    json!({"name": format!("pol-{suffix}"), "schedule": "daily", "project": proj}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        c.add_restore_point(&arca_catalog::RestorePoint {
            id: format!("{proj:02}{}", "a".repeat(62)).parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_id: None,
            source_name: format!("src-{suffix}"),
            project_id: ProjectId(proj),
            kind: SourceKind::Files,
            time: 1,
            bytes_total: 0,
            bytes_added: 0,
            files: 0,
            hostname: String::new(),
            task_id: None,
            created_at: 0,
            ..Default::default()
        })
        .unwrap();
        c.add_restore_point(&arca_catalog::RestorePoint {
            id: format!("1{proj}{}", "b".repeat(62)).parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_id: None,
            source_name: format!("vm-{suffix}"),
            project_id: ProjectId(proj),
            kind: SourceKind::Image,
            time: 1,
            bytes_total: 0,
            bytes_added: 0,
            files: 0,
            hostname: String::new(),
            task_id: None,
            created_at: 0,
            ..Default::default()
        })
        .unwrap();
    }
    let ids = |proj, name: &str| c.source_by_name(ProjectId(proj), name).unwrap().unwrap().id;
    let pols = |proj, name: &str| c.policy_by_name(ProjectId(proj), name).unwrap().unwrap().id;
    let roles = [
        Role::Admin,
        Role::Operator,
        Role::RestoreOnly,
        Role::Auditor,
    ];
    let mut tokens = Vec::new();
    for r in roles {
        // Admin is tested project-scoped too: scoped admins manage their project only.
        tokens.push((
            r,
            token_for(
                &c,
                &format!("u-{}", r.as_str()),
                &[RoleBinding {
                    role: r,
                    project_id: Some(ProjectId(1)),
                }],
            ),
        ));
    }
    let mut n_checked = 0;
    for (proj, suffix) in [(1i64, "own"), (2, "other")] {
        let sid = ids(proj, &format!("src-{suffix}"));
        let pid = pols(proj, &format!("pol-{suffix}"));
        let rp = format!("{proj:02}");
        let endpoints: Vec<(Method, String, Option<Value>, Action)> = vec![
            (
                Method::GET,
                format!("/api/v1/sources/{sid}"),
                None,
                Action::Read,
            ),
            (
                Method::GET,
                format!("/api/v1/policies/{pid}"),
                None,
                Action::Read,
            ),
            (
                Method::GET,
                format!("/api/v1/restore-points/{rp}"),
                None,
                Action::Read,
            ),
            (
                Method::POST,
                "/api/v1/sources".into(),
                Some(
                    json!({"name": format!("new-{suffix}"), "kind": "files", "path": "/a", "project": proj}),
                ),
                Action::Manage,
            ),
            (
                Method::POST,
                "/api/v1/policies".into(),
                Some(
                    json!({"name": format!("newp-{suffix}"), "schedule": "hourly", "project": proj}),
                ),
                Action::Manage,
            ),
            (
                Method::POST,
                format!("/api/v1/sources/{sid}/backup"),
                None,
                Action::Manage,
            ),
            (
                Method::POST,
                format!("/api/v1/restore-points/{rp}/restore"),
                Some(json!({"target": "/tmp/r"})),
                Action::Restore,
            ),
            (
                Method::POST,
                "/api/v1/exports".into(),
                Some(json!({"restore_point": format!("1{proj}{}", "b".repeat(62))})),
                Action::Restore,
            ),
        ];
        for (role, token) in &tokens {
            for (m, path, body, action) in &endpoints {
                let allowed = auth::allows(*role, *action) && proj == 1;
                let (s, v) = t.call(m.clone(), path, Some(token), body.clone()).await;
                if allowed {
                    assert!(
                        s.is_success(),
                        "{} {m} {path} ({suffix}): {s} {v}",
                        role.as_str()
                    );
                } else {
                    // Another project's objects do not exist for the
                    // caller: 404 by id, an unknown name in a body (422).
                    // Creating in another project is not allowed (403).
                    let want = match path.as_str() {
                        _ if proj == 1 => StatusCode::FORBIDDEN,
                        "/api/v1/sources" | "/api/v1/policies" => StatusCode::FORBIDDEN,
                        "/api/v1/exports" => StatusCode::UNPROCESSABLE_ENTITY,
                        _ => StatusCode::NOT_FOUND,
                    };
                    assert_eq!(s, want, "{} {m} {path} ({suffix}): {v}", role.as_str());
                }
                n_checked += 1;
            }
            // Remove what this role created so that the next one can too.
            let pid = ProjectId(proj);
            if let Some(src) = c.source_by_name(pid, &format!("new-{suffix}")).unwrap() {
                c.delete_source(src.id).unwrap();
            }
            if let Some(p) = c.policy_by_name(pid, &format!("newp-{suffix}")).unwrap() {
                c.delete_policy(p.id).unwrap();
            }
        }
    }
    assert_eq!(n_checked, 2 * 8 * 4);
    // Global-only endpoints: only an all-projects admin.
    for (role, token) in &tokens {
        for (m, path, body) in [
            (Method::GET, "/api/v1/users", None),
            (
                Method::POST,
                "/api/v1/projects",
                Some(json!({"name": format!("p-{}", role.as_str())})),
            ),
            (Method::GET, "/api/v1/audit", None),
            (
                Method::POST,
                "/api/v1/nodes",
                Some(json!({"name": format!("n-{}", role.as_str())})),
            ),
            (
                Method::PATCH,
                "/api/v1/nodes/1",
                Some(json!({"allow_block_devices": true})),
            ),
        ] {
            let (s, v) = t.call(m.clone(), path, Some(token), body).await;
            assert_eq!(
                s,
                StatusCode::FORBIDDEN,
                "{} {m} {path}: {v}",
                role.as_str()
            );
        }
    }
    // Lists are filtered to the caller's projects.
    for (role, token) in &tokens {
        let (_, v) = t
            .call(Method::GET, "/api/v1/sources", Some(token), None)
            .await;
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["src-own"], "{}", role.as_str());
        let (_, v) = t
            .call(Method::GET, "/api/v1/restore-points", Some(token), None)
            .await;
        assert_eq!(v.as_array().unwrap().len(), 2, "{}", role.as_str());
        // Exports, too (those the roles allowed to restore made above).
        let (_, v) = t
            .call(Method::GET, "/api/v1/exports", Some(token), None)
            .await;
        assert!(
            v.as_array().unwrap().iter().all(|e| e["project_id"] == 1),
            "{}: {v}",
            role.as_str()
        );
    }
    let (_, v) = t.call(Method::GET, "/api/v1/exports", a, None).await;
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
}

#[tokio::test]
async fn an_admin_adds_a_node_whose_token_only_serves_the_node_protocol() {
    let t = setup();
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/nodes",
            Some(&t.admin),
            Some(json!({"name": "alpha", "max_tasks": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["node"]["name"], "alpha");
    assert_eq!(v["node"]["state"], "offline");
    assert_eq!(v["node"]["max_tasks"], 3);
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("arca_"));
    // The node token is no user: the REST API refuses it.
    let (s, v) = t.call(Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["message"].as_str().unwrap().contains("node token"), "{v}");
    // Same name again, bad limits, bad names: clear 4xx.
    for (body, want) in [
        (json!({"name": "alpha"}), StatusCode::CONFLICT),
        (
            json!({"name": "beta", "max_tasks": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "a/b"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "beta", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/nodes",
                Some(&t.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, want, "{body}: {v}");
    }
    let (_, v) = t
        .call(Method::GET, "/api/v1/nodes", Some(&t.admin), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = t
        .call(Method::GET, "/api/v1/audit", Some(&t.admin), None)
        .await;
    assert!(v.to_string().contains("node.add"), "{v}");
}

#[tokio::test]
async fn openapi_lists_every_route_and_metrics_render() {
    let t = setup();
    let (s, doc) = t
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        arca_web::openapi::ROUTES.len()
    );
    // Every documented route exists (no 404 from the fallback).
    for r in arca_web::openapi::ROUTES {
        let path = r.path.replace("{id}", "1");
        let m = Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).unwrap();
        let (s, v) = t.call(m, &path, Some(&t.admin), None).await;
        assert!(
            v["message"]
                .as_str()
                .is_none_or(|m| !m.starts_with("no such endpoint")),
            "{path}: {s} {v}"
        );
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    // /metrics names nodes and datastores: a token is needed (a fresh
    // one: the walk above revoked token 1, the admin's).
    let (s, _) = t.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (secret, hash) = auth::new_secret();
    t.state
        .catalog
        .add_token(Some(UserId(1)), None, "scrape", TokenKind::Api, &hash, None)
        .unwrap();
    let (s, m) = t.call(Method::GET, "/metrics", Some(&secret), None).await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(m.contains("arca_tasks{state=\"queued\"}"));
    assert!(m.contains("arca_node_up{node=\"local\"} 1"));
    assert!(m.contains("arca_datastore_dedup_ratio{datastore=\"default\"}"));
    let (s, h) = t.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
}

/// Export addresses and secrets go only to users who may restore in the
/// export's project; other projects' exports do not exist for a caller;
/// restore-only users export read-only and cannot commit.
#[tokio::test]
async fn export_credentials_only_for_users_who_may_restore() {
    let t = setup();
    let c = t.state.catalog.clone();
    for proj in [1, 2] {
        c.add_restore_point(&arca_catalog::RestorePoint {
            id: format!("e{proj}{}", "c".repeat(62)).parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_name: "vm".into(),
            project_id: ProjectId(proj),
            kind: SourceKind::Image,
            ..Default::default()
        })
        .unwrap();
    }
    let rp = format!("e1{}", "c".repeat(62));
    let user = |name: &str, role: Role, project: i64| {
        token_for(
            &c,
            name,
            &[RoleBinding {
                role,
                project_id: Some(ProjectId(project)),
            }],
        )
    };
    let operator = user("op", Role::Operator, 1);
    let restorer = user("ro", Role::RestoreOnly, 1);
    let auditor = user("au", Role::Auditor, 1);
    let outsider = user("out", Role::RestoreOnly, 2);

    // Restore-only: read-only yes, writable no.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/exports",
            Some(&restorer),
            Some(json!({"restore_point": rp, "writable": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("read-only"), "{v}");
    let (s, ro) = t
        .call(
            Method::POST,
            "/api/v1/exports",
            Some(&restorer),
            Some(json!({"restore_point": rp})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ro}");
    let secret = ro["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 16, "{ro}");
    // Not served yet: the address is there, null (not left out).
    assert!(ro.get("address").is_some_and(Value::is_null), "{ro}");
    assert!(ro.get("commands").is_none(), "{ro}");
    let id = ro["id"].as_i64().unwrap();
    let node = c.datastore(DatastoreId(1)).unwrap().node_id;
    let addr = format!("nbd://h:1/export-{id}-{secret}");
    c.export_active(ExportId(id), node, &addr).unwrap();

    // Who sees what.
    let path = format!("/api/v1/exports/{id}");
    for (who, token) in [
        ("admin", &t.admin),
        ("operator", &operator),
        ("restore-only", &restorer),
    ] {
        let (s, v) = t.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
        assert_eq!(v["address"], addr.as_str(), "{who}");
        assert_eq!(v["secret"], secret.as_str(), "{who}");
        assert!(
            v["commands"][0].as_str().unwrap().contains(&addr),
            "{who}: {v}"
        );
    }
    let (s, v) = t.call(Method::GET, &path, Some(&auditor), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], id);
    assert!(!v.to_string().contains(&secret), "auditor sees {v}");
    assert!(
        v.get("address").is_none() && v.get("commands").is_none(),
        "{v}"
    );
    let (_, v) = t
        .call(Method::GET, "/api/v1/exports", Some(&auditor), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert!(!v.to_string().contains(&secret), "auditor sees {v}");
    // Another project's user: as if it did not exist.
    let (s, v) = t.call(Method::GET, &path, Some(&outsider), None).await;
    let (s2, v2) = t
        .call(Method::GET, "/api/v1/exports/987654", Some(&outsider), None)
        .await;
    assert_eq!(
        (s, s2),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
        "{v}"
    );
    assert_eq!(v["error"], v2["error"]);
    let (_, v) = t
        .call(Method::GET, "/api/v1/exports", Some(&outsider), None)
        .await;
    assert_eq!(v, json!([]));
    for (m, body) in [
        (Method::PATCH, Some(json!({"ttl": "1h"}))),
        (Method::DELETE, None),
    ] {
        let (s, v) = t
            .call(m.clone(), &path, Some(&outsider), body.clone())
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m}: {v}");
        // An auditor may read it but not change it.
        let (s, v) = t.call(m.clone(), &path, Some(&auditor), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m}: {v}");
    }

    // A writable export: operators make and commit it; restore-only
    // users cannot commit it.
    let (s, rw) = t
        .call(
            Method::POST,
            "/api/v1/exports",
            Some(&operator),
            Some(json!({"restore_point": rp, "writable": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rw}");
    let rw_path = format!("/api/v1/exports/{}", rw["id"]);
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("{rw_path}?commit=true"),
            Some(&restorer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("{rw_path}?commit=true"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["commit_task_id"].is_i64(), "{v}");
    // Restore-only users may stop their read-only export.
    let (s, v) = t.call(Method::DELETE, &path, Some(&restorer), None).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("stopped")));
}

/// NFS exports: any restore point kind, read-only, an allow list checked
/// and shown only to users who may restore in the project; no secret.
/// (In process there is no caller address: `allow` must be given.)
#[tokio::test]
async fn nfs_exports_take_any_restore_point_and_hide_their_allow_list() {
    let t = setup();
    let c = t.state.catalog.clone();
    let rp = format!("f1{}", "d".repeat(62));
    c.add_restore_point(&arca_catalog::RestorePoint {
        id: rp.parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_name: "docs".into(),
        project_id: ProjectId(1),
        kind: SourceKind::Files,
        ..Default::default()
    })
    .unwrap();
    let a = Some(t.admin.as_str());
    let post = |body: Value| t.call(Method::POST, "/api/v1/exports", a, Some(body));
    // Refused, with the reason.
    for (body, says) in [
        (json!({"restore_point": rp}), "NFS"),
        (
            json!({"restore_point": rp, "protocol": "nfs", "writable": true}),
            "read-only",
        ),
        (
            json!({"restore_point": rp, "protocol": "iscsi", "allow": ["10.0.0.0/8"]}),
            "NFS",
        ),
        (
            json!({"restore_point": rp, "protocol": "nfs", "allow": ["10.0.0.0/8", "300.1.1.1"]}),
            "300.1.1.1",
        ),
        (json!({"restore_point": rp, "protocol": "nfs"}), "address"),
    ] {
        let (s, v) = post(body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let many: Vec<String> = (0..33).map(|i| format!("10.{i}.0.0/16")).collect();
    let (s, v) = post(json!({"restore_point": rp, "protocol": "nfs", "allow": many})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Made: the blocks written canonically, once each; no secret.
    let (s, e) = post(json!({"restore_point": rp, "protocol": "nfs",
        "allow": ["10.9.9.0/24", "192.168.1.7", "10.9.9.0/24", "::1"]}))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    assert_eq!(
        e["allow"],
        json!(["10.9.9.0/24", "192.168.1.7/32", "::1/128"]),
        "{e}"
    );
    assert!(e.get("secret").is_none(), "{e}");
    let id = e["id"].as_i64().unwrap();
    let addr = format!("nfs://h/docs/{rp}?version=3&nfsport=2049&mountport=2049");
    let node = c.datastore(DatastoreId(1)).unwrap().node_id;
    c.export_active(ExportId(id), node, &addr).unwrap();
    let path = format!("/api/v1/exports/{id}");
    let (_, v) = t.call(Method::GET, &path, a, None).await;
    assert_eq!(v["address"], addr.as_str());
    assert_eq!(v["commands"][0], format!("nfs-ls -R '{addr}'"));
    assert!(
        v["commands"][2]
            .as_str()
            .unwrap()
            .starts_with("mount -t nfs -o ro,vers=3"),
        "{v}"
    );
    // An auditor of the project sees the export, not where or to whom.
    let auditor = token_for(
        &c,
        "au",
        &[RoleBinding {
            role: Role::Auditor,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, v) = t.call(Method::GET, &path, Some(&auditor), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v.get("allow").is_none() && v.get("address").is_none() && v.get("commands").is_none(),
        "{v}"
    );
    // The node is told the allow list.
    let spec = c.export(ExportId(id)).unwrap();
    assert_eq!(spec.allow, ["10.9.9.0/24", "192.168.1.7/32", "::1/128"]);
}

/// Confinement: an admin sets a node's roots; sources and restores outside
/// them get 422 naming the allowed roots; the node's own data is never a
/// source nor a restore target; block devices need the admin's allowance.
#[tokio::test]
async fn confinement_of_sources_and_restores() {
    let t = setup();
    let c = t.state.catalog.clone();
    let a = Some(t.admin.as_str());
    c.set_node_data_dir(NodeId(1), "/var/lib/arca").unwrap();
    let operator = token_for(
        &c,
        "op",
        &[RoleBinding {
            role: Role::Operator,
            project_id: None,
        }],
    );
    let restorer = token_for(
        &c,
        "rest",
        &[RoleBinding {
            role: Role::RestoreOnly,
            project_id: None,
        }],
    );
    c.add_restore_point(&arca_catalog::RestorePoint {
        id: format!("01{}", "c".repeat(62)).parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_name: "s".into(),
        project_id: ProjectId(1),
        kind: SourceKind::Files,
        time: 1,
        ..Default::default()
    })
    .unwrap();
    let rp = format!("/api/v1/restore-points/01{}/restore", "c".repeat(62));
    let patch = |body: Value, token: Option<String>| {
        let t = &t;
        async move {
            t.call(
                Method::PATCH,
                "/api/v1/nodes/1",
                Some(token.as_deref().unwrap_or(&t.admin)),
                Some(body),
            )
            .await
        }
    };
    let source = |path: &str, name: &str| json!({"name": name, "kind": "files", "path": path});
    let unprocessable = |s: StatusCode, v: &Value, needle: &str| {
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(needle), "{needle:?} not in {m:?}");
    };

    // Only an admin changes them; bad roots are 422.
    for token in [&operator, &restorer] {
        let (s, v) = patch(json!({"source_roots": ["/"]}), Some(token.clone())).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    for (body, needle) in [
        (
            json!({"source_roots": ["relative/dir"]}),
            "not an absolute path",
        ),
        (json!({"source_roots": ["/"]}), "/ is not accepted"),
        (json!({"restore_roots": ["/srv/../etc"]}), "'..'"),
        (
            json!({"source_roots": ["/srv"], "colour": 1}),
            "unknown field",
        ),
    ] {
        let (s, v) = patch(body, None).await;
        unprocessable(s, &v, needle);
    }
    let (s, v) = t
        .call(
            Method::PATCH,
            "/api/v1/nodes/99",
            a,
            Some(json!({"allow_block_devices": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // Set, and shown in the node list.
    let (s, v) = patch(
        json!({"source_roots": ["/srv/data/", "/var/lib"], "restore_roots": ["/srv//restore", "/dev/vdb"]}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["source_roots"], json!(["/srv/data", "/var/lib"]));
    let (_, nodes) = t
        .call(Method::GET, "/api/v1/nodes", Some(&restorer), None)
        .await;
    let n = &nodes[0];
    assert_eq!(n["source_roots"], json!(["/srv/data", "/var/lib"]), "{n}");
    assert_eq!(
        n["restore_roots"],
        json!(["/srv/restore", "/dev/vdb"]),
        "{n}"
    );
    assert_eq!(n["effective_restore_roots"], n["restore_roots"], "{n}");
    assert_eq!(n["allow_block_devices"], false, "{n}");
    assert_eq!(n["data_dir"], "/var/lib/arca", "{n}");

    // Sources: under a root, normalised; elsewhere 422 naming the roots.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&operator),
            Some(source("/srv/data//www/", "www")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["path"], "/srv/data/www");
    for (path, needle) in [
        ("/etc/shadow", "allowed: /srv/data, /var/lib"),
        ("/srv/data/../../etc", "'..'"),
        ("/var/lib/arca/catalog.db", "data directory of node local"),
        ("/var/lib", "contains the data directory"),
        ("/nonexistent/ds/packs", "datastore"),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/sources",
                Some(&operator),
                Some(source(path, "bad")),
            )
            .await;
        unprocessable(s, &v, needle);
    }

    // Restores: under a restore root; elsewhere 422 naming the roots.
    let (s, v) = t
        .call(
            Method::POST,
            &rp,
            Some(&restorer),
            Some(json!({"target": "/srv/restore/./a/"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["params"]["target"], "/srv/restore/a");
    assert_eq!(v["params"]["overwrite"], false);
    let (s, v) = t
        .call(
            Method::POST,
            &rp,
            Some(&restorer),
            Some(json!({"target": "/srv/restore/b", "overwrite": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["params"]["overwrite"], true);
    for (target, needle) in [
        ("/etc", "allowed: /srv/restore, /dev/vdb"),
        ("/srv/restore/../../etc", "'..'"),
        ("/var/lib/arca/catalog.db", "data directory"),
        ("relative", "absolute path"),
        ("/dev/vdb", "does not allow restores onto block devices"),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                &rp,
                Some(&restorer),
                Some(json!({"target": target})),
            )
            .await;
        unprocessable(s, &v, needle);
    }
    // Block devices once the admin allows them.
    let (s, v) = patch(json!({"allow_block_devices": true}), None).await;
    assert_eq!(
        (s, &v["allow_block_devices"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    let (s, v) = t
        .call(
            Method::POST,
            &rp,
            Some(&restorer),
            Some(json!({"target": "/dev/vdb"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // Back to the defaults: no source anywhere; restores in <data_dir>/restores.
    let (s, v) = patch(json!({"source_roots": [], "restore_roots": []}), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["effective_restore_roots"],
        json!(["/var/lib/arca/restores"])
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/sources",
            Some(&operator),
            Some(source("/srv/data/x", "x")),
        )
        .await;
    unprocessable(s, &v, "allowed: none");
    let (s, v) = t
        .call(
            Method::POST,
            &rp,
            Some(&restorer),
            Some(json!({"target": "/var/lib/arca/restores/r1"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = t
        .call(
            Method::POST,
            &rp,
            Some(&restorer),
            Some(json!({"target": "/srv/restore/c"})),
        )
        .await;
    unprocessable(s, &v, "allowed: /var/lib/arca/restores");

    // Every change is in the audit log, refused ones too.
    let (_, log) = t
        .call(Method::GET, "/api/v1/audit?limit=1000", a, None)
        .await;
    let sets: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "node.set")
        .collect();
    assert!(
        sets.iter()
            .any(|e| e["result"] == "denied" && e["actor"] == "op"),
        "{sets:?}"
    );
    assert!(
        sets.iter()
            .any(|e| e["result"] == "ok" && e["target"].as_str().unwrap().contains("/srv/data/")),
        "{sets:?}"
    );
    assert!(sets.iter().any(|e| e["result"] == "failed"), "{sets:?}");
}
