//! `--log-format json`: structured records for requests, failures and the
//! first-start banner.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{self, tool};
use crate::helpers::*;

/// `arca server --log-format json`: every line of stdout and stderr is a
/// JSON record with a timestamp and a level; a failed sign-in, a failed
/// backup and each request leave one record with their fields, and the
/// first-start banner carries the admin password in a field.
#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let parent = dir.path().to_str().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["server", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args([
            "--nbd-listen",
            "127.0.0.1:0",
            "--iscsi-listen",
            "127.0.0.1:0",
            "--nfs-listen",
            "127.0.0.1:0",
            "--s3-listen",
            "127.0.0.1:0",
        ])
        .args(["--source-root", parent, "--restore-root", parent])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("ARCA_LOG")
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let srv = Server {
        child,
        url: String::new(),
    };
    let records = |path: &Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"));
                assert!(v["timestamp"].is_string(), "no timestamp: {l}");
                assert!(v["level"].is_string(), "no level: {l}");
                v
            })
            .collect()
    };
    let mut url = None;
    wait_for("the server's address", 60, || {
        url = records(&out_path)
            .iter()
            .find_map(|r| r["url"].as_str().map(str::to_string));
        url.is_some()
    });
    let url = url.unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let pw = first_password(&lines);
    assert_eq!(
        pw,
        std::fs::read_to_string(data.join("initial-admin-password"))
            .unwrap()
            .trim()
    );

    // A failed sign-in.
    let resp = agent()
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(json!({"username": "admin", "password": "not the password"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // A failing backup.
    let token = login(&url, &pw);
    let missing = dir.path().join("does-not-exist");
    let (s, src) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "gone", "kind": "files", "path": missing})),
    );
    assert_eq!(s, 201, "{src}");
    let (s, t) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/sources/{}/backup", src["id"]),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let task = t["id"].as_i64().unwrap();
    let find = |msg: &str| -> Vec<Value> {
        records(&out_path)
            .into_iter()
            .filter(|r| r["message"] == msg)
            .collect()
    };
    wait_for("the task's failure record", 60, || {
        !find("task failed").is_empty()
    });
    let failed = find("task failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let f = &failed[0];
    assert_eq!(f["level"], "ERROR");
    assert_eq!(f["task"], task);
    assert_eq!(f["kind"], "backup");
    assert_eq!(f["source"], "gone");
    assert!(
        f["error"].as_str().unwrap().contains("does-not-exist"),
        "{f}"
    );
    let started: Vec<Value> = find("task started")
        .into_iter()
        .filter(|r| r["task"] == task)
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");

    let signin: Vec<Value> = records(&out_path)
        .into_iter()
        .filter(|r| r["target"] == "arca::signin")
        .collect();
    assert_eq!(signin.len(), 1, "{signin:?}");
    assert_eq!(signin[0]["level"], "WARN");
    assert_eq!(signin[0]["user"], "admin");
    assert_eq!(signin[0]["reason"], "wrong_password");

    let requests: Vec<Value> = find("request");
    let login_fail = requests
        .iter()
        .filter(|r| r["route"] == "/api/v1/auth/login" && r["status"] == 401)
        .count();
    assert_eq!(login_fail, 1, "{requests:?}");
    let add = requests
        .iter()
        .find(|r| r["route"] == "/api/v1/sources" && r["method"] == "POST")
        .expect("a record of POST /api/v1/sources");
    assert_eq!(add["status"], 201);
    assert_eq!(add["user"], "admin");
    assert!(add["duration_ms"].is_number(), "{add}");
    let backup = requests
        .iter()
        .find(|r| r["route"] == "/api/v1/sources/{id}/backup")
        .expect("a record of the backup request, by its route");
    assert_eq!(backup["status"], 202);

    // An export client: NBD connect and disconnect.
    let image = dir.path().join("disk.raw");
    std::fs::write(&image, common::random_bytes(1 << 20, 5)).unwrap();
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "vm", "kind": "image", "path": image})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, t) = call(
        &url,
        &token,
        "POST",
        &format!("/api/v1/sources/{}/backup", v["id"]),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let mut rp = None;
    wait_for("the image's restore point", 60, || {
        rp = restore_points(&url, &token, "vm")
            .first()
            .and_then(|r| r["id"].as_str().map(str::to_string));
        rp.is_some()
    });
    let (s, e) = call(
        &url,
        &token,
        "POST",
        "/api/v1/exports",
        Some(json!({"restore_point": rp.unwrap(), "protocol": "nbd"})),
    );
    assert_eq!(s, 201, "{e}");
    let id = e["id"].as_i64().unwrap();
    let mut address = None;
    wait_for("the export to be served", 60, || {
        let (_, e) = call(&url, &token, "GET", &format!("/api/v1/exports/{id}"), None);
        address = e["address"].as_str().map(str::to_string);
        e["state"] == "active" && address.is_some()
    });
    let size = tool("nbdinfo", &["--size", &address.unwrap()]);
    assert_eq!(String::from_utf8_lossy(&size.stdout).trim(), "1048576");
    wait_for("the export client's disconnect record", 30, || {
        !find("export client disconnected").is_empty()
    });
    for msg in ["export client connected", "export client disconnected"] {
        let r = find(msg);
        assert_eq!(r.len(), 1, "{msg}: {r:?}");
        assert_eq!(r[0]["protocol"], "nbd");
        // Named without its secret.
        assert_eq!(r[0]["export"], format!("export-{id}-<secret>"), "{r:?}");
        assert!(
            r[0]["span"]["peer"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{r:?}"
        );
    }

    drop(srv);
    records(&out_path);
    records(&err_path);
}
