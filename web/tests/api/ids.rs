//! Issue 18, the oracle: for a user of project 2, an object that exists
//! only in project 1 must be answered exactly (status and body) as one
//! that exists nowhere. Two worlds are built with the same project-2
//! objects (made first, so with the same ids); only the first also has
//! project 1's. Every request is sent to both and the answers compared.

use arca_catalog::{
    Catalog, DatastoreId, ExportId, ExportProtocol, ExportState, LogLevel, NewExport, NewTask,
    NodeId, ProjectId, RestorePoint, Retention, Role, RoleBinding, SourceId, SourceKind, TaskId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

/// `n` deterministic 64-hex-digit ids (splitmix64).
fn hex_ids(seed: u64, n: usize) -> Vec<String> {
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| (0..4).map(|_| format!("{:016x}", next())).collect())
        .collect()
}

/// Project 1's restore points (only in the first world).
fn p1_restore_points() -> Vec<String> {
    hex_ids(1, 40)
}

/// Project 2's: some share their first 2 to 5 digits with project 1's, so
/// that a prefix can be ambiguous only because of project 1.
fn p2_restore_points() -> Vec<String> {
    let p1 = p1_restore_points();
    let mut out: Vec<String> = hex_ids(2, 8)
        .into_iter()
        .enumerate()
        .map(|(i, tail)| {
            let k = 2 + i % 4;
            format!("{}{}", &p1[i][..k], &tail[k..])
        })
        .collect();
    out.extend(hex_ids(3, 4));
    out
}

/// The objects of one project, by id.
#[derive(Default)]
struct Objects {
    sources: Vec<i64>,
    policies: Vec<i64>,
    tasks: Vec<i64>,
    exports: Vec<i64>,
}

fn populate(c: &Catalog, project: i64, rps: &[String], only: &str) -> Objects {
    let mut o = Objects::default();
    let (pid, ds) = (ProjectId(project), DatastoreId(1));
    // "web", "db" and "gold" exist in both projects; `only` in this one.
    for name in ["web", "db", only] {
        let s = c
            .add_source(
                name,
                SourceKind::Files,
                "/srv",
                NodeId(1),
                pid,
                &[],
                &json!({}),
                None,
            )
            .unwrap();
        o.sources.push(s.id.get());
        let t = c
            .add_task(&NewTask {
                project_id: pid,
                source_id: Some(s.id),
                datastore_id: Some(ds),
                max_attempts: 1,
                created_by: "test".into(),
                ..Default::default()
            })
            .unwrap()
            .unwrap();
        c.add_task_log(t.id, LogLevel::Info, "hello").unwrap();
        o.tasks.push(t.id.get());
    }
    for name in ["gold", only] {
        let p = c
            .add_policy(
                name,
                pid,
                "daily",
                None,
                &Retention::default(),
                ds,
                0,
                None,
                &[],
                None,
            )
            .unwrap();
        o.policies.push(p.id.get());
    }
    for (i, id) in rps.iter().enumerate() {
        let kind = if i % 2 == 0 {
            SourceKind::Image
        } else {
            SourceKind::Files
        };
        c.add_restore_point(&RestorePoint {
            id: id.parse().unwrap(),
            datastore_id: ds,
            source_id: Some(SourceId(o.sources[i % 2])),
            source_name: ["web", "db"][i % 2].into(),
            project_id: pid,
            kind,
            time: 1000 + i as i64,
            ..Default::default()
        })
        .unwrap();
        if i < 6 && kind == SourceKind::Image {
            let e = c
                .add_export(&NewExport {
                    restore_point_id: id.parse().unwrap(),
                    datastore_id: ds,
                    node_id: NodeId(1),
                    project_id: pid,
                    protocol: ExportProtocol::Nbd,
                    writable: false,
                    ttl_seconds: 3600,
                    created_by: "test".into(),
                    allow: Vec::new(),
                })
                .unwrap();
            o.exports.push(e.id.get());
        }
    }
    o
}

struct World {
    t: T,
    /// Operator of project 2.
    op: String,
    /// Auditor of project 2 (reads, may not restore: the restore and
    /// export routes look the restore point up and then answer 403, so
    /// nothing is made that would differ between the worlds).
    aud: String,
    p1: Objects,
}

fn world(with_project_1: bool) -> World {
    let t = setup();
    let c = t.state.catalog.clone();
    let bind = |role| {
        [RoleBinding {
            role,
            project_id: Some(ProjectId(2)),
        }]
    };
    let op = token_for(&c, "op2", &bind(Role::Operator));
    let aud = token_for(&c, "aud2", &bind(Role::Auditor));
    populate(&c, 2, &p2_restore_points(), "two-only");
    let p1 = if with_project_1 {
        populate(&c, 1, &p1_restore_points(), "one-only")
    } else {
        Objects::default()
    };
    World { t, op, aud, p1 }
}

