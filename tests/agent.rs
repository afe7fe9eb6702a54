//! `arca agent backup` against a real `arca server` over TLS on loopback
//! (docs/vm-ingest.md, "Agent"): only the chunks the datastore lacks
//! cross the wire (counted by the agent, checked against the disk's
//! size), the restore points restore byte-identical, and bad tokens,
//! missing permissions, unknown sources and a killed agent leave no
//! restore point.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::daemon::{wait_until, Daemon};
use common::{tool, tool_stdout};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

/// A ureq agent that trusts the server's self-signed certificate.
fn tls(cert: &Path) -> ureq::Agent {
    let c = ureq::tls::Certificate::from_pem(&std::fs::read(cert).unwrap())
        .unwrap()
        .to_owned();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![c])))
                .build(),
        )
        .build()
        .into()
}

struct Api {
    url: String,
    cert: PathBuf,
}

impl Api {
    fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let a = tls(&self.cert);
        let full = format!("{}{path}", self.url);
        let auth = format!("Bearer {token}");
        let r = match (method, body) {
            ("GET", _) => a.get(&full).header("authorization", &auth).call(),
            ("POST", Some(b)) => a.post(&full).header("authorization", &auth).send_json(b),
            ("POST", None) => a.post(&full).header("authorization", &auth).send_empty(),
            _ => unreachable!(),
        }
        .unwrap();
        let s = r.status().as_u16();
        (s, r.into_body().read_json().unwrap_or(Value::Null))
    }

    fn ok(&self, token: &str, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (s, v) = self.call(token, method, path, body);
        assert_eq!(s, want, "{method} {path}: {v}");
        v
    }

    fn login(&self, user: &str, password: &str) -> String {
        let v = self.ok(
            "",
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": user, "password": password})),
            200,
        );
        v["token"].as_str().unwrap().to_string()
    }

    /// A user with `role` on all projects, and an API token of theirs.
    fn user_token(&self, admin: &str, name: &str, role: &str) -> String {
        let pw = format!("{name}-password-long");
        self.ok(
            admin,
            "POST",
            "/api/v1/users",
            Some(json!({"name": name, "password": pw, "roles": [{"role": role}]})),
            201,
        );
        let session = self.login(name, &pw);
        let v = self.ok(
            &session,
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "agent"})),
            201,
        );
        v["token"].as_str().unwrap().to_string()
    }

    fn restore_points(&self, token: &str, source: &str) -> Vec<Value> {
        let v = self.ok(
            token,
            "GET",
            &format!("/api/v1/restore-points?source={source}"),
            None,
            200,
        );
        v.as_array().cloned().unwrap_or_default()
    }

    fn tasks(&self, token: &str, source: i64) -> Vec<Value> {
        let v = self.ok(
            token,
            "GET",
            &format!("/api/v1/tasks?source={source}"),
            None,
            200,
        );
        v.as_array().cloned().unwrap_or_default()
    }
}

/// A server with TLS, an admin token, and an operator's API token.
struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    srv: Daemon,
    api: Api,
    admin: String,
    operator: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = root.join("data");
    let srv = Daemon::server(&data, &["--tls"]);
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    let api = Api {
        url: srv.url.clone(),
        cert: data.join("tls/cert.pem"),
    };
    let admin = api.login("admin", &srv.first_password());
    let operator = api.user_token(&admin, "op", "operator");
    Setup {
        _dir: dir,
        root,
        srv,
        api,
        admin,
        operator,
    }
}

impl Setup {
    fn source(&self, name: &str, disk: &Path) -> i64 {
        let v = self.api.ok(
            &self.admin,
            "POST",
            "/api/v1/sources",
            Some(json!({"name": name, "kind": "image", "path": disk})),
            201,
        );
        v["id"].as_i64().unwrap()
    }

