//! The libvirt source kind through the server (issue 17, control plane):
//! a hypervisor added with its SSH key (stored sealed, never returned),
//! its inventory synced into sources (host key pinned on first contact),
//! backups of a running KVM guest as tasks (full, then incremental from
//! the checkpoint), a domain gone from the host marked removed, and a
//! wrong pinned key or an unreachable host refused clearly.

use serde_json::{json, Value};

use crate::common::daemon::{api, api_ok, sign_in, Daemon};
use crate::lab::{remove_domain, unique, Domain, Sshd};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// What the server-side libvirt tests start from: a server (its admin
/// signed in), an sshd on loopback and a running KVM guest holding 64 KiB
/// of 0x5a at 1 MiB. Dropped in this order: the guest, sshd, the server,
/// the directory.
pub(crate) struct ServerLab {
    pub dom: Domain,
    pub ssh: Sshd,
    pub srv: Daemon,
    pub url: String,
    pub password: String,
    pub token: String,
    pub dir: tempfile::TempDir,
}

impl ServerLab {
    /// A lab whose guest is named after `name`.
    pub fn start(name: &str) -> ServerLab {
        let dir = tempfile::tempdir().unwrap();
        let srv = Daemon::server(&dir.path().join("data"), &[]);
        let url = srv.url.clone();
        let password = srv.first_password();
        let token = sign_in(&url, &password);
        let ssh = Sshd::start(dir.path());
        let dom = Domain::define(dir.path(), &unique(name), 32);
        dom.start();
        dom.write(0x5a, MIB, 64 * KIB);
        ServerLab {
            dom,
            ssh,
            srv,
            url,
            password,
            token,
            dir,
        }
    }

    /// `POST /api/v1/hypervisors`: `name`, reached over the lab's sshd
    /// as root with its key (201).
    pub fn add_hypervisor(&self, name: &str) -> Value {
        let key = std::fs::read_to_string(&self.ssh.key).unwrap();
        api_ok(
            &self.url,
            &self.token,
            "POST",
            "/api/v1/hypervisors",
            Some(json!({
                "name": name, "address": self.ssh.addr(), "user": "root", "private_key": key,
            })),
            201,
        )
    }
}

