//! One function per command.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arca_ingest::{files, image, restore, BackupOutcome, Progress};
use arca_repo::format::node_kind;
use arca_repo::gc::GcOptions;
use arca_repo::verify::VerifyOptions;
use arca_repo::{Datastore, Encryption, OpenOptions, Snapshot};
use serde_json::json;

use crate::progress::{steps, Bar};
use crate::{BackupArgs, BackupCmd, Cli, Command, DatastoreCmd, IndexCmd, PruneArgs, EXIT_DAMAGE};

pub(crate) fn passphrase(cli: &Cli) -> Result<Option<Vec<u8>>> {
    if let Some(f) = &cli.passphrase_file {
        let mut p =
            std::fs::read(f).with_context(|| format!("reading passphrase file {}", f.display()))?;
        while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            p.pop();
        }
        return Ok(Some(p));
    }
    Ok(std::env::var_os("ARCA_PASSPHRASE")
        .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec()))
}

fn datastore_path(cli: &Cli) -> Result<PathBuf> {
    cli.datastore
        .clone()
        .ok_or_else(|| anyhow!("no datastore given: use --datastore <PATH> or ARCA_DATASTORE"))
}

/// The image restore points of the datastore, as `arca serve` exports
/// them, and the temporary overlay directory to keep while serving.
fn serve_exports(
    cli: &Cli,
    args: &crate::ExportArgs,
) -> Result<(
    Arc<arca_frontends::DatastoreExports>,
    Option<tempfile::TempDir>,
)> {
    let ds = open(cli, true)?;
    let mut exports = arca_frontends::DatastoreExports::new(
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

fn open(cli: &Cli, read_only: bool) -> Result<Arc<Datastore>> {
    open_with(cli, read_only, false)
}

/// Open for prune and gc: works on a full file system (see
/// `arca_repo::reserve`).
fn open_for_deletion(cli: &Cli, dry_run: bool) -> Result<Arc<Datastore>> {
    open_with(cli, dry_run, !dry_run)
}

fn open_with(cli: &Cli, read_only: bool, for_deletion: bool) -> Result<Arc<Datastore>> {
    let path = datastore_path(cli)?;
    let opts = OpenOptions {
        passphrase: passphrase(cli)?,
        read_only,
        for_deletion,
        ..Default::default()
    };
    Datastore::open(&path, &opts).with_context(|| format!("opening datastore {}", path.display()))
}

/// Open for `arca index rebuild`: an index too damaged to open
/// ([`arca_repo::Error::IndexCorrupt`]) is discarded under the writer lock
/// and built from the packs; the rebuild that follows then only re-reads
/// the pack headers. Other open errors (the lock is held, no space) are
/// reported as they are.
fn open_to_rebuild_index(cli: &Cli) -> Result<Arc<Datastore>> {
    let path = datastore_path(cli)?;
    let opts = OpenOptions {
        passphrase: passphrase(cli)?,
        ..Default::default()
    };
    match Datastore::open(&path, &opts) {
        Err(arca_repo::Error::IndexCorrupt(e)) => {
            eprintln!("the index is damaged ({e}); discarding it and rebuilding it from the packs");
            Datastore::open_discarding_index(&path, &opts)
        }
        r => r,
    }
    .with_context(|| format!("opening datastore {}", path.display()))
}

fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

fn fmt_time(s: &Snapshot) -> String {
    s.time().format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Datastore(DatastoreCmd::Init {
            path,
            encryption,
            pack_size_mib,
            image_chunk_kib,
        }) => {
            let path = match path {
                Some(p) => p.clone(),
                None => datastore_path(&cli)?,
            };
            let enc: Encryption = encryption.parse()?;
            let pass = passphrase(&cli)?;
            let config = Datastore::init(&path, enc, pass.as_deref(), |c| {
                if let Some(m) = pack_size_mib {
                    c.pack_size = m.saturating_mul(1024 * 1024);
                }
                if let Some(k) = image_chunk_kib {
                    c.image_chunk_size = k.saturating_mul(1024);
                }
            })
            .with_context(|| format!("creating datastore {}", path.display()))?;
            if cli.json {
                print_json(json!({ "path": path, "id": config.id, "encryption": encryption }));
            } else {
                println!(
                    "created datastore {} (id {}, encryption {encryption})",
                    path.display(),
                    config.id
                );
            }
            Ok(0)
        }
        Command::Datastore(DatastoreCmd::Info) => {
            let ds = open(&cli, true)?;
            let packs = ds.index().packs()?;
            let stored: u64 = packs.iter().map(|(_, i)| i.size).sum();
            let snaps = ds.snapshots()?;
            let c = ds.config();
            let v = json!({
                "path": ds.root(), "id": c.id, "format_version": c.format_version,
                "encryption": c.encryption, "chunker": c.chunker, "image_chunk_size": c.image_chunk_size,
                "pack_size": c.pack_size, "packs": packs.len(), "stored_bytes": stored, "snapshots": snaps.len(),
            });
            if cli.json {
                print_json(v);
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(0)
        }
        Command::Backup(BackupCmd::Now {
            source,
            project,
            wait,
        }) => crate::client::backup_now(&cli, source, *project, *wait),
        Command::Backup(cmd) => backup(&cli, cmd),
        Command::Datastore(
            c @ (DatastoreCmd::List
            | DatastoreCmd::Gc { .. }
            | DatastoreCmd::Verify { .. }
            | DatastoreCmd::Set { .. }),
        ) => crate::client::datastore(&cli, c),
        Command::Login {
            user,
            password_file,
        } => crate::client::login(&cli, user, password_file.as_deref()),
        Command::Source(c) => crate::client::source(&cli, c),
        Command::Passwd {
            password_file,
            new_password_file,
            revoke_api_tokens,
        } => crate::accounts::passwd(
            &cli,
            password_file.as_deref(),
            new_password_file.as_deref(),
            *revoke_api_tokens,
        ),
        Command::User(c) => crate::accounts::user(&cli, c),
        Command::Catalog(crate::CatalogCmd::Import { data_dir, name }) => {
            crate::server::import(&cli, data_dir, name.as_deref())
        }
        Command::Policy(c) => crate::client::policy(&cli, c),
        Command::Token(c) => crate::tokens::token(&cli, c),
        Command::Settings(c) => crate::tokens::settings(&cli, c),
        Command::Serve(crate::ServeCmd::Nbd {
            listen,
            tls_cert,
            tls_key,
            exports,
        }) => {
            let tls = match (tls_cert, tls_key) {
                (Some(c), Some(k)) => Some(arca_frontends::nbd::tls_config(c, k)?),
                _ => None,
            };
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            let (exports, _overlays) = serve_exports(&cli, exports)?;
            let n = arca_frontends::Exports::names(exports.as_ref()).len();
            println!(
                "serving {n} export(s) {}{} over NBD on nbd://{addr}/",
                exports.mode(),
                if tls.is_some() { ", TLS required" } else { "" }
            );
            use std::io::Write as _;
            std::io::stdout().flush()?;
            arca_frontends::nbd::serve_with(listener, exports, tls)?;
            Ok(0)
        }
        Command::Serve(crate::ServeCmd::Iscsi {
            listen,
            chap_user,
            chap_secret_file,
            exports,
        }) => {
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
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            let (exports, _overlays) = serve_exports(&cli, exports)?;
            let n = arca_frontends::Exports::names(exports.as_ref()).len();
            println!(
                "serving {n} target(s) {}{} over iSCSI on iscsi://{addr}/",
                exports.mode(),
                if chap.is_some() { " with CHAP" } else { "" }
            );
            use std::io::Write as _;
            std::io::stdout().flush()?;
            let cfg = std::sync::Arc::new(arca_frontends::iscsi::IscsiConfig { chap });
            arca_frontends::iscsi::serve(listener, exports, cfg)?;
            Ok(0)
        }
        Command::Node { cmd: Some(c), .. } => crate::client::node(&cli, c),
        Command::Node {
            cmd: None,
            data_dir,
            max_tasks,
            mounts,
            shutdown_timeout,
        } => crate::node::run(&cli, data_dir, *max_tasks, mounts, *shutdown_timeout),
        Command::Task(c) => crate::client::task(&cli, c),
        Command::Mount {
            restore_point,
            nbd: _,
            iscsi,
            writable,
            ttl,
        } => crate::client::mount(&cli, restore_point, *iscsi, *writable, ttl),
        Command::Mounts { all, extend, ttl } => {
            crate::client::mounts(&cli, *all, *extend, ttl.as_deref())
        }
        Command::Unmount { id, commit, wait } => crate::client::unmount(&cli, *id, *commit, *wait),
        Command::Server {
            data_dir,
            listen,
            max_tasks,
            tls,
            tls_cert,
            tls_key,
            notify,
            node_timeout,
            mounts,
            roots,
            shutdown_timeout,
        } => {
            let tls = match (tls, tls_cert, tls_key) {
                (_, Some(c), Some(k)) => Some((c.clone(), k.clone())),
                (true, _, _) => Some(crate::server::self_signed(data_dir)?),
                _ => None,
            };
            crate::server::run(
                data_dir,
                listen,
                *max_tasks,
                tls,
                notify,
                *node_timeout,
                mounts,
                roots,
                *shutdown_timeout,
            )
        }
        Command::Snapshots { source } => {
            let ds = open(&cli, true)?;
            let (snaps, bad) = ds.snapshots_checked()?;
            let snaps: Vec<_> = snaps
                .into_iter()
                .filter(|s| source.as_ref().is_none_or(|src| &s.manifest.source == src))
                .collect();
            // Damaged snapshot files are listed whatever --source says: what
            // they belong to cannot be read.
            let damaged: Vec<(String, String, &'static str)> = bad
                .into_iter()
                .map(|(id, e)| {
                    let state = if arca_repo::datastore::is_damage(&e) {
                        "damaged"
                    } else {
                        "unreadable"
                    };
                    (id, e.to_string(), state)
                })
                .collect();
            if cli.json {
                let mut rows: Vec<_> = snaps.iter().map(snapshot_json).collect();
                rows.extend(damaged.iter().map(|(id, e, state)| {
                    json!({ "id": id, "state": state, "error": e, "source": null, "time": null })
                }));
                print_json(json!(rows));
            } else {
                println!(
                    "{:<10} {:<19} {:<6} {:>10} {:>10}  SOURCE",
                    "ID", "TIME (UTC)", "KIND", "SIZE", "ADDED"
                );
                for s in &snaps {
                    let st = s.manifest.stats.clone().unwrap_or_default();
                    println!(
                        "{:<10} {:<19} {:<6} {:>10} {:>10}  {}",
                        &s.id.to_hex()[..8],
                        fmt_time(s),
                        s.manifest.source_kind,
                        human(st.bytes_total),
                        human(st.bytes_added),
                        s.manifest.source
                    );
                }
                for (id, e, state) in &damaged {
                    println!(
                        "{:<10} {:<19} {:<6} {:>10} {:>10}  unknown ({state}: {e})",
                        &id[..id.len().min(8)],
                        "-",
                        state.to_ascii_uppercase(),
                        "-",
                        "-",
                    );
                }
                if damaged.is_empty() {
                    println!("{} snapshots", snaps.len());
                } else {
                    println!(
                        "{} snapshots, {} damaged",
                        snaps.len() + damaged.len(),
                        damaged.len()
                    );
                }
            }
            if !damaged.is_empty() {
                eprintln!(
                    "warning: {} snapshot file(s) cannot be read; `arca forget ID` removes one",
                    damaged.len()
                );
            }
            Ok(0)
        }
        Command::Forget { snapshots } => forget(&cli, snapshots),
        Command::Ls {
            snapshot,
            path,
            source,
        } => ls(&cli, snapshot, path.as_deref(), source.as_deref()),
        Command::Restore {
            snapshot,
            target,
            to,
            node,
            path,
            source: _,
            wait,
            overwrite,
            special_files,
        } if cli.server.is_some() => {
            let to = match (to, target) {
                (Some(t), _) => t.clone(),
                (None, Some(t)) => t.display().to_string(),
                (None, None) => bail!("give the path on the node with --to"),
            };
            let o = crate::client::RestoreTo {
                path: path.as_deref(),
                node: node.as_deref(),
                overwrite: *overwrite,
                special_files: *special_files,
                wait: *wait,
            };
            crate::client::restore(&cli, snapshot, &to, &o)
        }
        Command::Restore {
            snapshot,
            target,
            path,
            source,
            to,
            node,
            wait,
            overwrite,
            special_files: _,
        } => {
            if to.is_some() || node.is_some() || *wait {
                bail!("--to, --node and --wait restore through a server: give --server (or ARCA_SERVER)");
            }
            let target = target
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("give TARGET (or --server and --to)"))?;
            // The path you name, links included (restores never follow
            // links inside the target).
            let target = &match std::fs::canonicalize(target) {
                Ok(real) => real,
                Err(_) => target.clone(),
            };
            let opts = restore::RestoreOptions {
                overwrite: *overwrite,
                allow_block_devices: true,
                // With the rights of whoever runs the CLI: all of it.
                special_files: true,
            };
            let ds = open(&cli, true)?;
            let snap = resolve(&ds, snapshot, source.as_deref())?;
            let progress = Arc::new(Progress::default());
            let start = std::time::Instant::now();
            let bar = Bar::start(&progress, "restore");
            let (files, bytes, warnings) = if snap.is_image() {
                if path.is_some() {
                    bail!("--path applies to tree snapshots only");
                }
                let n = image::restore(&ds, &snap, target, &opts, &progress)?;
                (1, n, Vec::new())
            } else {
                let o = restore::restore(&ds, &snap, target, path.as_deref(), &opts, &progress)?;
                (o.files, o.bytes, o.warnings)
            };
            drop(bar);
            let secs = start.elapsed().as_secs_f64();
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            if cli.json {
                print_json(
                    json!({ "snapshot": snap.id.to_hex(), "target": target, "files": files,
                    "bytes": bytes, "duration_s": secs, "warnings": warnings }),
                );
            } else {
                println!(
                    "restored {} ({files} files, {}) to {} in {secs:.1}s",
                    &snap.id.to_hex()[..8],
                    human(bytes),
                    target.display()
                );
            }
            Ok(0)
        }
        Command::Verify { read_data_subset } => {
            let ds = open(&cli, true)?;
            let pct = match read_data_subset {
                None => 100.0,
                Some(s) => s
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        anyhow!(
                            "--read-data-subset wants a percentage between 0 and 100, got {s:?}"
                        )
                    })?,
            };
            let report = arca_repo::verify::verify(
                &ds,
                &VerifyOptions {
                    read_data_percent: pct,
                    ..Default::default()
                },
                &steps(),
            )?;
            if cli.json {
                print_json(serde_json::to_value(&report)?);
            } else {
                println!(
                    "checked {} snapshots; read {} of {} packs ({} blobs, {})",
                    report.snapshots_checked,
                    report.packs_read,
                    report.packs_total,
                    report.blobs_read,
                    human(report.bytes_read)
                );
                for p in &report.damaged_packs {
                    println!("damaged pack {p}");
                }
                for b in &report.damaged_blobs {
                    println!(
                        "damaged {} blob {} (pack {}): {}",
                        b.kind,
                        b.id,
                        if b.pack.is_empty() { "-" } else { &b.pack[..8] },
                        b.reason
                    );
                }
                for s in &report.unreadable_snapshots {
                    println!("unreadable snapshot {s}");
                }
                for a in &report.affected_snapshots {
                    println!(
                        "affected snapshot {} ({} {}): {} damaged references",
                        a.id, a.source, a.time, a.damaged_refs
                    );
                }
                if !report.unindexed_packs.is_empty() {
                    println!("{} packs are not in the index (left by an interrupted backup, or run `arca index rebuild`)", report.unindexed_packs.len());
                }
                println!(
                    "{}",
                    if report.is_clean() {
                        "no damage found"
                    } else {
                        "DAMAGE FOUND"
                    }
                );
            }
            Ok(if report.is_clean() { 0 } else { EXIT_DAMAGE })
        }
        Command::Prune(args) => prune(&cli, args),
        Command::Gc {
            grace,
            repack_threshold,
            dry_run,
        } => {
            let grace = parse_duration(grace)?;
            let ds = open_for_deletion(&cli, false)?;
            let opts = GcOptions {
                grace,
                repack_threshold: *repack_threshold,
                dry_run: *dry_run,
                ..Default::default()
            };
            let r = arca_repo::gc::gc(&ds, &opts, &steps())?;
            if cli.json {
                print_json(serde_json::to_value(&r)?);
            } else {
                println!(
                    "{}{} snapshots, {} live blobs; deleted {} packs, repacked {} ({} rewritten), freed {}; {} packs within the grace period; {} stale temporaries removed",
                    if *dry_run { "dry run: " } else { "" },
                    r.snapshots, r.live_blobs, r.packs_deleted, r.packs_repacked, human(r.bytes_rewritten),
                    human(r.bytes_freed.saturating_sub(r.bytes_rewritten)), r.packs_in_grace, r.temporaries_removed
                );
            }
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            Ok(0)
        }
        Command::Index(IndexCmd::Rebuild) => {
            let ds = open_to_rebuild_index(&cli)?;
            let s = steps();
            let r = ds.rebuild_index(&mut |d, t| s("rebuild", d as u64, t as u64))?;
            if cli.json {
                print_json(json!({ "packs": r.packs, "blobs": r.blobs,
                    "damaged_packs": r.damaged.iter().map(|(p, e)| format!("{p}: {e}")).collect::<Vec<_>>() }));
            } else {
                println!("index rebuilt: {} packs, {} blobs", r.packs, r.blobs);
                for (p, e) in &r.damaged {
                    println!("skipped damaged pack {p}: {e}");
                }
            }
            Ok(0)
        }
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("bad duration {s:?} (use e.g. 90s, 30m, 1h, 2d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("bad duration unit in {s:?} (use s, m, h or d)"),
    };
    Ok(std::time::Duration::from_secs(n * mult))
}

fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    let m = &s.manifest;
    let st = m.stats.clone().unwrap_or_default();
    json!({
        "id": s.id.to_hex(), "state": "ok", "time": s.time().to_rfc3339(), "source": m.source, "kind": m.source_kind,
        "path": m.path, "hostname": m.hostname, "tags": m.tags, "mode": m.backup_mode,
        "parent": if m.parent.is_empty() { None } else { Some(hex_of(&m.parent)) },
        "files": st.files, "bytes_total": st.bytes_total, "bytes_read": st.bytes_read, "bytes_added": st.bytes_added,
        "disks": m.disks.iter().map(|d| json!({"name": d.name, "size": d.size, "chunk_size": d.chunk_size, "holes": d.holes})).collect::<Vec<_>>(),
    })
}

