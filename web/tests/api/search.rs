//! `GET /api/v1/restore-points/search`: bad input, visibility, order,
//! the limit and the restore points that cannot be searched, against the
//! [`super::browse::Fake`] datastore (every restore point holds `dir`
//! with `a`, `b` and `c`).

use arca_catalog::SourceKind;
use arca_catalog::{self as catalog, DatastoreId, ProjectId, RestorePoint, Role, RoleBinding};
use arca_model::api;
use axum::http::{Method, StatusCode};

use super::{setup, token_for, AppState};

const S: &str = "/api/v1/restore-points/search";

fn add(c: &catalog::Catalog, first: &str, project: i64, time: i64, source: &str, kind: SourceKind) {
    c.add_restore_point(&RestorePoint {
        id: format!("{first}{}", "d".repeat(62)).parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_name: source.into(),
        project_id: ProjectId(project),
        kind,
        time,
        ..Default::default()
    })
    .unwrap();
}

#[tokio::test]
async fn bad_patterns_and_limits_are_400_naming_the_problem() {
    let t = setup();
    let a = Some(t.admin.as_str());
    for (q, says) in [
        ("", "pattern is empty"),
        ("?pattern=", "pattern is empty"),
        ("?pattern=%2F", "pattern is empty"),
        ("?pattern=%5Babc", "not a glob"),
        ("?pattern=a**b", "not a glob"),
        ("?pattern=a%00b", "NUL"),
        ("?pattern=*&limit=0", "limit"),
        ("?pattern=*&limit=10001", "limit"),
        ("?pattern=*&since=10&until=5", "since"),
    ] {
        let (s, v) = t.call(Method::GET, &format!("{S}{q}"), a, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(says), "{q}: {m}");
    }
    for q in [
        "?pattern=*&limit=x",
        "?pattern=*&what=1",
        "?pattern=*&ignore_case=maybe",
        "?pattern=*&images=maybe",
    ] {
        let (s, v) = t.call(Method::GET, &format!("{S}{q}"), a, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    // Without a datastore reader: refused, not a 500.
    let admin = t.admin.clone();
    let mut t = t;
    t.state = AppState::new(t.state.catalog.clone());
    let (s, v) = t
        .call(Method::GET, &format!("{S}?pattern=*"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn matches_come_newest_first_from_the_caller_s_projects_only() {
    let t = setup();
    let c = &t.state.catalog;
    add(c, "01", 1, 100, "web", SourceKind::Files);
    add(c, "02", 1, 300, "web", SourceKind::Files);
    add(c, "03", 1, 200, "db", SourceKind::Files);
    add(c, "04", 1, 400, "vm", SourceKind::Image);
    add(c, "05", 2, 500, "secret", SourceKind::Files);
    let a = Some(t.admin.as_str());
    let (s, v) = t
        .call(Method::GET, &format!("{S}?pattern=b"), a, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r: api::SearchResult = serde_json::from_value(v).unwrap();
    let got: Vec<_> = r
        .matches
        .iter()
        .map(|m| {
            (
                m.restore_point.to_hex()[..2].to_string(),
                m.time,
                m.source.as_str(),
                m.path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("05".to_string(), 500, "secret", "dir/b"),
            ("02".to_string(), 300, "web", "dir/b"),
            ("03".to_string(), 200, "db", "dir/b"),
            ("01".to_string(), 100, "web", "dir/b"),
        ]
    );
    assert!(!r.truncated);
    assert_eq!(r.searched, 4);
    assert_eq!(r.skipped.len(), 1);
    assert!(r.skipped[0].restore_point.to_hex().starts_with("04"));
    assert!(r.skipped[0].reason.contains("image"), "{:?}", r.skipped);
    assert!(
        r.skipped[0].reason.contains("images=true"),
        "{:?}",
        r.skipped
    );
    // Asked to, the image is searched too (its file tree, by the Browse).
    let (s, v) = t
        .call(Method::GET, &format!("{S}?pattern=b&images=true"), a, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r: api::SearchResult = serde_json::from_value(v).unwrap();
    assert_eq!(r.searched, 5, "{r:?}");
    assert!(r.skipped.is_empty(), "{r:?}");
    assert_eq!(r.matches[0].restore_point.to_hex()[..2], *"05");
    assert_eq!(r.matches[1].restore_point.to_hex()[..2], *"04");

    // An operator of project 1 never sees project 2's restore points.
    let op = token_for(
        c,
        "op",
        &[RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, v) = t
        .call(Method::GET, &format!("{S}?pattern=*"), Some(&op), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r: api::SearchResult = serde_json::from_value(v).unwrap();
    assert_eq!(r.matches.len(), 3 * 4);
    assert!(r.matches.iter().all(|m| m.source != "secret"), "{r:?}");
    assert!(r
        .skipped
        .iter()
        .all(|s| !s.restore_point.to_hex().starts_with("05")));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("{S}?pattern=*&source=secret"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(v["matches"], serde_json::json!([]));
    assert_eq!(v["searched"], 0);
}

#[tokio::test]
async fn filters_case_and_the_limit() {
    let t = setup();
    let c = &t.state.catalog;
    add(c, "01", 1, 100, "web", SourceKind::Files);
    add(c, "02", 1, 300, "web", SourceKind::Files);
    add(c, "03", 1, 200, "db", SourceKind::Files);
    let a = Some(t.admin.as_str());
    let get = |q: &str| {
        let uri = format!("{S}?{q}");
        let t = &t;
        async move {
            let (s, v) = t.call(Method::GET, &uri, a, None).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
            serde_json::from_value::<api::SearchResult>(v).unwrap()
        }
    };
    // An unknown source: nothing searched, nothing found.
    let r = get("pattern=*&source=nope").await;
    assert!(r.matches.is_empty() && r.skipped.is_empty() && r.searched == 0);
    let r = get("pattern=*&source=web&since=200").await;
    assert_eq!(r.matches.len(), 4);
    assert!(r.matches.iter().all(|m| m.time == 300));
    let r = get("pattern=*&until=150").await;
    assert!(r.matches.iter().all(|m| m.time == 100), "{r:?}");
    // A path pattern, and case.
    let r = get("pattern=dir/[ab]").await;
    assert_eq!(r.matches.len(), 6);
    assert!(get("pattern=DIR/A").await.matches.is_empty());
    assert_eq!(get("pattern=DIR/A&ignore_case=true").await.matches.len(), 3);
    // The limit cuts the list and says so; exactly the limit does not.
    let r = get("pattern=*&limit=5").await;
    assert_eq!(r.matches.len(), 5);
    assert!(r.truncated);
    assert!(r.matches[..4].iter().all(|m| m.time == 300));
    assert_eq!(r.matches[4].time, 200);
    let r = get("pattern=*&limit=12").await;
    assert_eq!(r.matches.len(), 12);
    assert!(!r.truncated);
}
