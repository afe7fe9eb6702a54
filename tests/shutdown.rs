//! Clean shutdown of `arca server` and `arca node` on SIGTERM and SIGINT:
//! the process exits 0, a running backup ends `cancelled` with "interrupted
//! by shutdown" and no restore point, the datastore verifies clean, and a
//! restart goes on with the schedule without losing or repeating a slot.
//! And Ctrl-C on the CLI: a local backup and `backup now --wait` say what
//! the interruption leaves behind.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

mod common;
use common::daemon::{api, api_ok, on_default_datastore, sign_in, slow_image, wait_until, Daemon};

/// A 1 TiB sparse image: its backup reads holes for minutes.
const SLOW: u64 = 1 << 40;

fn tasks(url: &str, token: &str) -> Vec<Value> {
    api_ok(url, token, "GET", "/api/v1/tasks?limit=1000", None, 200)
        .as_array()
        .unwrap()
        .clone()
}

fn task(url: &str, token: &str, id: i64) -> Value {
    api_ok(url, token, "GET", &format!("/api/v1/tasks/{id}"), None, 200)
}

fn restore_points(url: &str, token: &str, source: &str) -> Vec<Value> {
    let path = format!("/api/v1/restore-points?source={source}");
    api_ok(url, token, "GET", &path, None, 200)
        .as_array()
        .unwrap()
        .clone()
}

/// The running task of source `source_id`, once there is one.
fn running_task_of(url: &str, token: &str, source_id: i64) -> i64 {
    let mut id = None;
    wait_until("a running backup of the slow source", 60, || {
        id = tasks(url, token)
            .iter()
            .find(|t| t["source_id"] == source_id && t["state"] == "running")
            .and_then(|t| t["id"].as_i64());
        id.is_some()
    });
    id.unwrap()
}

fn assert_interrupted(t: &Value) {
    assert_eq!(t["state"], "cancelled", "{t}");
    assert_eq!(t["error"], "interrupted by shutdown", "{t}");
}

/// Every scheduled slot of a (policy, source) at most once.
fn assert_no_duplicate_slots(all: &[Value]) {
    let mut seen = HashSet::new();
    for t in all.iter().filter(|t| !t["slot"].is_null()) {
        let key = (
            t["policy_id"].clone().to_string(),
            t["source_id"].to_string(),
            t["slot"].to_string(),
        );
        assert!(seen.insert(key), "slot queued twice: {t}");
    }
}

/// `arca verify` (offline, the process is gone) reports the datastore clean.
fn assert_verifies_clean(data: &Path) {
    let out = on_default_datastore(data, &["--json", "verify"]);
    assert!(out.status.success(), "{out:?}");
}

