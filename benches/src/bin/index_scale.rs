//! `arca-index-scale`: does the RocksDB chunk index keep its speed and its
//! bounded memory at tens of millions of chunks?
//!
//! Inserts `--n` random chunk ids through `Index::add_pack` in packs of
//! `--batch` ids, then looks up random present and absent ids, and reports
//! inserts/s, lookups/s, the on-disk size, the time to reopen the index and
//! the peak RSS of the process (VmHWM). Ids are derived from their ordinal
//! number, so lookups need no copy of them in memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use arca_benches::{dir_size, id_bytes, mib, proc_status_bytes, Rng};
use arca_repo::index::rocks::RocksIndex;
use arca_repo::index::{Index, Location, PackInfo};
use arca_repo::{BlobKind, ChunkId, PackId};
use clap::Parser;

const PROGRESS_EVERY: u64 = 5_000_000;

#[derive(Parser, Debug)]
#[command(name = "arca-index-scale", about = "Chunk index scale test")]
struct Cli {
    /// Number of chunk ids to insert.
    #[arg(long, default_value_t = 50_000_000)]
    n: u64,
    /// Ids per pack (one add_pack call each).
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Random lookups of present ids, and as many of absent ids.
    #[arg(long, default_value_t = 2_000_000)]
    lookups: u64,
    /// Index directory; must not exist or be empty.
    #[arg(long, default_value = "/var/tmp/arca-bench/index-scale")]
    path: PathBuf,
    /// Remove an existing index at --path first.
    #[arg(long)]
    fresh: bool,
    /// Keep the index afterwards (default: remove it).
    #[arg(long)]
    keep: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const PRESENT: u64 = 1;
const ABSENT: u64 = 2;
const PACKS: u64 = 3;
const BLOB_LEN: u64 = 700 * 1024;

fn location(seed: u64, batch: u64, i: u64) -> Location {
    let within = i % batch;
    Location {
        pack: PackId(id_bytes(seed, PACKS, i / batch)),
        offset: within * BLOB_LEN,
        length: BLOB_LEN as u32,
        raw_length: 1 << 20,
        kind: BlobKind::Data,
    }
}

/// Current RSS in bytes; also raises `peak` (VmHWM is updated lazily).
fn rss(peak: &mut u64) -> u64 {
    let r = proc_status_bytes("VmRSS").unwrap_or(0);
    *peak = (*peak).max(r);
    r
}

fn prepare(path: &Path, fresh: bool) -> Result<()> {
    if path.exists() && std::fs::read_dir(path)?.next().is_some() {
        if !fresh {
            bail!(
                "{} is not empty (pass --fresh to remove an index there)",
                path.display()
            );
        }
        ensure!(
            path.join("CURRENT").exists(),
            "{} does not look like a RocksDB directory; not removing it",
            path.display()
        );
        std::fs::remove_dir_all(path)?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.n > 0 && cli.batch > 0,
        "--n and --batch must be positive"
    );
    prepare(&cli.path, cli.fresh)?;
    let seed = cli.seed;
    println!(
        "index scale: {} ids in packs of {}, {} lookups each hit/miss, at {}",
        cli.n,
        cli.batch,
        cli.lookups,
        cli.path.display()
    );

    let idx = RocksIndex::open(&cli.path, &Default::default())?;
    let start = Instant::now();
    let mut last = (start, 0u64);
    let mut blobs: Vec<(ChunkId, Location)> = Vec::with_capacity(cli.batch as usize);
    let mut next_progress = PROGRESS_EVERY;
    let mut peak = 0u64;
    let mut i = 0u64;
    while i < cli.n {
        let end = (i + cli.batch).min(cli.n);
        blobs.clear();
        blobs.extend((i..end).map(|j| {
            (
                ChunkId(id_bytes(seed, PRESENT, j)),
                location(seed, cli.batch, j),
            )
        }));
        let pack = blobs[0].1.pack;
        let info = PackInfo {
            size: (end - i) * BLOB_LEN,
            blobs: (end - i) as u32,
        };
        idx.add_pack(&pack, info, &blobs)?;
        i = end;
        if i >= next_progress || i == cli.n {
            next_progress += PROGRESS_EVERY;
            let now = Instant::now();
            let total_s = now.duration_since(start).as_secs_f64();
            let step_s = now.duration_since(last.0).as_secs_f64();
            println!(
                "  {i:>11} ids  {total_s:>7.1}s  {:>9.0}/s overall  {:>9.0}/s recent  RSS {} MiB  disk {} MiB",
                i as f64 / total_s.max(1e-9),
                (i - last.1) as f64 / step_s.max(1e-9),
                mib(rss(&mut peak)),
                mib(dir_size(&cli.path)?)
            );
            last = (now, i);
        }
    }
    idx.sync()?;
    let insert_s = start.elapsed().as_secs_f64();
    let inserts = cli.n as f64 / insert_s.max(1e-9);
    let disk_after_insert = dir_size(&cli.path)?;

    // Present ids, in random order.
    let mut rng = Rng::derive(seed, 77);
    let t = Instant::now();
    for _ in 0..cli.lookups {
        let j = rng.below(cli.n);
        let got = idx.get(&ChunkId(id_bytes(seed, PRESENT, j)))?;
        ensure!(
            got == Some(location(seed, cli.batch, j)),
            "wrong or missing entry for id #{j}"
        );
    }
    let hit_s = t.elapsed().as_secs_f64();

    // Absent ids.
    let t = Instant::now();
    for k in 0..cli.lookups {
        let got = idx.get(&ChunkId(id_bytes(seed, ABSENT, k)))?;
        ensure!(got.is_none(), "absent id #{k} found");
    }
    let miss_s = t.elapsed().as_secs_f64();
    rss(&mut peak);
    drop(idx);

    // Reopening must not load the whole index.
    let t = Instant::now();
    let idx = RocksIndex::open(&cli.path, &Default::default())?;
    let open_s = t.elapsed().as_secs_f64();
    let probe = idx.get(&ChunkId(id_bytes(seed, PRESENT, cli.n / 2)))?;
    ensure!(probe.is_some(), "id missing after reopening");
    drop(idx);

    let disk = dir_size(&cli.path)?;
    rss(&mut peak);
    let peak = peak.max(proc_status_bytes("VmHWM").unwrap_or(0));
    let per_s = |s: f64| cli.lookups as f64 / s.max(1e-9);
    println!("\n| metric | value |\n|---|---:|");
    println!("| ids inserted | {} |", cli.n);
    println!(
        "| inserts/s (add_pack, {} per pack) | {inserts:.0} |",
        cli.batch
    );
    println!("| lookups/s, present ids | {:.0} |", per_s(hit_s));
    println!("| lookups/s, absent ids | {:.0} |", per_s(miss_s));
    println!("| reopen time (s) | {open_s:.2} |");
    println!(
        "| on-disk size after inserts (MiB) | {} |",
        mib(disk_after_insert)
    );
    println!("| on-disk size at end (MiB) | {} |", mib(disk));
    println!(
        "| on-disk bytes per id | {:.1} |",
        disk as f64 / cli.n as f64
    );
    println!("| peak RSS (MiB, VmHWM) | {} |", mib(peak));

    if !cli.keep {
        std::fs::remove_dir_all(&cli.path)
            .with_context(|| format!("removing {}", cli.path.display()))?;
    }
    Ok(())
}
