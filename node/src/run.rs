//! `arca node`: a data-plane node working for an `arca server`.
//!
//! The node registers over gRPC (the server's API port, HTTP/2; TLS when
//! the server has it), heartbeats, leases the tasks of its sources and runs
//! them with the same runner as the server's embedded node. Passphrases
//! never leave the node. When the server is unreachable it keeps retrying;
//! tasks it was running when killed are requeued by the server (on
//! re-registration, or when its heartbeats stop). On SIGTERM or SIGINT it
//! stops cleanly (docs/control-plane.md, Shutdown).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arca_proto::{pb, DatastoreRef};
use tonic::Code;

use crate::exports::Listeners;
use crate::remote::{self, Remote};
use crate::serve::MountConfig;
use crate::{Runner, Stop};

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The server's URL (http:// or https://).
    pub server: String,
    /// The node token (`POST /api/v1/nodes`).
    pub token: String,
    /// A PEM certificate to trust for an https:// server.
    pub ca_pem: Option<Vec<u8>>,
    pub data_dir: PathBuf,
    pub max_tasks: i64,
    /// How long a shutdown may take before the process exits anyway.
    pub shutdown_timeout: Duration,
    pub mounts: MountConfig,
}

/// What the caller shows: the registration, then the export servers.
pub trait Announce {
    fn registered(&self, reg: &pb::RegisterReply);
    fn exports(&self, listeners: &Listeners);
}

/// Register, retrying while the server is unreachable. A refused token
/// is an error at once. `None`: stopped before it could register.
fn register(
    rt: &tokio::runtime::Handle,
    client: &remote::Client,
    max_tasks: i64,
    infos: &[pb::DatastoreInfo],
    data_dir: &str,
    stop: &Stop,
) -> Result<Option<pb::RegisterReply>> {
    let mut delay = Duration::from_secs(1);
    while !stop.is_stopped() {
        match remote::register(rt, client, max_tasks, infos.to_vec(), data_dir) {
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
                bail!("the server refused this node: {}", remote::status_msg(s))
            }
            Err(s) => {
                tracing::warn!(
                    error = %remote::status_msg(s),
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

/// Run the node until SIGTERM or SIGINT; then stop cleanly and return.
pub fn run(cfg: &NodeConfig, announce: &dyn Announce) -> Result<()> {
    if !(1..=64).contains(&cfg.max_tasks) {
        bail!("--max-tasks must be between 1 and 64");
    }
    let timeout = cfg.shutdown_timeout;
    if !(1..=3600).contains(&timeout.as_secs()) {
        bail!("--shutdown-timeout must be between 1 and 3600 seconds");
    }
    let data_dir = &cfg.data_dir;
    let (infos, passphrases) = crate::datadir::datastores(data_dir)?;
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
        crate::stop::on_signals(stop.clone(), "arca node", timeout)
            .context("installing the signal handlers")?;
    }
    let client = {
        let _enter = rt.enter();
        remote::client(&cfg.server, &cfg.token, cfg.ca_pem.as_deref())
            .map_err(anyhow::Error::msg)?
    };
    let max_tasks = cfg.max_tasks;
    let Some(reg) = register(&h, &client, max_tasks, &infos, &real_dir, &stop)? else {
        tracing::info!("arca node stopped");
        return Ok(());
    };
    announce.registered(&reg);
    let remote = Arc::new(Remote::new(
        h.clone(),
        client.clone(),
        arca_catalog::NodeId(reg.node_id),
    ));
    let runner = Arc::new(Runner::new(remote.clone(), passphrases));
    runner.set_holder(&format!("arca node {}", reg.node_name), &cfg.server);
    let mine: Vec<DatastoreRef> = reg
        .datastores
        .iter()
        .map(|d| DatastoreRef {
            id: arca_catalog::DatastoreId(d.id),
            name: d.name.clone(),
            path: d.path.clone(),
        })
        .collect();
    runner.hold(&mine);
    // The server's queries (browsing this node's datastores), until the
    // stop signal.
    h.spawn(crate::queries::run(
        client.clone(),
        Arc::new(mine),
        runner.clone(),
        stop.clone(),
    ));
    let listeners = crate::serve::start(&cfg.mounts, data_dir, &runner)?;
    announce.exports(&listeners);
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
                    tracing::warn!(error = %remote::status_msg(s), "the server marked this node offline; registering again");
                    if register(&h, &client, max_tasks, &infos, &real_dir, &stop)?.is_none() {
                        break;
                    }
                    last_beat = Instant::now();
                }
                Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                    bail!("the server refused this node: {}", remote::status_msg(s))
                }
                Err(s) => tracing::warn!(error = %remote::status_msg(s), "heartbeat failed"),
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
    let report = runner.shutdown(timeout);
    // Offline at once on the server, not after missed heartbeats.
    match remote.leave(Duration::from_secs(5)) {
        Ok(()) => tracing::info!("told the server this node stops"),
        Err(s) => {
            tracing::warn!(error = %remote::status_msg(s), "could not tell the server this node stops")
        }
    }
    crate::stop::log_stopped("arca node", &report, timeout);
    drop(tasks);
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}
