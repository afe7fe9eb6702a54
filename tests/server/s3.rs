//! The S3 gateway of `arca server`: per-user keys made with `arca s3-key
//! create`, buckets for the sources of the projects a user may restore
//! from, revoked keys and disabled users refused at once, `arca status`
//! naming the endpoint.

use serde_json::{json, Value};

use crate::common;
use crate::helpers::*;

/// One boto3 call (tests/s3/server_client.py): status, error code, value.
pub(crate) fn s3(endpoint: &str, key: &(String, String), args: &[&str]) -> Value {
    let script = common::source_dir().join("tests/s3/server_client.py");
    let mut a = vec![script.to_str().unwrap(), endpoint, &key.0, &key.1];
    a.extend_from_slice(args);
    let o = common::tool("python3", &a);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `arca s3-key create` as the holder of `token`: (access key id, secret).
pub(crate) fn new_key(url: &str, token: &str) -> (String, String) {
    let (code, out, err) = cli_as(url, token, &["s3-key", "create", "--description", "test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut l = out.lines();
    let pair = (l.next().unwrap().to_string(), l.next().unwrap().to_string());
    assert_eq!(pair.0.len(), 20, "{out}");
    assert_eq!(pair.1.len(), 40, "{out}");
    pair
}

#[test]
fn per_user_keys_see_their_projects_sources_until_revoked_or_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("dir")).unwrap();
    std::fs::write(tree.join("a.txt"), b"from the server\n").unwrap();
    std::fs::write(tree.join("dir/b.txt"), common::text_bytes(70_000, 3)).unwrap();
    let (srv, lines) = Server::start(&data);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("S3 gateway (read-only) on http://127.0.0.1:")),
        "{lines:?}"
    );
    let admin = login(&srv.url, &first_password(&lines));
    let url = srv.url.clone();
    let ok = |token: &str, args: &[&str]| {
        let (code, out, err) = cli_as(&url, token, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    ok(
        &admin,
        &[
            "source",
            "add",
            "files",
            "Docs_Share",
            tree.to_str().unwrap(),
        ],
    );
    ok(&admin, &["backup", "now", "Docs_Share", "--wait"]);
    let status: Value = serde_json::from_str(&ok(&admin, &["--json", "status"])).unwrap();
    let endpoint = status["s3_endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{status}");
    assert_eq!(status["nodes"], 1, "{status}");
    assert_eq!(status["api_url"], url.as_str(), "{status}");
    let text = ok(&admin, &["status"]);
    assert!(text.contains(&endpoint), "{text}");

    // The admin's key: the source's bucket, its files.
    let key = new_key(&url, &admin);
    let v = s3(&endpoint, &key, &["buckets"]);
    assert_eq!(v["value"], json!(["docs-share"]), "{v}");
    let v = s3(&endpoint, &key, &["get", "docs-share", "latest/a.txt"]);
    assert_eq!(v["value"], "from the server\n", "{v}");
    let v = s3(&endpoint, &key, &["list", "docs-share", "latest/"]);
    assert_eq!(
        v["value"],
        json!(["latest/a.txt", "latest/dir/b.txt"]),
        "{v}"
    );

    // Bob may restore in another project only: no bucket, and a direct
    // access is refused.
    ok(&admin, &["project", "add", "other"]);
    let pw = dir.path().join("bob.pw");
    std::fs::write(&pw, "bob-password-123\n").unwrap();
    ok(
        &admin,
        &[
            "user",
            "add",
            "bob",
            "--role",
            "restore-only@other",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    let (st, v) = call(
        &url,
        "",
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "bob", "password": "bob-password-123"})),
    );
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_string();
    let bob_key = new_key(&url, &bob);
    let v = s3(&endpoint, &bob_key, &["buckets"]);
    assert_eq!(v["value"], json!([]), "{v}");
    let v = s3(&endpoint, &bob_key, &["get", "docs-share", "latest/a.txt"]);
    assert_eq!(v["status"], 404, "{v}");
    assert_eq!(v["code"], "NoSuchBucket", "{v}");

    // Keys are listed (admins see everyone's) and not readable with a
    // wrong secret.
    let all: Value = serde_json::from_str(&ok(&admin, &["--json", "s3-key", "list"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let mine: Value = serde_json::from_str(&ok(&bob, &["--json", "s3-key", "list"])).unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["access_key_id"], bob_key.0.as_str());
    let wrong = (key.0.clone(), "x".repeat(40));
    let v = s3(&endpoint, &wrong, &["buckets"]);
    assert_eq!(v["code"], "SignatureDoesNotMatch", "{v}");

    // A disabled user's key is refused at once; enabled again, it works.
    ok(&admin, &["user", "edit", "bob", "--disable"]);
    let v = s3(&endpoint, &bob_key, &["buckets"]);
    assert_eq!(v["status"], 403, "{v}");
    ok(&admin, &["user", "edit", "bob", "--enable"]);
    let v = s3(&endpoint, &bob_key, &["buckets"]);
    assert_eq!(v["status"], 200, "{v}");

    // A revoked key is refused at once.
    let id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["access_key_id"] == key.0.as_str())
        .unwrap()["id"]
        .to_string();
    ok(&admin, &["s3-key", "revoke", &id]);
    let v = s3(&endpoint, &key, &["buckets"]);
    assert_eq!(v["status"], 403, "{v}");
    assert_eq!(v["code"], "InvalidAccessKeyId", "{v}");

    // Made and revoked keys are in the audit log.
    let (_, audit) = call(&url, &admin, "GET", "/api/v1/audit", None);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"s3-key.add"), "{actions:?}");
    assert!(actions.contains(&"s3-key.revoke"), "{actions:?}");
}

/// A source on a remote node: its bucket and restore points are listed,
/// and its files are read through that node (tests/server/remote_files.rs
/// reads more of them, with aws and rclone).
#[test]
fn a_remote_nodes_source_is_listed_and_its_files_read_through_the_node() {
    let far = FarNode::start();
    let (url, admin) = (far.url.clone(), far.admin.clone());
    let tree = far.dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), b"far away").unwrap();
    let (s, v) = call(
        &url,
        &admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "fardocs", "kind": "files", "path": tree, "node": "far"})),
    );
    assert_eq!(s, 201, "{v}");
    far.ok(&["backup", "now", "fardocs", "--wait"]);
    let rps = restore_points(&url, &admin, "fardocs");
    let id = rps[0]["id"].as_str().unwrap().to_string();
    let status: Value = serde_json::from_str(&far.ok(&["--json", "status"]).0).unwrap();
    let endpoint = status["s3_endpoint"].as_str().unwrap().to_string();
    assert_eq!(status["nodes"], 2, "{status}");
    let key = new_key(&url, &admin);
    let v = s3(&endpoint, &key, &["buckets"]);
    assert_eq!(v["value"], json!(["fardocs"]), "{v}");
    let v = s3(&endpoint, &key, &["prefixes", "fardocs"]);
    assert_eq!(
        v["value"],
        json!([format!("{id}/"), "latest/".to_string()]),
        "{v}"
    );
    let v = s3(&endpoint, &key, &["get", "fardocs", "latest/a.txt"]);
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["value"], "far away", "{v}");
    let v = s3(&endpoint, &key, &["list", "fardocs", &format!("{id}/")]);
    assert_eq!(v["value"], json!([format!("{id}/a.txt")]), "{v}");
}
