//! Scheduling: a policy's slots run backups on the server and on remote
//! nodes; restores through the API; kill -9 and restart of the server and
//! of nodes in the middle of the schedule.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;
use crate::helpers::*;

#[test]
fn scheduled_backups_restore_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), common::text_bytes(200_000, 1)).unwrap();
    std::fs::write(tree.join("sub/b.bin"), common::random_bytes(300_000, 2)).unwrap();
    let image = dir.path().join("disk.raw");
    let mut img = common::random_bytes(3 << 20, 3);
    img.extend(vec![0u8; 2 << 20]);
    std::fs::write(&image, &img).unwrap();

    let (srv, lines) = Server::start(&data);
    let pw = first_password(&lines);
    assert_eq!(
        std::fs::read_to_string(data.join("initial-admin-password"))
            .unwrap()
            .trim(),
        pw
    );
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "initial-admin-password",
        "datastores/default.passphrase",
        "catalog.db",
    ] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let url = srv.url.clone();
    let token = login(&url, &pw);
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(json!({
            "name": "every5", "schedule": "every 5s", "match_tags": ["t"], "retention": {"keep_last": 50}
        })),
    );
    assert_eq!(s, 201, "{v}");
    for (name, kind, path) in [("tree", "files", &tree), ("disk", "image", &image)] {
        let (s, v) = call(
            &url,
            &token,
            "POST",
            "/api/v1/sources",
            Some(json!({
                "name": name, "kind": kind, "path": path, "tags": ["t"]
            })),
        );
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["assigned_by"], "rule");
    }
    wait_for("restore points of both sources", 60, || {
        !restore_points(&url, &token, "tree").is_empty()
            && !restore_points(&url, &token, "disk").is_empty()
    });

    // Restore both through the API and compare.
    let out_tree = dir.path().join("out-tree");
    let out_img = dir.path().join("out.raw");
    for (source, target) in [("tree", &out_tree), ("disk", &out_img)] {
        let rp = restore_points(&url, &token, source)[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, t) = call(
            &url,
            &token,
            "POST",
            &format!("/api/v1/restore-points/{}/restore", &rp[..16]),
            Some(json!({"target": target})),
        );
        assert_eq!(s, 202, "{t}");
        let id = t["id"].as_i64().unwrap();
        wait_for("the restore task", 60, || {
            let (_, t) = call(&url, &token, "GET", &format!("/api/v1/tasks/{id}"), None);
            assert_ne!(t["state"], "failed", "{t}");
            t["state"] == "succeeded"
        });
    }
    common::assert_same_tree(&tree, &out_tree);
    assert_eq!(std::fs::read(&out_img).unwrap(), img);

    // Kill -9 in the middle of the schedule, then restart.
    std::thread::sleep(Duration::from_millis(2600));
    srv.kill9();
    let (srv, lines) = Server::start(&data);
    assert!(
        !lines.iter().any(|l| l.contains("with password")),
        "no new admin on restart"
    );
    let url = srv.url.clone();
    let token = login(&url, &pw);
    let before = restore_points(&url, &token, "tree").len();
    wait_for("the schedule to continue after the restart", 60, || {
        restore_points(&url, &token, "tree").len() > before
    });
    wait_for("no task left running", 60, || {
        let (_, tasks) = call(&url, &token, "GET", "/api/v1/tasks?state=running", None);
        tasks.as_array().unwrap().is_empty()
    });
    srv.kill9();

    // Every listed restore point exists in the datastore: none is half.
    let snaps = datastore_snapshots(&data);
    let (srv, _) = Server::start(&data);
    let token = login(&srv.url, &pw);
    let mut listed = Vec::new();
    for s in ["tree", "disk"] {
        listed.extend(restore_points(&srv.url, &token, s));
    }
    for rp in &listed {
        assert!(
            snaps.contains(&rp["id"].as_str().unwrap().to_string()),
            "{rp} is not in the datastore"
        );
    }
    // Each slot ran at most once.
    let (_, tasks) = call(&srv.url, &token, "GET", "/api/v1/tasks?limit=1000", None);
    let mut slots: Vec<(i64, i64)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["slot"].is_i64())
        .map(|t| {
            (
                t["source_id"].as_i64().unwrap(),
                t["slot"].as_i64().unwrap(),
            )
        })
        .collect();
    let n = slots.len();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), n, "a slot was queued twice");
}

