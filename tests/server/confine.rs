//! Confinement of sources and restore targets to the server's roots, on
//! the server and on nodes.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common;
use crate::helpers::*;

/// Confinement through the server: the built-in node's roots from
/// `--source-root`/`--restore-root`; sources and restores outside them get
/// 422 naming the roots (API and CLI); links leading out of a root fail the
/// task on the node; a non-empty target needs --overwrite; a block device
/// needs a root covering it and the admin's allowance.
#[test]
fn confinement_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let data = base.join("data");
    let (sources, restores, outside) = (
        base.join("sources"),
        base.join("restores"),
        base.join("outside"),
    );
    for d in [&sources, &restores, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    let tree = sources.join("tree");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    std::fs::write(tree.join("d/f.txt"), common::text_bytes(50_000, 3)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (srv, lines) = Server::start_confined(
        &data,
        &[
            "--source-root",
            &s(&sources),
            "--restore-root",
            &s(&restores),
        ],
    );
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let arca_as = |token: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--server", &url, "--token", token])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let arca = |args: &[&str]| arca_as(&token, args);
    let refused = |args: &[&str], status: &str, needles: &[&str]| {
        let (code, out) = arca(args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains(status), "{args:?}: no {status} in {out}");
        for n in needles {
            assert!(out.contains(n), "{args:?}: no {n:?} in {out}");
        }
    };

    // The roots from the command line, shown by the API and the CLI.
    let (code, out) = arca(&["--json", "node", "list"]);
    assert_eq!(code, 0, "{out}");
    let nodes: Value = serde_json::from_str(&out).unwrap();
    let n = &nodes[0];
    let name = n["name"].as_str().unwrap().to_string();
    assert_eq!(n["source_roots"], json!([s(&sources)]), "{n}");
    assert_eq!(n["restore_roots"], json!([s(&restores)]), "{n}");
    assert_eq!(n["data_dir"], json!(s(&data)), "{n}");
    assert_eq!(n["allow_block_devices"], false, "{n}");
    let (_, out) = arca(&["node", "list"]);
    assert!(out.starts_with("ID  NAME"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(&name) && l.contains(&s(&sources)) && l.contains("refused")),
        "{out}"
    );

    // Sources.
    let src = s(&sources);
    refused(
        &["source", "add", "files", "bad", &s(&outside)],
        "422",
        &["outside the source roots", &format!("allowed: {src}")],
    );
    refused(
        &["source", "add", "files", "db", &s(&data.join("catalog.db"))],
        "422",
        &["data directory"],
    );
    refused(
        &["source", "add", "files", "up", &format!("{src}/../outside")],
        "422",
        &["'..'"],
    );
    assert_eq!(arca(&["source", "add", "files", "tree", &s(&tree)]).0, 0);
    // A link out of the roots passes the API's lexical check, and fails on
    // the node, which reads the real path.
    std::os::unix::fs::symlink(&outside, sources.join("link")).unwrap();
    assert_eq!(
        arca(&["source", "add", "files", "link", &s(&sources.join("link"))]).0,
        0
    );
    let (code, out) = arca(&["backup", "now", "link", "--wait"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("a link to") && out.contains("outside the source roots"),
        "{out}"
    );
    assert!(restore_points(&url, &token, "link").is_empty());
    let (code, out) = arca(&["backup", "now", "tree", "--wait"]);
    assert_eq!(code, 0, "{out}");
    let rp = restore_points(&url, &token, "tree")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Restores.
    let rst = s(&restores);
    refused(
        &["restore", &rp, "--to", &s(&outside.join("r"))],
        "422",
        &["outside the restore roots", &format!("allowed: {rst}")],
    );
    refused(
        &["restore", &rp, "--to", &s(&data.join("datastores/x"))],
        "422",
        &["data directory"],
    );
    let a = restores.join("a");
    let (code, out) = arca(&["restore", &rp, "--to", &s(&a), "--wait"]);
    assert_eq!(code, 0, "{out}");
    common::assert_same_tree(&tree, &a);
    // Not empty now: the task fails with the reason, unless --overwrite.
    let (code, out) = arca(&["restore", &rp, "--to", &s(&a), "--wait"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not empty") && out.contains("--overwrite"),
        "{out}"
    );
    let (code, out) = arca(&["restore", &rp, "--to", &s(&a), "--wait", "--overwrite"]);
    assert_eq!(code, 0, "{out}");
    common::assert_same_tree(&tree, &a);
    // Through a link out of the restore root: the node refuses.
    std::os::unix::fs::symlink(&outside, restores.join("esc")).unwrap();
    let (code, out) = arca(&[
        "restore",
        &rp,
        "--to",
        &s(&restores.join("esc/x")),
        "--wait",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outside the restore roots"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
    assert_eq!(left.len(), 1, "wrote outside the restore roots");

    // Only an admin changes the roots.
    let (st, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/users",
        Some(json!({"name": "op", "password": "operator-pw", "roles": [{"role": "operator"}]})),
    );
    assert_eq!(st, 201, "{v}");
    let resp = agent()
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(json!({"username": "op", "password": "operator-pw"}))
        .unwrap();
    let op: Value = resp.into_body().read_json().unwrap();
    let op = op["token"].as_str().unwrap().to_string();
    let (code, out) = arca_as(&op, &["node", "set", &name, "--source-root", "/etc"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");
    refused(
        &["node", "set", &name, "--source-root", "/"],
        "422",
        &["not accepted"],
    );
    refused(
        &["node", "set", &name, "--restore-root", "rel"],
        "422",
        &["absolute"],
    );
    let (_, log) = call(&url, &token, "GET", "/api/v1/audit?limit=1000", None);
    let sets: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "node.set")
        .collect();
    assert!(
        sets.iter()
            .any(|e| e["actor"] == "arca server" && e["result"] == "ok"),
        "{sets:?}"
    );
    assert!(
        sets.iter()
            .any(|e| e["actor"] == "op" && e["result"] == "denied"),
        "{sets:?}"
    );

    // Special files: an operator's restore clears setuid/setgid bits and
    // says so in the task log; only an admin may ask for them.
    let privd = sources.join("priv");
    std::fs::create_dir_all(&privd).unwrap();
    std::fs::write(privd.join("su"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        privd.join("su"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    assert_eq!(arca(&["source", "add", "files", "priv", &s(&privd)]).0, 0);
    assert_eq!(arca(&["backup", "now", "priv", "--wait"]).0, 0);
    let prp = restore_points(&url, &token, "priv")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o7777
    };
    let by_op = restores.join("by-op");
    let (code, out) = arca_as(&op, &["restore", &prp, "--to", &s(&by_op), "--wait"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        mode(&by_op.join("su")),
        0o755,
        "setuid kept for an operator"
    );
    let (_, tasks) = call(&url, &token, "GET", "/api/v1/tasks?limit=100", None);
    let tid = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "restore" && t["created_by"] == "op")
        .expect("the operator's restore task")["id"]
        .as_i64()
        .unwrap();
    let (_, logs) = call(
        &url,
        &token,
        "GET",
        &format!("/api/v1/tasks/{tid}/logs"),
        None,
    );
    assert!(
        logs.to_string().contains("special files not restored"),
        "{logs}"
    );
    let (code, out) = arca_as(
        &op,
        &[
            "restore",
            &prp,
            "--to",
            &s(&restores.join("op2")),
            "--special-files",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("403") && out.contains("special files"),
        "{out}"
    );
    let by_admin = restores.join("by-admin");
    let (code, out) = arca(&[
        "restore",
        &prp,
        "--to",
        &s(&by_admin),
        "--special-files",
        "--wait",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(mode(&by_admin.join("su")), 0o4755);

    // Block devices: a loop device, where the machine has them.
    let img = common::random_bytes(1 << 20, 8);
    std::fs::write(sources.join("disk.raw"), &img).unwrap();
    assert_eq!(
        arca(&[
            "source",
            "add",
            "image",
            "vm",
            &s(&sources.join("disk.raw"))
        ])
        .0,
        0
    );
    assert_eq!(arca(&["backup", "now", "vm", "--wait"]).0, 0);
    let vm = restore_points(&url, &token, "vm")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let backing = base.join("device.raw");
    std::fs::write(&backing, vec![0xA5u8; 1 << 20]).unwrap();
    let dev = match Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&backing)
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap().trim().to_string(),
        other => {
            eprintln!("SKIPPED the block device part: no loop device ({other:?})");
            return;
        }
    };
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }
    let _detach = Detach(dev.clone());
    let (code, out) = arca(&[
        "node",
        "set",
        &name,
        "--restore-root",
        &rst,
        "--restore-root",
        &dev,
    ]);
    assert_eq!(code, 0, "{out}");
    refused(
        &["restore", &vm, "--to", &dev],
        "422",
        &[
            "does not allow restores onto block devices",
            "--allow-block-devices true",
        ],
    );
    // A link to the device inside a restore root: refused by the node.
    std::os::unix::fs::symlink(&dev, restores.join("dev-link")).unwrap();
    let (code, out) = arca(&[
        "restore",
        &vm,
        "--to",
        &s(&restores.join("dev-link")),
        "--wait",
        "--overwrite",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not allow restores onto block devices"),
        "{out}"
    );
    assert!(std::fs::read(&dev).unwrap().iter().all(|&b| b == 0xA5));
    let (code, out) = arca(&["node", "set", &name, "--allow-block-devices", "true"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("block devices: allowed"), "{out}");
    // Allowed, and still only with --overwrite.
    let (code, out) = arca(&["restore", &vm, "--to", &dev, "--wait"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--overwrite"), "{out}");
    assert!(std::fs::read(&dev).unwrap().iter().all(|&b| b == 0xA5));
    let (code, out) = arca(&["restore", &vm, "--to", &dev, "--wait", "--overwrite"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read(&dev).unwrap(), img);
}
