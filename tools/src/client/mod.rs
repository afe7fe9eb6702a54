//! The CLI against an `arca server` (`--server`/`ARCA_SERVER`,
//! `--token`/`ARCA_TOKEN`). `arca login` saves the session token in
//! `$XDG_CONFIG_HOME/arca/token` (else `~/.config/arca/token`, mode 0600),
//! which later commands use when no token is given.
//!
//! Requests and answers are the REST types of `arca_model::api`: [`Api`]
//! sends a request type as JSON and decodes the answer into a response
//! type. An answer that is not what the endpoint should send is an error
//! naming the endpoint and what was wrong ([`decode`]); an error answer
//! shows the server's message and the status ([`failure`]).
//!
//! One module per resource: `sources` (and backup now), `datastores`,
//! `nodes`, `policies`, `tasks` (and following a task to its end),
//! `restore_points` (snapshots, ls), `search` (find), `restores` and `exports` (mount,
//! mounts, unmount).

mod audit;
mod datastores;
mod download;
mod exports;
mod forget;
mod hypervisors;
mod nodes;
mod policies;
mod reports;
mod restore_points;
mod restores;
mod s3_keys;
mod search;
mod sources;
mod tasks;

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use arca_model::api::{ErrorBody, Login, Session};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Cli;

pub use audit::{audit, AuditArgs};
pub use datastores::datastore;
pub use download::{download, DownloadArgs};
pub use exports::{mount, mounts, unmount};
pub use forget::forget;
pub use hypervisors::hypervisor;
pub use nodes::node;
pub use policies::policy;
pub use reports::report;
pub use restore_points::{ls, snapshots};
pub use restores::{protect, restore, RestoreTo};
pub use s3_keys::{s3_key, status};
pub use search::find;
pub use sources::{backup_now, source};
pub use tasks::task;

fn token_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("arca/token"))
}

pub(crate) fn server(cli: &Cli) -> Result<String> {
    let s = cli
        .server
        .as_deref()
        .ok_or_else(|| anyhow!("this command needs --server URL (or ARCA_SERVER)"))?;
    Ok(s.trim_end_matches('/').to_string())
}

fn token(cli: &Cli) -> Result<String> {
    if let Some(t) = &cli.token {
        return Ok(t.clone());
    }
    let f = token_file().ok_or_else(|| anyhow!("no token: give --token or run `arca login`"))?;
    Ok(std::fs::read_to_string(&f)
        .with_context(|| {
            format!(
                "no token: give --token or run `arca login` ({})",
                f.display()
            )
        })?
        .trim()
        .to_string())
}

fn agent(cli: &Cli) -> Result<ureq::Agent> {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)));
    if let Some(ca) = &cli.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .map_err(|e| anyhow!("{}: not a PEM certificate: {e}", ca.display()))?;
        b = b.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    cert,
                ])))
                .build(),
        );
    }
    Ok(b.build().into())
}

/// Decode the body of a successful answer to `method path` (`path` under
/// `/api/v1`) as `what` ("a task", "a list of sources"): an answer that is
/// not one is an error that names the endpoint and what was wrong, never
/// a default.
pub(crate) fn decode<T: DeserializeOwned>(
    method: &str,
    path: &str,
    what: &str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        anyhow!("server answered {method} /api/v1{path} with a body that is not {what}: {e}")
    })
}

/// A non-2xx answer: the server's message (of its [`ErrorBody`]) and the
/// status.
#[derive(Debug)]
pub(crate) struct ServerError {
    pub status: String,
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server: {} ({})", self.message, self.status)
    }
}

impl std::error::Error for ServerError {}

/// The error for a non-2xx answer. A body that is not an [`ErrorBody`] is
/// shown as it is (shortened), or as "no message" when empty.
pub(crate) fn failure(status: impl std::fmt::Display, body: &[u8]) -> anyhow::Error {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            match text.trim() {
                "" => "no message".to_string(),
                t => t.chars().take(200).collect(),
            }
        }
    };
    ServerError {
        status: status.to_string(),
        message,
    }
    .into()
}

/// The server's REST API (`<server>/api/v1`), as the caller of the CLI.
pub(crate) struct Api {
    base: String,
    /// `Bearer <token>`; none for signing in.
    auth: Option<String>,
    agent: ureq::Agent,
}

/// A request body as JSON.
fn encode<B: Serialize>(method: &str, path: &str, req: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(req).with_context(|| format!("encoding the body of {method} /api/v1{path}"))
}

