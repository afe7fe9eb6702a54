//! Finding files on a remote node's datastore: the server asks the node
//! (a find query through WatchQueries/Answer), and `arca find` through
//! the server finds what `arca find` finds on the node's datastore
//! directly, beside the matches of the server's own node. A node that is
//! gone has its restore points skipped with the reason; the rest is found.

use serde_json::{json, Value};

use crate::common::daemon::on_default_datastore;
use crate::helpers::*;

#[test]
fn find_through_the_server_searches_a_remote_nodes_datastore() {
    let mut far = FarNode::start();
    let (url, admin) = (far.url.clone(), far.admin.clone());
    let dir = far.dir.path().to_path_buf();

    // On the remote node: two backups of "docs", a file added between.
    let docs = dir.join("docs");
    std::fs::create_dir_all(docs.join("etc/sub")).unwrap();
    std::fs::write(docs.join("etc/a.conf"), b"a = 1\n").unwrap();
    std::fs::write(docs.join("etc/sub/b.txt"), b"b").unwrap();
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "docs", "kind": "files", "path": docs, "node": "far"})),
    );
    assert_eq!(s, 201, "{v}");
    far.ok(&["backup", "now", "docs", "--wait"]);
    std::fs::write(docs.join("etc/sub/c.conf"), b"c = 3\n").unwrap();
    far.ok(&["backup", "now", "docs", "--wait"]);
    // On the server's own node: one backup of "mine".
    let mine = dir.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("local.conf"), b"here").unwrap();
    far.ok(&["source", "add", "files", "mine", mine.to_str().unwrap()]);
    far.ok(&["backup", "now", "mine", "--wait"]);
    let far_rps: Vec<String> = restore_points(&url, &admin, "docs")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(far_rps.len(), 2, "{far_rps:?}");
    let (newest, oldest) = (&far_rps[0], &far_rps[1]);

    // Both nodes' restore points searched, the remote ones by their node.
    let v: Value = serde_json::from_str(&far.ok(&["--json", "find", "*.conf"]).0).unwrap();
    let mut found: Vec<(String, String)> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["restore_point"].as_str().unwrap().to_string(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let mine_rp = restore_points(&url, &admin, "mine")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut want = vec![
        (newest.clone(), "etc/a.conf".to_string()),
        (newest.clone(), "etc/sub/c.conf".to_string()),
        (oldest.clone(), "etc/a.conf".to_string()),
        (mine_rp.clone(), "local.conf".to_string()),
    ];
    want.sort();
    assert_eq!(found, want, "{v}");
    assert_eq!(v["searched"], 3, "{v}");
    assert_eq!(v["skipped"], json!([]), "{v}");
    assert_eq!(v["truncated"], false, "{v}");
    let m = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == "etc/sub/c.conf")
        .unwrap();
    assert_eq!(m["source"], "docs", "{v}");
    assert_eq!(m["kind"], "file", "{v}");
    assert_eq!(m["size"], 6, "{v}");

    // Human output: the table, its summary; a path pattern, ignoring case.
    let (remote, _) = far.ok(&["find", "*.conf", "--source", "docs"]);
    assert!(remote.starts_with("RESTORE POINT"), "{remote}");
    assert!(remote.contains("etc/sub/c.conf"), "{remote}");
    assert!(
        remote.contains("3 matches in 2 of 2 restore points searched"),
        "{remote}"
    );
    let (out, _) = far.ok(&["find", "-i", "ETC/SUB/*", "--source", "docs"]);
    assert!(
        out.contains("etc/sub/b.txt") && out.contains("etc/sub/c.conf"),
        "{out}"
    );
    // The limit cuts a remote search too.
    let (out, err) = far.ok(&["--json", "find", "*", "--source", "docs", "--limit", "2"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matches"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["truncated"], true, "{v}");
    assert!(err.contains("stopped at 2 matches"), "{err}");

    // The node stopped: its restore points are skipped with the reason,
    // the server's own are still found (a 200, not an error).
    far.stop_node();
    assert_eq!(node(&url, &admin, "far")["state"], "offline");
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        "/api/v1/restore-points/search?pattern=*.conf",
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matches"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["matches"][0]["path"], "local.conf", "{v}");
    assert_eq!(v["matches"][0]["restore_point"], mine_rp.as_str(), "{v}");
    assert_eq!(v["searched"], 1, "{v}");
    let skipped = v["skipped"].as_array().unwrap();
    let mut ids: Vec<_> = skipped
        .iter()
        .map(|s| s["restore_point"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut far_ids: Vec<_> = far_rps.iter().map(String::as_str).collect();
    far_ids.sort();
    assert_eq!(ids, far_ids, "{v}");
    for s in skipped {
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .contains("node \"far\" is offline"),
            "{v}"
        );
    }
    let (out, err) = far.ok(&["find", "*.conf"]);
    assert!(out.contains("local.conf"), "{out}");
    assert!(!out.contains("etc/a.conf"), "{out}");
    assert!(
        err.contains(&format!("skipped {}", &newest[..8])) && err.contains("offline"),
        "{err}"
    );

    // What the server found on the node is what `arca find` finds on the
    // node's datastore directly.
    let out = on_default_datastore(&far.node_dir, &["find", "*.conf", "--source", "docs"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), remote);
    drop(far);
}
