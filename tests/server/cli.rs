//! The `arca` CLI against a server: login, sources, policies, backups and
//! restores; passwords on a terminal; tokens, settings and metrics; catalog
//! import from a datastore.

use std::process::Command;

use serde_json::{json, Value};

use crate::common;
use crate::common::terminal::answering as on_terminal;
use crate::helpers::*;

/// The CLI against the server: login, source, policy, backup now, task,
/// restore --to.
#[test]
fn cli_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f.txt"), common::text_bytes(100_000, 9)).unwrap();
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
    let (code, out) = arca(&["login"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = arca(&[
        "source",
        "add",
        "files",
        "docs",
        tree.to_str().unwrap(),
        "--tag",
        "x",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = arca(&[
        "policy",
        "add",
        "p",
        "--schedule",
        "Mon..Fri 22:00",
        "--match-tag",
        "x",
        "--keep-last",
        "5",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = arca(&["policy", "add", "bad", "--schedule", "Mon..Fri 25:00"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("hour 25 is out of range"), "{out}");
    let (code, out) = arca(&["--json", "backup", "now", "docs"]);
    assert_eq!(code, Some(0), "{out}");
    let task: Value = serde_json::from_str(&out).unwrap();
    let id = task["id"].as_i64().unwrap().to_string();
    wait_for("the backup", 60, || {
        arca(&["--json", "task", "show", &id])
            .1
            .contains("\"succeeded\"")
    });
    let (_, out) = arca(&["--json", "task", "show", &id]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    let snap = shown["task"]["result"]["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let target = dir.path().join("restored");
    let (code, out) = arca(&[
        "--json",
        "restore",
        &snap[..12],
        "--to",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let rid = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    wait_for("the restore", 60, || {
        arca(&["--json", "task", "show", &rid])
            .1
            .contains("\"succeeded\"")
    });
    common::assert_same_tree(&tree, &target);
    human_output(&arca, &id, &snap[..12], &tree, &dir.path().join("one"));
    // A revoked or bogus token is refused with a clear message.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["task", "list"])
        .env("ARCA_SERVER", &srv.url)
        .env("ARCA_TOKEN", "arca_0000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown token"));
}

/// An edit or set command given nothing to change is refused before any
/// request (the server's address here answers nothing), naming the
/// options that change something, with exit code 2.
#[test]
fn an_edit_without_a_change_is_refused_locally() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["source", "edit", "docs", "--project", "1"],
            "--rename, --path, --tag, --no-tags, --policy, --no-policy",
        ),
        (
            &["policy", "edit", "p"],
            "--schedule, --window, --no-window",
        ),
        (
            &["node", "edit", "local"],
            "--source-root, --no-source-roots",
        ),
        (
            &["datastore", "set", "default"],
            "--gc-schedule, --verify-schedule, --verify-max-age-days",
        ),
    ];
    for (args, flags) in cases {
        for json in [false, true] {
            let out = Command::new(env!("CARGO_BIN_EXE_arca"))
                .args(if json { &["--json"][..] } else { &[][..] })
                .args(args)
                .env("ARCA_SERVER", "http://127.0.0.1:9")
                .env("ARCA_TOKEN", "arca_unused")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
            assert!(
                text.contains(&format!("nothing to change; give one of {flags}")),
                "{args:?}: {text}"
            );
            if json {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(v["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("nothing to change"));
            }
        }
    }
}

/// What people read: tables with headers, readable times and summaries,
/// never `null`; `--path` as the source's original absolute path.
/// `arca ARGS` as a test runs it: exit code, stdout and stderr.
type Run<'a> = &'a dyn Fn(&[&str]) -> (Option<i32>, String);

fn human_output(
    arca: Run,
    backup: &str,
    snap: &str,
    tree: &std::path::Path,
    one: &std::path::Path,
) {
    let mut seen = String::new();
    let (code, out) = arca(&["task", "list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("ID  SOURCE  KIND") && out.lines().next().unwrap().ends_with("RATE"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().take(4).eq([
            backup,
            "docs",
            "backup",
            "succeeded"
        ])),
        "{out}"
    );
    seen += &out;
    let (code, out) = arca(&["task", "show", backup]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with(&format!("task {backup}\nkind      backup\n")),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "source    docs"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("result    restore point ") && l.contains("1 files")),
        "{out}"
    );
    assert!(out.contains("\nlog:\n"), "{out}");
    seen += &out;
    // Lists: the header, and a row with these words.
    let lists: [(&[&str], &str, &[&str]); 2] = [
        (
            &["source", "list"],
            "ID  NAME  KIND   PATH",
            &["docs", "files"],
        ),
        (
            &["policy", "list"],
            "ID  NAME  SCHEDULE",
            &[" Mon..Fri ", "22:00", "last 5"],
        ),
    ];
    for (args, header, words) in lists {
        let (code, out) = arca(args);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        assert!(out.starts_with(header), "{out}");
        assert!(
            out.lines().any(|l| words.iter().all(|w| l.contains(w))),
            "{words:?} in {out}"
        );
        seen += &out;
    }
    // A restore of one file named by its original path, followed: a
    // summary, not JSON.
    let file = tree.join("f.txt");
    let (code, out) = arca(&[
        "restore",
        snap,
        "--to",
        one.to_str().unwrap(),
        "--path",
        file.to_str().unwrap(),
        "--wait",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("restore task ")
            && l.contains(" succeeded")
            && l.contains(" files, 97.7 KiB written to ")),
        "{out}"
    );
    assert_eq!(
        std::fs::read(one.join("f.txt")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    seen += &out;
    let (code, out) = arca(&[
        "restore",
        snap,
        "--to",
        one.to_str().unwrap(),
        "--path",
        "/etc/hosts",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("paths are relative to the source root")
            && out.contains(&format!("{:?}", tree.to_str().unwrap())),
        "{out}"
    );
    for l in seen.lines() {
        assert!(!l.contains("null"), "{l:?} in\n{seen}");
    }
}

/// `arca passwd` asks without echo, twice, refuses empty and differing
/// input, and signs the other sessions out; `arca user passwd NAME` is an
/// admin's reset.
#[test]
fn passwords_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, lines) = Server::start(&data);
    let pw = first_password(&lines);
    let other = login(&srv.url, &pw);
    let mine = login(&srv.url, &pw);
    let env = [
        ("ARCA_SERVER", srv.url.as_str()),
        ("ARCA_TOKEN", mine.as_str()),
    ];
    let q = |p: &'static str, a: &'static str| (p, a);

    // Differing new passwords, an empty one: refused, nothing changes.
    let (code, out) = on_terminal(
        &env,
        &["passwd"],
        &[
            ("current password: ", pw.as_str()),
            q("new password: ", "first-new-password"),
            q("new password again: ", "second-new-password"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the two new passwords differ"), "{out}");
    let (code, out) = on_terminal(&env, &["passwd"], &[q("current password: ", "")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is empty"), "{out}");
    // A wrong current password: the server's 403.
    let (code, out) = on_terminal(
        &env,
        &["passwd"],
        &[
            q("current password: ", "not-the-password"),
            q("new password: ", "the-new-password"),
            q("new password again: ", "the-new-password"),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("current password is wrong"), "{out}");
    assert_eq!(call(&srv.url, &other, "GET", "/api/v1/me", None).0, 200);

    let (code, out) = on_terminal(
        &env,
        &["passwd"],
        &[
            ("current password: ", pw.as_str()),
            q("new password: ", "the-new-password"),
            q("new password again: ", "the-new-password"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("password of admin changed; 1 session(s) signed out"),
        "{out}"
    );
    // Nothing typed was shown.
    assert!(
        !out.contains("the-new-password") && !out.contains(&pw),
        "{out}"
    );
    assert_eq!(call(&srv.url, &other, "GET", "/api/v1/me", None).0, 401);
    assert_eq!(call(&srv.url, &mine, "GET", "/api/v1/me", None).0, 200);
    let admin = login(&srv.url, "the-new-password");

    // An admin's reset of another user, from a file and generated.
    let (s, v) = call(
        &srv.url,
        &admin,
        "POST",
        "/api/v1/users",
        Some(
            json!({"name": "carol", "password": "carol-password", "roles": [{"role": "operator"}]}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let f = dir.path().join("new-pw");
    std::fs::write(&f, "carol-reset-pw\n").unwrap();
    let arca = |token: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &srv.url)
            .env("ARCA_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = arca(
        &admin,
        &[
            "user",
            "passwd",
            "carol",
            "--new-password-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let carol = {
        let resp = agent()
            .post(&format!("{}/api/v1/auth/login", srv.url))
            .send_json(json!({"username": "carol", "password": "carol-reset-pw"}))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.into_body().read_json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (code, out) = arca(&admin, &["--json", "user", "passwd", "carol", "--generate"]);
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signed_out"]["sessions"], 1, "{v}");
    assert_eq!(call(&srv.url, &carol, "GET", "/api/v1/me", None).0, 401);
    let generated = v["password"].as_str().unwrap();
    let resp = agent()
        .post(&format!("{}/api/v1/auth/login", srv.url))
        .send_json(json!({"username": "carol", "password": generated}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let carol: String = resp.into_body().read_json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Not an admin; an unknown user.
    let (code, out) = arca(&carol, &["user", "passwd", "admin", "--generate"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("403"), "{out}");
    let (code, out) = arca(&admin, &["user", "passwd", "nobody", "--generate"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no user \"nobody\""), "{out}");
    // Both are in the audit log.
    let (_, audit) = call(&srv.url, &admin, "GET", "/api/v1/audit?limit=1000", None);
    let text = audit.to_string();
    assert!(
        text.contains("user.password_reset") && text.contains("\"user.password\""),
        "{text}"
    );
}

/// `arca token` and `arca settings`: scoped tokens with lifetimes, their
/// inheritance, and /metrics behind a token, against a real server.
#[test]
fn tokens_settings_and_metrics_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, _) = Server::start(&data);
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let admin = login(&srv.url, pw.trim());
    let arca = |token: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &srv.url)
            .env("ARCA_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let metrics = |token: Option<&str>| {
        let mut req = agent().get(&format!("{}/metrics", srv.url));
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let resp = req.call().unwrap();
        let status = resp.status().as_u16();
        (
            status,
            resp.into_body().read_to_string().unwrap_or_default(),
        )
    };
    // /metrics: 401 without a token; /healthz stays open.
    assert_eq!(metrics(None).0, 401);
    let health = agent().get(&format!("{}/healthz", srv.url)).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // The default maximum, then a shorter one.
    let (code, out, err) = arca(&admin, &["settings", "show"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "token-max-lifetime 90d (7776000 s)");
    let (code, out, err) = arca(&admin, &["settings", "set", "token-max-lifetime", "7d"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("7d"), "{out}");
    let (code, _, err) = arca(&admin, &["token", "create", "long", "--expires", "30d"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("maximum token lifetime") && err.contains("(7d)"),
        "{err}"
    );
    let (code, _, err) = arca(&admin, &["settings", "set", "token-max-lifetime", "0"]);
    assert_eq!(code, Some(1), "{err}");

    // A metrics token for the scraper: /metrics only.
    let (code, scraper, err) = arca(&admin, &["token", "create", "prom", "--metrics"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        scraper.starts_with("arca_") && !scraper.contains('\n'),
        "{scraper}"
    );
    assert!(err.contains("scope metrics"), "{err}");
    let (s, body) = metrics(Some(&scraper));
    assert_eq!(s, 200);
    assert!(body.contains("arca_nodes_up 1"), "{body}");
    let (code, _, err) = arca(&scraper, &["source", "list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("403"), "{err}");

    // A read-only token, and a child of it cannot be made (no POST).
    let (code, ro, err) = arca(
        &admin,
        &[
            "token",
            "create",
            "ro",
            "--read-only",
            "--expires",
            "1d",
            "--project",
            "default",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = arca(&ro, &["source", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = arca(&ro, &["source", "add", "files", "x", "/nonexistent"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(metrics(Some(&ro)).0, 200);

    // Inheritance: a token made with `ro`'s sibling `parent` dies with it.
    let (_, parent, _) = arca(&admin, &["token", "create", "parent", "--expires", "2h"]);
    let (code, child, err) = arca(&parent, &["token", "create", "child"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("revoked with token"), "{err}");
    let (code, out, err) = arca(&parent, &["--json", "token", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("child")["parent_token_id"], by_name("parent")["id"]);
    assert_eq!(
        by_name("child")["expires_at"],
        by_name("parent")["expires_at"]
    );
    assert_eq!(by_name("ro")["scope"], "read-only");
    assert_eq!(by_name("ro")["projects"], json!([1]));
    let (code, out, _) = arca(&admin, &["token", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().next().unwrap().contains("PARENT"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("prom") && l.contains("metrics")),
        "{out}"
    );
    let pid = by_name("parent")["id"].to_string();
    let (code, out, err) = arca(&admin, &["token", "revoke", &pid]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("every token made with it"), "{out}");
    let (code, _, err) = arca(&child, &["source", "list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("revoked"), "{err}");

    // The audit log, filtered: the token changes above, newest first.
    let (code, out, err) = arca(
        &admin,
        &["--json", "audit", "--action", "token.", "--result", "ok"],
    );
    assert_eq!(code, Some(0), "{err}");
    let log: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"token.revoke"), "{actions:?}");
    assert!(actions.contains(&"token.add"), "{actions:?}");
    assert!(
        actions.iter().all(|a| a.starts_with("token.")),
        "{actions:?}"
    );
    let (code, out, err) = arca(
        &admin,
        &["audit", "--action", "token.revoke", "--limit", "1"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().next().unwrap().contains("ACTION"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("token.revoke"), "{out}");
    let (code, _, err) = arca(
        &admin,
        &["audit", "--since", "2026-02-01", "--until", "2026-01-01"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("since is after until"), "{err}");
    let (code, _, err) = arca(&child, &["audit"]);
    assert_eq!(code, Some(1), "{err}");
}

/// `arca catalog import`: restore points of a datastore made with the CLI
/// are listed by the server; a second import adds nothing.
#[test]
fn catalog_import_from_a_datastore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, _) = Server::start(&data);
    srv.kill9();
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let ds = dir.path().join("ds");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("x"), b"hello").unwrap();
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_DATASTORE", &ds)
            .env("ARCA_PASSPHRASE", "import test passphrase")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    arca(&["datastore", "init", ds.to_str().unwrap()]);
    arca(&[
        "backup",
        "files",
        tree.to_str().unwrap(),
        "--source",
        "laptop",
    ]);
    arca(&[
        "backup",
        "files",
        tree.to_str().unwrap(),
        "--source",
        "laptop",
    ]);
    let out = arca(&[
        "--json",
        "catalog",
        "import",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["datastore"].as_str(), v["imported"].as_u64()),
        (Some("ds"), Some(2))
    );
    let out = arca(&[
        "--json",
        "catalog",
        "import",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["imported"], 0);
    let (srv, _) = Server::start(&data);
    let token = login(&srv.url, pw.trim());
    let rps = restore_points(&srv.url, &token, "laptop");
    assert_eq!(rps.len(), 2);
    assert!(rps
        .iter()
        .all(|r| r["kind"] == "files" && r["bytes_total"] == 5));
}
