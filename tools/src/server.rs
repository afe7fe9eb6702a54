//! `arca server`: the all-in-one control plane with an embedded node and a
//! default datastore under one data directory.
//!
//! ```text
//! <data-dir>/catalog.db                  SQLite catalog (WAL)
//! <data-dir>/datastores/default/         the default datastore (repokey)
//! <data-dir>/datastores/default.passphrase   its passphrase (0600): back it up
//! <data-dir>/initial-admin-password      the first admin password (0600)
//! ```
//!
//! A restart keeps everything: it reopens the catalog and the datastore,
//! requeues (or fails, without attempts left) the tasks that were running,
//! and the scheduler continues from the catalog's record of queued slots.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arca_catalog::{Catalog, Role, RoleBinding};
use arca_control::{DatastoreRef, Local, Passphrases, Runner, Stop};
use arca_repo::{Datastore, Encryption};

fn write_secret(path: &Path, content: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn hostname() -> String {
    nix_hostname().unwrap_or_else(|| "local".into())
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub struct Prepared {
    pub catalog: Arc<Catalog>,
    pub node_id: i64,
    pub passphrases: Passphrases,
    /// Set on first start only.
    pub admin_password: Option<String>,
}

/// The datastore `<data_dir>/datastores/<name>`, made on first use with a
/// random passphrase in `<data_dir>/datastores/<name>.passphrase` (0600).
/// Returns its absolute path and passphrase.
pub fn local_datastore(data_dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir.join("datastores"))
        .with_context(|| format!("create {}", data_dir.display()))?;
    let ds_dir = data_dir.join("datastores").join(name);
    let pass_file = data_dir.join(format!("datastores/{name}.passphrase"));
    let pass = match std::fs::read_to_string(&pass_file) {
        Ok(p) => p.trim().to_string(),
        Err(_) if !ds_dir.join("config").exists() => {
            let p = arca_web::auth::random_password() + &arca_web::auth::random_password();
            write_secret(&pass_file, &p)?;
            p
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "datastore {} exists but its passphrase file {} cannot be read",
                    ds_dir.display(),
                    pass_file.display()
                )
            })
        }
    };
    if !ds_dir.join("config").exists() {
        Datastore::init(&ds_dir, Encryption::Repokey, Some(pass.as_bytes()), |_| {})
            .with_context(|| format!("creating datastore {}", ds_dir.display()))?;
    }
    Ok((std::fs::canonicalize(&ds_dir)?, pass))
}

/// Create or reopen everything under `data_dir`.
pub fn prepare(data_dir: &Path, max_tasks: i64) -> Result<Prepared> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir.join("datastores"))
        .with_context(|| format!("create {}", data_dir.display()))?;
    let catalog =
        Arc::new(Catalog::open(&data_dir.join("catalog.db")).context("opening the catalog")?);
    // The catalog holds password and token hashes: owner only.
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(data_dir.join(f), std::fs::Permissions::from_mode(0o600));
    }
    let node = catalog.upsert_node(&hostname(), true, max_tasks, env!("CARGO_PKG_VERSION"))?;
    // Never a source; `restores/` in it is the default restore root.
    let real_dir = std::fs::canonicalize(data_dir)?;
    arca_control::confine::make_restores_dir(&real_dir)
        .with_context(|| format!("create {}/restores", real_dir.display()))?;
    catalog.set_node_data_dir(node.id, &real_dir.display().to_string())?;

    let (abs, _) = local_datastore(data_dir, "default")?;
    if catalog.datastore_by_name("default")?.is_none() {
        catalog.add_datastore("default", node.id, &abs.display().to_string())?;
    }
    let mut passphrases = Passphrases::new();
    for d in catalog
        .datastores()?
        .into_iter()
        .filter(|d| d.node_id == node.id)
    {
        let f = data_dir.join(format!("datastores/{}.passphrase", d.name));
        if let Ok(p) = std::fs::read_to_string(&f) {
            passphrases.insert(d.path.clone(), p.trim().to_string());
        }
    }

    let mut admin_password = None;
    if catalog.users()?.is_empty() {
        let pw = arca_web::auth::random_password();
        let hash = arca_web::auth::hash_password(&pw).map_err(|e| anyhow::anyhow!(e.message))?;
        catalog.add_user(
            "admin",
            &hash,
            &[RoleBinding {
                role: Role::Admin,
                project_id: None,
            }],
        )?;
        let f = data_dir.join("initial-admin-password");
        let _ = std::fs::remove_file(&f);
        write_secret(&f, &format!("{pw}\n"))?;
        admin_password = Some(pw);
    }
    // Tasks that ran when the server stopped did not finish.
    let requeued = catalog.expire_leases(
        arca_catalog::now(),
        &[node.id],
        "the server stopped while the task ran",
    )?;
    if !requeued.is_empty() {
        tracing::warn!(
            tasks = requeued.len(),
            "requeued or failed interrupted tasks"
        );
    }
    Ok(Prepared {
        catalog,
        node_id: node.id,
        passphrases,
        admin_password,
    })
}