/// The default datastore's snapshots of `source`.
fn snapshots_of(data: &Path, source: &str) -> usize {
    let out = on_default_datastore(data, &["--json", "snapshots"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == source)
        .count()
}

fn add_source(url: &str, token: &str, body: Value) -> i64 {
    api_ok(url, token, "POST", "/api/v1/sources", Some(body), 201)["id"]
        .as_i64()
        .unwrap()
}

/// SIGTERM while a scheduled backup runs on the server's embedded node;
/// then a restart: the interrupted slot is not run again, the slots queued
/// before the shutdown are all still there, and the schedule goes on.
#[test]
fn sigterm_stops_the_server_cleanly_and_a_restart_keeps_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let big = dir.path().join("big.raw");
    slow_image(&big, SLOW, 4 << 20);
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), common::text_bytes(50_000, 1)).unwrap();

    let mut srv = Daemon::server(&data, &[]);
    let pw = srv.first_password();
    let url = srv.url.clone();
    let token = sign_in(&url, &pw);
    let big_id = add_source(
        &url,
        &token,
        json!({"name": "big", "kind": "image", "path": big, "tags": ["s"]}),
    );
    let small_id = add_source(
        &url,
        &token,
        json!({"name": "small", "kind": "files", "path": tree, "tags": ["s"]}),
    );
    api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(json!({"name": "often", "schedule": "every 5s", "match_tags": ["s"]})),
        201,
    );
    let interrupted = running_task_of(&url, &token, big_id);
    wait_until("a backup of the small source", 60, || {
        !restore_points(&url, &token, "small").is_empty()
    });
    srv.signal("TERM");
    let status = srv.wait_exit(60);
    assert_eq!(status.code(), Some(0), "{:#?}", srv.stderr());
    let log = srv.stderr().join("\n");
    for want in [
        "arca server shutting down",
        "task interrupted by shutdown",
        "1 task(s) interrupted by shutdown",
        "arca server stopped",
    ] {
        assert!(log.contains(want), "no {want:?} in the log:\n{log}");
    }
    assert!(!log.contains("passed with task(s) still running"), "{log}");
    // No half restore point of the big source, and nothing damaged.
    assert_eq!(snapshots_of(&data, "big"), 0);
    assert_verifies_clean(&data);

    // The restart: what was queued is kept, the interrupted slot is not run
    // again, and new slots come.
    let srv = Daemon::server(&data, &[]);
    let url = srv.url.clone();
    let token = sign_in(&url, &pw);
    let after = tasks(&url, &token);
    assert_interrupted(&task(&url, &token, interrupted));
    assert!(restore_points(&url, &token, "big").is_empty());
    let by_id: HashMap<i64, &Value> = after
        .iter()
        .map(|t| (t["id"].as_i64().unwrap(), t))
        .collect();
    assert!(by_id.contains_key(&interrupted));
    // Only the one task was interrupted; none is left running from before.
    let interrupted_ones: Vec<&Value> = after
        .iter()
        .filter(|t| t["error"] == "interrupted by shutdown")
        .collect();
    assert_eq!(interrupted_ones.len(), 1, "{interrupted_ones:?}");
    assert_no_duplicate_slots(&after);
    let last_before = after
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .max()
        .unwrap();
    let small_before = restore_points(&url, &token, "small").len();
    wait_until("the schedule to go on after the restart", 60, || {
        let all = tasks(&url, &token);
        all.iter()
            .any(|t| t["id"].as_i64().unwrap() > last_before && t["source_id"] == small_id)
            && restore_points(&url, &token, "small").len() > small_before
    });
    let all = tasks(&url, &token);
    assert_no_duplicate_slots(&all);
    // Every task from before the restart is still listed (none lost).
    let now: HashSet<i64> = all.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert!(by_id.keys().all(|id| now.contains(id)));
    drop(srv);
}

/// SIGINT with a task that cannot stop (its image is a FIFO nobody writes,
/// so it hangs opening it) and a 2 s shutdown timeout: the server exits 0
/// anyway, says so, and the task is recorded as interrupted.
#[test]
fn sigint_with_a_stuck_task_exits_after_the_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fifo = dir.path().join("hang.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut srv = Daemon::server(&data, &["--shutdown-timeout", "2"]);
    let pw = srv.first_password();
    let url = srv.url.clone();
    let token = sign_in(&url, &pw);
    let src = add_source(
        &url,
        &token,
        json!({"name": "hang", "kind": "image", "path": fifo}),
    );
    let t = api_ok(
        &url,
        &token,
        "POST",
        &format!("/api/v1/sources/{src}/backup"),
        None,
        202,
    );
    let id = t["id"].as_i64().unwrap();
    wait_until("the hanging backup to run", 60, || {
        task(&url, &token, id)["state"] == "running"
    });
    srv.signal("INT");
    let status = srv.wait_exit(60);
    assert_eq!(status.code(), Some(0), "{:#?}", srv.stderr());
    let log = srv.stderr().join("\n");
    for want in [
        "arca server shutting down",
        "signal=\"SIGINT\"",
        "the shutdown timeout of 2 s passed with task(s) still running; exiting anyway",
        "arca server stopped",
    ] {
        assert!(log.contains(want), "no {want:?} in the log:\n{log}");
    }
    let srv = Daemon::server(&data, &[]);
    let token = sign_in(&srv.url, &pw);
    let t = task(&srv.url, &token, id);
    assert_interrupted(&t);
    assert!(restore_points(&srv.url, &token, "hang").is_empty());
    drop(srv);
}

