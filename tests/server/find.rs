//! Finding files through the server: `arca find` with ARCA_SERVER and
//! `GET /api/v1/restore-points/search` over the restore points the caller
//! may read (another project's never appear), the same table as `arca
//! find` on the datastore directly, and bad patterns as 400.

use serde_json::{json, Value};

use crate::common::daemon::on_default_datastore;
use crate::helpers::*;

/// (short restore point id, source, path) of every match.
fn found(v: &Value) -> Vec<(String, String, String)> {
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["restore_point"].as_str().unwrap()[..8].to_string(),
                m["source"].as_str().unwrap().to_string(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn find_through_the_server_sees_only_the_caller_s_projects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    let secret = dir.path().join("secret");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(docs.join("keep.txt"), b"kept").unwrap();
    std::fs::write(docs.join("sub/old.txt"), b"old").unwrap();
    std::fs::write(secret.join("keep.txt"), b"theirs").unwrap();
    let (srv, lines) = Server::start(&data);
    let admin = login(&srv.url, &first_password(&lines));
    let url = srv.url.clone();
    let arca = |token: &str, args: &[&str]| cli_as(&url, token, args);
    let ok = |token: &str, args: &[&str]| {
        let (code, out, err) = arca(token, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    let json = |token: &str, args: &[&str]| -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&ok(token, &a)).unwrap()
    };

    // Project 1: two backups of docs, a file gone between them.
    ok(
        &admin,
        &["source", "add", "files", "docs", docs.to_str().unwrap()],
    );
    ok(&admin, &["backup", "now", "docs", "--wait"]);
    std::fs::remove_file(docs.join("sub/old.txt")).unwrap();
    std::fs::write(docs.join("sub/new.txt"), b"new").unwrap();
    ok(&admin, &["backup", "now", "docs", "--wait"]);
    // Project 2: one backup of secret.
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "other"})),
    );
    assert_eq!(s, 201, "{v}");
    let project = v["id"].as_i64().unwrap();
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(
            json!({"name": "secret", "kind": "files", "path": secret.to_str().unwrap(), "project": project}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    ok(
        &admin,
        &[
            "backup",
            "now",
            "secret",
            "--project",
            &project.to_string(),
            "--wait",
        ],
    );
    let rps = restore_points(&url, &admin, "docs");
    let (newest, oldest) = (
        rps[0]["id"].as_str().unwrap()[..8].to_string(),
        rps[1]["id"].as_str().unwrap()[..8].to_string(),
    );
    let theirs = restore_points(&url, &admin, "secret")[0]["id"]
        .as_str()
        .unwrap()[..8]
        .to_string();

    // The admin sees every project; newest first.
    let v = json(&admin, &["find", "keep.txt"]);
    let t = |rp: &str, src: &str, p: &str| (rp.to_string(), src.to_string(), p.to_string());
    assert_eq!(
        found(&v),
        [
            t(&theirs, "secret", "keep.txt"),
            t(&newest, "docs", "keep.txt"),
            t(&oldest, "docs", "keep.txt"),
        ]
    );
    assert_eq!(v["searched"], 3);
    assert_eq!(v["truncated"], false);
    // In the newer only, the older only, none.
    assert_eq!(
        found(&json(&admin, &["find", "new.txt"])),
        [t(&newest, "docs", "sub/new.txt")]
    );
    assert!(found(&json(
        &admin,
        &["find", "sub/*.txt", "--until", "2000-01-01"]
    ))
    .is_empty());
    assert_eq!(
        found(&json(&admin, &["find", "sub/*.txt"])),
        [
            t(&newest, "docs", "sub/new.txt"),
            t(&oldest, "docs", "sub/old.txt")
        ]
    );
    assert!(found(&json(&admin, &["find", "nowhere"])).is_empty());

    // An operator of project 1 never sees project 2's restore points.
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/users",
        Some(
            json!({"name": "alice", "password": "alice-secret-1", "roles": [{"role": "operator", "project": 1}]}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let resp = agent()
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(json!({"username": "alice", "password": "alice-secret-1"}))
        .unwrap();
    let alice = resp.into_body().read_json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let v = json(&alice, &["find", "keep.txt"]);
    assert_eq!(
        found(&v),
        [
            t(&newest, "docs", "keep.txt"),
            t(&oldest, "docs", "keep.txt")
        ]
    );
    assert_eq!(v["searched"], 2);
    let (s, v) = call(
        &url,
        &alice,
        "GET",
        "/api/v1/restore-points/search?pattern=*&source=secret",
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matches"], json!([]));
    assert_eq!(v["searched"], 0);
    let (s, v) = call(
        &url,
        &alice,
        "GET",
        "/api/v1/restore-points/search?pattern=*",
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().find(&theirs).is_none(), "{v}");

    // Bad patterns: 400 naming the problem; the CLI exits 1 with it.
    let (s, v) = call(
        &url,
        &admin,
        "GET",
        "/api/v1/restore-points/search?pattern=%5Babc",
        None,
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("not a glob"), "{v}");
    let (code, _, err) = arca(&admin, &["find", "a**b"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a glob") && err.contains("400"), "{err}");
    // The limit cuts and says so.
    let (code, out, err) = arca(&admin, &["--json", "find", "*", "--limit", "2"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found(&v).len(), 2);
    assert_eq!(v["truncated"], true);
    assert!(err.contains("stopped at 2 matches"), "{err}");

    // The same table as `arca find` on the datastore itself.
    let remote = ok(&admin, &["find", "*.txt", "--source", "docs"]);
    assert!(remote.starts_with("RESTORE POINT"), "{remote}");
    assert!(
        remote.contains("4 matches in 2 of 2 restore points searched"),
        "{remote}"
    );
    drop(srv);
    let out = on_default_datastore(&data, &["find", "*.txt", "--source", "docs"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), remote);
}
