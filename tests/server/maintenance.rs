//! Maintenance on a server: gc and verify tasks beside running backups.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;
use crate::helpers::*;

/// Maintenance (issue 10): a policy with short retention backs up a
/// changing tree every few seconds while gc runs on demand and on its
/// schedule and verify runs on its schedule: the datastore shrinks, every
/// verify is clean (no false alarm from backups committed meanwhile), and
/// every listed restore point restores to versions that were written.
#[test]
fn gc_and_verify_beside_running_backups() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    // Every version of every file ever written: a restored file must be one.
    let mut versions: std::collections::HashMap<String, std::collections::HashSet<Vec<u8>>> =
        Default::default();
    let mut seed = 100;
    let mut write = |name: &str,
                     versions: &mut std::collections::HashMap<
        String,
        std::collections::HashSet<Vec<u8>>,
    >| {
        seed += 1;
        let d = common::random_bytes(1 << 20, seed);
        write_atomic(&tree.join(name), &d);
        versions.entry(name.to_string()).or_default().insert(d);
    };
    for f in ["a", "b", "c", "d"] {
        write(f, &mut versions);
    }
    let (srv, lines) = Server::start(&data);
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let ds_path = data.join("datastores/default");

    // Schedules through the API: bad ones are refused with what is wrong.
    let (s, v) = call(&url, &token, "GET", "/api/v1/datastores", None);
    assert_eq!(s, 200);
    assert_eq!(v[0]["gc_schedule"], "daily", "{v}");
    assert_eq!(v[0]["verify_schedule"], "weekly", "{v}");
    let ds_id = v[0]["id"].as_i64().unwrap();
    let (s, v) = call(
        &url,
        &token,
        "PATCH",
        &format!("/api/v1/datastores/{ds_id}"),
        Some(json!({"gc_schedule": "dialy"})),
    );
    assert_eq!(s, 422, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("gc_schedule"),
        "{v}"
    );
    let (s, v) = call(
        &url,
        &token,
        "PATCH",
        &format!("/api/v1/datastores/{ds_id}"),
        Some(
            json!({"gc_schedule": "every 4s", "verify_schedule": "every 5s", "verify_max_age_days": 0}),
        ),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["gc_schedule"], "every 4s");
    let (s, _) = call(
        &url,
        &token,
        "PATCH",
        "/api/v1/datastores/999",
        Some(json!({})),
    );
    assert_eq!(s, 404);

    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(
            json!({"name": "often", "schedule": "every 2s", "match_tags": ["m"], "retention": {"keep_last": 2}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "changing", "kind": "files", "path": tree, "tags": ["m"]})),
    );
    assert_eq!(s, 201, "{v}");

    // A standalone gc is refused while the server holds the datastore,
    // and says which server and how to run gc through it.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("--datastore")
        .arg(&ds_path)
        .arg("--passphrase-file")
        .arg(data.join("datastores/default.passphrase"))
        .arg("gc")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("held by arca server"), "{err}");
    assert!(
        err.contains(&url) && err.contains("datastore gc default"),
        "{err}"
    );

    // Change the tree and run gc on demand for a while, beside the backups.
    let mut peak = 0;
    let mut gc_tasks = Vec::new();
    let end = Instant::now() + Duration::from_secs(24);
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        let name = ["a", "b", "c", "d"][round % 4];
        write(name, &mut versions);
        peak = peak.max(packs_bytes(&ds_path));
        if round % 2 == 0 {
            let (s, v) = call(
                &url,
                &token,
                "POST",
                &format!("/api/v1/datastores/{ds_id}/gc"),
                Some(json!({"grace_seconds": 0})),
            );
            match s {
                202 => gc_tasks.push(v["id"].as_i64().unwrap()),
                409 => assert!(v["message"].as_str().unwrap().contains("already"), "{v}"),
                _ => panic!("gc: {s} {v}"),
            }
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    // Stop the schedule, let the last backup end, and collect once more.
    let (s, v) = call(&url, &token, "GET", "/api/v1/policies", None);
    assert_eq!(s, 200);
    let pid = v[0]["id"].as_i64().unwrap();
    // Disabled, not deleted: a policy whose backup runs cannot be
    // deleted (409), and disabling is what stops a schedule.
    let (s, v) = call(
        &url,
        &token,
        "PATCH",
        &format!("/api/v1/policies/{pid}"),
        Some(json!({"enabled": false})),
    );
    assert_eq!(s, 200, "{v}");
    wait_for("backups to end", 60, || {
        let (_, v) = call(&url, &token, "GET", "/api/v1/tasks?state=running", None);
        v.as_array().unwrap().iter().all(|t| t["kind"] != "backup")
    });
    let cli_gc = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--server", &url, "--token", &token])
        .args(["datastore", "gc", "default", "--grace", "0s", "--wait"])
        .output()
        .unwrap();
    // Another gc may be running (409): then wait for it and ask again.
    if !cli_gc.status.success() {
        let err = String::from_utf8_lossy(&cli_gc.stderr);
        let out = String::from_utf8_lossy(&cli_gc.stdout);
        assert!(err.contains("already"), "{err}\n{out}");
        wait_for("gc to end", 60, || {
            let (_, v) = call(&url, &token, "GET", "/api/v1/tasks", None);
            v.as_array()
                .unwrap()
                .iter()
                .all(|t| t["kind"] != "gc" || t["state"] != "running" && t["state"] != "queued")
        });
        let (s, v) = call(
            &url,
            &token,
            "POST",
            &format!("/api/v1/datastores/{ds_id}/gc"),
            Some(json!({"grace_seconds": 0})),
        );
        assert_eq!(s, 202, "{v}");
        let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
        assert_eq!(t["state"], "succeeded", "{t}");
    } else {
        let out = String::from_utf8_lossy(&cli_gc.stdout);
        assert!(out.contains("succeeded"), "{out}");
    }
    let after = packs_bytes(&ds_path);
    let rps = restore_points(&url, &token, "changing");
    let (s, v) = call(&url, &token, "GET", "/api/v1/tasks?limit=1000", None);
    assert_eq!(s, 200);
    let tasks = v.as_array().unwrap().clone();
    let backups: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["kind"] == "backup" && t["state"] == "succeeded")
        .collect();
    let added: u64 = backups
        .iter()
        .map(|t| t["result"]["bytes_added"].as_u64().unwrap_or(0))
        .sum();
    eprintln!("{} backups added {added} B; packs peaked at {peak} B, {after} B after gc; {} restore points listed", backups.len(), rps.len());
    assert!(backups.len() >= 5, "{} backups", backups.len());
    assert!(
        rps.len() <= 3,
        "retention keeps 2 (+1 racing): {}",
        rps.len()
    );
    // Retention keeps 2-3 of at least 5 backups of changing data: less is
    // on disk than was ever added (how much less depends on which versions
    // the kept restore points share, so no fixed fraction).
    assert!(
        after < added,
        "gc reclaimed space: {after} B on disk of {added} B added"
    );
    assert!(after < peak, "the datastore shrank: {after} < {peak}");
    // gc ran on its schedule too, and every gc succeeded.
    let gcs: Vec<&Value> = tasks.iter().filter(|t| t["kind"] == "gc").collect();
    assert!(
        gcs.iter().any(|t| t["created_by"]
            .as_str()
            .unwrap()
            .starts_with("schedule of datastore")),
        "no scheduled gc"
    );
    assert!(gc_tasks.len() >= 3, "{gc_tasks:?}");
    for t in &gcs {
        assert!(
            t["state"] == "succeeded" || t["state"] == "queued" || t["state"] == "running",
            "{t}"
        );
    }
    // Verify ran on its schedule beside the backups, never with a false alarm.
    let verifies: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["kind"] == "verify" && t["state"] != "queued" && t["state"] != "running")
        .collect();
    assert!(!verifies.is_empty(), "no scheduled verify ran");
    for t in &verifies {
        assert_eq!(t["state"], "succeeded", "{t}");
    }
    // A full verify now is clean and marks every restore point verified.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--server", &url, "--token", &token])
        .args(["datastore", "verify", "default", "--all", "--wait"])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A scheduled verify may hold the slot: wait and use the API.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("already"), "{so}{err}");
        wait_for("verify to end", 60, || {
            let (_, v) = call(&url, &token, "GET", "/api/v1/tasks", None);
            v.as_array()
                .unwrap()
                .iter()
                .all(|t| t["kind"] != "verify" || t["state"] != "running" && t["state"] != "queued")
        });
        let (s, v) = call(
            &url,
            &token,
            "POST",
            &format!("/api/v1/datastores/{ds_id}/verify"),
            Some(json!({"all": true})),
        );
        assert_eq!(s, 202, "{v}");
        let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
        assert_eq!(t["state"], "succeeded", "{t}");
    } else {
        assert!(so.contains("succeeded"), "{so}");
    }
    let rps = restore_points(&url, &token, "changing");
    assert!(!rps.is_empty());
    for rp in &rps {
        assert_eq!(rp["state"], "ok", "{rp}");
        assert!(rp["verified_at"].as_i64().is_some(), "{rp}");
        // Every listed restore point restores, to versions that were written.
        let target = dir
            .path()
            .join(format!("r-{}", &rp["id"].as_str().unwrap()[..12]));
        let (s, v) = call(
            &url,
            &token,
            "POST",
            &format!(
                "/api/v1/restore-points/{}/restore",
                rp["id"].as_str().unwrap()
            ),
            Some(json!({"target": target})),
        );
        assert_eq!(s, 202, "{v}");
        let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
        assert_eq!(t["state"], "succeeded", "{t}");
        for f in ["a", "b", "c", "d"] {
            let got = std::fs::read(target.join(f)).unwrap();
            assert!(
                versions[f].contains(&got),
                "{f} of {} is no version that was written",
                rp["id"]
            );
        }
    }
    // The datastore list through the CLI shows the schedules.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--server", &url, "--token", &token, "datastore", "list"])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains("every 4s") && so.contains("every 5s"),
        "{so}"
    );
    srv.kill9();
}
