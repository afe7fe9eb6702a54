//! `arca server`: arguments in, arca-server's `serve` run, its banner
//! out (text lines, or records with `--log-format json`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use arca_catalog::Catalog;
use arca_node::exports::Listeners;
use arca_repo::Datastore;
use arca_server::serve::{Announce, Ready, ServerConfig};

struct Banner;

impl Announce for Banner {
    fn ready(&self, r: &Ready<'_>) -> Result<()> {
        let version = env!("CARGO_PKG_VERSION");
        if crate::logs::json() {
            tracing::info!(version, url = %r.url, "Arca server {version} listening on {}", r.url);
            if let Some(cert) = &r.tls_cert {
                tracing::info!(tls_certificate = %cert.display(), "TLS certificate");
            }
            tracing::info!(data_dir = %r.data_dir.display(), "data directory");
            if let Some(s3) = r.s3_url {
                tracing::info!(s3_endpoint = %s3, "S3 gateway (read-only) on {s3}");
            }
            if let Some(pw) = &r.admin_password {
                tracing::info!(
                    user = "admin",
                    password = %pw,
                    password_file = %r.data_dir.join("initial-admin-password").display(),
                    "first start: created user \"admin\"; change its password after signing in"
                );
            }
            tracing::info!(
                passphrase_file = %r.passphrase_file.display(),
                "the default datastore's passphrase is in this file: keep a copy elsewhere, the backups cannot be read without it"
            );
        } else {
            println!("Arca server {version} listening on {}", r.url);
            if let Some(cert) = &r.tls_cert {
                println!("TLS certificate: {}", cert.display());
            }
            println!("data directory: {}", r.data_dir.display());
            if let Some(s3) = r.s3_url {
                println!("S3 gateway (read-only) on {s3}");
            }
            if let Some(pw) = &r.admin_password {
                println!("first start: created user \"admin\" with password {pw}");
                println!(
                    "(also written to {}; change it after signing in)",
                    r.data_dir.join("initial-admin-password").display()
                );
            }
            println!(
                "the default datastore's passphrase is in {}: keep a copy elsewhere, the backups cannot be read without it",
                r.passphrase_file.display()
            );
        }
        print_confinement(r.catalog, r.node_id)
    }

    fn exports(&self, listeners: &Listeners) {
        crate::mounts::announce(listeners);
    }
}

/// Tell where the built-in node reads sources and writes restores.
fn print_confinement(catalog: &Catalog, node_id: arca_catalog::NodeId) -> Result<()> {
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
    let passphrase = crate::secrets::passphrase(cli)?;
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
    let n = arca_server::import_datastore(&catalog, &ds, rec.id)?;
    if cli.json {
        /// What `arca --json catalog import` prints.
        #[derive(serde::Serialize)]
        struct Imported<'a> {
            datastore: &'a str,
            imported: usize,
        }
        let out = Imported {
            datastore: &rec.name,
            imported: n,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "imported {n} restore point(s) of datastore {} ({})",
            rec.name, abs_s
        );
    }
    Ok(0)
}

/// The self-signed certificate under `<data-dir>/tls/`, made on first use.
pub fn self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    arca_server::datadir::self_signed(data_dir)
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
    s3_listen: &str,
) -> Result<u8> {
    if n.smtp_server.is_some() && n.notify_email.is_empty() {
        anyhow::bail!("--smtp-server needs at least one --notify-email");
    }
    let cfg = ServerConfig {
        data_dir: data_dir.to_path_buf(),
        listen: listen.to_string(),
        max_tasks,
        tls,
        notifier: arca_server::Notifier {
            webhook: n.webhook.clone(),
            smtp: n.smtp_server.clone().map(|server| arca_server::SmtpConfig {
                server,
                from: n.smtp_from.clone(),
                to: n.notify_email.clone(),
            }),
        },
        node_timeout,
        mounts: crate::mounts::config(mounts),
        roots: arca_server::datadir::Roots {
            source_roots: roots.source_roots.clone(),
            restore_roots: roots.restore_roots.clone(),
        },
        shutdown_timeout: Duration::from_secs(shutdown_timeout),
        s3_listen: (s3_listen != "off").then(|| s3_listen.to_string()),
    };
    arca_server::serve::run(&cfg, &Banner)?;
    Ok(0)
}
