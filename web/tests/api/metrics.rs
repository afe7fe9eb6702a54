//! /metrics per source: the newest restore point's time and size, and
//! whether the policy's RPO is met.

use arca_catalog::{
    DatastoreId, NodeId, PolicyId, ProjectId, RestorePoint, Retention, SourceKind, TokenKind,
    UserId,
};
use arca_web::auth;
use axum::http::{Method, StatusCode};

use super::setup;

fn rp(hex: char, source: &arca_catalog::Source, time: i64, bytes: i64) -> RestorePoint {
    RestorePoint {
        id: hex.to_string().repeat(64).parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_id: Some(source.id),
        source_name: source.name.clone(),
        project_id: source.project_id,
        kind: SourceKind::Files,
        time,
        bytes_total: bytes,
        ..Default::default()
    }
}

#[tokio::test]
async fn metrics_show_each_source_s_last_backup_and_rpo() {
    let t = setup();
    let c = &t.state.catalog;
    let now = arca_catalog::now();
    let policy = |name: &str, rpo: Option<i64>| {
        c.add_policy(
            name,
            ProjectId(1),
            "daily",
            None,
            &Retention::default(),
            DatastoreId(1),
            0,
            None,
            &[],
            rpo,
        )
        .unwrap()
        .id
    };
    let hourly = policy("hourly", Some(3600));
    let no_rpo = policy("no-rpo", None);
    let add = |name: &str, project: i64, p: Option<PolicyId>| {
        c.add_source(
            name,
            SourceKind::Files,
            &format!("/srv/{name}"),
            NodeId(1),
            ProjectId(project),
            &[],
            &serde_json::json!({}),
            p,
        )
        .unwrap()
    };
    let fresh = add("fresh", 1, Some(hourly));
    let stale = add("stale", 2, Some(hourly));
    let plain = add("plain", 1, Some(no_rpo));
    let _never = add("never", 1, None);
    // Two restore points of `fresh`: the newest counts.
    c.add_restore_point(&rp('a', &fresh, now - 7200, 100))
        .unwrap();
    c.add_restore_point(&rp('b', &fresh, now - 60, 2048))
        .unwrap();
    c.add_restore_point(&rp('c', &stale, now - 7200, 512))
        .unwrap();
    c.add_restore_point(&rp('d', &plain, 1_000, 7)).unwrap();

    let (secret, hash) = auth::new_secret();
    c.add_token(Some(UserId(1)), None, "scrape", TokenKind::Api, &hash, None)
        .unwrap();
    let (s, m) = t.call(Method::GET, "/metrics", Some(&secret), None).await;
    assert_eq!(s, StatusCode::OK);
    let m = m.as_str().unwrap();
    let lines: Vec<&str> = m.lines().collect();
    for want in [
        "# TYPE arca_source_last_success_timestamp_seconds gauge".to_string(),
        format!(
            "arca_source_last_success_timestamp_seconds{{source=\"fresh\",project=\"default\"}} {}",
            now - 60
        ),
        format!(
            "arca_source_last_success_timestamp_seconds{{source=\"stale\",project=\"other\"}} {}",
            now - 7200
        ),
        "arca_source_last_success_timestamp_seconds{source=\"plain\",project=\"default\"} 1000"
            .to_string(),
        "# TYPE arca_source_last_restore_point_bytes gauge".to_string(),
        "arca_source_last_restore_point_bytes{source=\"fresh\",project=\"default\"} 2048".to_string(),
        "arca_source_last_restore_point_bytes{source=\"stale\",project=\"other\"} 512".to_string(),
        "# HELP arca_source_rpo_met Whether a source's newest restore point is within its policy's RPO (1) or not (0).".to_string(),
        "arca_source_rpo_met{source=\"fresh\",project=\"default\"} 1".to_string(),
        "arca_source_rpo_met{source=\"stale\",project=\"other\"} 0".to_string(),
    ] {
        assert!(lines.contains(&want.as_str()), "no line {want:?} in\n{m}");
    }
    // No restore point: no time or size; no RPO: no RPO series.
    assert!(!m.contains("source=\"never\""), "{m}");
    assert!(!m.contains("arca_source_rpo_met{source=\"plain\""), "{m}");
}
