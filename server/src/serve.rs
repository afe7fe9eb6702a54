//! `arca server`: the all-in-one control plane (REST API, scheduler, node
//! service) with an embedded node and a default datastore under one data
//! directory (see [`crate::datadir`]). Stops cleanly on SIGTERM or SIGINT
//! (docs/control-plane.md, Shutdown).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arca_catalog::Catalog;
use arca_node::exports::Listeners;
use arca_node::serve::MountConfig;
use arca_node::{DatastoreRef, Runner, Stop};

use crate::datadir::{prepare, set_roots, Roots};
use crate::{Local, Notifier};

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// Address of the API (and of the node service).
    pub listen: String,
    /// Tasks the embedded node runs at once.
    pub max_tasks: i64,
    /// HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    pub notifier: Notifier,
    /// Seconds without a heartbeat after which a remote node is offline.
    pub node_timeout: i64,
    pub mounts: MountConfig,
    pub roots: Roots,
    /// How long a shutdown may take before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Address of the S3 gateway (None: off).
    pub s3_listen: Option<String>,
}

/// The server is about to serve: what the caller shows.
pub struct Ready<'a> {
    pub url: &'a str,
    pub data_dir: &'a Path,
    pub tls_cert: Option<&'a Path>,
    /// The first admin's password, on first start only.
    pub admin_password: Option<&'a str>,
    /// The default datastore's passphrase file.
    pub passphrase_file: &'a Path,
    pub catalog: &'a Catalog,
    /// The embedded node.
    pub node_id: arca_catalog::NodeId,
    /// The S3 gateway's address (None: off).
    pub s3_url: Option<&'a str>,
}