type Request = (Method, String, bool, Option<Value>);

async fn ask(
    w: &World,
    m: &Method,
    uri: &str,
    as_aud: bool,
    body: &Option<Value>,
) -> (StatusCode, Value) {
    let token = if as_aud { &w.aud } else { &w.op };
    w.t.call(m.clone(), uri, Some(token.as_str()), body.clone())
        .await
}

/// Send `reqs` (method, uri, as the auditor?, body) to both worlds; every
/// answer must be the same. Returns the first world's answers.
async fn same_in_both(with: &World, without: &World, reqs: &[Request]) -> Vec<(StatusCode, Value)> {
    let mut diffs = Vec::new();
    let mut out = Vec::new();
    for (m, uri, as_aud, body) in reqs {
        let a = ask(with, m, uri, *as_aud, body).await;
        let b = ask(without, m, uri, *as_aud, body).await;
        if a != b {
            diffs.push(format!(
                "{m} {uri}: with project 1 {} {}, without {} {}",
                a.0, a.1, b.0, b.1
            ));
        }
        out.push(a);
    }
    assert!(
        diffs.is_empty(),
        "{} of {} answers tell project 1's objects from missing ones:\n{}",
        diffs.len(),
        reqs.len(),
        diffs.join("\n")
    );
    out
}

