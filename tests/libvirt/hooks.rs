//! A libvirt source's pre/post commands set through the server (issue
//! 17: "optional pre/post commands (argv arrays) for application
//! consistency", and the consistency level the restore point records),
//! with real components: the server, sshd on loopback and libvirtd with a
//! running KVM guest. The commands run on the host over SSH (here: this
//! machine, so they leave files the test can see); the backup's result
//! says `application` when they all succeeded and `crash` otherwise; a
//! failing pre command fails the backup (after the post commands ran, to
//! undo a freeze) or, when asked, only warns. The settings the server
//! owns cannot be changed through the API, and an inventory sync keeps
//! the admin's settings.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::daemon::{api, api_ok};
use crate::control::{cli, wait_task, ServerLab};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// An argv array for `--pre`/`--post`: `touch FILE`.
fn touch(f: &Path) -> String {
    json!(["touch", f]).to_string()
}

/// A backup task that succeeded, incremental, at `consistency`.
fn succeeded_incremental(t: &Value, consistency: &str) {
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["result"]["consistency"], consistency, "{t}");
    let mode = t["result"]["mode"].as_str().unwrap();
    assert!(mode.contains("incremental"), "{t}");
}

#[test]
fn pre_and_post_commands_of_a_libvirt_source_through_the_server() {
    if crate::skip() {
        return;
    }
    let lab = ServerLab::start("hook");
    let (url, token) = (lab.url.clone(), lab.token.clone());
    let (dir, dom) = (&lab.dir, &lab.dom);
    let h = lab.add_hypervisor("kvm1");
    let sync = || {
        api_ok(
            &url,
            &token,
            "POST",
            &format!("/api/v1/hypervisors/{}/sync", h["id"]),
            None,
            200,
        )
    };
    sync();
    let name = format!("kvm1.{}", dom.name);
    let sources = api_ok(&url, &token, "GET", "/api/v1/sources", None, 200);
    let src = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{sources}"))
        .clone();
    let sid = src["id"].as_i64().unwrap();
    let patch = |body: Value| {
        api(
            &url,
            &token,
            "PATCH",
            &format!("/api/v1/sources/{sid}"),
            Some(body),
        )
    };
    let get = || {
        api_ok(
            &url,
            &token,
            "GET",
            &format!("/api/v1/sources/{sid}"),
            None,
            200,
        )
    };

    // Bad hooks and the server's own settings are refused, and change
    // nothing.
    for (body, says) in [
        (json!({"hooks": {"pre": [[]]}}), "argv array"),
        (json!({"hooks": {"pre": [["", "x"]]}}), "argv array"),
        (json!({"hooks": {"pre": [["true", "a\u{0}b"]]}}), "NUL"),
        (
            json!({"hooks": {"pre": vec![vec!["true"]; 17]}}),
            "at most 16",
        ),
        (
            json!({"settings": {"hypervisor_id": 999}}),
            "settings.hypervisor_id is set by the server",
        ),
        (
            json!({"settings": {"removed": true}}),
            "settings.removed is set by the server",
        ),
        (
            json!({"settings": {"hooks": {"pre": [["true"]], "when": "now"}}}),
            "unknown field",
        ),
    ] {
        let (s, v) = patch(body.clone());
        assert_eq!(s, 422, "{body}: {v}");
        assert!(v.to_string().contains(says), "{body}: {v}");
    }
    let (s, v) = patch(json!({"hooks": {"pre": [["true"]], "when": "now"}}));
    assert!(s == 400 || s == 422, "{v}");
    assert_eq!(get()["settings"], src["settings"]);
    // Only a libvirt source has hooks.
    let img = api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "img", "kind": "image", "path": "/x.img", "agent": true})),
        201,
    );
    let (s, v) = api(
        &url,
        &token,
        "PATCH",
        &format!("/api/v1/sources/{}", img["id"]),
        Some(json!({"hooks": {"pre": [["true"]]}})),
    );
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("libvirt sources"), "{v}");
    // The admin's own settings: kept with the server's, and through a
    // sync.
    let (s, v) = patch(json!({"settings": {"note": "web tier"}}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["settings"]["note"], "web tier", "{v}");
    assert_eq!(v["settings"]["hypervisor_id"], h["id"], "{v}");
    sync();
    assert_eq!(get()["settings"]["note"], "web tier");

    let backup = || -> Value {
        let t = api_ok(
            &url,
            &token,
            "POST",
            &format!("/api/v1/sources/{sid}/backup"),
            None,
            202,
        );
        wait_task(&url, &token, t["id"].as_i64().unwrap())
    };
    let restore_points = || {
        api_ok(
            &url,
            &token,
            "GET",
            &format!("/api/v1/restore-points?source={name}"),
            None,
            200,
        )
        .as_array()
        .unwrap()
        .len()
    };
    let edit = |args: &[&str]| {
        let mut a = vec!["--json", "source", "edit", &name];
        a.extend(args);
        let (code, out, err) = cli(&url, &token, &a);
        assert_eq!(code, Some(0), "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };

    // Without hooks: crash-consistent.
    let t = backup();
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["result"]["consistency"], "crash", "{t}");

    // Set from the CLI: both run on the host, the restore point is
    // application-consistent, and a sync keeps them.
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let (pre, post) = (marks.join("pre"), marks.join("post"));
    let s = edit(&["--pre", &touch(&pre), "--post", &touch(&post)]);
    assert_eq!(
        s["settings"]["hooks"]["pre"],
        json!([["touch", pre]]),
        "{s}"
    );
    assert_eq!(s["settings"]["hooks"]["on_pre_failure"], "fail", "{s}");
    sync();
    assert_eq!(get()["settings"]["hooks"], s["settings"]["hooks"]);
    dom.write(0x11, 8 * MIB, 128 * KIB);
    let t = backup();
    succeeded_incremental(&t, "application");
    assert!(pre.exists() && post.exists(), "the hooks did not run");
    assert_eq!(restore_points(), 2);

    // A failing pre command fails the backup, after the post commands
    // ran; no restore point is listed, and the checkpoint chain holds.
    let post2 = marks.join("post2");
    edit(&["--pre", r#"["false"]"#, "--post", &touch(&post2)]);
    let t = backup();
    assert_eq!(t["state"], "failed", "{t}");
    let e = t["error"].as_str().unwrap();
    assert!(e.contains("a pre command failed"), "{t}");
    assert!(
        post2.exists(),
        "the post command did not run after the failure"
    );
    assert_eq!(restore_points(), 2);
    assert_eq!(dom.checkpoints().len(), 1, "{:?}", dom.checkpoints());
    // … or only warns, when asked: crash-consistent, and said why.
    edit(&["--pre", r#"["false"]"#, "--pre-failure-is-warning"]);
    let t = backup();
    succeeded_incremental(&t, "crash");
    let log = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/tasks/{}/logs", t["id"]),
        None,
        200,
    );
    assert!(
        log.to_string()
            .contains("pre command failed, crash-consistent only"),
        "{log}"
    );
    assert_eq!(restore_points(), 3);

    // Removed: none run, crash-consistent.
    let s = edit(&["--no-hooks"]);
    assert!(s["settings"].get("hooks").is_none(), "{s}");
    assert_eq!(s["settings"]["note"], "web tier", "{s}");
    std::fs::remove_file(&pre).unwrap();
    let t = backup();
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["result"]["consistency"], "crash", "{t}");
    assert!(!pre.exists());
    // The credentials key rotates: the hypervisor's SSH key is resealed
    // under the new key file, and syncs and backups go on with it.
    let creds = dir.path().join("data/credentials.key");
    let before = std::fs::read(&creds).unwrap();
    let (code, out, err) = cli(
        &url,
        &token,
        &["--json", "settings", "rotate-key", "credentials"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["resealed"], 1, "{r}");
    assert_ne!(std::fs::read(&creds).unwrap(), before);
    sync();
    let t = backup();
    assert_eq!(t["state"], "succeeded", "{t}");
    // A flag alone is no change of hooks.
    let (code, _, err) = cli(
        &url,
        &token,
        &["source", "edit", &name, "--pre-failure-is-warning"],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("--pre"), "{err}");
}
