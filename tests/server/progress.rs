//! Progress of a backup of a ~2 GiB tree of many files: its total is known
//! (within 10%) long before a third of it is read, as `arca --progress
//! json` reports it locally and as the task's `bytes_total` says through
//! the server. Never a wall-time assertion: only the order of what is
//! reported.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common::Env;
use crate::helpers::*;
use crate::terminal::random_tree;

/// 512 files of 4 MiB.
const FILES: usize = 512;
const SIZE: usize = 4 << 20;

/// The first report whose total is within 10% of `truth` came while less
/// than a third of it was done. `reports` are (bytes_done, bytes_total) in
/// the order they were seen.
fn assert_total_known_early(what: &str, reports: &[(u64, u64)], truth: u64) {
    let close = |t: u64| t.abs_diff(truth) * 10 <= truth;
    let first = reports
        .iter()
        .find(|(_, t)| close(*t))
        .unwrap_or_else(|| panic!("{what}: no total within 10% of {truth}: {reports:?}"));
    assert!(
        first.0 * 3 < truth,
        "{what}: the total {} was first reported with {} of {truth} done: {reports:?}",
        first.1,
        first.0
    );
    // Done never goes back, and never past the total once it is known.
    for w in reports.windows(2) {
        assert!(w[0].0 <= w[1].0, "{what}: {reports:?}");
    }
}

#[test]
fn the_total_of_a_backup_is_known_early() {
    let env = Env::new();
    let tree = env.path("tree");
    let truth = random_tree(&tree, FILES, SIZE);

    // Locally: `--progress json` lines on stderr, the result on stdout.
    let mut child = env
        .cmd(&[
            "--progress",
            "json",
            "--json",
            "backup",
            "files",
            tree.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reports = Vec::new();
    let mut other = String::new();
    for l in BufReader::new(child.stderr.take().unwrap()).lines() {
        let l = l.unwrap();
        match serde_json::from_str::<Value>(&l) {
            Ok(v) if v["progress"] == "backup" => reports.push((
                v["bytes_done"].as_u64().unwrap(),
                v["bytes_total"].as_u64().unwrap(),
            )),
            _ => other += &format!("{l}\n"),
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{other}");
    assert!(other.is_empty(), "stderr beside the progress: {other}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["bytes_total"], truth, "{result}");
    assert_total_known_early("local backup", &reports, truth);
    // The last line is the end: everything read, the true total.
    assert_eq!(reports.last(), Some(&(truth, truth)), "{reports:?}");

    // Through the server: the task's bytes_total, polled.
    let data = env.path("data");
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let (s, v) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "big", "kind": "files", "path": tree})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, t) = call(
        &srv.url,
        &token,
        "POST",
        &format!("/api/v1/sources/{}/backup", v["id"]),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let id = t["id"].as_i64().unwrap();
    let mut reports = Vec::new();
    let t = loop {
        let t = task(&srv.url, &token, id);
        let done = t["bytes_done"].as_u64().unwrap();
        let total = t["bytes_total"].as_u64().unwrap();
        if reports.last() != Some(&(done, total)) {
            reports.push((done, total));
        }
        if matches!(
            t["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_total_known_early("backup through the server", &reports, truth);
    // `arca task show` says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--json", "task", "show", &id.to_string()])
        .env("ARCA_SERVER", &srv.url)
        .env("ARCA_TOKEN", &token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["task"]["bytes_total"], truth, "{shown}");
}