#[tokio::test]
async fn another_project_s_restore_points_answer_as_missing_ones() {
    let (a, b) = (world(true), world(false));
    let p1 = p1_restore_points();
    let p2 = p2_restore_points();
    let mut asked: Vec<String> = (0..16).map(|d| format!("{d:x}")).collect();
    asked.extend(["A", "F", "ab", "00"].map(String::from));
    for id in p1.iter().chain(&p2) {
        asked.extend((1..=6).map(|k| id[..k].to_string()));
        asked.push(id.clone());
        asked.push(id.to_uppercase());
    }
    for id in hex_ids(99, 6) {
        asked.push(id[..6].to_string());
        asked.push(id);
    }
    asked.push("g".into());
    asked.push("a".repeat(65));
    asked.sort();
    asked.dedup();
    let mut reqs: Vec<Request> = Vec::new();
    for q in &asked {
        reqs.push((
            Method::GET,
            format!("/api/v1/restore-points/{q}"),
            false,
            None,
        ));
        reqs.push((
            Method::POST,
            format!("/api/v1/restore-points/{q}/restore"),
            true,
            Some(json!({"target": "/tmp/r"})),
        ));
        reqs.push((
            Method::POST,
            "/api/v1/exports".into(),
            true,
            Some(json!({"restore_point": q})),
        ));
    }
    let answers = same_in_both(&a, &b, &reqs).await;
    // Not vacuous: project 1's restore points exist (the admin reads
    // them), project 2's user gets 404 for every one of them, and some
    // prefixes matched project 2's restore points (200) or two of them.
    for id in &p1 {
        let uri = format!("/api/v1/restore-points/{id}");
        let (s, _) = a.t.call(Method::GET, &uri, Some(&a.t.admin), None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = a.t.call(Method::GET, &uri, Some(&a.op), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(v["message"], format!("restore point {id} not found"));
    }
    let gets = || answers.iter().step_by(3);
    assert!(gets().filter(|(s, _)| *s == StatusCode::OK).count() >= p2.len());
    assert!(gets().any(|(s, _)| *s == StatusCode::BAD_REQUEST));
    // A prefix shared by a restore point of each project is not ambiguous
    // for project 2's user: it is project 2's.
    let shared = &p2[3][..5];
    assert!(p1[3].starts_with(shared));
    let (s, _) =
        a.t.call(
            Method::GET,
            &format!("/api/v1/restore-points/{shared}"),
            Some(&a.t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "ambiguous for the admin");
    let (s, v) =
        a.t.call(
            Method::GET,
            &format!("/api/v1/restore-points/{shared}"),
            Some(&a.op),
            None,
        )
        .await;
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::OK, Some(p2[3].as_str()))
    );
}

#[tokio::test]
async fn another_project_s_objects_by_id_answer_as_missing_ones() {
    let (a, b) = (world(true), world(false));
    let o = &a.p1;
    let beyond = |ids: &[i64]| {
        let max = ids.iter().max().copied().unwrap_or(0);
        vec![max + 1, max + 1000, 987_654_321]
    };
    let mut reqs: Vec<Request> = Vec::new();
    let mut push = |m: Method, uri: String, body: Option<Value>| {
        reqs.push((m, uri, false, body));
    };
    for id in o.sources.iter().copied().chain(beyond(&o.sources)) {
        push(Method::GET, format!("/api/v1/sources/{id}"), None);
        push(Method::POST, format!("/api/v1/sources/{id}/backup"), None);
        push(Method::DELETE, format!("/api/v1/sources/{id}"), None);
    }
    for id in o.policies.iter().copied().chain(beyond(&o.policies)) {
        push(Method::GET, format!("/api/v1/policies/{id}"), None);
        push(Method::DELETE, format!("/api/v1/policies/{id}"), None);
    }
    for id in o.tasks.iter().copied().chain(beyond(&o.tasks)) {
        push(Method::GET, format!("/api/v1/tasks/{id}"), None);
        push(Method::GET, format!("/api/v1/tasks/{id}/logs"), None);
        push(Method::POST, format!("/api/v1/tasks/{id}/cancel"), None);
    }
    for id in o.exports.iter().copied().chain(beyond(&o.exports)) {
        push(Method::GET, format!("/api/v1/exports/{id}"), None);
        push(
            Method::PATCH,
            format!("/api/v1/exports/{id}"),
            Some(json!({"ttl": "1h"})),
        );
        push(Method::DELETE, format!("/api/v1/exports/{id}"), None);
    }
    let n = reqs.len();
    let answers = same_in_both(&a, &b, &reqs).await;
    assert!(n > 40, "{n}");
    for ((m, uri, ..), (s, v)) in reqs.iter().zip(&answers) {
        assert_eq!(*s, StatusCode::NOT_FOUND, "{m} {uri}: {v}");
        assert_eq!(v["error"], "not_found");
    }
    // They exist, and were not touched.
    let c = &a.t.state.catalog;
    for id in &o.sources {
        assert_eq!(c.source(SourceId(*id)).unwrap().project_id, ProjectId(1));
    }
    for id in &o.tasks {
        assert_eq!(
            c.task(TaskId(*id)).unwrap().state,
            arca_catalog::TaskState::Queued
        );
    }
    for id in &o.exports {
        assert_eq!(
            c.export(ExportId(*id)).unwrap().state,
            ExportState::Starting
        );
    }
}

#[tokio::test]
async fn names_are_per_project_and_tell_nothing_of_other_projects() {
    let (a, b) = (world(true), world(false));
    let src = |name: &str, policy: Option<&str>| json!({"name": name, "kind": "files", "path": "/srv", "project": 2, "policy": policy});
    let pol = |name: &str| json!({"name": name, "schedule": "daily", "project": 2});
    let reqs: Vec<Request> = vec![
        // A policy of project 1 is unknown to a source of project 2.
        (
            Method::POST,
            "/api/v1/sources".into(),
            false,
            Some(src("new", Some("one-only"))),
        ),
        // Duplicates inside project 2: 409, naming project 2 only.
        (
            Method::POST,
            "/api/v1/sources".into(),
            false,
            Some(src("web", None)),
        ),
        (
            Method::POST,
            "/api/v1/policies".into(),
            false,
            Some(pol("gold")),
        ),
    ];
    let answers = same_in_both(&a, &b, &reqs).await;
    assert_eq!(
        answers[0].0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answers[0].1
    );
    assert_eq!(
        answers[0].1["message"],
        "unknown policy \"one-only\" in project 2"
    );
    for (s, v) in &answers[1..] {
        assert_eq!(*s, StatusCode::CONFLICT, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("in project 2"),
            "{v}"
        );
    }
    // Names used only in project 1 are free in project 2.
    for w in [&a, &b] {
        let (s, v) =
            w.t.call(
                Method::POST,
                "/api/v1/sources",
                Some(&w.op),
                Some(src("one-only", Some("two-only"))),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["project_id"], 2);
        let (s, v) =
            w.t.call(
                Method::POST,
                "/api/v1/policies",
                Some(&w.op),
                Some(pol("one-only")),
            )
            .await;
        assert_eq!(
            (s, v["project_id"].as_i64()),
            (StatusCode::CREATED, Some(2)),
            "{v}"
        );
    }
    // The admin sees "web" twice, once per project.
    let (_, v) =
        a.t.call(Method::GET, "/api/v1/sources", Some(&a.t.admin), None)
            .await;
    let mut webs: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "web")
        .map(|s| s["project_id"].as_i64().unwrap())
        .collect();
    webs.sort();
    assert_eq!(webs, vec![1, 2]);
}