    fn agent_cmd(&self, token: &str, source: &str, disk: &Path, progress: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.args(["--json", "--progress", progress, "--server", &self.srv.url])
            .arg("--ca-cert")
            .arg(&self.api.cert)
            .args(["--token", token, "agent", "backup", "--source", source])
            .arg(disk)
            .env_remove("ARCA_LOG")
            .env_remove("RUST_LOG");
        c
    }

    /// Restore a restore point through the server (its node) to `target`.
    fn restore(&self, id: &str, target: &Path) {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--progress", "none", "--server", &self.srv.url])
            .arg("--ca-cert")
            .arg(&self.api.cert)
            .args(["--token", &self.operator, "restore", id, "--to"])
            .arg(target)
            .arg("--wait")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    fn agent(&self, token: &str, source: &str, disk: &Path) -> Output {
        self.agent_cmd(token, source, disk, "none")
            .output()
            .unwrap()
    }

    fn agent_ok(&self, source: &str, disk: &Path) -> Value {
        let out = self.agent(&self.operator, source, disk);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `size` bytes of data that neither compresses nor dedups: every 4 KiB
/// differs from every other (a counter-seeded xorshift), so the first
/// backup must send about all of it.
fn write_disk(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path).unwrap());
    let mut buf = vec![0u8; 4096];
    for page in 0..size / 4096 {
        let mut x = page.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

fn same_file(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    assert_eq!(fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    let (mut ba, mut bb) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    let mut off = 0u64;
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            break;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        assert!(
            ba[..n] == bb[..n],
            "the restored disk differs near byte {off}"
        );
        off += n as u64;
    }
}

/// The test: a 2 GiB disk, backed up three times (first, again
/// unchanged, after 1 MiB changed), counting the bytes on the wire; the
/// last restore point restores byte-identical.
#[test]
fn only_new_chunks_cross_the_wire() {
    let s = setup();
    let disk = s.root.join("vm1.raw");
    let size = 2048 * MIB;
    write_disk(&disk, size);
    let src = s.source("vm1", &disk);

    let first = s.agent_ok("vm1", &disk);
    let sent = first["bytes_sent"].as_u64().unwrap();
    assert_eq!(first["bytes_read"].as_u64().unwrap(), size);
    assert_eq!(first["chunks_sent"].as_u64().unwrap(), 2048, "{first}");
    assert!(
        sent >= size && sent < size + size / 100,
        "the first backup sends the data once: {sent} bytes for {size}"
    );
    assert!(
        first["mode"]
            .as_str()
            .unwrap()
            .starts_with("full (no parent"),
        "{first}"
    );

    let second = s.agent_ok("vm1", &disk);
    let sent = second["bytes_sent"].as_u64().unwrap();
    assert_eq!(second["chunks_sent"].as_u64().unwrap(), 0, "{second}");
    assert!(
        sent < size / 100,
        "an unchanged disk sends < 1% of its size: {sent} bytes"
    );
    assert_eq!(second["bytes_read"].as_u64().unwrap(), size);

    // 1 MiB changed, on a block boundary: one chunk to send.
    let f = OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(&common::random_bytes(MIB as usize, 1 << 40), 700 * MIB)
        .unwrap();
    drop(f);
    let third = s.agent_ok("vm1", &disk);
    let sent = third["bytes_sent"].as_u64().unwrap();
    assert_eq!(third["chunks_sent"].as_u64().unwrap(), 1, "{third}");
    assert!(
        sent > MIB && sent < MIB + 256 * 1024,
        "1 MiB changed: {sent} bytes sent"
    );
    assert!(
        third["mode"]
            .as_str()
            .unwrap()
            .contains("1 of 2048 blocks sent"),
        "{third}"
    );

    // Listed like any backup: three restore points, three succeeded
    // backup tasks with the agent's mode in their result.
    let rps = s.api.restore_points(&s.operator, "vm1");
    assert_eq!(rps.len(), 3, "{rps:?}");
    let tasks = s.api.tasks(&s.operator, src);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    for t in &tasks {
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["kind"], "backup", "{t}");
        assert_eq!(t["created_by"], "op", "{t}");
    }
    let last = third["snapshot"].as_str().unwrap();
    assert!(
        tasks.iter().any(|t| t["result"]["snapshot"] == last),
        "{tasks:?}"
    );

    // The newest restores byte-identical, through the server.
    let target = s.root.join("restored.raw");
    s.restore(last, &target);
    same_file(&disk, &target);
    std::fs::remove_file(&target).unwrap();
    std::fs::remove_file(&disk).unwrap();
    let log = s.srv.stderr().join("\n");
    assert!(log.contains("agent backup committed"), "{log}");
}

/// Refusals: a wrong token, a user who may not back up, an unknown
/// source; a chunk table that is not the disk's; and an agent killed
/// mid-upload. None leaves a restore point; each refusal is logged.
#[test]
fn refusals_and_a_killed_agent_leave_no_restore_point() {
    let s = setup();
    let disk = s.root.join("vm2.raw");
    write_disk(&disk, 512 * MIB);
    let src = s.source("vm2", &disk);
    let reader = s.api.user_token(&s.admin, "reader", "restore-only");

    let err = |out: &Output| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let out = s.agent("arca_0000", "vm2", &disk);
    let e = err(&out);
    assert!(e.contains("token"), "{e}");
    let out = s.agent(&reader, "vm2", &disk);
    let e = err(&out);
    assert!(e.contains("reader may not change"), "{e}");
    let out = s.agent(&s.operator, "nope", &disk);
    let e = err(&out);
    assert!(
        e.contains("source \\\"nope\\\" not found") || e.contains("source \"nope\" not found"),
        "{e}"
    );
    let missing = s.root.join("missing.raw");
    let out = s.agent(&s.operator, "vm2", &missing);
    let e = err(&out);
    assert!(e.contains("missing.raw"), "{e}");

    // Killed mid-upload: the server sees the stream break.
    let mut child = s
        .agent_cmd(&s.operator, "vm2", &disk, "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap());
    for l in lines.lines() {
        let v: Value = serde_json::from_str(&l.unwrap()).unwrap_or(Value::Null);
        if v["bytes_done"].as_u64().unwrap_or(0) > 100 * MIB {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the killed agent's task to fail", 60, || {
        s.api
            .tasks(&s.operator, src)
            .iter()
            .any(|t| t["state"] == "failed")
    });
    let tasks = s.api.tasks(&s.operator, src);
    assert_eq!(tasks.len(), 1, "refusals start no task: {tasks:?}");
    assert!(
        tasks[0]["error"].as_str().unwrap().contains("upload"),
        "{tasks:?}"
    );
    assert!(s.api.restore_points(&s.operator, "vm2").is_empty());

    // Cancelled through the API mid-upload (new data, so the upload
    // lasts): the server ends the session without waiting for the
    // upload, the agent fails, nothing is listed.
    let big = s.root.join("vm2-big.raw");
    write_disk(&big, 1024 * MIB);
    let src_big = s.source("vm2big", &big);
    let mut child = s
        .agent_cmd(&s.operator, "vm2big", &big, "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for l in lines.by_ref() {
        let v: Value = serde_json::from_str(&l.unwrap()).unwrap_or(Value::Null);
        if v["bytes_done"].as_u64().unwrap_or(0) > 50 * MIB {
            break;
        }
    }
    let running = s
        .api
        .tasks(&s.operator, src_big)
        .into_iter()
        .find(|t| t["state"] == "running")
        .expect("the agent's task runs");
    let id = running["id"].as_i64().unwrap();
    s.api.ok(
        &s.operator,
        "POST",
        &format!("/api/v1/tasks/{id}/cancel"),
        None,
        200,
    );
    // Its progress lines, and then its error.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = child.wait().unwrap();
    let said = rest.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "the cancelled agent fails: {said}");
    assert!(said.contains("has ended"), "{said}");
    let t = s.api.ok(
        &s.operator,
        "GET",
        &format!("/api/v1/tasks/{id}"),
        None,
        200,
    );
    assert_eq!(t["state"], "cancelled", "{t}");
    assert!(s.api.restore_points(&s.operator, "vm2big").is_empty());
    std::fs::remove_file(&big).unwrap();

    // The next backup works.
    let o = s.agent_ok("vm2", &disk);
    assert_eq!(o["bytes_read"].as_u64().unwrap(), 512 * MIB);
    assert_eq!(s.api.restore_points(&s.operator, "vm2").len(), 1);

    let log = s.srv.stderr().join("\n");
    for want in [
        "agent call refused",
        "PermissionDenied",
        "NotFound",
        "Unauthenticated",
        "agent backup ended without a restore point",
    ] {
        assert!(
            log.contains(want),
            "no {want:?} in the server's log:\n{log}"
        );
    }
}

/// The arca- bitmaps of a qcow2 image.
fn arca_bitmaps(img: &Path) -> Vec<String> {
    let info: Value = serde_json::from_str(&tool_stdout(
        "qemu-img",
        &["info", "--output=json", "-U", img.to_str().unwrap()],
    ))
    .unwrap();
    info["format-specific"]["data"]["bitmaps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b["name"].as_str().map(String::from))
        .filter(|n| n.starts_with("arca-"))
        .collect()
}

/// A qcow2 disk on the agent (read through qemu-nbd): the first backup
/// reads only the allocated extents, the second only what the dirty
/// bitmap marks (the rest is the parent's table); one bitmap of ours is
/// left in the image; the restore point restores what the image holds
/// (`qemu-img compare`). A bitmap removed by hand makes the next backup
/// read everything again, and it says why.
#[test]
fn qcow2_reads_allocated_then_dirty_extents() {
    let s = setup();
    let img = s.root.join("vm3.qcow2");
    let p = img.to_str().unwrap();
    tool("qemu-img", &["create", "-q", "-f", "qcow2", p, "256M"]);
    tool(
        "qemu-io",
        &["-c", "write -P 0x11 0 8M", "-c", "write -P 0x22 100M 4M", p],
    );
    s.source("vm3", &img);

    let first = s.agent_ok("vm3", &img);
    assert_eq!(first["bytes_read"].as_u64().unwrap(), 12 * MIB, "{first}");
    assert!(
        first["mode"]
            .as_str()
            .unwrap()
            .starts_with("full (no parent"),
        "{first}"
    );
    assert_eq!(arca_bitmaps(&img).len(), 1);

    tool("qemu-io", &["-c", "write -P 0x33 50M 1M", p]);
    let second = s.agent_ok("vm3", &img);
    assert_eq!(second["bytes_read"].as_u64().unwrap(), MIB, "{second}");
    assert_eq!(second["chunks_sent"].as_u64().unwrap(), 1, "{second}");
    let mode = second["mode"].as_str().unwrap();
    assert!(
        mode.starts_with("incremental (1 of 256 blocks changed since"),
        "{mode}"
    );
    let bitmaps = arca_bitmaps(&img);
    assert_eq!(bitmaps.len(), 1, "the parent's bitmap is gone: {bitmaps:?}");

    let target = s.root.join("vm3.raw");
    s.restore(second["snapshot"].as_str().unwrap(), &target);
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "qcow2",
            "-F",
            "raw",
            p,
            target.to_str().unwrap(),
        ],
    );

    // Without its bitmap, the next backup reads every allocated block.
    tool("qemu-img", &["bitmap", "--remove", p, &bitmaps[0]]);
    let third = s.agent_ok("vm3", &img);
    assert_eq!(third["bytes_read"].as_u64().unwrap(), 13 * MIB, "{third}");
    assert_eq!(third["chunks_sent"].as_u64().unwrap(), 0, "{third}");
    let mode = third["mode"].as_str().unwrap();
    assert!(mode.contains("is not in the image"), "{mode}");
}

/// An image source fed by an agent (`agent: true`): its policy's schedule
/// queues its backups, no node runs them, `arca agent run --image` on the
/// host claims and runs them, and the policy's retention follows.
#[test]
fn an_agent_fed_source_runs_on_its_schedule_with_retention() {
    let s = setup();
    let disk = s.root.join("sched.raw");
    write_disk(&disk, 8 * MIB);
    s.api.ok(
        &s.admin,
        "POST",
        "/api/v1/policies",
        Some(json!({
            "name": "often", "schedule": "every 2s", "match_tags": ["fed"],
            "retention": {"keep_last": 2},
        })),
        201,
    );
    let v = s.api.ok(
        &s.admin,
        "POST",
        "/api/v1/sources",
        Some(json!({
            "name": "sched", "kind": "image", "path": disk, "agent": true, "tags": ["fed"],
        })),
        201,
    );
    assert_eq!(v["settings"]["agent"], true, "{v}");
    let sid = v["id"].as_i64().unwrap();
    // The path is on the agent's host: the node does not check it.
    s.api.ok(
        &s.admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "far", "kind": "image", "path": "/on/the/host.raw", "agent": true})),
        201,
    );
    let (st, v) = s.api.call(
        &s.admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "ff", "kind": "files", "path": "/srv", "agent": true})),
    );
    assert_eq!(st, 422, "{v}");

    let queued = || -> i64 {
        let start = std::time::Instant::now();
        loop {
            let t = s.api.tasks(&s.operator, sid);
            if let Some(t) = t
                .iter()
                .find(|t| t["kind"] == "backup" && t["state"] == "queued")
            {
                return t["id"].as_i64().unwrap();
            }
            assert!(start.elapsed().as_secs() < 60, "nothing queued: {t:?}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let image = format!("sched={}", disk.display());
    let run = || -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--json", "--progress", "none", "--server", &s.srv.url])
            .arg("--ca-cert")
            .arg(&s.api.cert)
            .args(["--token", &s.operator, "agent", "run", "--once"])
            .args(["--image", &image])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The schedule queued a backup; the server's node leaves it alone.
    let t = queued();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let task = s
        .api
        .ok(&s.operator, "GET", &format!("/api/v1/tasks/{t}"), None, 200);
    assert_eq!(
        task["state"], "queued",
        "a node ran an agent's backup: {task}"
    );
    assert!(
        task["policy_id"].is_i64(),
        "scheduled by the policy: {task}"
    );
    let mut done: Vec<Value> = Vec::new();
    while done.len() < 3 {
        queued();
        done.extend(run());
    }
    for o in &done {
        let t = s.api.ok(
            &s.operator,
            "GET",
            &format!("/api/v1/tasks/{}", o["task"]),
            None,
            200,
        );
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["source_id"], sid, "{t}");
    }
    // The first backup sent the disk; later ones nothing (unchanged).
    assert_eq!(done[0]["chunks_sent"], 8, "{:?}", done[0]);
    assert_eq!(done[2]["chunks_sent"], 0, "{:?}", done[2]);

    // Retention after each backup: at most the two newest stay.
    let start = std::time::Instant::now();
    loop {
        let prunes: Vec<Value> = s
            .api
            .tasks(&s.operator, sid)
            .into_iter()
            .filter(|t| t["kind"] == "prune")
            .collect();
        let ended = prunes.iter().filter(|t| t["state"] == "succeeded").count();
        assert!(prunes.iter().all(|t| t["state"] != "failed"), "{prunes:?}");
        if ended == done.len() && s.api.restore_points(&s.operator, "sched").len() == 2 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "retention did not run: {prunes:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Only agent-fed image sources are served by --image.
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["--progress", "none", "--server", &s.srv.url])
        .arg("--ca-cert")
        .arg(&s.api.cert)
        .args(["--token", &s.operator, "agent", "run", "--once"])
        .args(["--image", &format!("vmx={}", disk.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not found") && !err.contains("panicked"),
        "{err}"
    );
}
