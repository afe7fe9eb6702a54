//! Prune on demand: `POST /api/v1/policies/{id}/prune` queues one prune
//! task per source of the policy, with its retention, and answers 202
//! with them; 409 while one is queued or running, and for a policy that
//! keeps everything; audited. (404 and 400 for bad ids: bad_input.rs;
//! who may: rbac.rs; what the node then removes: tests/server/preview.rs.)

use arca_catalog::{DatastoreId, NodeId, PolicyId, ProjectId, Retention, SourceKind};
use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{setup, T};

fn policy(t: &T, name: &str, keep_last: u32) -> PolicyId {
    let retention = Retention {
        keep_last,
        ..Default::default()
    };
    t.state
        .catalog
        .add_policy(
            name,
            ProjectId(1),
            "daily",
            None,
            &retention,
            DatastoreId(1),
            3,
            None,
            &[],
            None,
        )
        .unwrap()
        .id
}

fn source(t: &T, name: &str, policy: PolicyId) {
    t.state
        .catalog
        .add_source(
            name,
            SourceKind::Files,
            "/srv",
            NodeId(1),
            ProjectId(1),
            &[],
            &json!({}),
            Some(policy),
        )
        .unwrap();
}

#[tokio::test]
async fn prune_queues_a_task_per_source_once() {
    let t = setup();
    let a = Some(t.admin.as_str());
    let gold = policy(&t, "gold", 2);
    source(&t, "web", gold);
    source(&t, "db", gold);
    let other = policy(&t, "other", 1);
    source(&t, "mail", other);
    let path = format!("/api/v1/policies/{gold}/prune");

    let (s, v) = t.call(Method::POST, &path, a, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let tasks = v.as_array().unwrap();
    // One per source of the policy, by source name; the policy's
    // retention, priority and datastore.
    let sources: Vec<_> = tasks
        .iter()
        .map(|t| t["params"]["source"].clone())
        .collect();
    assert_eq!(sources, [json!("db"), json!("web")], "{v}");
    for task in tasks {
        assert_eq!(
            (&task["kind"], &task["state"], &task["policy_id"]),
            (&json!("prune"), &json!("queued"), &json!(gold.get())),
            "{task}"
        );
        assert_eq!(task["params"]["retention"]["keep_last"], 2, "{task}");
        assert_eq!(
            (&task["datastore_id"], &task["node_id"], &task["priority"]),
            (&json!(1), &json!(1), &json!(3))
        );
        assert_eq!(task["created_by"], "admin");
        assert!(task["source_id"].is_i64(), "{task}");
    }

    // Again while they are queued: 409 naming one; nothing more queued.
    let (s, v) = t.call(Method::POST, &path, a, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("already queued or running")
            && msg.contains(&format!("task {}", tasks[0]["id"])),
        "{msg}"
    );
    let (_, all) = t.call(Method::GET, "/api/v1/tasks", a, None).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    // Another policy's prune is not held up by it.
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/policies/{other}/prune"),
            a,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    // Once they ended, it may run again.
    for task in tasks {
        let id = arca_catalog::TaskId(task["id"].as_i64().unwrap());
        t.state.catalog.cancel_task(id).unwrap();
    }
    let (s, v) = t.call(Method::POST, &path, a, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // Audited, as every change.
    let (_, log) = t.call(Method::GET, "/api/v1/audit", a, None).await;
    let prunes: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy.prune")
        .map(|e| (e["target"].clone(), e["result"].clone()))
        .collect();
    assert_eq!(prunes.len(), 4, "{log}");
    assert!(prunes.contains(&(json!(gold.to_string()), json!("failed"))));
}

#[tokio::test]
async fn nothing_to_prune() {
    let t = setup();
    let a = Some(t.admin.as_str());
    // No source: nothing queued.
    let lonely = policy(&t, "lonely", 1);
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/policies/{lonely}/prune"),
            a,
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::ACCEPTED, json!([])));
    // No retention rule: it keeps everything; a prune would refuse.
    let all = policy(&t, "keep-all", 0);
    source(&t, "web", all);
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/policies/{all}/prune"),
            a,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("no retention rule"),
        "{v}"
    );
}
