//! Notifications (webhook, SMTP) on failures and missed RPOs, and HTTPS
//! with a self-signed certificate.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// A failed task and a missed RPO reach a local webhook receiver and a
/// local SMTP sink.
#[test]
fn notifications_on_failure_and_missed_rpo() {
    let (hook, hooks) = webhook_receiver();
    let (smtp, mails) = smtp_sink();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, _) = Server::start_with(
        &data,
        &[
            "--webhook",
            &hook,
            "--smtp-server",
            &smtp,
            "--notify-email",
            "ops@example.com",
        ],
    );
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let token = login(&srv.url, pw.trim());
    let missing = dir.path().join("does-not-exist");
    let (s, src) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "gone", "kind": "files", "path": missing})),
    );
    assert_eq!(s, 201, "{src}");
    let (s, t) = call(
        &srv.url,
        &token,
        "POST",
        &format!("/api/v1/sources/{}/backup", src["id"]),
        None,
    );
    assert_eq!(s, 202, "{t}");
    let req = hooks
        .recv_timeout(Duration::from_secs(60))
        .expect("no webhook call");
    assert!(req.starts_with("POST /hook "), "{req}");
    let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], "task.failed");
    assert_eq!(v["task"]["id"], t["id"]);
    assert_eq!(v["task"]["state"], "failed");
    assert!(
        v["task"]["error"]
            .as_str()
            .unwrap()
            .contains("does-not-exist"),
        "{v}"
    );
    let mail = mails
        .recv_timeout(Duration::from_secs(60))
        .expect("no mail");
    assert!(mail.contains("Subject: arca: backup task"), "{mail}");
    assert!(mail.contains("To: ops@example.com"), "{mail}");

    // A policy with a 2-second RPO and no restore point yet: missed once.
    let (s, v) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/policies",
        Some(json!({
            "name": "strict", "schedule": "yearly", "rpo_s": 2, "match_tags": ["rpo"]
        })),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(
            json!({"name": "late", "kind": "files", "path": dir.path().join("nonexistent"), "tags": ["rpo"]}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let req = hooks
        .recv_timeout(Duration::from_secs(60))
        .expect("no RPO webhook call");
    let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["source"]["name"].as_str()),
        (Some("source.rpo_missed"), Some("late"))
    );
    let mail = mails
        .recv_timeout(Duration::from_secs(60))
        .expect("no RPO mail");
    assert!(mail.contains("missed its RPO"), "{mail}");
    // Reported once per miss, not every second.
    assert!(hooks.recv_timeout(Duration::from_secs(3)).is_err());
}

/// `--tls`: a self-signed certificate is made on first start and kept; a
/// client that trusts it gets answers over HTTPS (checked with Python's
/// ssl module, an independent TLS stack), one that does not is refused.
#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, _) = Server::start_with(&data, &["--tls"]);
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    let cert = data.join("tls/cert.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let check = |cafile: Option<&Path>| {
        let script = format!(
            "import ssl, urllib.request, json\nctx = ssl.create_default_context({})\nprint(json.load(urllib.request.urlopen('{}/healthz', context=ctx, timeout=10))['status'])",
            cafile.map(|c| format!("cafile='{}'", c.display())).unwrap_or_default(),
            srv.url
        );
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    };
    let ok = check(Some(&cert));
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "ok");
    let refused = check(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{refused:?}"
    );
    // The CLI trusts it with --ca-cert, and refuses the server without.
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let cli = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(extra)
            .env("ARCA_SERVER", &srv.url)
            .env("ARCA_PASSWORD", pw.trim())
            .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
            .env_remove("ARCA_TOKEN")
            .output()
            .unwrap()
    };
    let out = cli(&["login"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = cli(&["--ca-cert", cert.to_str().unwrap(), "login"]);
    assert!(out.status.success(), "{out:?}");
    let out = cli(&[
        "--ca-cert",
        cert.to_str().unwrap(),
        "--json",
        "task",
        "list",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // A node joins over gRPC with TLS, trusting the same certificate.
    let admin = login_tls(&srv.url, pw.trim(), &cert);
    let (s, v) = call_tls(
        &srv.url,
        &admin,
        &cert,
        "/api/v1/nodes",
        json!({"name": "secure"}),
    );
    assert_eq!(s, 201, "{v}");
    let node = NodeProc::start_with(
        &srv.url,
        v["token"].as_str().unwrap(),
        &dir.path().join("node"),
        &["--ca-cert", cert.to_str().unwrap()],
    );
    drop(node);
    // The certificate is kept across restarts.
    let pem = std::fs::read(&cert).unwrap();
    srv.kill9();
    let (srv, _) = Server::start_with(&data, &["--tls"]);
    assert_eq!(std::fs::read(&cert).unwrap(), pem);
    drop(srv);
}
