//! Helpers of the server suite: starting `arca server` and `arca node`,
//! calling the API (plain and TLS), waiting, and reading a datastore.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start(data: &Path) -> (Server, Vec<String>) {
        Self::start_with(data, &[])
    }

    /// Sources and restores may be anywhere in the test's directory (the
    /// data directory's parent): see [`Server::start_confined`].
    pub(crate) fn start_with(data: &Path, extra: &[&str]) -> (Server, Vec<String>) {
        let parent = data.parent().unwrap().to_str().unwrap();
        let roots = ["--source-root", parent, "--restore-root", parent];
        Self::start_confined(data, &[&roots[..], extra].concat())
    }

    /// Without roots of its own: only what `extra` says.
    pub(crate) fn start_confined(data: &Path, extra: &[&str]) -> (Server, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["server", "--listen", "127.0.0.1:0"])
            .args([
                "--nbd-listen",
                "127.0.0.1:0",
                "--iscsi-listen",
                "127.0.0.1:0",
                "--nfs-listen",
                "127.0.0.1:0",
                "--s3-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut url = None;
        // The first lines tell the address (and, on first start, the password).
        for _ in 0..10 {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap() == 0 {
                break;
            }
            if let Some(u) = l.split("listening on ").nth(1) {
                url = Some(u.trim().to_string());
            }
            lines.push(l);
            if l_done(&lines) {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        (
            Server {
                child,
                url: url.expect("server printed no address"),
            },
            lines,
        )
    }

    pub(crate) fn kill9(mut self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn l_done(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains("passphrase is in"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub(crate) fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let a = agent();
    let full = format!("{url}{path}");
    let auth = format!("Bearer {token}");
    let resp = match (method, body) {
        ("GET", _) => a.get(&full).header("authorization", &auth).call(),
        ("POST", Some(b)) => a.post(&full).header("authorization", &auth).send_json(b),
        ("POST", None) => a.post(&full).header("authorization", &auth).send_empty(),
        ("DELETE", _) => a.delete(&full).header("authorization", &auth).call(),
        ("PATCH", Some(b)) => a.patch(&full).header("authorization", &auth).send_json(b),
        _ => unreachable!(),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let v = resp.into_body().read_json::<Value>().unwrap_or(Value::Null);
    (status, v)
}

pub(crate) fn tls_agent(cert: &Path) -> ureq::Agent {
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

pub(crate) fn login_tls(url: &str, password: &str, cert: &Path) -> String {
    let resp = tls_agent(cert)
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(json!({"username": "admin", "password": password}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.into_body().read_json().unwrap();
    v["token"].as_str().unwrap().to_string()
}

pub(crate) fn call_tls(
    url: &str,
    token: &str,
    cert: &Path,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = tls_agent(cert)
        .post(&format!("{url}{path}"))
        .header("authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_json().unwrap_or(Value::Null))
}

pub(crate) fn login(url: &str, password: &str) -> String {
    let resp = agent()
        .post(&format!("{url}/api/v1/auth/login"))
        .send_json(json!({"username": "admin", "password": password}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.into_body().read_json().unwrap();
    v["token"].as_str().unwrap().to_string()
}

pub(crate) fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn restore_points(url: &str, token: &str, source: &str) -> Vec<Value> {
    let (s, v) = call(
        url,
        token,
        "GET",
        &format!("/api/v1/restore-points?source={source}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// The admin password a first start printed.
/// Text lines say "with password <pw>"; with `--log-format json` the
/// banner is records and the password is the `password` field.
pub(crate) fn first_password(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) => v["password"].as_str().map(str::to_string),
            Err(_) => l.split("with password ").nth(1).map(str::to_string),
        })
        .expect("first start prints the admin password")
        .trim()
        .to_string()
}

/// Snapshots the default datastore under a server's or node's data
/// directory lists itself, read with the CLI.
pub(crate) fn datastore_snapshots(data: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("--datastore")
        .arg(data.join("datastores/default"))
        .arg("--passphrase-file")
        .arg(data.join("datastores/default.passphrase"))
        .args(["--json", "snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// A minimal SMTP sink (test code): accepts every message and hands its
/// DATA to the channel.
pub(crate) fn smtp_sink() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            conn.write_all(b"220 sink ESMTP\r\n").unwrap();
            let mut data = None::<String>;
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(d) = data.as_mut() {
                    if l == ".\r\n" {
                        let _ = tx.send(data.take().unwrap());
                        conn.write_all(b"250 queued\r\n").unwrap();
                    } else {
                        d.push_str(&l);
                    }
                    continue;
                }
                let cmd = l.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match cmd.as_str() {
                    "EHLO" | "HELO" => b"250 sink\r\n",
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        conn.write_all(b"221 bye\r\n").unwrap();
                        break;
                    }
                    _ => b"250 OK\r\n",
                };
                conn.write_all(reply).unwrap();
            }
        }
    });
    (addr, rx)
}

/// A local webhook receiver (test code): answers 204 and hands each
/// request (head and body) to the channel.
pub(crate) fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                        let _ = tx.send(text);
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
    });
    (hook, rx)
}

/// An `arca node` process: started with a node token, registered.
pub(crate) struct NodeProc {
    pub(crate) child: Child,
}

impl NodeProc {
    pub(crate) fn start(url: &str, token: &str, data: &Path) -> NodeProc {
        Self::start_with(url, token, data, &[])
    }

    pub(crate) fn start_with(url: &str, token: &str, data: &Path, extra: &[&str]) -> NodeProc {
        let (child, l) = common::spawn_first_line(
            Command::new(env!("CARGO_BIN_EXE_arca"))
                .args(["node", "--server", url])
                .args([
                    "--nbd-listen",
                    "127.0.0.1:0",
                    "--iscsi-listen",
                    "127.0.0.1:0",
                    "--nfs-listen",
                    "127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(data)
                .args(extra)
                .env("ARCA_TOKEN", token),
        );
        assert!(l.contains("registered with"), "{l:?}");
        NodeProc { child }
    }

    pub(crate) fn kill9(&mut self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI through the server at `url` with `token` (no local datastore):
/// exit code, stdout, stderr.
pub(crate) fn cli_as(url: &str, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(args)
        .env("ARCA_SERVER", url)
        .env("ARCA_TOKEN", token)
        .env_remove("ARCA_DATASTORE")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A server with a second node, "far", in its own `arca node` process,
/// whose sources may live anywhere in the test's directory; the admin
/// signed in. For the tests of what the server asks a remote node.
/// Its parts drop in this order: the node, the server, the directory.
pub(crate) struct FarNode {
    pub(crate) node: NodeProc,
    /// Runs while this lives.
    _srv: Server,
    pub(crate) url: String,
    pub(crate) admin: String,
    pub(crate) node_token: String,
    pub(crate) node_dir: PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

impl FarNode {
    pub(crate) fn start() -> FarNode {
        let dir = tempfile::tempdir().unwrap();
        let (srv, lines) = Server::start_with(&dir.path().join("server"), &["--node-timeout", "6"]);
        let url = srv.url.clone();
        let admin = login(&url, &first_password(&lines));
        let (s, v) = call(
            &url,
            &admin,
            "POST",
            "/api/v1/nodes",
            Some(json!({"name": "far", "max_tasks": 2})),
        );
        assert_eq!(s, 201, "{v}");
        let node_token = v["token"].as_str().unwrap().to_string();
        let node_dir = dir.path().join("far");
        let node = NodeProc::start(&url, &node_token, &node_dir);
        let far = FarNode {
            node,
            _srv: srv,
            url,
            admin,
            node_token,
            node_dir,
            dir,
        };
        let root = far.dir.path().to_str().unwrap();
        far.ok(&["node", "set", "far", "--source-root", root]);
        far
    }

    /// The CLI through the server as the admin: exit code, stdout, stderr.
    pub(crate) fn arca(&self, args: &[&str]) -> (Option<i32>, String, String) {
        cli_as(&self.url, &self.admin, args)
    }

    /// [`FarNode::arca`] that must succeed: stdout and stderr.
    pub(crate) fn ok(&self, args: &[&str]) -> (String, String) {
        let (code, out, err) = self.arca(args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        (out, err)
    }

    /// SIGTERM, and wait for the node to exit (it tells the server it
    /// leaves).
    pub(crate) fn stop_node(&mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.node.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let end = Instant::now() + Duration::from_secs(30);
        while self.node.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "the node did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub(crate) fn task(url: &str, token: &str, id: i64) -> Value {
    let (s, t) = call(url, token, "GET", &format!("/api/v1/tasks/{id}"), None);
    assert_eq!(s, 200, "{t}");
    t
}

/// The node called `name` as the API lists it.
pub(crate) fn node(url: &str, token: &str, name: &str) -> Value {
    let (_, nodes) = call(url, token, "GET", "/api/v1/nodes", None);
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no node {name} in {nodes}"))
}

/// Bytes of a datastore's packs on disk.
pub(crate) fn packs_bytes(ds: &Path) -> u64 {
    let mut n = 0;
    common::walk(&ds.join("packs"), &mut |_, md| {
        if md.is_file() {
            n += md.len();
        }
    });
    n
}

pub(crate) fn wait_task(url: &str, token: &str, id: i64, secs: u64) -> Value {
    let mut t = Value::Null;
    wait_for(&format!("task {id}"), secs, || {
        t = task(url, token, id);
        matches!(
            t["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    t
}

/// Replace a file atomically, so that a backup sees one version or the other.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