/// A server and two `arca node` processes over gRPC on loopback: one
/// policy every 5 s backs up a source on each node into that node's own
/// datastore; a restore runs on the owning node and gives the same bytes;
/// kill -9 of a node in the middle of a task fails or requeues the task
/// within the heartbeat timeout, with the reason, and lists no restore
/// point for it; the restarted node registers again and the schedule goes on.
#[test]
fn remote_nodes_run_scheduled_backups_and_survive_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (srv, lines) = Server::start_with(&data, &["--node-timeout", "6"]);
    let pw = first_password(&lines);
    let url = srv.url.clone();
    let admin = login(&url, &pw);

    // A wrong token is refused at once, with the reason.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["node", "--server", &url, "--token", "arca_00", "--data-dir"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown token"),
        "{out:?}"
    );

    let mut nodes = Vec::new();
    let mut trees = Vec::new();
    for name in ["alpha", "beta"] {
        let (s, v) = call(
            &url,
            &admin,
            "POST",
            "/api/v1/nodes",
            Some(json!({"name": name, "max_tasks": 2})),
        );
        assert_eq!(s, 201, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        let node_dir = dir.path().join(name);
        nodes.push((
            NodeProc::start(&url, &token, &node_dir),
            token,
            node_dir.clone(),
        ));
        assert_eq!(node(&url, &admin, name)["state"], "online");
        // Its sources and restores live in the test's directory.
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--server", &url, "--token", &admin, "node", "set", name])
            .arg("--source-root")
            .arg(dir.path())
            .arg("--restore-root")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let tree = dir.path().join(format!("tree-{name}"));
        std::fs::create_dir_all(tree.join("d")).unwrap();
        std::fs::write(tree.join("a.txt"), common::text_bytes(100_000, 7)).unwrap();
        std::fs::write(
            tree.join("d/b.bin"),
            common::random_bytes(200_000, name.len() as u64),
        )
        .unwrap();
        let (s, v) = call(
            &url,
            &admin,
            "POST",
            "/api/v1/sources",
            Some(
                json!({"name": format!("src-{name}"), "kind": "files", "path": tree, "node": name, "tags": ["t"]}),
            ),
        );
        assert_eq!(s, 201, "{v}");
        trees.push(tree);
    }
    // One policy, the server's "default" datastore: on each node it is
    // that node's own "default".
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/policies",
        Some(json!({"name": "every5", "schedule": "every 5s", "match_tags": ["t"]})),
    );
    assert_eq!(s, 201, "{v}");
    wait_for("restore points on both nodes", 90, || {
        !restore_points(&url, &admin, "src-alpha").is_empty()
            && !restore_points(&url, &admin, "src-beta").is_empty()
    });
    let (_, stores) = call(&url, &admin, "GET", "/api/v1/datastores", None);
    let store_name = |id: &Value| -> String {
        stores
            .as_array()
            .unwrap()
            .iter()
            .find(|d| &d["id"] == id)
            .map(|d| d["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    for name in ["alpha", "beta"] {
        let rp = &restore_points(&url, &admin, &format!("src-{name}"))[0];
        assert_eq!(store_name(&rp["datastore_id"]), format!("{name}/default"));
    }

    // Restore on the node through the CLI; byte-identical.
    let rp = restore_points(&url, &admin, "src-beta")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let target = dir.path().join("restored-beta");
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args([
            "--server", &url, "--token", &admin, "--json", "restore", &rp,
        ])
        .arg("--to")
        .arg(&target)
        .arg("--wait")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["node_id"], node(&url, &admin, "beta")["id"], "{t}");
    common::assert_same_tree(&trees[1], &target);

    // Browsing a restore point on beta's datastore: beta reads it (the
    // WatchQueries/Answer calls; tests/server/remote_browse.rs has more).
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        &format!("/api/v1/restore-points/{rp}/tree?recursive=true"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let paths: Vec<_> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a.txt", "d", "d/b.bin"], "{v}");

    // `arca mount` of a restore point in beta's datastore: beta serves it
    // (the WatchExports/ExportState calls), a writable export's changes
    // are committed by a task on beta.
    let img = common::random_bytes(3 << 20, 5);
    let image = dir.path().join("beta.raw");
    std::fs::write(&image, &img).unwrap();
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "vm-beta", "kind": "image", "path": image, "node": "beta"})),
    );
    assert_eq!(s, 201, "{v}");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--server", &url, "--token", &admin, "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    cli(&["backup", "now", "vm-beta", "--wait"]);
    let vm_rp = restore_points(&url, &admin, "vm-beta")[0].clone();
    assert_eq!(store_name(&vm_rp["datastore_id"]), "beta/default");
    let vm_rp = vm_rp["id"].as_str().unwrap().to_string();
    let e = cli(&["mount", &vm_rp, "--writable"]);
    assert_eq!(e["node_id"], node(&url, &admin, "beta")["id"], "{e}");
    let addr = e["address"].as_str().unwrap().to_string();
    let copy = dir.path().join("beta-copy.raw");
    let out = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw", &addr])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(&copy).unwrap() == img);
    let out = Command::new("qemu-io")
        .args([
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 0 4k",
            "-c",
            "flush",
            &addr,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let t = cli(&["unmount", &e["id"].to_string(), "--commit", "--wait"]);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["node_id"], node(&url, &admin, "beta")["id"], "{t}");
    let rps = restore_points(&url, &admin, "vm-beta");
    assert_eq!(rps.len(), 2, "{rps:?}");
    assert!(datastore_snapshots(&nodes[1].2).contains(&rps[0]["id"].as_str().unwrap().to_string()));

    // A backup that hangs (its image is a FIFO nobody writes), then
    // kill -9 of its node.
    let fifo = dir.path().join("hang.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (s, src) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "hang", "kind": "image", "path": fifo, "node": "alpha"})),
    );
    assert_eq!(s, 201, "{src}");
    let (s, t) = call(
        &url,
        &admin,
        "POST",
        &format!("/api/v1/sources/{}/backup", src["id"]),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let hang = t["id"].as_i64().unwrap();
    wait_for("the hanging backup to run on alpha", 30, || {
        task(&url, &admin, hang)["state"] == "running"
    });
    let killed_at = Instant::now();
    nodes[0].0.kill9();
    wait_for("the lost task to be failed or requeued", 30, || {
        task(&url, &admin, hang)["state"] != "running"
    });
    // Within the heartbeat timeout (6 s) plus the scheduler's tick.
    assert!(killed_at.elapsed() < Duration::from_secs(20));
    let t = task(&url, &admin, hang);
    assert!(t["state"] == "failed" || t["state"] == "queued", "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("missed its heartbeats"),
        "{t}"
    );
    assert_eq!(node(&url, &admin, "alpha")["state"], "offline");
    assert!(restore_points(&url, &admin, "hang").is_empty());

    // The node comes back and the schedule goes on there.
    let before = restore_points(&url, &admin, "src-alpha").len();
    let (token, node_dir) = (nodes[0].1.clone(), nodes[0].2.clone());
    nodes[0].0 = NodeProc::start(&url, &token, &node_dir);
    assert_eq!(node(&url, &admin, "alpha")["state"], "online");
    wait_for("new restore points on alpha after its restart", 60, || {
        restore_points(&url, &admin, "src-alpha").len() > before
    });

    // Every listed restore point of a node is in that node's datastore.
    for (name, (_, _, node_dir)) in ["alpha", "beta"].iter().zip(&nodes) {
        let snaps = datastore_snapshots(node_dir);
        for rp in restore_points(&url, &admin, &format!("src-{name}")) {
            assert!(
                snaps.contains(&rp["id"].as_str().unwrap().to_string()),
                "{rp}"
            );
        }
    }
    drop(nodes);
    drop(srv);
}
