//! The CLI against an `arca server` (`--server`/`ARCA_SERVER`,
//! `--token`/`ARCA_TOKEN`). `arca login` saves the session token in
//! `$XDG_CONFIG_HOME/arca/token` (else `~/.config/arca/token`, mode 0600),
//! which later commands use when no token is given.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::{Cli, DatastoreCmd, NodeCmd, PolicyCmd, SourceCmd, TaskCmd};

fn token_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("arca/token"))
}

fn server(cli: &Cli) -> Result<String> {
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

/// Call the API; a non-2xx answer becomes an error with the server's message.
pub(crate) fn call(cli: &Cli, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let url = format!("{}/api/v1{path}", server(cli)?);
    let auth = format!("Bearer {}", token(cli)?);
    let a = agent(cli)?;
    let resp = match (method, body) {
        ("GET", _) => a.get(&url).header("authorization", &auth).call(),
        ("POST", Some(b)) => a.post(&url).header("authorization", &auth).send_json(b),
        ("POST", None) => a.post(&url).header("authorization", &auth).send_empty(),
        ("DELETE", _) => a.delete(&url).header("authorization", &auth).call(),
        ("PATCH", Some(b)) => a.patch(&url).header("authorization", &auth).send_json(b),
        (m, _) => bail!("unsupported method {m}"),
    }
    .with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let v: Value = resp.into_body().read_json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "server: {} ({})",
            v["message"].as_str().unwrap_or("no message"),
            status
        );
    }
    Ok(v)
}

pub(crate) fn show(cli: &Cli, v: &Value, text: impl FnOnce(&Value) -> String) -> Result<u8> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", text(v));
    }
    Ok(0)
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
    let url = format!("{}/api/v1/auth/login", server(cli)?);
    let resp = agent(cli)?
        .post(&url)
        .send_json(json!({"username": user, "password": password}))
        .with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let v: Value = resp.into_body().read_json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "sign-in failed: {}",
            v["message"].as_str().unwrap_or("no message")
        );
    }
    let t = v["token"]
        .as_str()
        .ok_or_else(|| anyhow!("no token in the answer"))?;
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
        out.write_all(t.as_bytes())?;
        let hours =
            ((v["expires_at"].as_i64().unwrap_or(0) - arca_catalog::now()).max(0) + 1800) / 3600;
        eprintln!(
            "signed in as {user}; token saved to {} (valid {hours} hours)",
            f.display()
        );
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"token": t, "expires_at": v["expires_at"]}))?
        );
    }
    Ok(0)
}

pub fn source(cli: &Cli, c: &SourceCmd) -> Result<u8> {
    match c {
        SourceCmd::Add {
            kind,
            name,
            path,
            node,
            project,
            tags,
            policy,
        } => {
            let v = call(
                cli,
                "POST",
                "/sources",
                Some(json!({
                    "name": name, "kind": kind, "path": path, "node": node,
                    "project": project, "tags": tags, "policy": policy,
                })),
            )?;
            show(cli, &v, |v| {
                format!(
                    "source {} added (id {}, policy {})",
                    v["name"], v["id"], v["policy_id"]
                )
            })
        }
        SourceCmd::List => {
            let v = call(cli, "GET", "/sources", None)?;
            show(cli, &v, |v| {
                let mut out = String::new();
                for s in v.as_array().into_iter().flatten() {
                    out += &format!(
                        "{:>4}  {:<20} {:<6} {:<30} policy {}\n",
                        s["id"],
                        s["name"].as_str().unwrap_or(""),
                        s["kind"].as_str().unwrap_or(""),
                        s["path"].as_str().unwrap_or(""),
                        s["policy_id"]
                    );
                }
                out.trim_end().to_string()
            })
        }
    }
}

fn datastore_id(cli: &Cli, name: &str) -> Result<i64> {
    let v = call(cli, "GET", "/datastores", None)?;
    let all = v.as_array().cloned().unwrap_or_default();
    all.iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["id"].as_i64())
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().filter_map(|d| d["name"].as_str()).collect();
            anyhow!(
                "no datastore named {name:?} on the server (there are: {})",
                names.join(", ")
            )
        })
}

