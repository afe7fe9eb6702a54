//! The CLI as a person meets it on a terminal and in a shell: `arca login`
//! asks without echo; Ctrl-C on a local backup and on `backup now --wait`
//! says what is left behind; `arca ls | head -1` and `arca snapshots |
//! head -1` end quietly, locally and through the server.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::terminal::{answering, Terminal};
use crate::common::{self, Env};
use crate::helpers::*;

/// A tree of `files` files of `size` random bytes each, in a few
/// directories: a backup of it still runs for a while.
pub(crate) fn random_tree(root: &Path, files: usize, size: usize) -> u64 {
    for i in 0..files {
        let d = root.join(format!("d{:02}", i % 16));
        std::fs::create_dir_all(&d).unwrap();
        let data = common::random_bytes(size, 1000 + i as u64);
        std::fs::write(d.join(format!("f{i:04}.bin")), data).unwrap();
    }
    (files * size) as u64
}

/// `arca login` on a terminal: the password typed is never shown, the
/// token it saves works; an empty password is refused before anything is
/// sent.
#[test]
fn login_on_a_terminal_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, lines) = Server::start(&data);
    let pw = first_password(&lines);
    let cfg = dir.path().join("cfg");
    let env = [
        ("ARCA_SERVER", srv.url.as_str()),
        ("XDG_CONFIG_HOME", cfg.to_str().unwrap()),
    ];
    let prompt = "password for admin: ";

    let (code, out) = answering(&env, &["login"], &[(prompt, "")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the password is empty; nothing was sent to the server"),
        "{out}"
    );
    assert!(!cfg.join("arca/token").exists());

    let (code, out) = answering(&env, &["login"], &[(prompt, "not-the-password")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sign-in failed"), "{out}");
    assert!(!out.contains("not-the-password"), "{out}");

    let (code, out) = answering(&env, &["login"], &[(prompt, pw.as_str())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signed in as admin; token saved to "), "{out}");
    assert!(!out.contains(&pw), "the password was shown:\n{out}");
    // The saved token is what later commands use.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--json", "node", "list"])
        .env("ARCA_SERVER", &srv.url)
        .env("XDG_CONFIG_HOME", &cfg)
        .env_remove("ARCA_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let nodes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
}

/// Ctrl-C typed on the terminal while a local backup reads a tree: the
/// backup says nothing was committed and ends as Ctrl-C ends a command
/// (status 130); no snapshot is listed, the datastore verifies clean, and
/// the next backup of the same tree succeeds.
#[test]
fn ctrl_c_on_a_local_backup_on_a_terminal() {
    let env = Env::new();
    let tree = env.path("tree");
    random_tree(&tree, 64, 4 << 20);
    let vars = [
        ("ARCA_DATASTORE", env.ds.to_str().unwrap()),
        ("ARCA_PASSPHRASE", env.pass.as_str()),
    ];
    let mut t = Terminal::start(&vars, &["backup", "files", tree.to_str().unwrap()]);
    t.wait_catching_ctrl_c(60);
    // Mid-backup: packs are being written.
    wait_for("the backup to write packs", 120, || !env.packs().is_empty());
    t.ctrl_c();
    let (code, out) = t.finish();
    assert_eq!(code, 130, "{out}");
    assert!(
        out.contains(
            "interrupted: nothing was committed; the data already stored is reused by the next backup"
        ),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert!(!out.contains("snapshot "), "it committed:\n{out}");
    assert!(env.snapshot_ids().is_empty());
    env.ok(&["verify"]);
    let done = env.backup_files(&tree, "tree");
    assert_eq!(env.snapshot_ids().len(), 1);
    assert_eq!(done["bytes_total"], 64 * (4 << 20), "{done}");
    env.ok(&["verify"]);
    let back = env.path("back");
    env.ok(&["restore", "latest", back.to_str().unwrap()]);
    common::assert_same_tree(&tree, &back);
}

/// Ctrl-C on `arca backup now --wait` on a terminal: the CLI says the task
/// goes on and how to cancel it; the task then finishes on the server.
#[test]
fn ctrl_c_on_backup_now_wait_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    random_tree(&tree, 64, 4 << 20);
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let (s, v) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "tree", "kind": "files", "path": tree})),
    );
    assert_eq!(s, 201, "{v}");
    let env = [
        ("ARCA_SERVER", srv.url.as_str()),
        ("ARCA_TOKEN", token.as_str()),
    ];
    let mut t = Terminal::start(&env, &["backup", "now", "tree", "--wait"]);
    // It listens for Ctrl-C once it follows the task it queued.
    t.wait_catching_ctrl_c(60);
    t.ctrl_c();
    let (code, out) = t.finish();
    assert_eq!(code, 130, "{out}");
    let (_, tasks) = call(&srv.url, &token, "GET", "/api/v1/tasks", None);
    let id = tasks.as_array().unwrap()[0]["id"].as_i64().unwrap();
    assert!(
        out.contains(&format!(
            "task {id} continues on the server; follow it with `arca task show {id}`, \
             cancel it with `arca task cancel {id}`"
        )),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    let done = wait_task(&srv.url, &token, id, 300);
    assert_eq!(done["state"], "succeeded", "{done}");
    let rps = restore_points(&srv.url, &token, "tree");
    assert_eq!(rps.len(), 1, "{rps:?}");
    assert_eq!(rps[0]["bytes_total"], 64 * (4 << 20));
}

/// `sh -c 'arca ARGS | READER'`, with the environment `env`: what `arca`
/// wrote on stderr, its exit status as the shell saw it, and the first
/// line the reader got.
fn piped(env: &[(&str, &str)], args: &[&str], reader: &str) -> (String, i32, String) {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_arca"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    // The status goes to a file: the pipeline's own is the reader's.
    let status = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "{{ {}; echo $? > '{}'; }} | {reader}",
        quoted.join(" "),
        status.path().display()
    );
    let mut c = Command::new("sh");
    c.args(["-c", &script]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    let code: i32 = std::fs::read_to_string(status.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).to_string(),
        code,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    )
}

/// The output of `arca` ends early in a pipe: no panic, no "Broken pipe"
/// error, and the exit of a command killed by SIGPIPE (141) or success.
fn assert_quiet_end(what: &str, (err, code, first): &(String, i32, String), full: bool) {
    assert!(
        !err.contains("panicked") && !err.to_lowercase().contains("broken pipe"),
        "{what}: {err}"
    );
    assert!(err.trim().is_empty(), "{what} wrote on stderr: {err}");
    if full {
        // More than a pipe holds: the write after `head` left failed.
        assert_eq!(*code, 141, "{what}: {err}");
        assert!(!first.is_empty(), "{what}: nothing read");
    } else {
        assert!(*code == 141 || *code == 0, "{what}: {code} {err}");
    }
}

/// `arca ls -r RP | head -1` with a listing far larger than a pipe holds,
/// and `arca snapshots` into a reader that is gone, locally and through the
/// server: they end as a Unix tool does, quietly.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let env = Env::new();
    let tree = env.path("tree");
    for d in 0..10 {
        let dir = tree.join(format!("directory-with-a-long-name-{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..300 {
            std::fs::write(
                dir.join(format!("a-file-with-a-rather-long-name-{f:04}.txt")),
                b"x",
            )
            .unwrap();
        }
    }
    let snap = env.backup_files(&tree, "tree")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let local = [
        ("ARCA_DATASTORE", env.ds.to_str().unwrap()),
        ("ARCA_PASSPHRASE", env.pass.as_str()),
    ];
    for args in [
        &["ls", "-r", &snap[..12]][..],
        &["--json", "ls", "-r", &snap[..12]],
    ] {
        let r = piped(&local, args, "head -1");
        assert_quiet_end(&format!("local {args:?}"), &r, true);
    }
    let r = piped(&local, &["ls", "-r", &snap[..12]], "head -1");
    assert!(r.2.starts_with("d "), "{r:?}");
    for reader in ["head -1", "true"] {
        let r = piped(&local, &["snapshots"], reader);
        assert_quiet_end(&format!("local snapshots | {reader}"), &r, false);
    }

    // The same tree backed up through the server, listed through its API.
    let data = env.path("data");
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let (s, v) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "tree", "kind": "files", "path": tree})),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    let (s, t) = call(
        &srv.url,
        &token,
        "POST",
        &format!("/api/v1/sources/{id}/backup"),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let t = wait_task(&srv.url, &token, t["id"].as_i64().unwrap(), 120);
    assert_eq!(t["state"], "succeeded", "{t}");
    let rp = t["result"]["snapshot"].as_str().unwrap().to_string();
    let remote = [
        ("ARCA_SERVER", srv.url.as_str()),
        ("ARCA_TOKEN", token.as_str()),
    ];
    for args in [
        &["ls", "-r", &rp[..12]][..],
        &["--json", "ls", "-r", &rp[..12]],
    ] {
        let r = piped(&remote, args, "head -1");
        assert_quiet_end(&format!("server {args:?}"), &r, true);
    }
    for reader in ["head -1", "true"] {
        let r = piped(&remote, &["snapshots"], reader);
        assert_quiet_end(&format!("server snapshots | {reader}"), &r, false);
        let r = piped(&remote, &["task", "list"], reader);
        assert_quiet_end(&format!("server task list | {reader}"), &r, false);
    }
}
