//! A hypervisor reached by its agent (issue 17, "an agent" as the way to
//! a libvirt host; docs/vm-ingest.md "Agent-fed sources"), with real
//! components: the server, libvirtd with a running KVM guest, `arca agent
//! run` on the host (here: this machine) and sshd for the import. The
//! agent syncs the inventory, runs the backups the server queues (no node
//! runs them), full then incremental through libvirt's backup job with
//! checkpoints, sending only new chunks; the policy's retention follows;
//! the restore point imports through an SSH hypervisor byte for byte.

use serde_json::{json, Value};

use crate::common::daemon::{api, api_ok, sign_in, Daemon};
use crate::control::{cli, import, wait_task};
use crate::lab::{remove_domain, unique, Domain, Sshd};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The tasks of source `sid` of `kind`, newest first.
fn tasks(url: &str, token: &str, sid: i64, kind: &str) -> Vec<Value> {
    let v = api_ok(
        url,
        token,
        "GET",
        &format!("/api/v1/tasks?source={sid}"),
        None,
        200,
    );
    let mut v: Vec<Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind)
        .cloned()
        .collect();
    v.sort_by_key(|t| -t["id"].as_i64().unwrap());
    v
}

#[test]
fn an_agent_syncs_its_hypervisor_and_runs_the_queued_backups() {
    if crate::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = Daemon::server(&dir.path().join("data"), &[]);
    let url = srv.url.clone();
    let token = sign_in(&url, &srv.first_password());
    let dom = Domain::define(dir.path(), &unique("agt"), 32);
    dom.start();
    dom.write(0x5a, MIB, 64 * KIB);
    let agent = |args: &[&str]| {
        let mut a = vec!["--json", "--progress", "none", "agent", "run"];
        a.extend(args);
        cli(&url, &token, &a)
    };
    // `agent run --once` until it ran a backup: a task of the source still
    // running (the prune after the previous backup) holds the next back,
    // as it would hold a node's.
    let run_queued = || -> Value {
        let start = std::time::Instant::now();
        loop {
            let (code, out, err) = agent(&["--hypervisor", "kvm2", "--once"]);
            assert_eq!(code, Some(0), "{out}{err}");
            if !out.trim().is_empty() {
                return serde_json::from_str(out.trim()).unwrap();
            }
            assert!(start.elapsed().as_secs() < 60, "nothing was run: {err}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };

    // Retention keeps the newest restore point; the schedule is not due.
    api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(json!({
            "name": "agent-vms", "schedule": "Mon 03:00", "match_pattern": "kvm2.*",
            "retention": {"keep_last": 1},
        })),
        201,
    );
    // Reached by its agent: no address, user or key; the server does not
    // sync it itself.
    let h = api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({"name": "kvm2", "access": "agent"})),
        201,
    );
    assert_eq!(h["access"], "agent", "{h}");
    let hid = h["id"].as_i64().unwrap();
    let (s, v) = api(
        &url,
        &token,
        "POST",
        &format!("/api/v1/hypervisors/{hid}/sync"),
        None,
    );
    assert_eq!(s, 409, "{v}");
    assert!(v.to_string().contains("agent run"), "{v}");
    let (s, v) = api(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({"name": "kvm3", "access": "agent", "address": "h", "user": "root"})),
    );
    assert_eq!(s, 422, "{v}");

    // The agent's sync lists the domain as an agent-fed source, which the
    // policy's rule picks up; nothing is queued yet.
    let (code, out, err) = agent(&["--hypervisor", "kvm2", "--once"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.trim().is_empty(), "nothing was queued: {out}");
    let name = format!("kvm2.{}", dom.name);
    let sources = api_ok(&url, &token, "GET", "/api/v1/sources", None, 200);
    let src = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{err}\n{sources}"))
        .clone();
    assert_eq!(src["kind"], "libvirt");
    assert_eq!(src["settings"]["agent"], true, "{src}");
    assert!(src["policy_id"].is_i64(), "{src}");
    let sid = src["id"].as_i64().unwrap();
    let h = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/hypervisors/{hid}"),
        None,
        200,
    );
    assert!(
        h["host_key"].as_str().unwrap().starts_with("agent on "),
        "the agent's host is pinned: {h}"
    );

    // A backup asked for through the API is queued for the agent: the
    // server's node does not run it.
    let queue = || {
        api_ok(
            &url,
            &token,
            "POST",
            &format!("/api/v1/sources/{sid}/backup"),
            None,
            202,
        )["id"]
            .as_i64()
            .unwrap()
    };
    let t1 = queue();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let t = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/tasks/{t1}"),
        None,
        200,
    );
    assert_eq!(t["state"], "queued", "a node ran an agent's backup: {t}");

    // The agent claims and runs it: a full backup through the backup job.
    let full = run_queued();
    assert_eq!(full["task"], t1, "{full}");
    assert!(full["mode"].as_str().unwrap().contains("full"), "{full}");
    let t = wait_task(&url, &token, t1);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(dom.checkpoints().len(), 1, "{:?}", dom.checkpoints());

    // Incremental against the checkpoint: only the block written is read
    // and sent.
    dom.write(0x11, 8 * MIB, 128 * KIB);
    let t2 = queue();
    let inc = run_queued();
    assert_eq!(inc["task"], t2, "{inc}");
    let mode = inc["mode"].as_str().unwrap();
    assert!(mode.contains("incremental against checkpoint"), "{inc}");
    assert!(
        inc["bytes_read"].as_u64().unwrap() <= MIB,
        "one block at most: {inc}"
    );
    assert!(inc["chunks_sent"].as_u64().unwrap() <= 1, "{inc}");
    let t = wait_task(&url, &token, t2);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert!(
        t["result"]["mode"]
            .as_str()
            .unwrap()
            .contains("incremental"),
        "{t}"
    );
    // The older checkpoint went once the restore point was listed.
    let ck = dom.checkpoints();
    assert_eq!(ck.len(), 1, "{ck:?}");

    // The policy's retention followed, as a prune task: one restore point
    // is left, the incremental one.
    let start = std::time::Instant::now();
    // (one after each backup; the newest removes the full one)
    let prune = loop {
        let all = tasks(&url, &token, sid, "prune");
        if all.len() == 2 {
            break wait_task(&url, &token, all[0]["id"].as_i64().unwrap());
        }
        assert!(start.elapsed().as_secs() < 120, "no prune task");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(prune["state"], "succeeded", "{prune}");
    let rps = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/restore-points?source={name}"),
        None,
        200,
    );
    let rps = rps.as_array().unwrap();
    assert_eq!(rps.len(), 1, "{rps:?}");
    assert_eq!(rps[0]["kind"], "libvirt");
    let rp = rps[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        t["result"]["snapshot"].as_str().unwrap(),
        rp,
        "retention kept the newest"
    );

    // Its record is a libvirt backup's: it imports through an SSH
    // hypervisor of the same host, byte for byte.
    let (s, v) = api(
        &url,
        &token,
        "POST",
        &format!("/api/v1/restore-points/{rp}/import"),
        Some(json!({"hypervisor": "kvm2", "dir": "/tmp"})),
    );
    assert_eq!(s, 422, "an agent's hypervisor takes no import: {v}");
    let ssh = Sshd::start(dir.path());
    let key = std::fs::read_to_string(&ssh.key).unwrap();
    api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({
            "name": "kvm1", "address": ssh.addr(), "user": "root", "private_key": key,
            "host_key": ssh.fingerprint,
        })),
        201,
    );
    let images = dir.path().join("imported");
    std::fs::create_dir_all(&images).unwrap();
    let copy = unique("acopy");
    let (_, disk) = import(&url, &token, &rp, "kvm1", &copy, &images);
    let disk = disk.to_str().unwrap();
    assert!(crate::read_at(disk, "qcow2", 8 * MIB, 128 * KIB)
        .iter()
        .all(|b| *b == 0x11));
    assert!(crate::read_at(disk, "qcow2", MIB, 64 * KIB)
        .iter()
        .all(|b| *b == 0x5a));
    remove_domain(&copy);

    // Pre/post commands set on the server run on the agent's host only
    // when the agent was started with --allow-hooks; otherwise the backup
    // fails, saying so, and nothing runs.
    let pre = dir.path().join("agent-pre");
    let (code, out, err) = cli(
        &url,
        &token,
        &[
            "source",
            "edit",
            &name,
            "--pre",
            &json!(["touch", pre]).to_string(),
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let t3 = queue();
    let start = std::time::Instant::now();
    let err = loop {
        let (code, out, err) = agent(&["--hypervisor", "kvm2", "--once"]);
        if code == Some(1) {
            break err;
        }
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(start.elapsed().as_secs() < 60, "nothing was run: {err}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(err.contains("--allow-hooks"), "{err}");
    let t = wait_task(&url, &token, t3);
    assert_eq!(t["state"], "failed", "{t}");
    assert!(
        t["error"].as_str().unwrap().contains("--allow-hooks"),
        "{t}"
    );
    assert!(!pre.exists(), "a hook ran without --allow-hooks");
    let t4 = queue();
    let start = std::time::Instant::now();
    let app = loop {
        let (code, out, err) = agent(&["--hypervisor", "kvm2", "--once", "--allow-hooks"]);
        assert_eq!(code, Some(0), "{out}{err}");
        if !out.trim().is_empty() {
            break serde_json::from_str::<Value>(out.trim()).unwrap();
        }
        assert!(start.elapsed().as_secs() < 60, "nothing was run: {err}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(app["task"], t4, "{app}");
    assert_eq!(app["consistency"], "application", "{app}");
    assert!(pre.exists(), "the pre command did not run");
    let t = wait_task(&url, &token, t4);
    assert_eq!(t["result"]["consistency"], "application", "{t}");
    assert_eq!(dom.checkpoints().len(), 1, "{:?}", dom.checkpoints());

    // An SSH hypervisor is not an agent's; an unknown one is not found.
    let (code, out, err) = agent(&["--hypervisor", "kvm1", "--once"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("over SSH"), "{err}");
    let (code, _, err) = agent(&["--hypervisor", "nope", "--once"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("not found") && !err.contains("panicked"),
        "{err}"
    );
}