pub fn datastore(cli: &Cli, c: &DatastoreCmd) -> Result<u8> {
    match c {
        DatastoreCmd::List => {
            let v = call(cli, "GET", "/datastores", None)?;
            show(cli, &v, |v| {
                let mut out = format!(
                    "{:>4}  {:<20} {:>10}  {:<16} {:<16} {}\n",
                    "ID", "NAME", "USED", "GC", "VERIFY", "RE-VERIFY AFTER"
                );
                for d in v.as_array().into_iter().flatten() {
                    out += &format!(
                        "{:>4}  {:<20} {:>10}  {:<16} {:<16} {} days\n",
                        d["id"],
                        d["name"].as_str().unwrap_or(""),
                        crate::units::human(d["bytes_used"].as_u64().unwrap_or(0)),
                        d["gc_schedule"].as_str().unwrap_or(""),
                        d["verify_schedule"].as_str().unwrap_or(""),
                        d["verify_max_age_days"]
                    );
                }
                out.trim_end().to_string()
            })
        }
        DatastoreCmd::Gc { name, wait, grace } => {
            let id = datastore_id(cli, name)?;
            let mut body = json!({});
            if let Some(g) = grace {
                body["grace_seconds"] = json!(crate::units::parse_duration(g)?.as_secs());
            }
            let v = call(cli, "POST", &format!("/datastores/{id}/gc"), Some(body))?;
            if *wait {
                return follow(cli, &v);
            }
            show(cli, &v, |v| {
                format!("gc of datastore {name} queued as task {}", v["id"])
            })
        }
        DatastoreCmd::Verify { name, wait, all } => {
            let id = datastore_id(cli, name)?;
            let v = call(
                cli,
                "POST",
                &format!("/datastores/{id}/verify"),
                Some(json!({"all": all})),
            )?;
            if *wait {
                return follow(cli, &v);
            }
            show(cli, &v, |v| {
                format!("verify of datastore {name} queued as task {}", v["id"])
            })
        }
        DatastoreCmd::Set {
            name,
            gc_schedule,
            verify_schedule,
            verify_max_age_days,
        } => {
            let id = datastore_id(cli, name)?;
            let v = call(
                cli,
                "PATCH",
                &format!("/datastores/{id}"),
                Some(json!({
                    "gc_schedule": gc_schedule, "verify_schedule": verify_schedule,
                    "verify_max_age_days": verify_max_age_days,
                })),
            )?;
            show(cli, &v, |d| {
                format!(
                    "datastore {name}: gc {}, verify {}, re-verify after {} days",
                    d["gc_schedule"].as_str().unwrap_or(""),
                    d["verify_schedule"].as_str().unwrap_or(""),
                    d["verify_max_age_days"]
                )
            })
        }
        _ => Err(anyhow!(
            "this datastore command works on a local datastore, not through the server"
        )),
    }
}

fn roots(v: &Value) -> String {
    let r: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if r.is_empty() {
        "none".into()
    } else {
        r.join(",")
    }
}

fn node_line(n: &Value) -> String {
    format!(
        "{:>4}  {:<16} {:<8} sources: {}  restores: {}{}  block devices: {}",
        n["id"],
        n["name"].as_str().unwrap_or(""),
        n["state"].as_str().unwrap_or(""),
        roots(&n["source_roots"]),
        roots(&n["effective_restore_roots"]),
        if n["restore_roots"].as_array().is_some_and(|r| r.is_empty()) {
            " (default)"
        } else {
            ""
        },
        if n["allow_block_devices"] == true {
            "allowed"
        } else {
            "refused"
        }
    )
}

