//! The audit log's filters: actor, action (exact or a prefix ending in
//! `.`), result, since/until, paged; bad filters are 4xx.

use arca_catalog::AuditResult;
use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::{setup, T};

async fn list(t: &T, q: &str) -> (StatusCode, Value) {
    t.call(
        Method::GET,
        &format!("/api/v1/audit{q}"),
        Some(&t.admin),
        None,
    )
    .await
}

fn actions(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["result"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_audit_log_is_filtered() {
    let t = setup();
    let c = &t.state.catalog;
    for (actor, action, result) in [
        ("ann", "user.add", AuditResult::Ok),
        ("ann", "user.delete", AuditResult::Failed),
        ("bob", "user.add", AuditResult::Denied),
        ("bob", "source.add", AuditResult::Ok),
    ] {
        c.audit(actor, action, "x", "127.0.0.1", result, "")
            .unwrap();
    }
    let (s, v) = list(&t, "?action=user.add").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(actions(&v), ["bob user.add denied", "ann user.add ok"]);
    let (_, v) = list(&t, "?action=user.").await;
    assert_eq!(
        actions(&v),
        [
            "bob user.add denied",
            "ann user.delete failed",
            "ann user.add ok"
        ]
    );
    let (_, v) = list(&t, "?actor=bob&result=ok").await;
    assert_eq!(actions(&v), ["bob source.add ok"]);
    let (_, v) = list(&t, "?action=user.&limit=1&offset=1").await;
    assert_eq!(actions(&v), ["ann user.delete failed"]);
    let now = arca_catalog::now();
    let (_, v) = list(
        &t,
        &format!("?actor=ann&since={}&until={}", now - 60, now + 60),
    )
    .await;
    assert_eq!(actions(&v).len(), 2);
    let (_, v) = list(&t, &format!("?actor=ann&since={}", now + 60)).await;
    assert_eq!(actions(&v).len(), 0);

    // Bad filters: a clear 4xx, never a 500.
    let (s, v) = list(&t, "?since=20&until=10").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("since"), "{v}");
    let (s, v) = list(&t, "?result=maybe").await;
    assert!(s.is_client_error(), "{s} {v}");
    let (s, v) = list(&t, "?actor=").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = list(&t, "?who=ann").await;
    assert!(s.is_client_error(), "{s} {v}");
}