/// `--source-root`/`--restore-root`: the built-in node's roots, replaced
/// when given (absolute; relative ones are taken from the current
/// directory), and audited.
fn set_roots(catalog: &Catalog, node_id: i64, roots: &crate::RootArgs) -> Result<()> {
    use arca_control::confine::check_roots;
    let abs = |dirs: &[PathBuf]| -> Result<Vec<String>> {
        dirs.iter()
            .map(|d| {
                let a = std::fs::canonicalize(d)
                    .or_else(|_| std::env::current_dir().map(|c| c.join(d)))?;
                Ok(a.display().to_string())
            })
            .collect()
    };
    let change = arca_catalog::NodeConfinement {
        source_roots: match roots.source_roots.as_slice() {
            [] => None,
            r => Some(check_roots("--source-root", &abs(r)?).map_err(anyhow::Error::msg)?),
        },
        restore_roots: match roots.restore_roots.as_slice() {
            [] => None,
            r => Some(check_roots("--restore-root", &abs(r)?).map_err(anyhow::Error::msg)?),
        },
        allow_block_devices: None,
    };
    if change == arca_catalog::NodeConfinement::default() {
        return Ok(());
    }
    let node = catalog.set_node_confinement(node_id, &change)?;
    catalog.audit(
        "arca server",
        "node.set",
        &node.name,
        "",
        "ok",
        &format!(
            "from the command line: source_roots {:?}, restore_roots {:?}",
            node.source_roots, node.restore_roots
        ),
    )?;
    Ok(())
}

/// Tell where the built-in node reads sources and writes restores.
fn print_confinement(catalog: &Catalog, node_id: i64) -> Result<()> {
    let c = arca_control::confine::Confinement::load(catalog, node_id)?;
    let show = |r: &[String]| {
        if r.is_empty() {
            "none".to_string()
        } else {
            r.join(", ")
        }
    };
    if crate::logs::json() {
        tracing::info!(
            node = %c.node,
            source_roots = %show(&c.source_roots),
            restore_roots = %show(&c.restore_roots()),
            "node confinement"
        );
    } else {
        println!(
            "node {}: sources under {}; restores under {}{}",
            c.node,
            show(&c.source_roots),
            show(&c.restore_roots()),
            if c.source_roots.is_empty() {
                " (no source can be added until an admin sets source roots: --source-root, or `arca node set`)"
            } else {
                ""
            }
        );
    }
    // Sources from before confinement (or whose roots were narrowed) fail
    // their backups on the node: say so now rather than at the next backup.
    let outside: Vec<String> = catalog
        .sources()?
        .into_iter()
        .filter(|s| s.node_id == node_id && c.check_source(&s.path).is_err())
        .map(|s| format!("{} ({})", s.name, s.path))
        .collect();
    if !outside.is_empty() && crate::logs::json() {
        tracing::warn!(
            node = %c.node,
            sources = %outside.join(", "),
            "sources outside the node's source roots will not be backed up until an admin adds roots"
        );
    } else if !outside.is_empty() {
        println!(
            "warning: {} source(s) of node {} are outside its source roots and will not be backed up until an admin adds roots: {}",
            outside.len(),
            c.node,
            outside.join(", ")
        );
    }
    Ok(())
}

