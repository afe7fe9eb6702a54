//! The retention preview (`GET /api/v1/policies/{id}/preview`), a
//! policy's `next_run`, and the `project` filter of restore points.

use arca_catalog::{
    DatastoreId, ExportProtocol, NewExport, NodeId, ProjectId, RestorePoint, Role, RoleBinding,
    SourceId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

/// 2026-11-07 10:00:00 UTC.
const T0: i64 = 1_794_045_600;
const DAY: i64 = 86_400;

fn rp_id(c: char) -> String {
    c.to_string().repeat(64)
}

fn add_rp(
    t: &T,
    id: &str,
    source: Option<SourceId>,
    project: ProjectId,
    time: i64,
    protected: bool,
) {
    t.state
        .catalog
        .add_restore_point(&RestorePoint {
            id: id.parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_id: source,
            source_name: "web".into(),
            project_id: project,
            time,
            ..Default::default()
        })
        .unwrap();
    if protected {
        t.state
            .catalog
            .set_restore_point_protection(id.parse().unwrap(), Some(true), None)
            .unwrap();
    }
}

async fn post(t: &T, path: &str, body: Value) -> Value {
    let (s, v) = t.call(Method::POST, path, Some(&t.admin), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn get(t: &T, path: &str, token: &str) -> (StatusCode, Value) {
    t.call(Method::GET, path, Some(token), None).await
}

#[tokio::test]
async fn preview_says_what_goes_and_why() {
    let t = setup();
    let pol = post(
        &t,
        "/api/v1/policies",
        json!({"name": "p", "schedule": "daily", "retention": {"keep_last": 2}}),
    )
    .await;
    let pid = pol["id"].as_i64().unwrap();
    let src = post(
        &t,
        "/api/v1/sources",
        json!({"name": "web", "kind": "files", "path": "/srv/web", "policy": "p"}),
    )
    .await;
    let sid = SourceId(src["id"].as_i64().unwrap());
    // Oldest first: a, b, c, d (protected), e (exported, oldest of all).
    add_rp(&t, &rp_id('e'), Some(sid), ProjectId(1), T0 - DAY, false);
    add_rp(&t, &rp_id('a'), Some(sid), ProjectId(1), T0, false);
    add_rp(&t, &rp_id('b'), Some(sid), ProjectId(1), T0 + DAY, false);
    add_rp(
        &t,
        &rp_id('c'),
        Some(sid),
        ProjectId(1),
        T0 + 2 * DAY,
        false,
    );
    add_rp(&t, &rp_id('d'), Some(sid), ProjectId(1), T0 + 3 * DAY, true);
    t.state
        .catalog
        .add_export(&NewExport {
            restore_point_id: rp_id('e').parse().unwrap(),
            datastore_id: DatastoreId(1),
            node_id: NodeId(1),
            project_id: ProjectId(1),
            protocol: ExportProtocol::Nbd,
            writable: false,
            ttl_seconds: 3600,
            created_by: "test".into(),
            allow: Vec::new(),
        })
        .unwrap();

    let (s, v) = get(&t, &format!("/api/v1/policies/{pid}/preview"), &t.admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["policy_id"], pid);
    assert_eq!(v["retention"]["keep_last"], 2);
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{v}");
    let s0 = &sources[0];
    assert_eq!(
        (&s0["source_name"], &s0["source_id"], &s0["datastore_id"]),
        (&json!("web"), &json!(sid.0), &json!(1))
    );
    assert_eq!((&s0["kept"], &s0["removed"]), (&json!(4), &json!(1)));
    let rows: Vec<(String, bool, Value)> = s0["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap()[..1].to_string(),
                r["keep"].as_bool().unwrap(),
                r["reasons"].clone(),
            )
        })
        .collect();
    // Newest first; the protected one does not count against keep_last.
    assert_eq!(
        rows,
        vec![
            ("d".into(), true, json!(["protected"])),
            ("c".into(), true, json!(["last 1"])),
            ("b".into(), true, json!(["last 2"])),
            ("a".into(), false, json!([])),
            ("e".into(), true, json!(["exported"])),
        ]
    );

    // Another project's member: 404, as for a policy that does not exist.
    let other = token_for(
        &t.state.catalog,
        "opr-2",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(2)),
        }],
    );
    let (s, v) = get(&t, &format!("/api/v1/policies/{pid}/preview"), &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = get(&t, "/api/v1/policies/9999/preview", &t.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&t, "/api/v1/policies/abc/preview", &t.admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn policies_tell_their_next_run() {
    let t = setup();
    let pol = post(
        &t,
        "/api/v1/policies",
        json!({"name": "n", "schedule": "every 1h"}),
    )
    .await;
    let now = arca_catalog::now();
    let next = pol["next_run"].as_i64().unwrap();
    assert!(
        next > now && next <= now + 3600 && next % 3600 == 0,
        "{pol}"
    );
    let id = pol["id"].as_i64().unwrap();
    let (_, listed) = get(&t, "/api/v1/policies", &t.admin).await;
    assert_eq!(listed[0]["next_run"], next);
    let (s, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/policies/{id}"),
            Some(&t.admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next_run"], Value::Null);
    let (_, v) = get(&t, &format!("/api/v1/policies/{id}"), &t.admin).await;
    assert_eq!(v["next_run"], Value::Null);
}

#[tokio::test]
async fn restore_points_of_one_project() {
    let t = setup();
    add_rp(&t, &rp_id('1'), None, ProjectId(1), T0, false);
    add_rp(&t, &rp_id('2'), None, ProjectId(2), T0, false);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap()[..1].to_string())
            .collect()
    };
    let (s, all) = get(&t, "/api/v1/restore-points", &t.admin).await;
    assert_eq!((s, ids(&all).len()), (StatusCode::OK, 2));
    for q in ["other", "2"] {
        let (s, v) = get(&t, &format!("/api/v1/restore-points?project={q}"), &t.admin).await;
        assert_eq!((s, ids(&v)), (StatusCode::OK, vec!["2".to_string()]), "{q}");
    }
    let (s, v) = get(&t, "/api/v1/restore-points?project=default", &t.admin).await;
    assert_eq!((s, ids(&v)), (StatusCode::OK, vec!["1".to_string()]));
    // Unknown, and not readable by the caller: the same 404.
    let (s, unknown) = get(&t, "/api/v1/restore-points?project=nope", &t.admin).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}");
    let own = token_for(
        &t.state.catalog,
        "aud-1",
        &[RoleBinding {
            role: Role::Auditor,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, hidden) = get(&t, "/api/v1/restore-points?project=other", &own).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{hidden}");
    assert_eq!(hidden["error"], unknown["error"]);
    let (s, v) = get(&t, "/api/v1/restore-points?project=1", &own).await;
    assert_eq!((s, ids(&v)), (StatusCode::OK, vec!["1".to_string()]));
}
