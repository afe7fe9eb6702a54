//! Exports made through `arca server` carry credentials (docs/frontends.md,
//! "Credentials"), checked with real clients on loopback: NBD names end
//! with the export's secret and nothing is listed (nbdinfo, nbdcopy,
//! qemu-img, over TLS too); iSCSI logins and discovery need CHAP with the
//! export's secret (iscsi-inq, iscsi-ls, iscsi-test-cu, a libiscsi
//! client); NBD in clear text off loopback needs `--nbd-plain`; and the
//! writes a client made to a writable export without ever flushing are in
//! the restore point a commit makes.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{lun_client, run_tool as run, tool_stdout as tool};

struct Server {
    _proc: common::Proc,
    url: String,
    token: String,
    dir: PathBuf,
}

fn arca_server(data: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
    c.args([
        "server",
        "--listen",
        "127.0.0.1:0",
        "--s3-listen",
        "127.0.0.1:0",
        "--nfs-listen",
        "127.0.0.1:0",
    ])
    .arg("--data-dir")
    .arg(data)
    .args(extra);
    c
}

impl Server {
    /// A server whose NBD and iSCSI servers listen on loopback (unless
    /// `extra` says otherwise), signed in as its first admin.
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--iscsi-listen", "127.0.0.1:0"];
        if !extra.contains(&"--nbd-listen") {
            args.extend(["--nbd-listen", "127.0.0.1:0"]);
        }
        args.extend(extra);
        // Sources and restores of these tests live in the test's directory.
        let root = dir.to_str().unwrap();
        args.extend(["--source-root", root, "--restore-root", root]);
        let mut child = arca_server(&dir.join("data"), &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut pw) = (None, None);
        while url.is_none() || pw.is_none() {
            let mut l = String::new();
            assert!(out.read_line(&mut l).unwrap() > 0, "the server ended");
            if let Some(u) = l.split("listening on ").nth(1) {
                url = Some(u.trim().to_string());
            }
            if let Some(p) = l.split("with password ").nth(1) {
                pw = Some(p.trim().to_string());
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        let url = url.unwrap();
        let (s, v) = call(
            &url,
            "",
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": pw.unwrap()})),
        );
        assert_eq!(s, 200, "{v}");
        Server {
            _proc: common::Proc(child),
            token: v["token"].as_str().unwrap().to_string(),
            url,
            dir: dir.to_path_buf(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.url, &self.token, method, path, body)
    }

    /// The CLI against this server, which must succeed; its JSON output.
    fn arca(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--server", &self.url, "--token", &self.token, "--json"])
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.join("cfg"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// Back up `img` as source `name`; its restore point id.
    fn backup(&self, name: &str, img: &[u8]) -> String {
        let path = self.dir.join(format!("{name}.raw"));
        std::fs::write(&path, img).unwrap();
        self.arca(&["source", "add", "image", name, path.to_str().unwrap()]);
        self.arca(&["backup", "now", name, "--wait"]);
        let (s, v) = self.call(
            "GET",
            &format!("/api/v1/restore-points?source={name}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v[0]["id"].as_str().unwrap().to_string()
    }

    /// Make an export and wait until it is served.
    fn export(&self, body: Value) -> Value {
        let (s, e) = self.call("POST", "/api/v1/exports", Some(body));
        assert_eq!(s, 201, "{e}");
        let id = e["id"].as_i64().unwrap();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, e) = self.call("GET", &format!("/api/v1/exports/{id}"), None);
            if e["state"] != "starting" {
                assert_eq!(e["state"], "active", "{e}");
                return e;
            }
            assert!(Instant::now() < end, "export {id} is not served: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn call(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let full = format!("{url}{path}");
    let auth = format!("Bearer {token}");
    let resp = match (method, body) {
        ("GET", _) => a.get(&full).header("authorization", &auth).call(),
        ("POST", Some(b)) => a.post(&full).header("authorization", &auth).send_json(b),
        ("PATCH", Some(b)) => a.patch(&full).header("authorization", &auth).send_json(b),
        ("DELETE", _) => a.delete(&full).header("authorization", &auth).call(),
        _ => unreachable!(),
    }
    .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_json().unwrap_or(Value::Null))
}

/// `tool` that must fail; its stdout and stderr.
fn refused(name: &str, args: &[&str]) -> String {
    let out = run(name, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{name} {args:?} was served: {text}");
    text
}

/// A disk image: data, a 1 MiB hole, data.
fn image(seed: u64) -> Vec<u8> {
    let mut img = common::random_bytes(3 << 20, seed);
    img[(1 << 20)..(2 << 20)].fill(0);
    img
}

#[test]
fn nbd_exports_open_only_with_their_secret_and_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let img = image(1);
    let rp = srv.backup("vm", &img);
    let e = srv.export(json!({"restore_point": rp}));
    let (id, secret) = (e["id"].as_i64().unwrap(), e["secret"].as_str().unwrap());
    assert!(
        secret.len() >= 16 && secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret}"
    );
    let addr = e["address"].as_str().unwrap();
    assert!(
        addr.starts_with("nbd://127.0.0.1:") && addr.ends_with(&format!("/export-{id}-{secret}")),
        "{addr}"
    );
    assert!(e["commands"][0].as_str().unwrap().contains(addr), "{e}");

    // The address the API gives works with libnbd and qemu.
    let size = tool("nbdinfo", &["--size", addr]);
    assert_eq!(size.trim(), img.len().to_string());
    let copy = dir.path().join("copy.raw");
    common::qemu_img_to_raw(addr, &copy);
    assert!(
        std::fs::read(&copy).unwrap() == img,
        "qemu-img read other bytes"
    );

    // Without the secret, with a wrong one, or by restore point: unknown.
    let base = addr.rsplit_once('/').unwrap().0;
    let mut wrong = secret.to_string();
    wrong.replace_range(..1, if secret.starts_with('A') { "B" } else { "A" });
    for bad in [
        format!("{base}/export-{id}"),
        format!("{base}/export-{id}-{wrong}"),
        format!("{base}/export-{id}-{secret}x"),
        format!("{base}/{rp}"),
        format!("{base}/"),
    ] {
        let text = refused("nbdinfo", &["--size", &bad]);
        assert!(!text.contains(&img.len().to_string()), "{bad}: {text}");
    }
    // Listing shows nothing (the server refuses to list).
    let text = refused("nbdinfo", &["--list", &format!("{base}/")]);
    assert!(
        !text.contains("export-") && !text.contains(secret),
        "{text}"
    );
    // The export still serves the right name.
    tool("nbdinfo", &["--size", addr]);
}

#[test]
fn nbd_off_loopback_needs_tls_or_nbd_plain_and_qemu_connects_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    // Clear text on all addresses: refused at start, saying what to do.
    let mut child = arca_server(
        &dir.path().join("plain"),
        &["--nbd-listen", "0.0.0.0:0", "--iscsi-listen", "off"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the server started NBD in clear text on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("--nbd-tls-cert") && err.contains("--nbd-plain"),
        "{err}"
    );
    // --nbd-plain: the admin accepted it; the server runs.
    let plain = Server::start(
        &dir.path().join("p2"),
        &[
            "--nbd-listen",
            "0.0.0.0:0",
            "--nbd-plain",
            "--export-host",
            "127.0.0.1",
        ],
    );
    drop(plain);

    // TLS on all addresses: qemu-img and nbdcopy with the API's address.
    std::fs::create_dir_all(dir.path().join("tls")).unwrap();
    let (cert, key, ca) = common::tls_files(&dir.path().join("tls"));
    let srv = Server::start(
        &dir.path().join("t"),
        &[
            "--nbd-listen",
            "0.0.0.0:0",
            "--export-host",
            "127.0.0.1",
            "--nbd-tls-cert",
            &cert,
            "--nbd-tls-key",
            &key,
        ],
    );
    let img = image(2);
    let rp = srv.backup("vm", &img);
    let e = srv.export(json!({"restore_point": rp}));
    let addr = e["address"].as_str().unwrap();
    let name = format!("export-{}-{}", e["id"], e["secret"].as_str().unwrap());
    assert!(
        addr.starts_with("nbds://127.0.0.1:") && addr.ends_with(&name),
        "{addr}"
    );
    let port = addr.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    let out = dir.path().join("qemu.raw");
    tool(
        "qemu-img",
        &[
            "convert",
            "--object",
            &format!("tls-creds-x509,id=tls0,dir={ca},endpoint=client"),
            "--image-opts",
            &format!("driver=nbd,host=127.0.0.1,port={port},export={name},tls-creds=tls0"),
            "-O",
            "raw",
            out.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&out).unwrap() == img, "qemu-img over TLS");
    let copy = dir.path().join("copy.raw");
    tool(
        "nbdcopy",
        &[
            &format!("{addr}?tls-certificates={ca}"),
            copy.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&copy).unwrap() == img, "nbdcopy over TLS");
    // The right name in clear text: refused (TLS is required).
    refused("nbdinfo", &["--size", &addr.replace("nbds://", "nbd://")]);
    // The wrong secret over TLS: unknown.
    refused(
        "nbdinfo",
        &["--size", &format!("{}x?tls-certificates={ca}", addr)],
    );
}

#[test]
fn iscsi_exports_need_chap_with_their_secret() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let img = image(3);
    let rp = srv.backup("vm", &img);
    let e = srv.export(json!({"restore_point": rp, "protocol": "iscsi"}));
    let other = srv.export(json!({"restore_point": rp, "protocol": "iscsi"}));
    let (id, secret) = (e["id"].as_i64().unwrap(), e["secret"].as_str().unwrap());
    let user = format!("export-{id}");
    assert_eq!(e["chap_user"], user.as_str());
    let addr = e["address"].as_str().unwrap();
    let iqn = format!("iqn.2026-11.io.arca:export-{id}");
    assert!(
        addr.starts_with(&format!("iscsi://{user}%{secret}@127.0.0.1:"))
            && addr.ends_with(&format!("/{iqn}/0")),
        "{addr}"
    );
    let portal = addr.rsplit_once('@').unwrap().1.split('/').next().unwrap();

    // The API's address: iscsi-inq, the libiscsi client, the conformance suite.
    let inq = tool("iscsi-inq", &[addr]);
    assert!(inq.contains("Vendor:ARCA"), "{inq}");
    let lun = lun_client(dir.path());
    let out = run(lun.to_str().unwrap(), &["read", addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == img, "the LUN differs from the image");
    let cu = run("iscsi-test-cu", &["--test=SCSI.Read10", addr]);
    let text =
        String::from_utf8_lossy(&cu.stdout).into_owned() + &String::from_utf8_lossy(&cu.stderr);
    let summary = text
        .lines()
        .find(|l| l.trim_start().starts_with("tests "))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let n: Vec<u32> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(n[1] > 0 && n[3] == 0, "{text}");

    // No CHAP, a wrong secret, a wrong user, another export's credential:
    // the login fails with "authentication failure".
    let other_cred = format!(
        "export-{}%{}@",
        other["id"],
        other["secret"].as_str().unwrap()
    );
    for creds in [
        String::new(),
        format!(
            "{user}%{}@",
            secret
                .to_lowercase()
                .replace(|c: char| c.is_ascii_digit(), "x")
        ),
        format!("{user}%{secret}x@"),
        format!("export-999%{secret}@"),
        other_cred,
    ] {
        let url = format!("iscsi://{creds}{portal}/{iqn}/0");
        let text = refused("iscsi-inq", &[&url]);
        assert!(text.contains("Authentication failure"), "{creds}: {text}");
        let out = run(lun.to_str().unwrap(), &["read", &url]);
        assert!(!out.status.success() && out.stdout.is_empty(), "{creds}");
    }

    // Discovery: refused without CHAP; with an export's credential it
    // lists that export only.
    let text = refused("iscsi-ls", &[&format!("iscsi://{portal}/")]);
    assert!(!text.contains(&iqn), "{text}");
    refused(
        "iscsi-ls",
        &[&format!("iscsi://{user}%wrong-secret@{portal}/")],
    );
    let ls = tool(
        "iscsi-ls",
        &["-s", &format!("iscsi://{user}%{secret}@{portal}/")],
    );
    assert!(
        ls.contains(&format!("Target:{iqn} Portal:{portal},1")),
        "{ls}"
    );
    assert!(ls.contains("Type:DIRECT_ACCESS"), "{ls}");
    assert!(!ls.contains(&format!("export-{}", other["id"])), "{ls}");
}

#[test]
fn unflushed_nbd_writes_survive_stop_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let img = image(4);
    let rp = srv.backup("vm", &img);
    let w = srv.export(json!({"restore_point": rp, "writable": true}));
    let waddr = w["address"].as_str().unwrap();
    // nbdcopy writes 256 KiB and disconnects without a flush (no --flush).
    let data = common::random_bytes(256 << 10, 5);
    let src = dir.path().join("data.raw");
    std::fs::write(&src, &data).unwrap();
    tool("nbdcopy", &[src.to_str().unwrap(), waddr]);
    let (s, stopped) = srv.call(
        "DELETE",
        &format!("/api/v1/exports/{}?commit=true", w["id"]),
        None,
    );
    assert_eq!(s, 200, "{stopped}");
    let t = stopped["commit_task_id"].as_i64().unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let task = loop {
        let (_, task) = srv.call("GET", &format!("/api/v1/tasks/{t}"), None);
        if !matches!(task["state"].as_str(), Some("queued" | "running")) {
            break task;
        }
        assert!(Instant::now() < end, "the commit did not end: {task}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(task["state"], "succeeded", "{task}");
    assert!(
        task["result"]["bytes_added"].as_u64().unwrap() > 0,
        "{task}"
    );
    let new_rp = task["result"]["restore_point"].as_str().unwrap();

    // The new restore point has the writes; the old one never changed.
    let mut want = img.clone();
    want[..data.len()].copy_from_slice(&data);
    for (id, expect) in [(new_rp, &want), (rp.as_str(), &img)] {
        let e = srv.export(json!({"restore_point": id}));
        let out = dir.path().join(format!("{}.raw", &id[..8]));
        tool(
            "nbdcopy",
            &[e["address"].as_str().unwrap(), out.to_str().unwrap()],
        );
        assert!(
            &std::fs::read(&out).unwrap() == expect,
            "restore point {id}"
        );
    }
}

/// An `arca node` gets each export's secret over gRPC (`ExportSpec.secret`)
/// and serves it with the same credentials.
#[test]
fn a_remote_node_serves_exports_with_their_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let (s, v) = srv.call(
        "POST",
        "/api/v1/nodes",
        Some(json!({"name": "alpha", "max_tasks": 1})),
    );
    assert_eq!(s, 201, "{v}");
    let root = dir.path().to_str().unwrap();
    let (s, r) = srv.call(
        "PATCH",
        &format!("/api/v1/nodes/{}", v["node"]["id"]),
        Some(json!({"source_roots": [root], "restore_roots": [root]})),
    );
    assert_eq!(s, 200, "{r}");
    let (node, l) = common::spawn_first_line(
        Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["node", "--server", &srv.url, "--data-dir"])
            .arg(dir.path().join("alpha"))
            .args([
                "--nbd-listen",
                "127.0.0.1:0",
                "--iscsi-listen",
                "127.0.0.1:0",
                "--nfs-listen",
                "127.0.0.1:0",
            ])
            .env("ARCA_TOKEN", v["token"].as_str().unwrap()),
    );
    assert!(l.contains("registered with"), "{l:?}");
    let _node = common::Proc(node);

    let img = image(6);
    let path = dir.path().join("remote.raw");
    std::fs::write(&path, &img).unwrap();
    srv.arca(&[
        "source",
        "add",
        "image",
        "remote",
        path.to_str().unwrap(),
        "--node",
        "alpha",
    ]);
    srv.arca(&["backup", "now", "remote", "--wait"]);
    let (_, rps) = srv.call("GET", "/api/v1/restore-points?source=remote", None);
    let rp = rps[0]["id"].as_str().unwrap();
    let e = srv.export(json!({"restore_point": rp}));
    let addr = e["address"].as_str().unwrap();
    assert!(addr.ends_with(e["secret"].as_str().unwrap()), "{addr}");
    assert_eq!(
        tool("nbdinfo", &["--size", addr]).trim(),
        img.len().to_string()
    );
    let base = addr.rsplit_once('-').unwrap().0;
    refused("nbdinfo", &["--size", base]);
    let i = srv.export(json!({"restore_point": rp, "protocol": "iscsi"}));
    let iaddr = i["address"].as_str().unwrap();
    assert!(tool("iscsi-inq", &[iaddr]).contains("Vendor:ARCA"));
    let plain = format!("iscsi://{}", iaddr.rsplit_once('@').unwrap().1);
    let text = refused("iscsi-inq", &[&plain]);
    assert!(text.contains("Authentication failure"), "{text}");
}
