//! `arca task retry` and `arca report ...` against a real server: a backup
//! of a directory that does not exist fails; once the directory is made,
//! retrying it succeeds; the reports then show both tasks, the source's
//! restore point and the datastore's use (tables, JSON and CSV).

use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

#[test]
fn retry_a_failed_backup_and_read_the_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let site = dir.path().join("site");
    let (srv, lines) = Server::start(&data);
    let url = srv.url.clone();
    let cfg = dir.path().join("cfg");
    let pw = first_password(&lines);
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &url)
            .env("XDG_CONFIG_HOME", &cfg)
            .env("ARCA_PASSWORD", &pw)
            .env_remove("ARCA_TOKEN")
            .env("TZ", "UTC")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let json = |args: &[&str]| -> Value {
        let (code, out, err) = arca(&[&["--json"], args].concat());
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(arca(&["login"]).0, Some(0));
    // The source's directory does not exist yet: its backup fails.
    json(&["source", "add", "files", "site", site.to_str().unwrap()]);
    let (code, out, err) = arca(&["--json", "backup", "now", "site", "--wait"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let failed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failed["state"], "failed", "{failed}");
    let failed_id = failed["id"].as_i64().unwrap().to_string();

    // The protection report now: no good restore point.
    let r = json(&["report", "protection"]);
    assert_eq!(r["sources"][0]["source"], "site");
    let status = r["sources"][0]["status"].as_str().unwrap().to_string();
    assert!(
        ["no_policy", "never_backed_up"].contains(&status.as_str()),
        "{r}"
    );
    assert!(r["sources"][0]["last_good"].is_null());

    // Retried once the directory exists: a new task that succeeds.
    std::fs::create_dir_all(&site).unwrap();
    write_atomic(&site.join("index.html"), b"<h1>hello</h1>");
    let (code, out, err) = arca(&["task", "retry", &failed_id, "--wait"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("backup task") && out.contains("succeeded"),
        "{out}"
    );
    let tasks = json(&["task", "list"]);
    let retried = &tasks[0];
    assert_eq!(retried["state"], "succeeded");
    assert_eq!(retried["kind"], "backup");
    assert_eq!(retried["source_id"], failed["source_id"]);
    assert_ne!(retried["id"], failed["id"]);
    // Only failed and cancelled tasks are retried.
    let (code, _, err) = arca(&["task", "retry", &retried["id"].to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("only a failed or cancelled task"), "{err}");

    // The tasks report: both, the failure and the success.
    let r = json(&["report", "tasks", "--kind", "backup"]);
    let states: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "failed"]);
    let k = &r["kinds"][0];
    assert_eq!(
        (
            k["count"].as_u64(),
            k["succeeded"].as_u64(),
            k["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let (code, out, err) = arca(&["report", "tasks"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("MEDIAN") && out.contains("succeeded") && out.contains("failed"),
        "{out}"
    );
    let (code, csv, err) = arca(&["report", "tasks", "--csv", "--source", "site"]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[0].starts_with("id,kind,state,source_id,source,"),
        "{csv}"
    );
    assert!(
        rows[1].contains(",backup,succeeded,") && rows[1].contains(",site,"),
        "{csv}"
    );

    // Protection: the restore point is the source's last good one.
    let r = json(&["report", "protection"]);
    let rp = json(&["snapshots", "--source", "site"]);
    assert_eq!(r["sources"][0]["last_good"]["id"], rp[0]["id"]);
    let (code, out, _) = arca(&["report", "protection"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("SOURCE") && out.contains("site") && out.contains("COMPLIANCE"),
        "{out}"
    );

    // Storage: the backup's numbers, now and as a sample of the period.
    let r = json(&["report", "storage", "default"]);
    let d = &r["datastores"][0];
    assert!(d["bytes_used"].as_i64().unwrap() > 0, "{d}");
    let last = d["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["bytes_used"], d["bytes_used"]);
    assert_eq!(last["bytes_logical"], d["bytes_logical"]);
    let (code, out, _) = arca(&["report", "storage"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("default:") && out.contains("RATIO"), "{out}");
    let (code, _, err) = arca(&["report", "storage", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("datastore \"nope\" not found"), "{err}");
    // A period that ends before it starts is refused.
    let (code, _, err) = arca(&[
        "report",
        "tasks",
        "--from",
        "2026-02-01",
        "--to",
        "2026-01-01",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is after to"), "{err}");
    drop(srv);
}