/// SIGTERM to an `arca node` running a backup: the node gives the task
/// back as interrupted (the server does not wait for its lease to
/// expire), exits 0, and its datastore verifies clean.
#[test]
fn sigterm_stops_a_node_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let srv = Daemon::server(&data, &[]);
    let pw = srv.first_password();
    let url = srv.url.clone();
    let admin = sign_in(&url, &pw);
    let v = api_ok(
        &url,
        &admin,
        "POST",
        "/api/v1/nodes",
        Some(json!({"name": "alpha", "max_tasks": 2})),
        201,
    );
    let node_token = v["token"].as_str().unwrap().to_string();
    let node_dir = dir.path().join("alpha");
    let mut node = Daemon::node(&url, &node_token, &node_dir, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--server", &url, "--token", &admin, "node", "set", "alpha"])
        .arg("--source-root")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let big = dir.path().join("big.raw");
    slow_image(&big, SLOW, 4 << 20);
    let src = add_source(
        &url,
        &admin,
        json!({"name": "big", "kind": "image", "path": big, "node": "alpha"}),
    );
    let t = api_ok(
        &url,
        &admin,
        "POST",
        &format!("/api/v1/sources/{src}/backup"),
        None,
        202,
    );
    let id = t["id"].as_i64().unwrap();
    wait_until("the backup to run on the node", 60, || {
        let t = task(&url, &admin, id);
        t["state"] == "running" && t["bytes_done"].as_i64().unwrap_or(0) > 0
    });
    node.signal("TERM");
    let status = node.wait_exit(60);
    assert_eq!(status.code(), Some(0), "{:#?}", node.stderr());
    let log = node.stderr().join("\n");
    for want in [
        "arca node shutting down",
        "1 task(s) interrupted by shutdown",
        "told the server this node stops",
        "arca node stopped",
    ] {
        assert!(log.contains(want), "no {want:?} in the log:\n{log}");
    }
    // Recorded by the node before it exited: no lease expiry involved.
    let t = task(&url, &admin, id);
    assert_interrupted(&t);
    assert!(restore_points(&url, &admin, "big").is_empty());
    let (s, _) = api(&url, &admin, "GET", "/api/v1/tasks?state=running", None);
    assert_eq!(s, 200);
    assert_eq!(snapshots_of(&node_dir, "big"), 0);
    assert_verifies_clean(&node_dir);
    // The node said it leaves: offline now, not after missed heartbeats.
    let nodes = api_ok(&url, &admin, "GET", "/api/v1/nodes", None, 200);
    let alpha = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["state"], "offline", "{alpha}");
    drop(srv);
}

/// Whether process `pid` catches `sig` (its handler is installed): read
/// from /proc, so a test signals only once the command listens.
fn catches(pid: u32, sig: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (sig - 1)) != 0)
}

/// SIGINT (Ctrl-C) to a running child, once it listens for it; its exit
/// status and stderr.
fn interrupt(mut cmd: Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the command to listen for Ctrl-C", 60, || catches(pid, 2));
    let k = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

/// Ctrl-C on a local backup: it says nothing was committed and dies of
/// SIGINT; no snapshot is listed, the datastore verifies clean and the
/// next backup works.
#[test]
fn ctrl_c_on_a_local_backup_says_nothing_was_committed() {
    use std::os::unix::process::ExitStatusExt;
    let env = common::Env::new();
    let big = env.path("big.raw");
    slow_image(&big, SLOW, 4 << 20);
    let (status, err) = interrupt(env.cmd(&["backup", "image", big.to_str().unwrap()]));
    assert_eq!(status.signal(), Some(2), "{status:?} {err}");
    assert!(
        err.contains("interrupted: nothing was committed; the data already stored is reused by the next backup"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(env.snapshot_ids().is_empty());
    env.ok(&["verify"]);
    let tree = env.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a"), b"after the interruption").unwrap();
    env.backup_files(&tree, "tree");
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// Ctrl-C on `arca backup now --wait`: the task goes on on the server, and
/// the CLI says so and how to cancel it.
#[test]
fn ctrl_c_on_backup_now_wait_says_the_task_goes_on() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let big = dir.path().join("big.raw");
    slow_image(&big, SLOW, 4 << 20);
    let srv = Daemon::server(&data, &[]);
    let url = srv.url.clone();
    let token = sign_in(&url, &srv.first_password());
    let source = add_source(
        &url,
        &token,
        json!({"name": "big", "kind": "image", "path": big}),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
    cmd.args([
        "--server", &url, "--token", &token, "backup", "now", "big", "--wait",
    ]);
    let (status, err) = interrupt(cmd);
    assert_eq!(status.signal(), Some(2), "{status:?} {err}");
    let id = running_task_of(&url, &token, source);
    assert!(
        err.contains(&format!(
            "task {id} continues on the server; follow it with `arca task show {id}`, cancel it with `arca task cancel {id}`"
        )),
        "{err}"
    );
    assert_eq!(task(&url, &token, id)["state"], "running");
    api_ok(
        &url,
        &token,
        "POST",
        &format!("/api/v1/tasks/{id}/cancel"),
        None,
        200,
    );
}
