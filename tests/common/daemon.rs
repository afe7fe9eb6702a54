//! Long-running `arca server` and `arca node` processes for the tests that
//! signal them (tests/shutdown.rs): their stderr is kept, so a test
//! can check the log records of a shutdown, and their exit is awaited.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `arca server` or `arca node`.
pub struct Daemon {
    pub child: Child,
    /// The server's URL (empty for a node).
    pub url: String,
    /// The stdout lines it printed before it was ready (the banner).
    pub banner: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn spawn(
    mut cmd: Command,
) -> (
    Child,
    BufReader<std::process::ChildStdout>,
    Arc<Mutex<Vec<String>>>,
) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out, lines)
}

impl Daemon {
    /// `arca server` on loopback ports, sources and restores allowed
    /// anywhere under the data directory's parent.
    pub fn server(data: &Path, extra: &[&str]) -> Daemon {
        let parent = data.parent().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
        cmd.args(["server", "--listen", "127.0.0.1:0"])
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
            .arg("--source-root")
            .arg(parent)
            .arg("--restore-root")
            .arg(parent)
            .args(extra)
            .env_remove("ARCA_LOG")
            .env_remove("RUST_LOG");
        let (child, mut out, stderr) = spawn(cmd);
        let mut banner = Vec::new();
        let mut url = None;
        loop {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap() == 0 {
                break;
            }
            if let Some(u) = l.split("listening on ").nth(1) {
                url = Some(u.trim().to_string());
            }
            let done = l.contains("passphrase is in");
            banner.push(l);
            if done {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        let url = url.unwrap_or_else(|| {
            panic!(
                "the server printed no address: {banner:?} {:?}",
                stderr.lock().unwrap()
            )
        });
        Daemon {
            child,
            url,
            banner,
            stderr,
        }
    }

    /// `arca node` for the server at `url`, registered.
    pub fn node(url: &str, token: &str, data: &Path, extra: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arca"));
        cmd.args(["node", "--server", url])
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
            .env("ARCA_TOKEN", token)
            .env_remove("ARCA_LOG")
            .env_remove("RUST_LOG");
        let (child, mut out, stderr) = spawn(cmd);
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert!(l.contains("registered with"), "{l:?}");
        std::thread::spawn(move || for _ in out.lines() {});
        Daemon {
            child,
            url: String::new(),
            banner: vec![l],
            stderr,
        }
    }

    /// The admin password a server's first start printed.
    pub fn first_password(&self) -> String {
        self.banner
            .iter()
            .find_map(|l| l.split("with password ").nth(1))
            .expect("first start prints the admin password")
            .trim()
            .to_string()
    }

    /// Send a signal by name ("TERM", "INT", "KILL").
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Wait for the process to exit; fail after `secs` (a hang, not a
    /// measurement).
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return s;
            }
            assert!(
                Instant::now() < end,
                "the process did not exit; its log: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its stderr (text log records) so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One API call: (status, JSON body or null).
pub fn api(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
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
    (
        status,
        resp.into_body().read_json::<Value>().unwrap_or(Value::Null),
    )
}

/// An API call that must answer `want`; its body.
pub fn api_ok(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (s, v) = api(url, token, method, path, body);
    assert_eq!(s, want, "{method} {path}: {v}");
    v
}

pub fn sign_in(url: &str, password: &str) -> String {
    let v = api_ok(
        url,
        "",
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "admin", "password": password})),
        200,
    );
    v["token"].as_str().unwrap().to_string()
}

/// Poll `f` until it holds; fail after `secs` (a hang, not a measurement).
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A sparse disk image of `size` bytes whose first `data` bytes are
/// random: a backup of it reads for a long while (the holes too) and
/// writes packs at its start.
pub fn slow_image(path: &Path, size: u64, data: usize) {
    std::fs::write(path, super::random_bytes(data, 42)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size)
        .unwrap();
}

/// `arca` with the datastore `<data>/datastores/default` and its
/// passphrase file.
pub fn on_default_datastore(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("--datastore")
        .arg(data.join("datastores/default"))
        .arg("--passphrase-file")
        .arg(data.join("datastores/default.passphrase"))
        .args(args)
        .output()
        .unwrap()
}
