//! `arca serve nbd` and `arca serve iscsi`: the datastore's image restore
//! points over a block protocol, from the command line; and the TLS
//! certificate of `arca server`; `arca serve s3` and `arca serve nfs`:
//! every restore point's files over S3 and NFSv3, read-only.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arca_frontends::DatastoreExports;

use super::shared::open;
use crate::{Cli, ExportArgs};

/// The image restore points of the datastore, as `arca serve` exports
/// them, and the temporary overlay directory to keep while serving.
fn serve_exports(
    cli: &Cli,
    args: &ExportArgs,
) -> Result<(Arc<DatastoreExports>, Option<tempfile::TempDir>)> {
    let ds = open(cli, true)?;
    let mut exports = DatastoreExports::new(
        ds,
        arca_frontends::chunk_cache(args.cache_mib.saturating_mul(1 << 20)),
    );
    let mut tmp = None;
    if args.writable {
        let dir = match &args.overlay_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                d.clone()
            }
            None => {
                let t = tempfile::Builder::new().prefix("arca-overlay-").tempdir()?;
                let p = t.path().to_path_buf();
                tmp = Some(t);
                p
            }
        };
        exports = exports.writable(dir);
    }
    Ok((Arc::new(exports), tmp))
}

/// What `arca serve` has set up before it says so: the listener and its
/// address, the exports and how many there are, and the temporary overlay
/// directory to keep while serving.
struct Serving {
    listener: TcpListener,
    addr: SocketAddr,
    exports: Arc<DatastoreExports>,
    count: usize,
    _overlays: Option<tempfile::TempDir>,
}

/// Listen on `listen`, then open the exports.
fn start(cli: &Cli, listen: &str, args: &ExportArgs) -> Result<Serving> {
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let (exports, _overlays) = serve_exports(cli, args)?;
    let count = arca_frontends::Exports::names(exports.as_ref()).len();
    Ok(Serving {
        listener,
        addr,
        exports,
        count,
        _overlays,
    })
}

/// Print the line that says what is served where, at once (scripts and
/// tests read the address from it).
fn announce(line: &str) -> Result<()> {
    println!("{line}");
    std::io::stdout().flush()?;
    Ok(())
}

/// glibc malloc arenas `arca serve` allows (`M_ARENA_MAX`).
///
/// glibc gives threads their own arenas (up to 8 per core) and a freed
/// block returns to the arena it came from, for reuse by that arena's
/// threads only. A server whose connection, worker and read-ahead
/// threads come and go decodes frames in one arena and evicts them into
/// another: each arena then keeps up to a cache's worth of free memory.
/// Measured with `--cache-mib 512` on a 1 GiB image: peak RSS 1,042 MiB
/// with glibc's default, 544 MiB with one arena (IOPS within the noise of
/// a shared machine).
/// See docs/frontends.md ("Memory").
pub(crate) const MALLOC_ARENAS: i32 = 1;

/// Bound glibc's malloc arenas to [`MALLOC_ARENAS`] for `arca serve`,
/// unless `MALLOC_ARENA_MAX` is set in the environment (glibc has then
/// applied it). Call first thing in `main`, before any thread starts.
#[allow(unsafe_code)]
pub(crate) fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX with a
    // positive value is valid, and no other thread allocates yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// `arca serve nbd`.
pub(super) fn nbd(
    cli: &Cli,
    listen: &str,
    tls_cert: &Option<PathBuf>,
    tls_key: &Option<PathBuf>,
    exports: &ExportArgs,
) -> Result<u8> {
    let tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some(arca_frontends::nbd::tls_config(c, k)?),
        _ => None,
    };
    let s = start(cli, listen, exports)?;
    announce(&format!(
        "serving {} export(s) {}{} over NBD on nbd://{}/",
        s.count,
        s.exports.mode(),
        if tls.is_some() { ", TLS required" } else { "" },
        s.addr
    ))?;
    arca_frontends::nbd::serve_with(s.listener, s.exports, tls)?;
    Ok(0)
}

