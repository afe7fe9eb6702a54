//! The server's key files rotate (`arca settings rotate-key`, `POST
//! /keys/{name}/rotate`): the file holds a new key, the secrets sealed
//! under the old one work on (in the running server and after a restart
//! from the files alone), and a `.new` file a crash left before the
//! reseal committed is discarded at start. Hypervisors' SSH keys after a
//! rotation: tests/libvirt/hooks.rs (a real sshd).

use serde_json::Value;

use crate::helpers::*;
use crate::s3::{new_key, s3};

#[test]
fn key_files_rotate_and_the_secrets_they_seal_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), b"sealed and rotated\n").unwrap();
    let (srv, lines) = Server::start(&data);
    let admin = login(&srv.url, &first_password(&lines));
    let url = srv.url.clone();
    let ok = |args: &[&str]| {
        let (code, out, err) = cli_as(&url, &admin, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    ok(&["source", "add", "files", "docs", tree.to_str().unwrap()]);
    ok(&["backup", "now", "docs", "--wait"]);
    let endpoint = |url: &str| {
        let (code, out, err) = cli_as(url, &admin, &["--json", "status"]);
        assert_eq!(code, Some(0), "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()["s3_endpoint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let works = |endpoint: &str, key: &(String, String)| {
        let v = s3(endpoint, key, &["get", "docs", "latest/a.txt"]);
        assert_eq!(v["value"], "sealed and rotated\n", "{v}");
    };
    let (k1, k2) = (new_key(&url, &admin), new_key(&url, &admin));
    let e = endpoint(&url);
    works(&e, &k1);

    let s3_file = data.join("s3-keys.key");
    let before = std::fs::read(&s3_file).unwrap();
    let out = ok(&["--json", "settings", "rotate-key", "s3"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["key"].as_str(), r["resealed"].as_u64()),
        (Some("s3"), Some(2)),
        "{r}"
    );
    let after = std::fs::read(&s3_file).unwrap();
    assert_eq!(after.len(), 32);
    assert_ne!(before, after, "the key file did not change");
    // The secrets are not in the catalog in the clear, and they open.
    let catalog = std::fs::read(data.join("catalog.db")).unwrap_or_default();
    assert!(!catalog.windows(40).any(|w| w == k1.1.as_bytes()));
    works(&e, &k1);
    works(&e, &k2);
    // The text form; no hypervisor yet: nothing to reseal.
    let text = ok(&["settings", "rotate-key", "credentials"]);
    assert!(
        text.contains("credentials key rotated: 0 secret(s) resealed"),
        "{text}"
    );
    // Another name is not a key; only admins rotate (the RBAC matrix).
    let (s, v) = call(&url, &admin, "POST", "/api/v1/keys/tls/rotate", None);
    assert_eq!(s, 404, "{v}");
    let (_, audit) = call(&url, &admin, "GET", "/api/v1/audit?action=key.rotate", None);
    let targets: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert!(
        targets.contains(&"s3") && targets.contains(&"credentials"),
        "{audit}"
    );

    // After a restart, from the files alone.
    drop(srv);
    let (srv, _) = Server::start(&data);
    works(&endpoint(&srv.url), &k1);
    // A crash before the reseal committed left `.new`: discarded at
    // start, the key file and the secrets as they were.
    drop(srv);
    std::fs::write(data.join("s3-keys.key.new"), [3u8; 32]).unwrap();
    let (srv, _) = Server::start(&data);
    // (The server announces its address before it opens the key files;
    // once the gateway answers they are open.)
    works(&endpoint(&srv.url), &k2);
    assert!(!data.join("s3-keys.key.new").exists());
    assert_eq!(std::fs::read(&s3_file).unwrap(), after);
}
