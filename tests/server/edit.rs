//! `arca source|policy edit|remove`, `arca node remove` and
//! `arca protect|unprotect` against a server.

use std::process::Command;

use serde_json::Value;

use crate::common;
use crate::helpers::*;

#[test]
fn edit_remove_and_protect_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    let moved = dir.path().join("moved");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::write(moved.join("f.txt"), common::text_bytes(10_000, 3)).unwrap();
    let (srv, _) = Server::start(&data);
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let cfg = dir.path().join("cfg");
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &srv.url)
            .env("XDG_CONFIG_HOME", &cfg)
            .env("ARCA_PASSWORD", pw.trim())
            .env_remove("ARCA_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let json = |args: &[&str]| -> Value {
        let (code, out) = arca(&[&["--json"], args].concat());
        assert_eq!(code, Some(0), "{args:?}: {out}");
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(arca(&["login"]).0, Some(0));
    json(&["source", "add", "files", "docs", tree.to_str().unwrap()]);
    json(&["policy", "add", "gold", "--schedule", "daily"]);

    // Edit: a new name, path, tags and policy; only those change.
    let s = json(&[
        "source",
        "edit",
        "docs",
        "--rename",
        "site",
        "--path",
        moved.to_str().unwrap(),
        "--tag",
        "web",
        "--policy",
        "gold",
    ]);
    assert_eq!(s["name"], "site");
    assert_eq!(s["path"], moved.to_str().unwrap());
    assert_eq!(s["tags"], serde_json::json!(["web"]));
    assert_eq!(s["assigned_by"], "explicit");
    let (code, out) = arca(&["source", "edit", "docs", "--tag", "x"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no source named \"docs\""), "{out}");
    let (code, out) = arca(&["source", "edit", "site", "--path", "/etc"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("/etc"), "{out}");
    let p = json(&[
        "policy",
        "edit",
        "gold",
        "--keep-last",
        "1",
        "--priority",
        "-5",
        "--enabled",
        "false",
    ]);
    assert_eq!(p["retention"]["keep_last"], 1);
    assert_eq!(
        (&p["priority"], &p["enabled"]),
        (&(-5).into(), &false.into())
    );
    let (code, out) = arca(&["policy", "edit", "gold", "--schedule", "dialy"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("daily"), "{out}");

    // A backup of the changed source, then protect its restore point.
    let t = json(&["backup", "now", "site"]);
    let id = t["id"].as_i64().unwrap().to_string();
    wait_for("the backup", 60, || {
        arca(&["--json", "task", "show", &id])
            .1
            .contains("\"succeeded\"")
    });
    let shown = json(&["task", "show", &id]);
    let snap = shown["task"]["result"]["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let rp = json(&["protect", &snap[..12], "--note", "before the upgrade"]);
    assert_eq!(
        (&rp["id"], &rp["protected"]),
        (&snap.clone().into(), &true.into())
    );
    assert_eq!(rp["note"], "before the upgrade");
    let (code, out) = arca(&["protect", "zz"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not a hex id"), "{out}");

    // Removing it with its restore points is refused (a protected one
    // among them); kept, they stay listed under its name.
    let (code, out) = arca(&["source", "remove", "site", "--remove-restore-points"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("1 protected"), "{out}");
    let rp = json(&["unprotect", &snap]);
    assert_eq!(
        (&rp["protected"], &rp["note"]),
        (&false.into(), &"before the upgrade".into())
    );
    let (code, out) = arca(&["source", "remove", "site", "--keep-restore-points"]);
    assert_eq!(code, Some(0), "{out}");
    let sources = json(&["source", "list"]);
    assert_eq!(sources, serde_json::json!([]));
    let rp = json(&["protect", &snap]);
    assert_eq!(
        (&rp["source_id"], &rp["source_name"]),
        (&Value::Null, &"site".into())
    );
    // The server's own node stays; an unknown one is named.
    let nodes = json(&["node", "list"]);
    let own = nodes[0]["name"].as_str().unwrap().to_string();
    let (code, out) = arca(&["node", "remove", &own]);
    assert_eq!(code, Some(1));
    assert!(out.contains("own node"), "{out}");
    let (code, out) = arca(&["node", "edit", "ghost", "--allow-block-devices", "false"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no node named \"ghost\""), "{out}");
    let (code, out) = arca(&["node", "remove", "ghost"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no node named \"ghost\""), "{out}");
    let (code, out) = arca(&["policy", "remove", "gold"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(json(&["policy", "list"]), serde_json::json!([]));
}