/// `arca catalog import`: list a datastore's snapshots in a server's
/// catalog. Safe while the server runs (SQLite WAL).
pub fn import(cli: &crate::Cli, data_dir: &Path, name: Option<&str>) -> Result<u8> {
    let ds_path = cli.datastore.as_deref().ok_or_else(|| {
        anyhow::anyhow!("give the datastore with --datastore (or ARCA_DATASTORE)")
    })?;
    let abs = std::fs::canonicalize(ds_path).with_context(|| format!("{}", ds_path.display()))?;
    let name = match name {
        Some(n) => n.to_string(),
        None => abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".into()),
    };
    let passphrase = crate::commands::passphrase(cli)?;
    let ds = Datastore::open(
        &abs,
        &arca_repo::OpenOptions {
            passphrase,
            read_only: true,
            ..Default::default()
        },
    )
    .with_context(|| format!("opening datastore {}", abs.display()))?;
    let catalog = Catalog::open(&data_dir.join("catalog.db")).context("opening the catalog")?;
    let abs_s = abs.display().to_string();
    let rec = match catalog.datastores()?.into_iter().find(|d| d.path == abs_s) {
        Some(d) => d,
        None => {
            let node = catalog
                .nodes()?
                .into_iter()
                .find(|n| n.embedded)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "the catalog has no embedded node; start `arca server` once first"
                    )
                })?;
            catalog.add_datastore(&name, node.id, &abs_s)?
        }
    };
    let n = arca_control::import_datastore(&catalog, &ds, rec.id)?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"datastore": rec.name, "imported": n})
        );
    } else {
        println!(
            "imported {n} restore point(s) of datastore {} ({})",
            rec.name, abs_s
        );
    }
    Ok(0)
}

