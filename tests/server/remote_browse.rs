//! Browsing restore points on a remote node's datastore: the server asks
//! the node (WatchQueries/Answer), and `arca ls` through the server lists
//! what `arca ls` lists on the node's datastore directly. A node that is
//! gone is a quick, clear 503.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;
use crate::common::daemon::on_default_datastore;
use crate::helpers::*;

#[test]
fn ls_through_the_server_reads_a_remote_nodes_datastore() {
    let mut far = FarNode::start();
    let (url, admin) = (far.url.clone(), far.admin.clone());
    let dir = far.dir.path().to_path_buf();
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("dir/sub/deeper")).unwrap();
    std::fs::write(tree.join("a.txt"), common::text_bytes(10_000, 1)).unwrap();
    std::fs::write(tree.join("dir/b.txt"), common::text_bytes(20_000, 2)).unwrap();
    std::fs::write(tree.join("dir/sub/c.txt"), b"c").unwrap();
    std::fs::write(
        tree.join("dir/sub/deeper/d.bin"),
        common::random_bytes(5000, 3),
    )
    .unwrap();
    std::os::unix::fs::symlink("../a.txt", tree.join("dir/link")).unwrap();
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "docs", "kind": "files", "path": tree, "node": "far"})),
    );
    assert_eq!(s, 201, "{v}");
    far.ok(&["backup", "now", "docs", "--wait"]);
    let rps = restore_points(&url, &admin, "docs");
    assert_eq!(rps.len(), 1, "{rps:?}");
    let id = rps[0]["id"].as_str().unwrap().to_string();

    // Through the server: the node reads its datastore.
    let remote_root = far.ok(&["ls", &id[..12]]).0;
    let remote_dir = far.ok(&["ls", &id, "dir/sub", "-r"]).0;
    let remote_all = far.ok(&["ls", &id, "--recursive"]).0;
    let remote_json: Value =
        serde_json::from_str(&far.ok(&["--json", "ls", &id, "dir", "-r"]).0).unwrap();
    let paths: Vec<_> = remote_json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "dir/b.txt",
            "dir/link",
            "dir/sub",
            "dir/sub/c.txt",
            "dir/sub/deeper",
            "dir/sub/deeper/d.bin"
        ],
        "{remote_json}"
    );
    assert_eq!(remote_json["entries"][1]["link_target"], "../a.txt");
    assert_eq!(remote_json["entries"][0]["size"], 20_000);
    assert_eq!(remote_root.lines().count(), 2, "{remote_root}");
    assert_eq!(remote_all.lines().count(), 8, "{remote_all}");

    // Pages of the API: the same entries, in order.
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (s, v) = call(
            &url,
            &admin,
            "GET",
            &format!("/api/v1/restore-points/{id}/tree?recursive=true&limit=3&offset={offset}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        for e in v["entries"].as_array().unwrap() {
            paged.push(e["path"].as_str().unwrap().to_string());
        }
        match v["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(paged.len(), 8, "{paged:?}");
    assert_eq!(paged[0], "a.txt");
    assert_eq!(paged[7], "dir/sub/deeper/d.bin");

    // The node's errors are the API's: an unknown path is a 404, a file
    // path lists the file.
    let (code, _, err) = far.arca(&["ls", &id, "dir/nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no path") && err.contains("404"), "{err}");
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        &format!("/api/v1/restore-points/{id}/tree?path=dir/b.txt"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entries"][0]["path"], "dir/b.txt", "{v}");
    let (code, _, err) = far.arca(&["ls", &id, "dir/../.."]);
    assert_eq!(code, Some(1));
    assert!(err.contains("400"), "{err}");

    // A node that stopped cleanly is offline: a 503 at once, naming it.
    far.stop_node();
    assert_eq!(node(&url, &admin, "far")["state"], "offline");
    let t = Instant::now();
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        &format!("/api/v1/restore-points/{id}/tree"),
        None,
    );
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"], "unavailable", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("node \"far\" is offline"),
        "{v}"
    );
    let (code, _, err) = far.arca(&["ls", &id]);
    assert_eq!(code, Some(1));
    assert!(err.contains("503") && err.contains("offline"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // The same listings, read from the node's datastore directly.
    let local = |args: &[&str]| {
        let out = on_default_datastore(&far.node_dir, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(local(&["ls", &id[..12]]), remote_root);
    assert_eq!(local(&["ls", &id, "dir/sub", "-r"]), remote_dir);
    assert_eq!(local(&["ls", &id, "--recursive"]), remote_all);
    let local_json: Value =
        serde_json::from_str(&local(&["--json", "ls", &id, "dir", "-r"])).unwrap();
    assert_eq!(local_json, remote_json);

    // A node killed with -9 is still online until its heartbeats are
    // missed, but no longer takes queries: a 503 within the pickup time
    // (5 s), not a 30 s wait and not a 500.
    // Restarted, it answers from its registration on.
    far.node = NodeProc::start(&url, &far.node_token, &far.node_dir);
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        &format!("/api/v1/restore-points/{id}/tree"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    far.node.kill9();
    let t = Instant::now();
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        &format!("/api/v1/restore-points/{id}/tree"),
        None,
    );
    assert_eq!(s, 503, "{v}");
    assert!(v["message"].as_str().unwrap().contains("\"far\""), "{v}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    drop(far);
}
