//! `arca server`'s data directory.
//!
//! ```text
//! <data-dir>/catalog.db                  SQLite catalog (WAL)
//! <data-dir>/datastores/default/         the default datastore (repokey)
//! <data-dir>/datastores/default.passphrase   its passphrase (0600): back it up
//! <data-dir>/initial-admin-password      the first admin password (0600)
//! <data-dir>/tls/                        the self-signed certificate of --tls
//! ```
//!
//! A restart keeps everything: it reopens the catalog and the datastore,
//! requeues (or fails, without attempts left) the tasks that were running,
//! and the scheduler continues from the catalog's record of queued slots.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arca_catalog::{AuditResult, Catalog, NodeId, Role, RoleBinding};
use arca_node::datadir::{hostname, local_datastore, write_secret};
use arca_node::Passphrases;

/// `--source-root`/`--restore-root` of the built-in node: replaced when
/// given (absolute; relative ones are taken from the current directory).
#[derive(Clone, Debug, Default)]
pub struct Roots {
    pub source_roots: Vec<PathBuf>,
    pub restore_roots: Vec<PathBuf>,
}

pub struct Prepared {
    pub catalog: Arc<Catalog>,
    pub node_id: NodeId,
    pub passphrases: Passphrases,
    /// Set on first start only.
    pub admin_password: Option<String>,
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
pub fn set_roots(catalog: &Catalog, node_id: NodeId, roots: &Roots) -> Result<()> {
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
        AuditResult::Ok,
        &format!(
            "from the command line: source_roots {:?}, restore_roots {:?}",
            node.source_roots, node.restore_roots
        ),
    )?;
    Ok(())
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