/// `arca serve iscsi`.
pub(super) fn iscsi(
    cli: &Cli,
    listen: &str,
    chap_user: &Option<String>,
    chap_secret_file: &Option<PathBuf>,
    exports: &ExportArgs,
) -> Result<u8> {
    let chap = match (chap_user, chap_secret_file) {
        (Some(u), Some(f)) => {
            let secret = std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string();
            if secret.is_empty() {
                bail!("{} is empty", f.display());
            }
            Some((u.clone(), secret))
        }
        _ => None,
    };
    let s = start(cli, listen, exports)?;
    announce(&format!(
        "serving {} target(s) {}{} over iSCSI on iscsi://{}/",
        s.count,
        s.exports.mode(),
        if chap.is_some() { " with CHAP" } else { "" },
        s.addr
    ))?;
    let cfg = Arc::new(arca_frontends::iscsi::IscsiConfig { chap });
    arca_frontends::iscsi::serve(s.listener, s.exports, cfg)?;
    Ok(0)
}

/// `arca serve s3`: the datastore's sources as read-only buckets, for
/// the key pair in `ARCA_S3_ACCESS_KEY` / `ARCA_S3_SECRET_KEY`.
pub(super) fn s3(cli: &Cli, listen: &str, cache_mib: u64) -> Result<u8> {
    let key = |name: &str| -> Result<String> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => bail!("{name} is not set: arca serve s3 needs ARCA_S3_ACCESS_KEY and ARCA_S3_SECRET_KEY (the one key pair clients sign with)"),
        }
    };
    let access_key = key("ARCA_S3_ACCESS_KEY")?;
    let secret = key("ARCA_S3_SECRET_KEY")?;
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let ds = open(cli, true)?;
    let trees = Arc::new(arca_frontends::tree::Trees::new(
        arca_frontends::chunk_cache(cache_mib.saturating_mul(1 << 20)),
        64,
    ));
    let backend = Arc::new(arca_s3::local::LocalBackend::new(
        ds,
        trees,
        &access_key,
        &secret,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        announce(&format!(
            "serving the datastore's sources as read-only S3 buckets on http://{addr}/"
        ))?;
        arca_s3::serve(listener, backend).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}

/// Where `arca serve nfs` keeps its handle ids unless told.
fn default_nfs_state() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state"),
            None => bail!("neither XDG_STATE_HOME nor HOME is set: give --state-dir"),
        },
    };
    Ok(base.join("arca/nfs"))
}

/// `arca serve nfs`.
pub(super) fn nfs(
    cli: &Cli,
    listen: &str,
    allow: &[String],
    state_dir: Option<&Path>,
    cache_mib: u64,
) -> Result<u8> {
    let allow = if allow.is_empty() {
        arca_nfs::default_allow()
    } else {
        allow
            .iter()
            .map(|a| arca_nfs::Cidr::parse(a).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?
    };
    let state = match state_dir {
        Some(d) => d.to_path_buf(),
        None => default_nfs_state()?,
    };
    let table = arca_nfs::HandleTable::open(&state)
        .with_context(|| format!("NFS state directory {}", state.display()))?;
    let ds = open(cli, true)?;
    let count = ds.snapshots()?.len();
    let trees = Arc::new(arca_frontends::tree::Trees::new(
        arca_frontends::chunk_cache(cache_mib.saturating_mul(1 << 20)),
        64,
    ));
    let ns = Arc::new(arca_nfs::DatastoreNamespace::new(ds, trees, allow.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let allowed: Vec<String> = allow.iter().map(|c| c.to_string()).collect();
        announce(&format!(
            "serving {count} restore point(s) read-only over NFSv3 to {} on {}",
            allowed.join(", "),
            arca_nfs::url(addr, "/")
        ))?;
        let server = Arc::new(arca_nfs::NfsServer::new(ns, Arc::new(table)));
        server.serve(listener).await?;
        Ok(0)
    })
}

/// The certificate and key `arca server` serves HTTPS with: the ones
/// given, or with `--tls` alone a self-signed one in the data directory.
pub(super) fn server_tls(
    data_dir: &Path,
    tls: bool,
    tls_cert: &Option<PathBuf>,
    tls_key: &Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>> {
    Ok(match (tls, tls_cert, tls_key) {
        (_, Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (true, _, _) => Some(crate::server::self_signed(data_dir)?),
        _ => None,
    })
}