/// The self-signed certificate under `<data-dir>/tls/`, made on first use
/// for localhost, 127.0.0.1, ::1 and this host's name.
pub fn self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        hostname(),
    ];
    let ck =
        rcgen::generate_simple_self_signed(names).context("making a self-signed certificate")?;
    let _ = std::fs::remove_file(&key);
    write_secret(&key, &ck.key_pair.serialize_pem())?;
    std::fs::write(&cert, ck.cert.pem()).with_context(|| format!("write {}", cert.display()))?;
    Ok((cert, key))
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    data_dir: &Path,
    listen: &str,
    max_tasks: i64,
    tls: Option<(PathBuf, PathBuf)>,
    n: &crate::NotifyArgs,
    node_timeout: i64,
    mounts: &crate::MountArgs,
    roots: &crate::RootArgs,
    shutdown_timeout: u64,
) -> Result<u8> {
    if !(1..=3600).contains(&shutdown_timeout) {
        anyhow::bail!("--shutdown-timeout must be between 1 and 3600 seconds");
    }
    if !(3..=3600).contains(&node_timeout) {
        anyhow::bail!("--node-timeout must be between 3 and 3600 seconds");
    }
    if !(1..=64).contains(&max_tasks) {
        anyhow::bail!("--max-tasks must be between 1 and 64");
    }
    if n.smtp_server.is_some() && n.notify_email.is_empty() {
        anyhow::bail!("--smtp-server needs at least one --notify-email");
    }
    let notifier = Arc::new(arca_control::Notifier {
        webhook: n.webhook.clone(),
        smtp: n
            .smtp_server
            .clone()
            .map(|server| arca_control::SmtpConfig {
                server,
                from: n.smtp_from.clone(),
                to: n.notify_email.clone(),
            }),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let r = rt.block_on(serve(
        data_dir.to_path_buf(),
        listen.to_string(),
        max_tasks,
        tls,
        notifier,
        node_timeout,
        mounts.clone(),
        roots.clone(),
        Duration::from_secs(shutdown_timeout),
    ));
    // Blocking work still queued (a notification's delivery) is not
    // waited for: the shutdown's deadline has passed or everything ended.
    rt.shutdown_timeout(Duration::from_millis(500));
    r
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    data_dir: PathBuf,
    listen: String,
    max_tasks: i64,
    tls: Option<(PathBuf, PathBuf)>,
    notifier: Arc<arca_control::Notifier>,
    node_timeout: i64,
    mounts: crate::MountArgs,
    roots: crate::RootArgs,
    shutdown_timeout: Duration,
) -> Result<u8> {
    // SIGTERM and SIGINT stop the server cleanly from here on.
    let stop = Stop::new();
    arca_control::stop::on_signals(stop.clone(), "arca server", shutdown_timeout)
        .context("installing the signal handlers")?;
    // Opening the catalog may hash the first admin password (Argon2):
    // not on the async workers.
    let dd = data_dir.clone();
    let p = tokio::task::spawn_blocking(move || prepare(&dd, max_tasks))
        .await
        .context("preparing the data directory")??;
    set_roots(&p.catalog, p.node_id, &roots)?;
    let listener =
        std::net::TcpListener::bind(&listen).with_context(|| format!("listening on {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let version = env!("CARGO_PKG_VERSION");
    let url = format!("{scheme}://{addr}");
    let passphrase_file = data_dir.join("datastores/default.passphrase");
    if crate::logs::json() {
        tracing::info!(version, url = %url, "Arca server {version} listening on {url}");
        if let Some((cert, _)) = &tls {
            tracing::info!(tls_certificate = %cert.display(), "TLS certificate");
        }
        tracing::info!(data_dir = %data_dir.display(), "data directory");
        if let Some(pw) = &p.admin_password {
            tracing::info!(
                user = "admin",
                password = %pw,
                password_file = %data_dir.join("initial-admin-password").display(),
                "first start: created user \"admin\"; change its password after signing in"
            );
        }
        tracing::info!(
            passphrase_file = %passphrase_file.display(),
            "the default datastore's passphrase is in this file: keep a copy elsewhere, the backups cannot be read without it"
        );
    } else {
        println!("Arca server {version} listening on {url}");
        if let Some((cert, _)) = &tls {
            println!("TLS certificate: {}", cert.display());
        }
        println!("data directory: {}", data_dir.display());
        if let Some(pw) = &p.admin_password {
            println!("first start: created user \"admin\" with password {pw}");
            println!(
                "(also written to {}; change it after signing in)",
                data_dir.join("initial-admin-password").display()
            );
        }
        println!(
            "the default datastore's passphrase is in {}: keep a copy elsewhere, the backups cannot be read without it",
            passphrase_file.display()
        );
    }
    print_confinement(&p.catalog, p.node_id)?;
    let state = arca_web::AppState::new(p.catalog.clone());
    let local = Local::new(p.catalog.clone(), p.node_id).with_notifier(notifier.clone());
    let runner = Arc::new(Runner::new(Arc::new(local), p.passphrases));
    runner.set_holder("arca server", &format!("{scheme}://{addr}"));
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
    crate::mounts::start(&mounts, &data_dir, &runner)?;
    let scheduler = tokio::spawn(scheduler(
        p.catalog.clone(),
        runner.clone(),
        state.changed.clone(),
        notifier.clone(),
        node_timeout,
        stop.clone(),
    ));
    // Nodes speak gRPC (HTTP/2) on the same port as the API.
    let nodes =
        arca_control::node::NodeService::new(p.catalog.clone(), notifier, state.changed.clone())
            .with_node_timeout(node_timeout);
    let app = arca_web::app(state)
        .route_service(
            &format!("{}{{*call}}", arca_control::node::SERVICE_PATH),
            nodes.into_server(),
        )
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let mut http = match tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| format!("loading {} and {}", cert.display(), key.display()))?;
            tokio::spawn(
                axum_server::from_tcp_rustls(listener, config)
                    .handle(handle.clone())
                    .serve(app),
            )
        }
        None => tokio::spawn(
            axum_server::from_tcp(listener)
                .handle(handle.clone())
                .serve(app),
        ),
    };
    tokio::select! {
        r = &mut http => {
            // The server ended by itself: an error (the port is gone).
            r.context("serving")?.context("serving")?;
            return Ok(0);
        }
        _ = stop.stopped() => {}
    }
    shutdown(handle, http, scheduler, runner, shutdown_timeout).await;
    Ok(0)
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
    arca_control::stop::log_stopped("arca server", &report, timeout);
}

/// Once a second, or when the API changed something: re-evaluate rule
/// assignments (at least once a minute), queue due slots, expire leases of
/// lost nodes, and start what the embedded node may run.
async fn scheduler(
    catalog: Arc<Catalog>,
    runner: Arc<Runner>,
    changed: Arc<tokio::sync::Notify>,
    notifier: Arc<arca_control::Notifier>,
    node_timeout: i64,
    stop: Stop,
) {
    let mut last_assign = 0;
    // Sources already reported as missing their RPO (reported once per miss).
    let mut missed = std::collections::HashSet::new();
    while !stop.is_stopped() {
        let now = arca_catalog::now();
        let step = || -> Result<()> {
            if now - last_assign >= 60 {
                arca_control::assign_policies(&catalog)?;
            }
            arca_control::schedule_due(&catalog, now)?;
            arca_control::maintenance::schedule_maintenance(&catalog, now)?;
            let offline = catalog.mark_stale_nodes_offline(now - node_timeout)?;
            for id in &offline {
                tracing::warn!(
                    target: "arca::node",
                    node_id = *id,
                    timeout_s = node_timeout,
                    "node offline: it missed its heartbeats"
                );
            }
            let expired = catalog.expire_leases(
                now,
                &offline,
                "the node missed its heartbeats; lease expired",
            )?;
            if !expired.is_empty() {
                tracing::warn!(
                    tasks = expired.len(),
                    "requeued or failed the tasks of offline nodes"
                );
            }
            catalog.expire_exports(now)?;
            catalog.heartbeat(runner.coord.node_id())?;
            runner.start_due().map_err(anyhow::Error::msg)?;
            Ok(())
        };
        if !notifier.is_empty() {
            match arca_control::rpo_misses(&catalog, now) {
                Ok(misses) => {
                    let now_missed: std::collections::HashSet<i64> =
                        misses.iter().map(|(s, _, _)| s.id).collect();
                    for (s, p, newest) in misses {
                        if missed.contains(&s.id) {
                            continue;
                        }
                        let n = notifier.clone();
                        let s_name = s.name.clone();
                        let subject = format!(
                            "arca: source {} missed its RPO of {} s (policy {})",
                            s.name,
                            p.rpo_seconds.unwrap_or(0),
                            p.name
                        );
                        let body = serde_json::json!({"source": s, "policy": p, "newest_restore_point": newest});
                        tokio::task::spawn_blocking(move || {
                            for line in n.send("source.rpo_missed", &subject, &body) {
                                tracing::warn!(source = %s_name, "{line}");
                            }
                        });
                    }
                    missed = now_missed;
                }
                Err(e) => tracing::error!(error = %e, "rpo check failed"),
            }
        }
        match step() {
            Ok(()) => {
                if now - last_assign >= 60 {
                    last_assign = now;
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "scheduler step failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = changed.notified() => {}
            _ = stop.stopped() => {}
        }
    }
}
