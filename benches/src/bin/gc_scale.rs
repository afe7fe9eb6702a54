//! `arca-gc-scale`: does gc keep its memory flat at 100 M chunk ids?
//!
//! Builds a real datastore (RocksDB index, real snapshots and image tables)
//! whose data chunks are simulated: `--n` chunk ids of `--blob-kib` stored
//! bytes each (100 M × 11 KiB ≈ 1 TiB) are entered in the index, in packs
//! that exist as sparse files of their full size. `--snapshots` image
//! snapshots each reference half of the ids through real ImageTable blobs,
//! sliding so that the oldest snapshot alone holds the first ids. The oldest
//! snapshot is then forgotten, as retention would, and gc runs with no grace
//! period: it walks every table, sweeps the whole index twice and deletes the
//! packs that only the forgotten snapshot used. The bench prints the gc time
//! per phase and the peak RSS of gc alone (VmHWM reset before it starts), and
//! checks that exactly the expected ids and packs are gone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use arca_benches::{id_bytes, mib, proc_status_bytes};
use arca_repo::format::{Disk, Manifest};
use arca_repo::gc::{gc, GcOptions};
use arca_repo::image::{encode_table_blob, IDS_PER_BLOB};
use arca_repo::index::{Location, PackInfo};
use arca_repo::{pack, BlobKind, ChunkId, Datastore, Encryption, OpenOptions, PackId};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arca-gc-scale", about = "gc time and memory at scale")]
struct Cli {
    /// Number of data chunk ids.
    #[arg(long, default_value_t = 100_000_000)]
    n: u64,
    /// Stored size of each simulated chunk, KiB.
    #[arg(long, default_value_t = 11)]
    blob_kib: u64,
    /// Ids per simulated pack (must divide the table size, 32768).
    #[arg(long, default_value_t = 2048)]
    pack_ids: u64,
    /// Image snapshots, each referencing half of the ids.
    #[arg(long, default_value_t = 10)]
    snapshots: u64,
    /// gc's in-memory live-id buffer (ids); the default is gc's own.
    #[arg(long)]
    buffer_ids: Option<usize>,
    /// Datastore directory; must not exist (or pass --fresh).
    #[arg(long, default_value = "/var/tmp/arca-bench/gc-scale")]
    path: PathBuf,
    #[arg(long)]
    fresh: bool,
    /// Keep the datastore afterwards.
    #[arg(long)]
    keep: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const DATA: u64 = 11;
const PACKS: u64 = 12;

fn prepare(path: &Path, fresh: bool) -> Result<()> {
    if path.exists() {
        if !fresh {
            bail!("{} exists (pass --fresh to remove it)", path.display());
        }
        ensure!(
            path.join("config").exists() || std::fs::read_dir(path)?.next().is_none(),
            "{} does not look like a datastore; not removing it",
            path.display()
        );
        std::fs::remove_dir_all(path)?;
    }
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    Ok(())
}

fn peak_rss() -> u64 {
    proc_status_bytes("VmHWM").unwrap_or(0)
}

/// Reset VmHWM so that the peak measured is gc's own.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let t = IDS_PER_BLOB as u64;
    ensure!(
        cli.n > 0 && cli.snapshots >= 2,
        "need --n > 0 and --snapshots >= 2"
    );
    ensure!(
        cli.pack_ids > 0 && t.is_multiple_of(cli.pack_ids),
        "--pack-ids must divide {t}"
    );
    prepare(&cli.path, cli.fresh)?;
    let blob_len = cli.blob_kib * 1024;
    let tables = cli.n.div_ceil(t);
    let window = tables.div_ceil(2);
    let shift = (tables - window) / (cli.snapshots - 1);
    ensure!(shift > 0, "--n too small for {} snapshots", cli.snapshots);
    println!(
        "gc scale: {} chunk ids × {} KiB = {} stored, packs of {} ids, {} tables, {} snapshots of {} tables (shift {})",
        cli.n,
        cli.blob_kib,
        mib(cli.n * blob_len),
        cli.pack_ids,
        tables,
        cli.snapshots,
        window,
        shift
    );

    Datastore::init(&cli.path, Encryption::Repokey, Some(b"bench"), |_| {})?;
    let opts = OpenOptions {
        passphrase: Some(b"bench".to_vec()),
        ..Default::default()
    };
    let ds = Datastore::open(&cli.path, &opts)?;