pub fn node(cli: &Cli, c: &NodeCmd) -> Result<u8> {
    match c {
        NodeCmd::List => {
            let v = call(cli, "GET", "/nodes", None)?;
            show(cli, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(node_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        NodeCmd::Set {
            name,
            source_roots,
            no_source_roots,
            restore_roots,
            default_restore_roots,
            allow_block_devices,
        } => {
            let all = call(cli, "GET", "/nodes", None)?;
            let id = all
                .as_array()
                .into_iter()
                .flatten()
                .find(|n| n["name"] == name.as_str())
                .and_then(|n| n["id"].as_i64())
                .ok_or_else(|| {
                    anyhow!("no node named {name:?} on the server (`arca node list`)")
                })?;
            let mut body = json!({});
            if !source_roots.is_empty() || *no_source_roots {
                body["source_roots"] = json!(source_roots);
            }
            if !restore_roots.is_empty() || *default_restore_roots {
                body["restore_roots"] = json!(restore_roots);
            }
            if let Some(b) = allow_block_devices {
                body["allow_block_devices"] = json!(b);
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                bail!("nothing to change: give --source-root, --restore-root, --no-source-roots, --default-restore-roots or --allow-block-devices");
            }
            let v = call(cli, "PATCH", &format!("/nodes/{id}"), Some(body))?;
            show(cli, &v, node_line)
        }
    }
}

pub fn policy(cli: &Cli, c: &PolicyCmd) -> Result<u8> {
    match c {
        PolicyCmd::Add {
            name,
            schedule,
            window,
            datastore,
            priority,
            match_pattern,
            match_tags,
            keep,
            project,
        } => {
            let v = call(
                cli,
                "POST",
                "/policies",
                Some(json!({
                    "name": name, "schedule": schedule, "window": window, "datastore": datastore,
                    "priority": priority, "match_pattern": match_pattern, "match_tags": match_tags,
                    "project": project,
                    "retention": keep.retention(),
                })),
            )?;
            show(cli, &v, |v| {
                format!(
                    "policy {} added (id {}, schedule {})",
                    v["name"], v["id"], v["schedule"]
                )
            })
        }
        PolicyCmd::List => {
            let v = call(cli, "GET", "/policies", None)?;
            show(cli, &v, |v| {
                let mut out = String::new();
                for p in v.as_array().into_iter().flatten() {
                    out += &format!(
                        "{:>4}  {:<20} {:<24} priority {}\n",
                        p["id"],
                        p["name"].as_str().unwrap_or(""),
                        p["schedule"].as_str().unwrap_or(""),
                        p["priority"]
                    );
                }
                out.trim_end().to_string()
            })
        }
    }
}

fn task_line(t: &Value) -> String {
    let progress = t["progress"]
        .as_f64()
        .map(|p| format!("{p:.0}%"))
        .unwrap_or_default();
    format!(
        "{:>6}  {:<8} {:<10} {:>5}  {}{}",
        t["id"],
        t["kind"].as_str().unwrap_or(""),
        t["state"].as_str().unwrap_or(""),
        progress,
        t["created_by"].as_str().unwrap_or(""),
        t["error"]
            .as_str()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default()
    )
}

pub fn task(cli: &Cli, c: &TaskCmd) -> Result<u8> {
    match c {
        TaskCmd::List { state, limit } => {
            let q = match state {
                Some(s) => format!("/tasks?limit={limit}&state={s}"),
                None => format!("/tasks?limit={limit}"),
            };
            let v = call(cli, "GET", &q, None)?;
            show(cli, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(task_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TaskCmd::Show { id } => {
            let t = call(cli, "GET", &format!("/tasks/{id}"), None)?;
            let logs = call(cli, "GET", &format!("/tasks/{id}/logs"), None)?;
            let v = json!({"task": t, "logs": logs});
            show(cli, &v, |v| {
                let mut out = task_line(&v["task"]);
                if !v["task"]["result"].is_null() {
                    out += &format!("\nresult: {}", v["task"]["result"]);
                }
                for l in v["logs"].as_array().into_iter().flatten() {
                    out += &format!(
                        "\n  {} {:<5} {}",
                        l["time"],
                        l["level"].as_str().unwrap_or(""),
                        l["message"].as_str().unwrap_or("")
                    );
                }
                out
            })
        }
        TaskCmd::Cancel { id } => {
            let v = call(cli, "POST", &format!("/tasks/{id}/cancel"), None)?;
            show(cli, &v, |v| format!("task {} is {}", v["id"], v["state"]))
        }
    }
}

/// The id of the source `name` among those the caller can see, in
/// `project` when given. Names are unique per project only: a name used in
/// several projects needs the project.
fn source_id(cli: &Cli, name: &str, project: Option<i64>) -> Result<i64> {
    let all = call(cli, "GET", "/sources", None)?;
    let found: Vec<(i64, i64)> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == name)
        .filter(|s| project.is_none() || s["project_id"].as_i64() == project)
        .filter_map(|s| Some((s["id"].as_i64()?, s["project_id"].as_i64()?)))
        .collect();
    match found.as_slice() {
        [(id, _)] => Ok(*id),
        [] => match project {
            Some(p) => Err(anyhow!("no source named {name:?} in project {p}")),
            None => Err(anyhow!("no source named {name:?} on the server")),
        },
        many => Err(anyhow!(
            "source name {name:?} is used in projects {}: add --project",
            many.iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Follow a task until it ends, with a progress bar on a terminal.
/// Prints the final task; exit code 0 when it succeeded, else 1.
fn follow(cli: &Cli, queued: &Value) -> Result<u8> {
    use std::sync::atomic::Ordering;
    let id = queued["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("the server answered no task id"))?;
    let p = std::sync::Arc::new(arca_ingest::Progress::default());
    let bar = crate::progress::Bar::start(&p, "task");
    let t = loop {
        let t = call(cli, "GET", &format!("/tasks/{id}"), None)?;
        p.total
            .store(t["bytes_total"].as_u64().unwrap_or(0), Ordering::Relaxed);
        p.bytes
            .store(t["bytes_done"].as_u64().unwrap_or(0), Ordering::Relaxed);
        if matches!(
            t["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    drop(bar);
    let ok = t["state"] == "succeeded";
    show(cli, &t, |t| match t["state"].as_str() {
        Some("succeeded") => format!("task {id} succeeded: {}", t["result"]),
        Some(s) => format!(
            "task {id} {s}: {}",
            t["error"].as_str().unwrap_or("(no reason)")
        ),
        None => format!("task {id}: {t}"),
    })?;
    Ok(if ok { 0 } else { 1 })
}

pub fn backup_now(cli: &Cli, source: &str, project: Option<i64>, wait: bool) -> Result<u8> {
    let id = source_id(cli, source, project)?;
    let v = call(cli, "POST", &format!("/sources/{id}/backup"), None)?;
    if wait {
        return follow(cli, &v);
    }
    show(cli, &v, |v| {
        format!("backup of {source} queued as task {}", v["id"])
    })
}

/// How `arca restore --server` asks for a restore.
pub struct RestoreTo<'a> {
    pub path: Option<&'a str>,
    pub node: Option<&'a str>,
    pub overwrite: bool,
    pub special_files: bool,
    pub wait: bool,
}

pub fn restore(cli: &Cli, rp: &str, to: &str, o: &RestoreTo) -> Result<u8> {
    let mut body = json!({"target": to, "path": o.path, "node": o.node});
    if o.overwrite {
        body["overwrite"] = json!(true);
    }
    if o.special_files {
        body["special_files"] = json!(true);
    }
    let v = call(
        cli,
        "POST",
        &format!("/restore-points/{rp}/restore"),
        Some(body),
    )?;
    if o.wait {
        return follow(cli, &v);
    }
    show(cli, &v, |v| {
        format!(
            "restore queued as task {} (follow it with `arca task show {}`)",
            v["id"], v["id"]
        )
    })
}

fn export_line(e: &Value) -> String {
    let rp = e["restore_point_id"].as_str().unwrap_or_default();
    let until = chrono::DateTime::from_timestamp(e["expires_at"].as_i64().unwrap_or(0), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    format!(
        "{:<5} {:<8} {:<6} {:<3} {:<10} {:<23} {}",
        e["id"],
        e["state"].as_str().unwrap_or_default(),
        e["protocol"].as_str().unwrap_or_default(),
        if e["writable"].as_bool() == Some(true) {
            "rw"
        } else {
            "ro"
        },
        &rp[..rp.len().min(10)],
        until,
        e["address"].as_str().or(e["error"].as_str()).unwrap_or("")
    )
}

/// `arca mount`: export, then wait (polling every 50 ms) until the node
/// serves it, and print the address.
pub fn mount(cli: &Cli, rp: &str, iscsi: bool, writable: bool, ttl: &str) -> Result<u8> {
    let protocol = if iscsi { "iscsi" } else { "nbd" };
    let mut e = call(
        cli,
        "POST",
        "/exports",
        Some(json!({"restore_point": rp, "protocol": protocol, "writable": writable, "ttl": ttl})),
    )?;
    let id = e["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no export id in the answer"))?;
    let t0 = std::time::Instant::now();
    while e["state"] == "starting" {
        if t0.elapsed() > std::time::Duration::from_secs(60) {
            bail!("export {id} is not served after 60 s: is its node online? (`arca mounts`)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        e = call(cli, "GET", &format!("/exports/{id}"), None)?;
    }
    if e["state"] != "active" {
        bail!(
            "export {id} {}: {}",
            e["state"].as_str().unwrap_or_default(),
            e["error"].as_str().unwrap_or("no reason given")
        );
    }
    show(cli, &e, |e| {
        let commands: Vec<&str> = e["commands"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!(
            "{}\nexport {id} ({}), until {} (stop it with `arca unmount {id}`){}{}",
            e["address"].as_str().unwrap_or_default(),
            if writable {
                "writable, overlay"
            } else {
                "read-only"
            },
            chrono::DateTime::from_timestamp(e["expires_at"].as_i64().unwrap_or(0), 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            match e["chap_user"].as_str() {
                Some(u) => format!(
                    "\nCHAP user {u}, secret {}",
                    e["secret"].as_str().unwrap_or_default()
                ),
                None => String::new(),
            },
            if commands.is_empty() {
                String::new()
            } else {
                format!("\nfor example:\n  {}", commands.join("\n  "))
            }
        )
    })
}

pub fn mounts(cli: &Cli, all: bool, extend: Option<i64>, ttl: Option<&str>) -> Result<u8> {
    if let Some(id) = extend {
        let ttl = ttl.ok_or_else(|| anyhow!("--extend needs --ttl"))?;
        let e = call(
            cli,
            "PATCH",
            &format!("/exports/{id}"),
            Some(json!({"ttl": ttl})),
        )?;
        return show(cli, &e, export_line);
    }
    let v = call(cli, "GET", &format!("/exports?all={all}"), None)?;
    show(cli, &v, |v| {
        let mut out = format!(
            "{:<5} {:<8} {:<6} {:<3} {:<10} {:<23} ADDRESS",
            "ID", "STATE", "PROTO", "RW", "RP", "EXPIRES"
        );
        for e in v.as_array().into_iter().flatten() {
            out.push('\n');
            out.push_str(&export_line(e));
        }
        out
    })
}

pub fn unmount(cli: &Cli, id: i64, commit: bool, wait: bool) -> Result<u8> {
    let e = call(
        cli,
        "DELETE",
        &format!("/exports/{id}?commit={commit}"),
        None,
    )?;
    if let (true, Some(t)) = (wait, e["commit_task_id"].as_i64()) {
        let task = call(cli, "GET", &format!("/tasks/{t}"), None)?;
        return follow(cli, &task);
    }
    show(cli, &e, |e| match e["commit_task_id"].as_i64() {
        Some(t) => {
            format!("export {id} stopped; task {t} commits its changes as a new restore point")
        }
        None => format!("export {id} stopped"),
    })
}