impl Api {
    /// With the token of `--token`, `ARCA_TOKEN` or `arca login`.
    pub(crate) fn new(cli: &Cli) -> Result<Api> {
        Ok(Api {
            base: format!("{}/api/v1", server(cli)?),
            auth: Some(format!("Bearer {}", token(cli)?)),
            agent: agent(cli)?,
        })
    }

    /// Without a token (signing in).
    fn unsigned(cli: &Cli) -> Result<Api> {
        Ok(Api {
            base: format!("{}/api/v1", server(cli)?),
            auth: None,
            agent: agent(cli)?,
        })
    }

    /// `GET path`, decoded as `what`.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let body = self.send("GET", path, None)?;
        decode("GET", path, what, &body)
    }

    /// `GET path`, the answer as text (CSV).
    pub(crate) fn get_text(&self, path: &str) -> Result<String> {
        let body = self.send("GET", path, None)?;
        String::from_utf8(body)
            .with_context(|| format!("GET /api/v1{path}: the answer is not UTF-8"))
    }

    /// `POST path` with `req` as JSON, the answer decoded as `what`.
    pub(crate) fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        req: &B,
        what: &str,
    ) -> Result<T> {
        let body = self.send("POST", path, Some(encode("POST", path, req)?))?;
        decode("POST", path, what, &body)
    }

    /// `POST path` without a body.
    pub(crate) fn post_empty<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let body = self.send("POST", path, None)?;
        decode("POST", path, what, &body)
    }

    /// `PATCH path` with `req` as JSON.
    pub(crate) fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        req: &B,
        what: &str,
    ) -> Result<T> {
        let body = self.send("PATCH", path, Some(encode("PATCH", path, req)?))?;
        decode("PATCH", path, what, &body)
    }

    /// `DELETE path`, the answer decoded as `what`.
    pub(crate) fn delete<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let body = self.send("DELETE", path, None)?;
        decode("DELETE", path, what, &body)
    }

    /// `DELETE path`, answered with `what` or without a body (204: `None`).
    pub(crate) fn delete_maybe<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let body = self.send("DELETE", path, None)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        decode("DELETE", path, what, &body).map(Some)
    }

    /// `DELETE path`, answered without a body (204).
    pub(crate) fn delete_no_content(&self, path: &str) -> Result<()> {
        self.send("DELETE", path, None).map(drop)
    }

    /// `GET path` with extra headers, the answer as it is (its body not
    /// read: a download streams it). A non-2xx answer becomes a
    /// [`ServerError`], except the statuses in `ok` (416 for a resume).
    pub(crate) fn get_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        ok: &[u16],
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        // No overall limit: a download takes as long as its size needs.
        let mut r = self.agent.get(&url).config().timeout_global(None).build();
        if let Some(t) = self.auth.as_deref() {
            r = r.header("authorization", t);
        }
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let mut resp = r.call().with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        if !status.is_success() && !ok.contains(&status.as_u16()) {
            let body = resp.body_mut().read_to_vec().unwrap_or_default();
            return Err(failure(status, &body));
        }
        Ok(resp)
    }

    /// Send; a non-2xx answer becomes a [`ServerError`]. Returns the body
    /// of a successful answer.
    fn send(&self, method: &str, path: &str, json: Option<Vec<u8>>) -> Result<Vec<u8>> {
        use ureq::typestate::{WithBody, WithoutBody};
        let url = format!("{}{path}", self.base);
        let auth = self.auth.as_deref();
        let bare = |r: ureq::RequestBuilder<WithoutBody>| match auth {
            Some(t) => r.header("authorization", t).call(),
            None => r.call(),
        };
        let with = |r: ureq::RequestBuilder<WithBody>| {
            let r = match auth {
                Some(t) => r.header("authorization", t),
                None => r,
            };
            match &json {
                Some(j) => r.header("content-type", "application/json").send(&j[..]),
                None => r.send_empty(),
            }
        };
        let mut resp = match method {
            "GET" => bare(self.agent.get(&url)),
            "DELETE" => bare(self.agent.delete(&url)),
            "POST" => with(self.agent.post(&url)),
            "PATCH" => with(self.agent.patch(&url)),
            m => bail!("unsupported method {m}"),
        }
        .with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .read_to_vec()
            .with_context(|| format!("reading the answer to {method} {url}"))?;
        if !status.is_success() {
            return Err(failure(status, &body));
        }
        Ok(body)
    }
}

/// Print `v` as JSON with `--json`, else `text(v)`.
pub(crate) fn show<T: Serialize>(cli: &Cli, v: &T, text: impl FnOnce(&T) -> String) -> Result<u8> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", text(v));
    }
    Ok(0)
}

