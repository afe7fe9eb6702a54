//! `arca node`: a data-plane node working for an `arca server`.
//!
//! ```text
//! <data-dir>/datastores/default/             this node's default datastore
//! <data-dir>/datastores/default.passphrase   its passphrase (0600): back it up
//! <data-dir>/datastores/<name>/ (+ .passphrase)  more datastores, if any
//! ```
//!
//! The node registers over gRPC (the server's API port, HTTP/2; TLS when
//! the server has it), heartbeats, leases the tasks of its sources and runs
//! them with the same runner as the server's embedded node. Passphrases
//! never leave the node. When the server is unreachable it keeps retrying;
//! tasks it was running when killed are requeued by the server (on
//! re-registration, or when its heartbeats stop).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arca_control::node::{self, pb, Remote};
use arca_control::{DatastoreRef, Passphrases, Runner, Stop};
use tonic::Code;

/// The datastores under `<data_dir>/datastores/`, `default` made if missing.
fn datastores(data_dir: &Path) -> Result<(Vec<pb::DatastoreInfo>, Passphrases)> {
    crate::server::local_datastore(data_dir, "default")?;
    let mut infos = Vec::new();
    let mut pass = Passphrases::new();
    let dir = data_dir.join("datastores");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("config").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let (path, p) = crate::server::local_datastore(data_dir, &name)?;
        let path = path.display().to_string();
        pass.insert(path.clone(), p);
        infos.push(pb::DatastoreInfo { name, path });
    }
    Ok((infos, pass))
}

/// Register, retrying while the server is unreachable. A refused token
/// is an error at once. `None`: stopped before it could register.
fn register(
    rt: &tokio::runtime::Handle,
    client: &node::Client,
    max_tasks: i64,
    infos: &[pb::DatastoreInfo],
    data_dir: &str,
    stop: &Stop,
) -> Result<Option<pb::RegisterReply>> {
    let mut delay = Duration::from_secs(1);
    while !stop.is_stopped() {
        match node::register(rt, client, max_tasks, infos.to_vec(), data_dir) {
            Ok(r) => return Ok(Some(r)),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unauthenticated
                        | Code::PermissionDenied
                        | Code::InvalidArgument
                        | Code::AlreadyExists
                        | Code::FailedPrecondition
                ) =>
            {
                bail!("the server refused this node: {}", node::status_msg(s))
            }
            Err(s) => {
                tracing::warn!(
                    error = %node::status_msg(s),
                    retry_seconds = delay.as_secs(),
                    "cannot register yet; retrying"
                );
                stop.wait_timeout(delay);
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    Ok(None)
}

pub fn run(
    cli: &crate::Cli,
    data_dir: &Path,
    max_tasks: i64,
    mounts: &crate::MountArgs,
    shutdown_timeout: u64,
) -> Result<u8> {
    if !(1..=64).contains(&max_tasks) {
        bail!("--max-tasks must be between 1 and 64");
    }
    if !(1..=3600).contains(&shutdown_timeout) {
        bail!("--shutdown-timeout must be between 1 and 3600 seconds");
    }
    let shutdown_timeout = Duration::from_secs(shutdown_timeout);
    let url = cli
        .server
        .as_deref()
        .context("give the server with --server (or ARCA_SERVER)")?;
    let token = cli
        .token
        .as_deref()
        .context("give the node token with --token (or ARCA_TOKEN); an admin makes one with POST /api/v1/nodes")?;
    let ca = match &cli.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let (infos, passphrases) = datastores(data_dir)?;
    // Reported at registration: never a source; `restores/` in it is the
    // default restore root.
    let real_dir =
        std::fs::canonicalize(data_dir).with_context(|| format!("{}", data_dir.display()))?;
    arca_control::confine::make_restores_dir(&real_dir)
        .with_context(|| format!("create {}/restores", real_dir.display()))?;
    let real_dir = real_dir.display().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let h = rt.handle().clone();
    // SIGTERM and SIGINT stop the node cleanly from here on.
    let stop = Stop::new();
    {
        let _enter = rt.enter();
        arca_control::stop::on_signals(stop.clone(), "arca node", shutdown_timeout)
            .context("installing the signal handlers")?;
    }
    // tonic's TLS uses rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = {
        let _enter = rt.enter();
        node::client(url, token, ca.as_deref()).map_err(anyhow::Error::msg)?
    };
    let Some(reg) = register(&h, &client, max_tasks, &infos, &real_dir, &stop)? else {
        tracing::info!("arca node stopped");
        return Ok(0);
    };
    let passphrases_dir = data_dir.join("datastores");
    if crate::logs::json() {
        tracing::info!(
            node = %reg.node_name,
            node_id = reg.node_id,
            server = %url,
            version = env!("CARGO_PKG_VERSION"),
            "Arca node registered"
        );
        for d in &reg.datastores {
            tracing::info!(datastore = %d.name, path = %d.path, "datastore");
        }
        tracing::info!(
            passphrases_dir = %passphrases_dir.display(),
            "the datastores' passphrases are in *.passphrase files of this directory: keep a copy elsewhere"
        );
    } else {
        println!(
            "Arca node {} ({}) registered with {url} as node {}",
            reg.node_name,
            env!("CARGO_PKG_VERSION"),
            reg.node_id
        );
        for d in &reg.datastores {
            println!("datastore {} at {}", d.name, d.path);
        }
        println!(
            "the datastores' passphrases are in {}/*.passphrase: keep a copy elsewhere",
            passphrases_dir.display()
        );
    }
    let remote = Arc::new(Remote::new(h.clone(), client.clone(), reg.node_id));
    let runner = Arc::new(Runner::new(remote.clone(), passphrases));
    runner.set_holder(&format!("arca node {}", reg.node_name), url);
    let mine: Vec<DatastoreRef> = reg
        .datastores
        .iter()
        .map(|d| DatastoreRef {
            id: d.id,
            name: d.name.clone(),
            path: d.path.clone(),
        })
        .collect();
    runner.hold(&mine);
    crate::mounts::start(mounts, data_dir, &runner)?;
    let beat = Duration::from_secs(reg.heartbeat_seconds.clamp(1, 60) as u64);
    let mut last_beat = Instant::now();
    let mut tasks: Vec<std::thread::JoinHandle<()>> = Vec::new();
    while !stop.is_stopped() {
        if last_beat.elapsed() >= beat {
            match remote.heartbeat() {
                Ok(()) => last_beat = Instant::now(),
                // Marked offline (e.g. after a long outage): the server
                // has requeued what ran here. Register again.
                Err(s) if s.code() == Code::FailedPrecondition => {
                    tracing::warn!(error = %node::status_msg(s), "the server marked this node offline; registering again");
                    if register(&h, &client, max_tasks, &infos, &real_dir, &stop)?.is_none() {
                        break;
                    }
                    last_beat = Instant::now();
                }
                Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                    bail!("the server refused this node: {}", node::status_msg(s))
                }
                Err(s) => tracing::warn!(error = %node::status_msg(s), "heartbeat failed"),
            }
        }
        tasks.retain(|t| !t.is_finished());
        match runner.start_due() {
            Ok(started) => tasks.extend(started),
            Err(e) => tracing::warn!(error = %e, "leasing tasks failed"),
        }
        stop.wait_timeout(Duration::from_secs(1));
    }
    // Exports stop, running tasks are cancelled and reported to the
    // server as interrupted (their leases released), within the timeout.
    let report = runner.shutdown(shutdown_timeout);
    arca_control::stop::log_stopped("arca node", &report, shutdown_timeout);
    drop(tasks);
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(0)
}