    // Simulated data: index entries and sparse packs.
    let start = Instant::now();
    let mut blobs = Vec::with_capacity(cli.pack_ids as usize);
    let mut packs = 0u64;
    let mut i = 0u64;
    while i < cli.n {
        let end = (i + cli.pack_ids).min(cli.n);
        let p = PackId(id_bytes(cli.seed, PACKS, packs));
        blobs.clear();
        blobs.extend((i..end).map(|j| {
            (
                ChunkId(id_bytes(cli.seed, DATA, j)),
                Location {
                    pack: p,
                    offset: (j - i) * blob_len,
                    length: blob_len as u32,
                    raw_length: (blob_len * 2) as u32,
                    kind: BlobKind::Data,
                },
            )
        }));
        let size = (end - i) * blob_len;
        let file = cli.path.join(pack::object_name(&p));
        if let Some(d) = file.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size))
            .with_context(|| format!("creating {}", file.display()))?;
        ds.index().add_pack(
            &p,
            PackInfo {
                size,
                blobs: (end - i) as u32,
            },
            &blobs,
        )?;
        packs += 1;
        i = end;
        if packs.is_multiple_of(5000) {
            println!("  {i} ids indexed ({:.0} s)", start.elapsed().as_secs_f64());
        }
    }
    ds.index().sync()?;
    let t_index = start.elapsed();

    // Real tables and snapshots.
    let start = Instant::now();
    let session = ds.begin_session()?;
    let mut table_ids = Vec::with_capacity(tables as usize);
    let mut ids = Vec::with_capacity(t as usize);
    for k in 0..tables {
        ids.clear();
        ids.extend((k * t..((k + 1) * t).min(cli.n)).map(|j| ChunkId(id_bytes(cli.seed, DATA, j))));
        table_ids.push(session.store(BlobKind::ImageTable, &encode_table_blob(&ids))?);
    }
    let manifest = |s: u64| {
        let first = s * shift;
        let last = (first + window).min(tables);
        let blocks = (last * t).min(cli.n) - first * t;
        Manifest {
            source_kind: "image".into(),
            source: "gc-scale".into(),
            time_ns: 1_700_000_000_000_000_000 + s as i64,
            disks: vec![Disk {
                name: "disk".into(),
                size: blocks * 8192,
                chunk_size: 8192,
                table: table_ids[first as usize..last as usize]
                    .iter()
                    .map(|id| id.0.to_vec())
                    .collect(),
                holes: 0,
                ..Default::default()
            }],
            ..Default::default()
        }
    };
    let oldest = session.commit(manifest(0))?;
    for s in 1..cli.snapshots {
        ds.write_snapshot(&manifest(s))?;
    }
    let t_tables = start.elapsed();
    ds.delete_snapshot(&oldest)?;
    // Live: the ids of tables [shift, (snapshots - 1) * shift + window).
    let live_from = shift * t;
    let live_to = (((cli.snapshots - 1) * shift + window) * t).min(cli.n);
    let dead_ids = cli.n - (live_to - live_from);
    let dead_packs = live_from / cli.pack_ids + (cli.n - live_to) / cli.pack_ids;
    println!(
        "setup: index {:.0} s, tables and snapshots {:.0} s; forgot the oldest snapshot: {} ids, {} packs to go",
        t_index.as_secs_f64(),
        t_tables.as_secs_f64(),
        dead_ids,
        dead_packs
    );
    let before_rss = proc_status_bytes("VmRSS").unwrap_or(0);
    let reset = reset_peak();

    let mut gopts = GcOptions {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    };
    if let Some(b) = cli.buffer_ids {
        gopts.live_buffer_ids = b;
    }
    let start = Instant::now();
    let phases = std::cell::RefCell::new(Vec::<(String, f64)>::new());
    let report = gc(&ds, &gopts, &|phase, _, _| {
        let mut p = phases.borrow_mut();
        if p.last().is_none_or(|(name, _)| name != phase) {
            p.push((phase.to_string(), start.elapsed().as_secs_f64()));
        }
    })?;
    let t_gc = start.elapsed().as_secs_f64();
    let peak = peak_rss();

    let mut data_left = 0u64;
    ds.index().for_each_blob(&mut |_, loc| {
        data_left += u64::from(loc.kind == BlobKind::Data);
        Ok(())
    })?;
    ensure!(
        data_left == live_to - live_from,
        "gc left {data_left} data ids, expected {}",
        live_to - live_from
    );
    ensure!(
        report.packs_deleted >= dead_packs,
        "gc deleted {} packs, expected at least {dead_packs}",
        report.packs_deleted
    );

    let phase_list: Vec<String> = phases
        .borrow()
        .iter()
        .map(|(n, t)| format!("{n}@{t:.0}s"))
        .collect();
    println!();
    println!("| chunk ids | stored MiB | live-id buffer | gc time | phases | peak RSS of gc, MiB | RSS before gc, MiB | packs deleted | packs repacked | live blobs |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} ids | {:.1} s | {} | {}{} | {} | {} | {} | {} |",
        cli.n,
        mib(cli.n * blob_len),
        gopts.live_buffer_ids,
        t_gc,
        phase_list.join(" "),
        mib(peak),
        if reset { "" } else { " (process peak)" },
        mib(before_rss),
        report.packs_deleted,
        report.packs_repacked,
        report.live_blobs
    );
    drop(ds);
    if !cli.keep {
        std::fs::remove_dir_all(&cli.path)?;
    }
    Ok(())
}
