//! Reports (`GET /api/v1/reports/{protection,storage,tasks}`) with numbers
//! made in the catalog and checked by hand, their CSV, bad input; and
//! retrying tasks (`POST /api/v1/tasks/{id}/retry`). Who may: rbac.rs.

use arca_catalog::{
    DatastoreId, NodeId, PolicyId, ProjectId, RestorePoint, RestorePointState, Role, RoleBinding,
    SourceId, SourceKind, TaskId,
};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{setup, token_for, T};

const H: i64 = 3600;

fn policy(t: &T, name: &str, rpo: Option<i64>) -> PolicyId {
    t.state
        .catalog
        .add_policy(
            name,
            ProjectId(1),
            "daily",
            None,
            &Default::default(),
            DatastoreId(1),
            0,
            None,
            &[],
            rpo,
        )
        .unwrap()
        .id
}

fn source(t: &T, name: &str, policy: Option<PolicyId>) -> SourceId {
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
            policy,
        )
        .unwrap()
        .id
}

fn restore_point(t: &T, n: u8, source: SourceId, name: &str, time: i64, state: RestorePointState) {
    t.state
        .catalog
        .add_restore_point(&RestorePoint {
            id: format!("{n:02x}").repeat(32).parse().unwrap(),
            datastore_id: DatastoreId(1),
            source_id: Some(source),
            source_name: name.into(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time,
            bytes_total: 1000,
            state,
            ..Default::default()
        })
        .unwrap();
}

/// A backup of `source` leased at `start` that ends now: succeeded (with
/// the restore point id `snapshot` and `bytes` done) or failed.
fn backup_run(t: &T, source: SourceId, start: i64, bytes: i64, ok: Option<&str>) -> TaskId {
    let c = &t.state.catalog;
    let id = c
        .add_task(&arca_catalog::NewTask {
            source_id: Some(source),
            datastore_id: Some(DatastoreId(1)),
            node_id: Some(NodeId(1)),
            max_attempts: 1,
            not_before: start,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    let leased = c.lease_task(NodeId(1), start, 60).unwrap().unwrap();
    assert_eq!(leased.id, id);
    c.task_progress(id, bytes, bytes, start + 60).unwrap();
    let outcome = match ok {
        Some(snapshot) => Ok(json!({"snapshot": snapshot})),
        None => Err("no such directory".to_string()),
    };
    c.finish_task(id, outcome, false, None).unwrap();
    id
}

/// GET `uri` as the admin: status, content type, content disposition and
/// the body as text.
async fn get_raw(t: &T, uri: &str) -> (StatusCode, String, String, String) {
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Body::empty())
        .unwrap();
    let resp = arca_web::app(t.state.clone()).oneshot(req).await.unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (ct, cd) = (h("content-type"), h("content-disposition"));
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, ct, cd, String::from_utf8(body.to_vec()).unwrap())
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn protection_report_compliance_status_and_csv() {
    let t = setup();
    let c = t.state.catalog.clone();
    let gold = policy(&t, "gold", Some(6 * H));
    let silver = policy(&t, "silver", Some(7 * 24 * H));
    let web = source(&t, "web", Some(gold));
    source(&t, "db", Some(gold));
    let api = source(&t, "api", Some(silver));
    // A name from an imported catalog: a formula, a comma and quotes.
    source(&t, "=cmd,\"x\"", None);
    // Everything was made 30 days ago.
    c.backdate_for_bench(30 * 24 * H).unwrap();
    let now = arca_catalog::now();
    // The period: one day that ended a day ago.
    let t0 = now - 2 * 24 * H;
    let (from, to) = (t0, t0 + 24 * H);
    // web (RPO 6 h): a restore point 2 h before the period covers its
    // first 4 h; those of 10 h and 13 h cover 10 h to 19 h; a damaged one
    // at 20 h does not count; a backup at 22 h whose restore point was
    // pruned since covers 22 h to 24 h. 4 + 9 + 2 = 15 h of 24.
    restore_point(&t, 1, web, "web", t0 - 2 * H, RestorePointState::Ok);
    restore_point(&t, 2, web, "web", t0 + 10 * H, RestorePointState::Ok);
    restore_point(&t, 3, web, "web", t0 + 13 * H, RestorePointState::Ok);
    restore_point(&t, 4, web, "web", t0 + 20 * H, RestorePointState::Damaged);
    backup_run(&t, web, t0 + 22 * H, 1, Some(&"ee".repeat(32)));
    // api (RPO 7 days): one restore point 1 h into the period: 23 h of 24.
    restore_point(&t, 5, api, "api", t0 + H, RestorePointState::Ok);

    let uri = format!("/api/v1/reports/protection?from={from}&to={to}");
    let (s, r) = t.call(Method::GET, &uri, Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["from"].as_i64(), r["to"].as_i64()),
        (Some(from), Some(to))
    );
    let rows = r["sources"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["source"].as_str().unwrap()).collect();
    // Problems first: the RPO missed, never backed up, no policy, ok.
    assert_eq!(names, ["web", "db", "=cmd,\"x\"", "api"]);
    let status: Vec<&str> = rows.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["rpo_missed", "never_backed_up", "no_policy", "ok"]);
    assert!(close(&rows[0]["compliance"], 15.0 / 24.0), "{}", rows[0]);
    assert!(close(&rows[1]["compliance"], 0.0), "{}", rows[1]);
    assert!(rows[2]["compliance"].is_null() && rows[2]["policy"].is_null());
    assert!(close(&rows[3]["compliance"], 23.0 / 24.0), "{}", rows[3]);
    // The newest good restore point (not the damaged one), the policy,
    // its RPO and next run.
    assert_eq!(rows[0]["last_good"]["id"], "03".repeat(32));
    assert_eq!(rows[0]["last_good"]["time"], t0 + 13 * H);
    assert_eq!(rows[0]["policy"], json!({"id": gold.0, "name": "gold"}));
    assert_eq!(rows[0]["rpo_seconds"], 6 * H);
    assert!(rows[0]["next_run"].as_i64().unwrap() > now - 5);
    assert!(rows[1]["last_good"].is_null());
    assert_eq!(rows[0]["project"], "default");
    // Per policy: the mean of its sources, lowest first.
    let pols = r["policies"].as_array().unwrap();
    assert_eq!(pols[0]["policy"], "gold");
    assert_eq!(
        (pols[0]["sources"].as_u64(), pols[0]["problems"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(close(&pols[0]["compliance"], 15.0 / 48.0), "{}", pols[0]);
    assert_eq!(pols[1]["policy"], "silver");
    assert!(close(&pols[1]["compliance"], 23.0 / 24.0));

    // The same as CSV: quoted, the formula defused.
    let (s, ct, cd, body) = get_raw(&t, &format!("{uri}&format=csv")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "text/csv; charset=utf-8");
    assert_eq!(
        cd,
        format!("attachment; filename=\"arca-protection-{from}-{to}.csv\"")
    );
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "source_id,source,project,policy_id,policy,rpo_seconds,last_good_id,last_good_time,next_run,status,compliance"
    );
    assert_eq!(lines.len(), 6, "{body}"); // a header, 4 rows, the end
    assert!(
        lines[1].starts_with(&format!(
            "{web},web,default,{gold},gold,21600,{},{},",
            "03".repeat(32),
            t0 + 13 * H
        )),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",rpo_missed,0.625"), "{}", lines[1]);
    assert!(
        lines[3].contains(",\"'=cmd,\"\"x\"\"\",default,,,,,,,no_policy,"),
        "{}",
        lines[3]
    );

    // One project; another that does not exist is a 404.
    let (s, r) = t
        .call(
            Method::GET,
            &format!("{uri}&project=other"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(
        (s, r["sources"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, _) = t
        .call(
            Method::GET,
            "/api/v1/reports/protection?project=nope",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A restore-only user reads it too.
    let rst = token_for(
        &c,
        "rst",
        &[RoleBinding {
            role: Role::RestoreOnly,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, r) = t.call(Method::GET, &uri, Some(&rst), None).await;
    assert_eq!(
        (s, r["sources"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(4))
    );
}

#[tokio::test]
async fn storage_report_samples_and_ratios() {
    let t = setup();
    let c = t.state.catalog.clone();
    let web = source(&t, "web", None);
    // Logical bytes: the sum of the datastore's restore points, 3000.
    for n in 1..=3 {
        restore_point(&t, n, web, "web", 1000, RestorePointState::Ok);
    }
    let t0 = arca_catalog::now() - 10 * 24 * H;
    c.refresh_datastore_usage_at(DatastoreId(1), 1500, t0 + H)
        .unwrap();
    c.refresh_datastore_usage_at(DatastoreId(1), 1000, t0 + 2 * H)
        .unwrap();
    // Before the period.
    c.refresh_datastore_usage_at(DatastoreId(1), 9, t0 - H)
        .unwrap();
    let uri = format!(
        "/api/v1/reports/storage?from={t0}&to={}&datastore=default",
        t0 + 24 * H
    );
    let (s, r) = t.call(Method::GET, &uri, Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let d = &r["datastores"][0];
    assert_eq!(r["datastores"].as_array().unwrap().len(), 1);
    assert_eq!(d["datastore"], "default");
    // Now: the last numbers set.
    assert_eq!(
        (d["bytes_used"].as_i64(), d["bytes_logical"].as_i64()),
        (Some(9), Some(3000))
    );
    assert!(close(&d["ratio"], 3000.0 / 9.0));
    assert_eq!(
        d["samples"],
        json!([
            {"time": t0 + H, "bytes_used": 1500, "bytes_logical": 3000, "ratio": 2.0},
            {"time": t0 + 2 * H, "bytes_used": 1000, "bytes_logical": 3000, "ratio": 3.0},
        ])
    );
    // By id; as CSV.
    let (s, ct, _, body) =
        get_raw(&t, &format!("{}&format=csv", uri.replace("=default", "=1"))).await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    assert_eq!(
        body,
        format!(
            "datastore_id,datastore,time,bytes_used,bytes_logical,ratio\r\n1,default,{},1500,3000,2\r\n1,default,{},1000,3000,3\r\n",
            t0 + H,
            t0 + 2 * H
        )
    );
    // Bad input: an unknown datastore, from after to, a bad format.
    for (q, want) in [
        ("datastore=nope", StatusCode::NOT_FOUND),
        ("from=10&to=5", StatusCode::BAD_REQUEST),
        ("from=-1", StatusCode::BAD_REQUEST),
        ("format=xml", StatusCode::BAD_REQUEST),
        ("colour=red", StatusCode::BAD_REQUEST),
        ("from=soon", StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = t
            .call(
                Method::GET,
                &format!("/api/v1/reports/storage?{q}"),
                Some(&t.admin),
                None,
            )
            .await;
        assert_eq!(s, want, "{q}: {v}");
    }
    let (s, v) = t
        .call(
            Method::GET,
            "/api/v1/reports/tasks?from=10&to=5",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["message"], "from (10) is after to (5)");
    let (s, _) = t
        .call(
            Method::GET,
            "/api/v1/reports/protection?format=pdf",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tasks_report_durations_and_throughput() {
    let t = setup();
    let c = t.state.catalog.clone();
    let web = source(&t, "web", None);
    let db = source(&t, "db", None);
    let now = arca_catalog::now();
    let a = backup_run(&t, web, now - 100, 1000, Some(&"a1".repeat(32)));
    let b = backup_run(&t, web, now - 200, 4000, Some(&"a2".repeat(32)));
    let d = backup_run(&t, db, now - 300, 9000, Some(&"a3".repeat(32)));
    let f = backup_run(&t, db, now - 50, 0, None);
    // Cancelled before it started: no duration.
    let q = c
        .add_task(&arca_catalog::NewTask {
            source_id: Some(db),
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    c.cancel_task(q).unwrap();
    let uri = format!(
        "/api/v1/reports/tasks?from={}&to={}",
        now - 3600,
        now + 3600
    );
    let (s, r) = t.call(Method::GET, &uri, Some(&t.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let tasks = r["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 5);
    let row = |id: TaskId| tasks.iter().find(|x| x["id"] == id.0).unwrap();
    for id in [a, b, d] {
        let x = row(id);
        let dur = x["finished_at"].as_i64().unwrap() - x["started_at"].as_i64().unwrap();
        assert_eq!(x["duration_s"], dur);
        assert!(close(
            &x["throughput"],
            x["bytes_done"].as_i64().unwrap() as f64 / dur as f64
        ));
        assert_eq!(x["state"], "succeeded");
        assert_eq!(x["node"], "local");
    }
    assert_eq!(row(a)["source"], "web");
    assert_eq!(row(f)["state"], "failed");
    assert!(row(q)["duration_s"].is_null() && row(q)["throughput"].is_null());
    let k = &r["kinds"][0];
    assert_eq!(r["kinds"].as_array().unwrap().len(), 1);
    assert_eq!(k["kind"], "backup");
    assert_eq!(
        (
            k["count"].as_u64(),
            k["succeeded"].as_u64(),
            k["failed"].as_u64(),
            k["cancelled"].as_u64()
        ),
        (Some(5), Some(3), Some(1), Some(1))
    );
    // Three succeeded durations, shortest a, then b, then d: the median
    // (nearest rank 2 of 3) is b's, the 95th percentile (rank 3) d's.
    assert_eq!(k["median_duration_s"], row(b)["duration_s"]);
    assert_eq!(k["p95_duration_s"], row(d)["duration_s"]);
    let mean = [a, b, d]
        .iter()
        .map(|id| row(*id)["throughput"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    assert!(close(&k["mean_throughput"], mean));
    // One source (by name or id), one kind.
    let (_, r) = t
        .call(
            Method::GET,
            &format!("{uri}&source=web"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r["tasks"].as_array().unwrap().len(), 2);
    let (_, r) = t
        .call(
            Method::GET,
            &format!("{uri}&source={db}&kind=gc"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r["tasks"].as_array().unwrap().len(), 0);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("{uri}&source=nope"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("{uri}&kind=nap"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Outside the period: nothing.
    let (_, r) = t
        .call(
            Method::GET,
            "/api/v1/reports/tasks?from=0&to=1000",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(r["tasks"], json!([]));
    assert_eq!(r["kinds"], json!([]));
    // CSV: a row per task.
    let (s, _, _, body) = get_raw(&t, &format!("{uri}&format=csv")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.matches("\r\n").count(), 6);
    assert!(body.starts_with("id,kind,state,source_id,source,node,started_at,finished_at,duration_s,bytes_done,throughput\r\n"));
}

#[tokio::test]
async fn retry_a_failed_or_cancelled_task() {
    let t = setup();
    let c = t.state.catalog.clone();
    let web = source(&t, "web", None);
    let now = arca_catalog::now();
    let failed = backup_run(&t, web, now - 10, 0, None);
    let (s, n) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{failed}/retry"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let old = c.task(failed).unwrap();
    assert_ne!(n["id"], failed.0);
    assert_eq!(n["state"], "queued");
    assert_eq!(n["kind"], "backup");
    assert_eq!(n["source_id"], web.0);
    assert_eq!(n["datastore_id"], 1);
    assert_eq!(n["params"], old.params);
    assert_eq!(n["created_by"], "admin");
    let new = TaskId(n["id"].as_i64().unwrap());
    let log = c.task_logs(new).unwrap();
    assert_eq!(
        log[0].message,
        format!("retry of task {failed} (failed), by admin")
    );
    // The new one is queued: 409; so is a succeeded one.
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{new}/retry"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(v["message"].as_str().unwrap().contains("is queued"), "{v}");
    c.cancel_task(new).unwrap();
    let ok = backup_run(&t, web, now - 5, 1, Some(&"b1".repeat(32)));
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{ok}/retry"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // A cancelled one runs again; unknown ids are 404.
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{new}/retry"),
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/tasks/999999/retry",
            Some(&t.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Restore-only users cannot.
    let rst = token_for(
        &c,
        "rst",
        &[RoleBinding {
            role: Role::RestoreOnly,
            project_id: Some(ProjectId(1)),
        }],
    );
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{failed}/retry"),
            Some(&rst),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Audited: two done, two refused, one denied.
    let audit = c.audit_log(100, 0).unwrap();
    let retries: Vec<_> = audit.iter().filter(|a| a.action == "task.retry").collect();
    assert_eq!(retries.len(), 6);
    assert!(retries
        .iter()
        .any(|a| a.target == failed.to_string() && a.actor == "admin"));
}