/// What the caller shows while the server starts.
pub trait Announce {
    /// Listening, before anything is served.
    fn ready(&self, r: &Ready<'_>) -> Result<()>;
    /// The embedded node's export servers.
    fn exports(&self, listeners: &Listeners);
}

/// Check the configuration, then serve until SIGTERM or SIGINT and stop
/// cleanly (errors before serving are returned).
pub fn run(cfg: &ServerConfig, announce: &dyn Announce) -> Result<()> {
    if !(1..=3600).contains(&cfg.shutdown_timeout.as_secs()) {
        anyhow::bail!("--shutdown-timeout must be between 1 and 3600 seconds");
    }
    if !(3..=3600).contains(&cfg.node_timeout) {
        anyhow::bail!("--node-timeout must be between 3 and 3600 seconds");
    }
    if !(1..=64).contains(&cfg.max_tasks) {
        anyhow::bail!("--max-tasks must be between 1 and 64");
    }
    if let Some(smtp) = &cfg.notifier.smtp {
        if smtp.to.is_empty() {
            anyhow::bail!("--smtp-server needs at least one --notify-email");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let r = rt.block_on(serve(cfg.clone(), announce));
    // Blocking work still queued (a notification's delivery) is not
    // waited for: the shutdown's deadline has passed or everything ended.
    rt.shutdown_timeout(Duration::from_millis(500));
    r
}

async fn serve(cfg: ServerConfig, announce: &dyn Announce) -> Result<()> {
    let shutdown_timeout = cfg.shutdown_timeout;
    let data_dir = cfg.data_dir.clone();
    // SIGTERM and SIGINT stop the server cleanly from here on.
    let stop = Stop::new();
    arca_node::stop::on_signals(stop.clone(), "arca server", shutdown_timeout)
        .context("installing the signal handlers")?;
    // Opening the catalog may hash the first admin password (Argon2):
    // not on the async workers.
    // The address first: a busy port fails before anything is created.
    let listener = std::net::TcpListener::bind(&cfg.listen)
        .with_context(|| format!("listening on {}", cfg.listen))?;
    listener.set_nonblocking(true)?;
    let s3_listener = match &cfg.s3_listen {
        Some(a) => {
            let l = std::net::TcpListener::bind(a)
                .with_context(|| format!("listening for S3 on {a}"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let s3_url = match &s3_listener {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };
    let dd = data_dir.clone();
    let max_tasks = cfg.max_tasks;
    let p = tokio::task::spawn_blocking(move || prepare(&dd, max_tasks))
        .await
        .context("preparing the data directory")??;
    set_roots(&p.catalog, p.node_id, &cfg.roots)?;
    let addr = listener.local_addr()?;
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    let passphrase_file = data_dir.join("datastores/default.passphrase");
    announce.ready(&Ready {
        url: &url,
        data_dir: &data_dir,
        tls_cert: cfg.tls.as_ref().map(|(c, _)| c.as_path()),
        admin_password: p.admin_password.as_deref(),
        passphrase_file: &passphrase_file,
        catalog: &p.catalog,
        node_id: p.node_id,
        s3_url: s3_url.as_deref(),
    })?;
    let notifier = Arc::new(cfg.notifier.clone());
    let mut state = arca_web::AppState::new(p.catalog.clone());
    state.secure_cookies = cfg.tls.is_some();
    // Hypervisors' SSH keys at rest, sealed like S3 secrets under a key
    // file of their own.
    let credentials = Arc::new(
        arca_web::s3_secrets::SecretBox::open_or_create(&data_dir.join("credentials.key"))
            .context("the credentials key file")?,
    );
    // A rotation a crash interrupted: finished or discarded, by whether
    // the catalog's secrets open with the new key.
    let sample = p
        .catalog
        .a_sealed_hypervisor_key()?
        .map(|(project, name, sealed)| (arca_web::inventory::key_aad(project, &name), sealed));
    if let Some(m) = credentials
        .finish_rotation(sample)
        .context("the credentials key file")?
    {
        tracing::warn!(target: "arca::keys", "{m}");
    }
    let state = state.with_hypervisors(
        credentials.clone(),
        Arc::new(crate::inventory::LibvirtInventory),
    );
    let local = Local::new(p.catalog.clone(), p.node_id)
        .with_notifier(notifier.clone())
        .with_credentials(Some(credentials.clone()));
    let runner = Arc::new(Runner::new(Arc::new(local), p.passphrases));
    runner.set_holder("arca server", &url);
    let mine: Vec<DatastoreRef> = p
        .catalog
        .datastores()?
        .into_iter()
        .filter(|d| d.node_id == p.node_id)
        .map(|d| DatastoreRef {
            id: d.id,
            name: d.name,
            path: d.path,
        })
        .collect();
    runner.hold(&mine);
    // Questions for remote nodes: asked by the REST API, taken and
    // answered by the nodes over gRPC.
    let queries = Arc::new(crate::queries::Queries::new());
    let state = state.with_browse(Arc::new(
        crate::browse::NodeBrowse::new(p.catalog.clone(), p.node_id, runner.clone())
            .with_queries(queries.clone()),
    ));
    let secrets = Arc::new(
        arca_web::s3_secrets::SecretBox::open_or_create(&data_dir.join("s3-keys.key"))
            .context("the S3 key file")?,
    );
    let sample = p
        .catalog
        .a_sealed_s3_secret()?
        .map(|(id, sealed)| (id.into_bytes(), sealed));
    if let Some(m) = secrets.finish_rotation(sample).context("the S3 key file")? {
        tracing::warn!(target: "arca::keys", "{m}");
    }
    let state = state.with_s3(secrets.clone(), s3_url.clone());
    let s3 = match (s3_listener, &state.browse) {
        (Some(l), Some(browse)) => {
            let backend = Arc::new(crate::s3::ServerS3::new(
                p.catalog.clone(),
                browse.clone(),
                secrets,
            ));
            let l = tokio::net::TcpListener::from_std(l)?;
            Some(tokio::spawn(arca_s3::serve(l, backend)))
        }
        _ => None,
    };
    let listeners = arca_node::serve::start(&cfg.mounts, &data_dir, &runner)?;
    announce.exports(&listeners);
    let scheduler = tokio::spawn(crate::workers::scheduler(
        p.catalog.clone(),
        runner.clone(),
        state.changed.clone(),
        notifier.clone(),
        cfg.node_timeout,
        stop.clone(),
    ));
    // Nodes speak gRPC (HTTP/2) on the same port as the API.
    let nodes =
        crate::service::NodeService::new(p.catalog.clone(), notifier, state.changed.clone())
            .with_node_timeout(cfg.node_timeout)
            .with_queries(queries)
            .with_credentials(credentials);
    // Agents push disk backups into the embedded node's datastores, on
    // the same port too (docs/vm-ingest.md, "Agent").
    let agents = crate::agent::AgentService::new(p.catalog.clone(), runner.clone(), p.node_id);
    let agent_keeper = tokio::spawn(agents.clone().keep(stop.clone()));
    let app = arca_web::app(state)
        .route_service(
            &format!("{}{{*call}}", arca_proto::SERVICE_PATH),
            nodes.into_server(),
        )
        .route_service(
            &format!("{}{{*call}}", arca_proto::AGENT_SERVICE_PATH),
            agents.into_server(),
        )
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let mut http = match &cfg.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading {} and {}", cert.display(), key.display()))?;
            tokio::spawn(
                axum_server::from_tcp_rustls(listener, config)
                    .map(|a| a.acceptor(axum_server::accept::NoDelayAcceptor::new()))
                    .handle(handle.clone())
                    .serve(app),
            )
        }
        None => tokio::spawn(
            // TCP_NODELAY: a response's headers and its streamed body go
            // out as separate writes; with Nagle's algorithm each small
            // download on a kept-alive connection waited for the client's
            // delayed ACK (about 40 ms).
            axum_server::from_tcp(listener)
                .acceptor(axum_server::accept::NoDelayAcceptor::new())
                .handle(handle.clone())
                .serve(app),
        ),
    };
    tokio::select! {
        r = &mut http => {
            // The server ended by itself: an error (the port is gone).
            r.context("serving")?.context("serving")?;
            return Ok(());
        }
        _ = stop.stopped() => {}
    }
    if let Some(s3) = s3 {
        s3.abort();
    }
    agent_keeper.abort();
    shutdown(handle, http, scheduler, runner, shutdown_timeout).await;
    Ok(())
}

/// Stop accepting (requests in flight get until the deadline), stop the
/// scheduler, exports and tasks, then return: within `timeout` unless a
/// step overruns it, and then the rest is not waited for.
async fn shutdown(
    handle: axum_server::Handle,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    scheduler: tokio::task::JoinHandle<()>,
    runner: Arc<Runner>,
    timeout: Duration,
) {
    let end = tokio::time::Instant::now() + timeout;
    handle.graceful_shutdown(Some(timeout));
    // The scheduler leases nothing after its current step.
    let _ = tokio::time::timeout_at(end, scheduler).await;
    let left = end.saturating_duration_since(tokio::time::Instant::now());
    let r = runner.clone();
    let report = tokio::task::spawn_blocking(move || r.shutdown(left))
        .await
        .unwrap_or_default();
    // Requests in flight end, or their connections are closed at the
    // deadline.
    let _ = tokio::time::timeout_at(end, http).await;
    arca_node::stop::log_stopped("arca server", &report, timeout);
}