/// `arca ARGS` against the server with `token`: (exit code, stdout, stderr).
pub(crate) fn cli(url: &str, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(args)
        .env("ARCA_SERVER", url)
        .env("ARCA_TOKEN", token)
        .env_remove("ARCA_DATASTORE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn wait_task(url: &str, token: &str, id: i64) -> Value {
    let start = std::time::Instant::now();
    loop {
        let t = api_ok(url, token, "GET", &format!("/api/v1/tasks/{id}"), None, 200);
        if matches!(
            t["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return t;
        }
        assert!(
            start.elapsed().as_secs() < 300,
            "task {id} did not end: {t}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `arca hypervisor import RP --hypervisor HV --name COPY --dir DIR
/// --wait`, which must succeed: the task, and the new domain's qcow2 disk.
pub(crate) fn import(
    url: &str,
    token: &str,
    rp: &str,
    hv: &str,
    copy: &str,
    dir: &std::path::Path,
) -> (Value, std::path::PathBuf) {
    let (code, out, err) = cli(
        url,
        token,
        &[
            "--json",
            "hypervisor",
            "import",
            rp,
            "--hypervisor",
            hv,
            "--name",
            copy,
            "--dir",
            dir.to_str().unwrap(),
            "--wait",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["state"], "succeeded", "{t}");
    (t, dir.join(format!("{copy}-vda.qcow2")))
}

#[test]
fn hypervisor_inventory_sources_and_backup_tasks() {
    if crate::skip() {
        return;
    }
    let lab = ServerLab::start("srv");
    let (url, token) = (lab.url.clone(), lab.token.clone());
    let (dir, ssh, dom) = (&lab.dir, &lab.ssh, &lab.dom);
    let key = std::fs::read_to_string(&ssh.key).unwrap();

    // Added with its key: the answer and the list never show it.
    let h = lab.add_hypervisor("kvm1");
    assert!(h["host_key"].is_null(), "{h}");
    let list = api_ok(&url, &token, "GET", "/api/v1/hypervisors", None, 200);
    for v in [&h, &list] {
        assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
    }
    // Sealed at rest: the catalog's files hold no line of the key.
    let body = key.lines().nth(1).unwrap();
    for f in ["catalog.db", "catalog.db-wal"] {
        let bytes = std::fs::read(dir.path().join("data").join(f)).unwrap_or_default();
        assert!(
            !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
            "the private key is in {f} in the clear"
        );
    }
    let hid = h["id"].as_i64().unwrap();

    // A policy whose rule matches the hypervisor's sources (its slot is
    // not due during the test).
    let pol = api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(json!({"name": "vms", "schedule": "Mon 03:00", "match_pattern": "kvm1.*"})),
        201,
    );
    // The first sync pins the host key and lists the domain as a source.
    let r = api_ok(
        &url,
        &token,
        "POST",
        &format!("/api/v1/hypervisors/{hid}/sync"),
        None,
        200,
    );
    assert_eq!(r["pinned_host_key"], ssh.fingerprint.as_str(), "{r}");
    let name = format!("kvm1.{}", dom.name);
    assert!(
        r["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == name.as_str()),
        "{r}"
    );
    let h = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/hypervisors/{hid}"),
        None,
        200,
    );
    assert_eq!(h["host_key"], ssh.fingerprint.as_str());
    let sources = api_ok(&url, &token, "GET", "/api/v1/sources", None, 200);
    let src = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{sources}"))
        .clone();
    assert_eq!(src["kind"], "libvirt");
    // New domains are picked up by policy rules like any new source.
    assert_eq!(src["policy_id"], pol["id"], "{src}");
    assert_eq!(src["assigned_by"], "rule", "{src}");
    assert_eq!(src["path"], dom.name.as_str());
    assert_eq!(src["settings"]["removed"], false);
    // A second sync (from the CLI) adds nothing.
    let (code, out, err) = cli(&url, &token, &["--json", "hypervisor", "sync", "kvm1"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    // (Other tests define domains on the same libvirtd meanwhile: only
    // this test's domain is looked at.)
    let listed = |k: &str| r[k].as_array().unwrap().iter().any(|n| n == name.as_str());
    assert!(
        !listed("added") && listed("present") && r["pinned_host_key"].is_null(),
        "{r}"
    );
    let (code, out, err) = cli(&url, &token, &["hypervisor", "list"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("kvm1") && out.contains(&ssh.fingerprint) && !out.contains("PRIVATE"),
        "{out}"
    );
    // libvirt sources come from inventories only.
    let (s, v) = api(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({
            "name": "by-hand", "kind": "libvirt", "path": "/x",
        })),
    );
    assert_eq!(s, 422, "{v}");

    // Backups as tasks: full, then incremental from the checkpoint.
    let sid = src["id"].as_i64().unwrap();
    let backup = || {
        let t = api_ok(
            &url,
            &token,
            "POST",
            &format!("/api/v1/sources/{sid}/backup"),
            None,
            202,
        );
        let t = wait_task(&url, &token, t["id"].as_i64().unwrap());
        assert_eq!(t["state"], "succeeded", "{t}");
        t["result"].clone()
    };
    let full = backup();
    assert!(full["mode"].as_str().unwrap().contains("full"), "{full}");
    dom.write(0x11, 8 * MIB, 128 * KIB);
    let inc = backup();
    assert!(
        inc["mode"].as_str().unwrap().contains("incremental"),
        "{inc}"
    );
    // Only the 128 KiB written (of one of the datastore's 1 MiB blocks; the
    // rest of it comes from the parent's chunk).
    assert_eq!(inc["bytes_read"], 128 * KIB, "{inc}");
    let rps = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/restore-points?source={name}"),
        None,
        200,
    );
    let rps = rps.as_array().unwrap();
    assert_eq!(rps.len(), 2, "{rps:?}");
    assert!(rps.iter().all(|r| r["kind"] == "libvirt"), "{rps:?}");

    // Restore as import: the VM recreated on the host under a new name,
    // its disk equal to the guest's at the second backup.
    let images = dir.path().join("imported");
    std::fs::create_dir_all(&images).unwrap();
    let copy = unique("copy");
    let newest = rps
        .iter()
        .max_by_key(|r| r["time"].as_i64().unwrap())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (t, disk) = import(&url, &token, &newest, "kvm1", &copy, &images);
    assert!(
        t["result"]["target"].as_str().unwrap().contains(&copy),
        "{t}"
    );
    let xml = crate::lab::virsh(&["dumpxml", &copy]);
    assert!(xml.contains(disk.to_str().unwrap()), "{xml}");
    let got = crate::read_at(disk.to_str().unwrap(), "qcow2", 8 * MIB, 128 * KIB);
    assert!(
        got.iter().all(|b| *b == 0x11),
        "the imported disk lacks the second write"
    );
    let got = crate::read_at(disk.to_str().unwrap(), "qcow2", MIB, 64 * KIB);
    assert!(
        got.iter().all(|b| *b == 0x5a),
        "the imported disk lacks the first write"
    );
    remove_domain(&copy);
    // Only a VM's restore points import, and only to a known hypervisor.
    let (s, v) = api(
        &url,
        &token,
        "POST",
        &format!("/api/v1/restore-points/{newest}/import"),
        Some(json!({
            "hypervisor": "nope", "dir": "/tmp",
        })),
    );
    assert_eq!(s, 422, "{v}");

    // Gone from the host: kept, with its restore points, marked removed.
    dom.destroy();
    remove_domain(&dom.name);
    let r = api_ok(
        &url,
        &token,
        "POST",
        &format!("/api/v1/hypervisors/{hid}/sync"),
        None,
        200,
    );
    assert!(
        r["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == name.as_str()),
        "{r}"
    );
    let src = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/sources/{sid}"),
        None,
        200,
    );
    assert_eq!(src["settings"]["removed"], true, "{src}");
    // A hypervisor with sources is not deleted.
    let (s, v) = api(
        &url,
        &token,
        "DELETE",
        &format!("/api/v1/hypervisors/{hid}"),
        None,
    );
    assert_eq!(s, 409, "{v}");

    // Pinned to another key: refused, and the reason kept.
    let h2 = api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({
            "name": "kvm2", "address": ssh.addr(), "user": "root", "private_key": key,
            "host_key": "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        })),
        201,
    );
    let id2 = h2["id"].as_i64().unwrap();
    let (s, v) = api(
        &url,
        &token,
        "POST",
        &format!("/api/v1/hypervisors/{id2}/sync"),
        None,
    );
    assert_eq!(s, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("changed"), "{v}");
    let h2 = api_ok(
        &url,
        &token,
        "GET",
        &format!("/api/v1/hypervisors/{id2}"),
        None,
        200,
    );
    assert!(
        h2["sync_error"].as_str().unwrap().contains("changed"),
        "{h2}"
    );
    // Unreachable: 502 with the reason. A bad key: 422.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let h3 = api_ok(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({
            "name": "kvm3", "address": dead, "user": "root", "private_key": key,
        })),
        201,
    );
    let (s, v) = api(
        &url,
        &token,
        "POST",
        &format!("/api/v1/hypervisors/{}/sync", h3["id"]),
        None,
    );
    assert_eq!(s, 502, "{v}");
    let (s, v) = api(
        &url,
        &token,
        "POST",
        "/api/v1/hypervisors",
        Some(json!({
            "name": "kvm4", "address": ssh.addr(), "user": "root", "private_key": "not a key",
        })),
    );
    assert_eq!(s, 422, "{v}");
}