/// Resolve a snapshot for reading; a damaged one says how to remove it.
fn resolve(ds: &Datastore, spec: &str, source: Option<&str>) -> Result<Snapshot> {
    ds.resolve_snapshot(spec, source).map_err(|e| match e {
        arca_repo::Error::SnapshotDamaged { id, .. } => {
            anyhow!("{e}; `arca forget {}` removes it", id.short())
        }
        e => e.into(),
    })
}

/// `arca forget ID...`: resolve every id first (damaged files included),
/// then delete them; nothing is deleted if one does not resolve.
fn forget(cli: &Cli, specs: &[String]) -> Result<u8> {
    let ds = open_for_deletion(cli, false)?;
    let mut chosen = Vec::new();
    for spec in specs {
        let r = ds
            .resolve(spec, None)
            .with_context(|| format!("forget {spec}"))?;
        if !chosen
            .iter()
            .any(|c: &arca_repo::datastore::Resolved| c.id() == r.id())
        {
            chosen.push(r);
        }
    }
    let mut removed = Vec::new();
    for r in &chosen {
        ds.delete_snapshot(&r.id())?;
        let (source, state) = match r {
            arca_repo::datastore::Resolved::Ok(s) => (Some(s.manifest.source.clone()), "ok"),
            arca_repo::datastore::Resolved::Damaged(..) => (None, "damaged"),
        };
        if !cli.json {
            println!(
                "removed snapshot {}{}",
                r.id(),
                match &source {
                    Some(s) => format!(" of {s}"),
                    None => " (damaged)".into(),
                }
            );
        }
        removed.push(json!({ "id": r.id().to_hex(), "source": source, "state": state }));
    }
    if cli.json {
        print_json(json!({ "removed": removed }));
    } else {
        println!("run `arca gc` to reclaim space");
    }
    Ok(0)
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn backup(cli: &Cli, cmd: &BackupCmd) -> Result<u8> {
    let (path, common) = match cmd {
        BackupCmd::Files { dir, common } => (dir, common),
        BackupCmd::Image { file, common, .. } => (file, common),
        BackupCmd::Now { .. } => bail!("`backup now` needs --server"),
    };
    // Start reading the tree's metadata now, overlapping the key derivation
    // and the index open; stops when dropped at the end of this function.
    let _prefetch = matches!(cmd, BackupCmd::Files { .. })
        .then(|| arca_ingest::prefetch::Prefetch::start(path));
    let ds = open(cli, false)?;
    let source = match &common.source {
        Some(s) => s.clone(),
        None => std::fs::canonicalize(path)
            .with_context(|| format!("{}", path.display()))?
            .display()
            .to_string(),
    };
    let parent = parent_for(&ds, common, &source)?;
    let progress = Arc::new(Progress::default());
    let bar = Bar::start(&progress, "backup");
    let out: BackupOutcome = match cmd {
        BackupCmd::Files { dir, .. } => {
            let opts = files::FilesOptions {
                source: source.clone(),
                parent,
                tags: common.tags.clone(),
            };
            files::backup(&ds, dir, &opts, &progress)?
        }
        BackupCmd::Image {
            file,
            changed_extents,
            ..
        } => {
            let ext = changed_extents
                .as_deref()
                .map(image::parse_extents)
                .transpose()?;
            let opts = image::ImageOptions {
                source: source.clone(),
                parent,
                changed_extents: ext,
                tags: common.tags.clone(),
            };
            image::backup(&ds, file, &opts, &progress)?
        }
        BackupCmd::Now { .. } => bail!("`backup now` needs --server"),
    };
    drop(bar);
    for w in &out.warnings {
        eprintln!("warning: skipped {w}");
    }
    if cli.json {
        print_json(json!({
            "snapshot": out.snapshot.to_hex(), "source": source, "bytes_read": out.bytes_read,
            "bytes_total": out.bytes_total, "bytes_added": out.bytes_added, "files": out.files, "dirs": out.dirs,
            "chunks_new": out.chunks_new, "duration_s": out.duration_s, "mode": out.mode, "warnings": out.warnings,
        }));
    } else {
        let rate = out.bytes_read as f64 / out.duration_s.max(1e-9) / 1e6;
        println!(
            "snapshot {} of {source}: {} files, {} total, {} read ({rate:.0} MB/s), {} added, {:.1}s\n{}",
            &out.snapshot.to_hex()[..8], out.files, human(out.bytes_total), human(out.bytes_read),
            human(out.bytes_added), out.duration_s, out.mode
        );
    }
    Ok(0)
}

fn parent_for(ds: &Datastore, a: &BackupArgs, source: &str) -> Result<Option<Snapshot>> {
    if a.no_parent {
        return Ok(None);
    }
    match &a.parent {
        Some(p) => Ok(Some(
            ds.resolve_snapshot(p, Some(source))
                .or_else(|_| ds.resolve_snapshot(p, None))?,
        )),
        None => match ds.resolve_snapshot("latest", Some(source)) {
            Ok(s) => Ok(Some(s)),
            Err(arca_repo::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

fn ls(cli: &Cli, spec: &str, path: Option<&str>, source: Option<&str>) -> Result<u8> {
    let ds = open(cli, true)?;
    let snap = resolve(&ds, spec, source)?;
    if snap.is_image() {
        let disks: Vec<_> = snap.manifest.disks.iter().map(|d| json!({"name": d.name, "size": d.size, "chunk_size": d.chunk_size, "holes": d.holes})).collect();
        if cli.json {
            print_json(json!(disks));
        } else {
            for d in &snap.manifest.disks {
                println!(
                    "disk {} {} ({} bytes, {} KiB blocks, {} holes)",
                    d.name,
                    human(d.size),
                    d.size,
                    d.chunk_size / 1024,
                    d.holes
                );
            }
        }
        return Ok(0);
    }
    let prefix = path
        .map(|p| p.trim_matches('/').as_bytes().to_vec())
        .unwrap_or_default();
    let ids: Vec<_> = snap
        .manifest
        .catalog
        .iter()
        .map(|c| arca_repo::ChunkId::from_slice(c))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut found = prefix.is_empty();
    arca_repo::catalog::for_each(&ds, &ids, &mut |e| {
        let inside = prefix.is_empty()
            || e.path == prefix
            || (e.path.starts_with(&prefix) && e.path.get(prefix.len()) == Some(&b'/'));
        if inside {
            found = true;
            rows.push(e.clone());
        }
        true
    })?;
    if !found {
        bail!(
            "no path {:?} in snapshot {}",
            path.unwrap_or(""),
            &snap.id.to_hex()[..8]
        );
    }
    if cli.json {
        print_json(json!(rows.iter().map(|e| json!({
            "path": String::from_utf8_lossy(&e.path), "kind": kind_name(e.kind), "mode": format!("{:o}", e.mode),
            "size": e.size, "mtime": chrono::DateTime::from_timestamp_nanos(e.mtime_ns).to_rfc3339(),
        })).collect::<Vec<_>>()));
    } else {
        for e in &rows {
            println!(
                "{} {:>6o} {:>12} {} {}",
                kind_name(e.kind).chars().next().unwrap_or('?'),
                e.mode,
                e.size,
                chrono::DateTime::from_timestamp_nanos(e.mtime_ns).format("%Y-%m-%d %H:%M"),
                String::from_utf8_lossy(&e.path)
            );
        }
    }
    Ok(0)
}

fn kind_name(k: u32) -> &'static str {
    match k {
        node_kind::FILE => "file",
        node_kind::DIR => "dir",
        node_kind::SYMLINK => "symlink",
        node_kind::FIFO => "fifo",
        node_kind::CHARDEV => "chardev",
        node_kind::BLOCKDEV => "blockdev",
        node_kind::SOCKET => "socket",
        _ => "unknown",
    }
}

fn prune(cli: &Cli, a: &PruneArgs) -> Result<u8> {
    let ds = open_for_deletion(cli, a.dry_run)?;
    let r = a.keep.retention();
    let snaps: Vec<_> = ds
        .snapshots()?
        .into_iter()
        .filter(|s| {
            a.source
                .as_ref()
                .is_none_or(|src| &s.manifest.source == src)
        })
        .collect();
    let plan = arca_repo::prune::plan(&snaps, &r)?;
    let removed = if a.dry_run {
        0
    } else {
        arca_repo::prune::apply(&ds, &plan)?
    };
    if cli.json {
        print_json(json!({
            "dry_run": a.dry_run, "removed": removed,
            "snapshots": plan.iter().map(|d| json!({"id": d.snapshot.id.to_hex(), "source": d.snapshot.manifest.source,
                "time": d.snapshot.time().to_rfc3339(), "keep": d.keep, "reasons": d.reasons})).collect::<Vec<_>>(),
        }));
    } else {
        for d in &plan {
            println!(
                "{} {} {} {:<30} {}",
                if d.keep {
                    "keep  "
                } else if a.dry_run {
                    "would remove"
                } else {
                    "remove"
                },
                &d.snapshot.id.to_hex()[..8],
                fmt_time(&d.snapshot),
                d.snapshot.manifest.source,
                d.reasons.join(", ")
            );
        }
        let n = plan.iter().filter(|d| !d.keep).count();
        if a.dry_run {
            println!("dry run: would remove {n} of {} snapshots", plan.len());
        } else {
            println!(
                "removed {removed} of {} snapshots; run `arca gc` to reclaim space",
                plan.len()
            );
        }
    }
    Ok(0)
}
