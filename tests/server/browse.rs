//! Browsing restore points through the server: `arca snapshots` and
//! `arca ls` with ARCA_SERVER list what the same commands list on the
//! server's datastore directly, in the same format.

use serde_json::Value;

use crate::common;
use crate::common::daemon::on_default_datastore;
use crate::helpers::*;

/// Back up a small tree through the server, then list it through the
/// API and locally: same lines, same entries.
#[test]
fn snapshots_and_ls_through_the_server_match_the_local_listing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("dir/sub")).unwrap();
    std::fs::write(tree.join("a.txt"), common::text_bytes(10_000, 1)).unwrap();
    std::fs::write(tree.join("dir/b.txt"), common::text_bytes(20_000, 2)).unwrap();
    std::fs::write(tree.join("dir/sub/c.txt"), b"c").unwrap();
    std::os::unix::fs::symlink("../a.txt", tree.join("dir/link")).unwrap();
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let url = srv.url.clone();
    // stdout and the exit code.
    let arca = |args: &[&str]| cli_as(&url, &token, args);
    let ok = |args: &[&str]| {
        let (code, out, err) = arca(args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    ok(&["source", "add", "files", "docs", tree.to_str().unwrap()]);
    ok(&["backup", "now", "docs", "--wait"]);

    let rps: Value = serde_json::from_str(&ok(&["--json", "snapshots"])).unwrap();
    let rps = rps.as_array().unwrap();
    assert_eq!(rps.len(), 1, "{rps:?}");
    let id = rps[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rps[0]["source_name"], "docs");
    let filtered: Value =
        serde_json::from_str(&ok(&["--json", "snapshots", "--kind", "image"])).unwrap();
    assert_eq!(filtered.as_array().unwrap().len(), 0);
    let filtered: Value = serde_json::from_str(&ok(&[
        "--json",
        "snapshots",
        "--source",
        "docs",
        "--since",
        "2000-01-01",
    ]))
    .unwrap();
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    let remote_snapshots = ok(&["snapshots"]);
    assert!(remote_snapshots.contains(&id[..8]), "{remote_snapshots}");
    let remote_root = ok(&["ls", &id[..12]]);
    let remote_dir = ok(&["ls", &id, "/dir/", "--recursive"]);
    let remote_latest = ok(&["ls", "latest", "--source", "docs", "--recursive"]);
    let page: Value =
        serde_json::from_str(&ok(&["--json", "ls", &id, "dir", "--recursive"])).unwrap();
    let paths: Vec<_> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["dir/b.txt", "dir/link", "dir/sub", "dir/sub/c.txt"],
        "{page}"
    );
    let link = &page["entries"][1];
    assert_eq!(link["kind"], "symlink");
    assert_eq!(link["link_target"], "../a.txt");
    assert_eq!(page["entries"][0]["size"], 20_000);

    // Two at a time through the API: the same entries, in order.
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (s, v) = call(
            &url,
            &token,
            "GET",
            &format!("/api/v1/restore-points/{id}/tree?recursive=true&limit=2&offset={offset}"),
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
    assert_eq!(
        paged,
        [
            "a.txt",
            "dir",
            "dir/b.txt",
            "dir/link",
            "dir/sub",
            "dir/sub/c.txt"
        ]
    );

    // Bad input: clear messages, exit 1.
    let (code, _, err) = arca(&["ls", &id, "dir/../.."]);
    assert_eq!(code, Some(1));
    assert!(err.contains("..") && err.contains("400"), "{err}");
    let (code, _, err) = arca(&["ls", &id, "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no path") && err.contains("404"), "{err}");

    // The same listings, read from the datastore directly.
    drop(srv);
    let local = |args: &[&str]| {
        let out = on_default_datastore(&data, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(local(&["snapshots"]), remote_snapshots);
    assert_eq!(local(&["ls", &id[..12]]), remote_root);
    assert_eq!(local(&["ls", &id, "/dir/", "--recursive"]), remote_dir);
    assert_eq!(local(&["ls", "latest", "--recursive"]), remote_latest);
    assert_eq!(remote_root.lines().count(), 2, "{remote_root}");
    assert_eq!(remote_latest.lines().count(), 6, "{remote_latest}");
    assert!(remote_dir.contains("dir/link -> ../a.txt"), "{remote_dir}");
}