/// What `arca --json login` prints (never the user record).
#[derive(Serialize)]
struct SignedIn<'a> {
    token: &'a str,
    expires_at: i64,
}

pub fn login(cli: &Cli, user: &str, password_file: Option<&Path>) -> Result<u8> {
    let password = match password_file {
        Some(f) => std::fs::read_to_string(f)?
            .trim_end_matches('\n')
            .to_string(),
        None => match std::env::var("ARCA_PASSWORD") {
            Ok(p) => p,
            // A terminal: ask without echo. Else a line from stdin.
            Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                rpassword::prompt_password(format!("password for {user}: "))?
            }
            Err(_) => {
                let mut l = String::new();
                std::io::stdin().lock().read_line(&mut l)?;
                l.trim_end_matches(['\r', '\n']).to_string()
            }
        },
    };
    if password.is_empty() {
        bail!("the password is empty; nothing was sent to the server");
    }
    let req = Login {
        username: user.to_string(),
        password,
        cookie: false,
    };
    let s: Session = Api::unsigned(cli)?
        .post("/auth/login", &req, "a sign-in session")
        .map_err(|e| match e.downcast_ref::<ServerError>() {
            Some(s) => anyhow!("sign-in failed: {}", s.message),
            None => e,
        })?;
    if let Some(f) = token_file() {
        if let Some(d) = f.parent() {
            std::fs::create_dir_all(d)?;
        }
        let _ = std::fs::remove_file(&f);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&f)
            .with_context(|| format!("saving the token to {}", f.display()))?;
        out.write_all(s.token.as_bytes())?;
        let hours = ((s.expires_at - arca_catalog::now()).max(0) + 1800) / 3600;
        eprintln!(
            "signed in as {user}; token saved to {} (valid {hours} hours)",
            f.display()
        );
    }
    if cli.json {
        let out = SignedIn {
            token: &s.token,
            expires_at: s.expires_at,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use arca_model::api::Task;
    use arca_model::{TaskId, TaskState};

    use super::*;

    const TASK: &str = r#"{"id": 7, "kind": "backup", "state": "running", "project_id": 1, "source_id": 2, "policy_id": null, "datastore_id": 1, "node_id": 1, "params": {}, "priority": 10, "slot": null, "attempt": 1, "max_attempts": 1, "not_before": 0, "lease_until": 100, "cancel_requested": false, "bytes_done": 5, "bytes_total": 10, "progress": 50.0, "result": null, "error": null, "created_by": "admin", "created_at": 0, "started_at": 1, "finished_at": null}"#;

    #[test]
    fn a_task_decodes() {
        let t: Task = decode("GET", "/tasks/7", "a task", TASK.as_bytes()).unwrap();
        assert_eq!((t.id, t.state), (TaskId(7), TaskState::Running));
        assert_eq!(t.progress, Some(50.0));
    }

    /// A body without a field, with an unknown state, or not JSON at all
    /// is an error naming the endpoint and the fault, not a default.
    #[test]
    fn a_bad_body_is_an_error_naming_the_endpoint() {
        let missing = TASK.replace(r#""state": "running", "#, "");
        let e = decode::<Task>("GET", "/tasks/7", "a task", missing.as_bytes()).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(
                "server answered GET /api/v1/tasks/7 with a body that is not a task: missing field `state`"
            ),
            "{e}"
        );
        let unknown = TASK.replace(r#""running""#, r#""paused""#);
        let e = decode::<Task>("GET", "/tasks/7", "a task", unknown.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown variant `paused`"), "{e}");
        let e = decode::<Vec<Task>>("GET", "/tasks", "a list of tasks", b"<html>").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "server answered GET /api/v1/tasks with a body that is not a list of tasks: "
            ),
            "{e}"
        );
        let e = decode::<Task>("POST", "/sources/2/backup", "a task", b"null").unwrap_err();
        assert!(e.to_string().contains("invalid type: null"), "{e}");
    }

    #[test]
    fn error_answers_show_the_server_s_message_and_status() {
        let e = failure(
            "409 Conflict",
            br#"{"error": "conflict", "message": "a gc of datastore default is already queued or running: task 3"}"#,
        );
        assert_eq!(
            e.to_string(),
            "server: a gc of datastore default is already queued or running: task 3 (409 Conflict)"
        );
        assert_eq!(
            failure("502 Bad Gateway", b"").to_string(),
            "server: no message (502 Bad Gateway)"
        );
        assert_eq!(
            failure("502 Bad Gateway", b" upstream down\n").to_string(),
            "server: upstream down (502 Bad Gateway)"
        );
    }
}
