//! Damaged data on a server's datastore: damaged packs named, quarantined
//! and repaired; a damaged snapshot file marked by verify and named by gc.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common;
use crate::helpers::*;

/// Flip a byte inside the first blob of every pack.
fn damage_packs(ds: &Path) -> usize {
    let mut files = Vec::new();
    common::walk(&ds.join("packs"), &mut |p, md| {
        if md.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            files.push(p.to_path_buf());
        }
    });
    for f in &files {
        let mut b = std::fs::read(f).unwrap();
        b[40] ^= 0x5a;
        std::fs::write(f, &b).unwrap();
    }
    files.len()
}

/// Verify names damaged restore points in the catalog, notifies, and the
/// next backup stores the damaged chunks again (no dedup against a bad
/// copy); verify then reports the old restore point repaired.
#[test]
fn verify_damage_is_named_quarantined_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("one.bin"), common::random_bytes(3 << 20, 71)).unwrap();
    std::fs::write(tree.join("two.txt"), common::text_bytes(500_000, 72)).unwrap();
    let (hook, events) = webhook_receiver();
    let (srv, lines) = Server::start_with(&data, &["--webhook", &hook]);
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let ds_path = data.join("datastores/default");
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "victim", "kind": "files", "path": tree})),
    );
    assert_eq!(s, 201, "{v}");
    let src = v["id"].as_i64().unwrap();
    let backup = || {
        let (s, v) = call(
            &url,
            &token,
            "POST",
            &format!("/api/v1/sources/{src}/backup"),
            None,
        );
        assert_eq!(s, 202, "{v}");
        let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
        assert_eq!(t["state"], "succeeded", "{t}");
        t
    };
    backup();
    let rp = restore_points(&url, &token, "victim")[0].clone();
    let rp_id = rp["id"].as_str().unwrap().to_string();
    assert_eq!(rp["state"], "ok");
    assert!(damage_packs(&ds_path) >= 1);

    let (s, v) = call(&url, &token, "GET", "/api/v1/datastores", None);
    assert_eq!(s, 200);
    let ds_id = v[0]["id"].as_i64().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--server", &url, "--token", &token])
        .args(["datastore", "verify", "default", "--wait"])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(
        so.contains("verify found damage") && so.contains(&rp_id[..12]),
        "{so}"
    );
    let (s, v) = call(
        &url,
        &token,
        "GET",
        &format!("/api/v1/restore-points/{rp_id}"),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(v["state"], "damaged", "{v}");
    assert!(v["damage"].as_str().unwrap().contains("damaged"), "{v}");
    // The webhook names the damaged restore point.
    let mut seen = false;
    let end = Instant::now() + Duration::from_secs(15);
    while !seen && Instant::now() < end {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(500)) {
            seen = e.contains("verify.damaged") && e.contains(&rp_id);
        }
    }
    assert!(seen, "no verify.damaged notification");

    // The next backup of the unchanged tree stores the damaged data again.
    let t = backup();
    assert!(t["result"]["bytes_added"].as_u64().unwrap() > 0, "{t}");
    // Verify of all restore points: clean, and the old one is repaired.
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
    let (_, v) = call(
        &url,
        &token,
        "GET",
        &format!("/api/v1/restore-points/{rp_id}"),
        None,
    );
    assert_eq!(v["state"], "ok", "{v}");
    // And it restores byte for byte.
    let target = dir.path().join("restored");
    let (s, v) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/restore-points/{rp_id}/restore"),
        Some(json!({"target": target})),
    );
    assert_eq!(s, 202, "{v}");
    let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
    assert_eq!(t["state"], "succeeded", "{t}");
    common::assert_same_tree(&tree, &target);
    srv.kill9();
}

/// A damaged snapshot file on a server's datastore: a verify task marks
/// its restore point damaged and says so in its log; a gc task succeeds
/// and its log names the file.
#[test]
fn damaged_snapshot_file_on_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("one.bin"), common::random_bytes(300_000, 81)).unwrap();
    let (srv, lines) = Server::start_with(&data, &[]);
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "victim", "kind": "files", "path": tree})),
    );
    assert_eq!(s, 201, "{v}");
    let src = v["id"].as_i64().unwrap();
    let (s, v) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/sources/{src}/backup"),
        None,
    );
    assert_eq!(s, 202, "{v}");
    let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 60);
    assert_eq!(t["state"], "succeeded", "{t}");
    let rp_id = restore_points(&url, &token, "victim")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = data.join("datastores/default/snapshots").join(&rp_id);
    let mut b = std::fs::read(&file).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&file, &b).unwrap();

    let (s, v) = call(&url, &token, "GET", "/api/v1/datastores", None);
    assert_eq!(s, 200);
    let ds_id = v[0]["id"].as_i64().unwrap();
    let logs = |task: i64| -> String {
        let (s, v) = call(
            &url,
            &token,
            "GET",
            &format!("/api/v1/tasks/{task}/logs"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v.to_string()
    };
    let (s, v) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/datastores/{ds_id}/verify"),
        Some(json!({"all": true})),
    );
    assert_eq!(s, 202, "{v}");
    let task = v["id"].as_i64().unwrap();
    let t = wait_task(&url, &token, task, 60);
    assert_eq!(t["state"], "failed", "{t}");
    let l = logs(task);
    assert!(l.contains(&rp_id) && l.contains("cannot be read"), "{l}");
    let (_, v) = call(
        &url,
        &token,
        "GET",
        &format!("/api/v1/restore-points/{rp_id}"),
        None,
    );
    assert_eq!(v["state"], "damaged", "{v}");
    assert!(v["damage"].as_str().unwrap().contains("unreadable"), "{v}");

    let (s, v) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/datastores/{ds_id}/gc"),
        Some(json!({"grace_seconds": 0})),
    );
    assert_eq!(s, 202, "{v}");
    let task = v["id"].as_i64().unwrap();
    let t = wait_task(&url, &token, task, 60);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["result"]["damaged_snapshots"], json!([rp_id]), "{t}");
    let l = logs(task);
    assert!(l.contains(&rp_id) && l.contains("damaged"), "{l}");
    srv.kill9();
}
