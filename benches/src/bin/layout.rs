//! `arca-layout`: which chunk layout should image restore points use?
//!
//! Backs up one real disk image (an ext4 file system of real files, see
//! benches/README.md) once per layout into a fresh encrypted datastore, and
//! measures for each: backup time, stored size, index entries and size,
//! then 4 KiB random reads through the frontends' `ImageReader` (the path
//! of NBD and iSCSI): with the page cache dropped and an empty frame cache
//! (cold), one reader at a time (latency p50/p99, reads/s) and from
//! `--threads` readers at once (reads/s), and again on the same offsets
//! with both caches warm; last, the whole image read in order (256 KiB
//! requests, read-ahead on) with the page cache dropped. Layouts are fixed
//! chunk sizes stored whole (blob version 1) and chunks cut into frames
//! (blob version 2). Prints a markdown table. Dropping the page cache needs root; without it the cold
//! columns are marked.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use arca_frontends::{chunk_cache, BlockSource, ImageReader};
use arca_ingest::image::{backup, ImageOptions};
use arca_ingest::Progress;
use arca_repo::{Datastore, Encryption, OpenOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "arca-layout",
    about = "image chunk layouts: size, speed, random reads"
)]
struct Cli {
    /// The disk image to back up (a real file system image).
    image: PathBuf,
    /// Where the datastores are made (one at a time, removed after).
    #[arg(long, default_value = "/var/tmp/arca-bench/layout")]
    work: PathBuf,
    /// Layouts as CHUNK_KIB or CHUNK_KIB/FRAME_KIB, comma separated, each
    /// optionally followed by @LEVEL, the zstd level of image frames
    /// (default: the datastore default).
    #[arg(
        long,
        default_value = "64,256,1024,4096,1024/16,1024/64,1024/256,4096/16,4096/64,4096/256"
    )]
    layouts: String,
    /// Random 4 KiB reads per measurement.
    #[arg(long, default_value_t = 3000)]
    reads: usize,
    /// Readers at once for the concurrent measurement.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Frame cache of the reader, MiB (the `arca serve` default).
    #[arg(long, default_value_t = 256)]
    cache_mib: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

struct Row {
    layout: String,
    backup_s: f64,
    stored: u64,
    entries: u64,
    index_bytes: u64,
    cold: Reads,
    cold_par: f64,
    warm: Reads,
    seq_mib_s: f64,
}

struct Reads {
    p50_us: f64,
    p99_us: f64,
    per_s: f64,
}

/// Write back dirty pages and drop the page cache (root only).
fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_size(&e.path()),
                Ok(m) => n += m.len(),
                Err(_) => {}
            }
        }
    }
    n
}

/// Offsets of 4 KiB reads that fall in data (not hole) blocks.
fn offsets(reader: &ImageReader, n: usize, seed: u64) -> Result<Vec<u64>> {
    let size = reader.size();
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n && tries < n * 100 {
        tries += 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % (size / 4096)) * 4096;
        if !reader.extents(off, 4096)?.iter().any(|e| e.hole) {
            out.push(off);
        }
    }
    Ok(out)
}

fn timed_reads(reader: &ImageReader, offs: &[u64]) -> Result<Reads> {
    let mut lat = Vec::with_capacity(offs.len());
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    for &o in offs {
        let t = Instant::now();
        reader.read_at(o, &mut buf)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    Ok(Reads {
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        per_s: offs.len() as f64 / total,
    })
}

fn parallel_reads(reader: &ImageReader, offs: &[u64], threads: usize) -> Result<f64> {
    let start = Instant::now();
    let per = offs.len().div_ceil(threads);
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = offs
            .chunks(per)
            .map(|part| {
                s.spawn(move || -> Result<()> {
                    let mut buf = vec![0u8; 4096];
                    for &o in part {
                        reader.read_at(o, &mut buf)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
        }
        Ok(())
    })?;
    Ok(offs.len() as f64 / start.elapsed().as_secs_f64())
}

/// Read the whole image in order, 256 KiB per request (read-ahead on);
/// MiB of image per second.
fn sequential(reader: &ImageReader) -> Result<f64> {
    let size = reader.size();
    let mut buf = vec![0u8; 256 << 10];
    let start = Instant::now();
    let mut pos = 0;
    while pos < size {
        let n = (buf.len() as u64).min(size - pos) as usize;
        reader.read_at(pos, &mut buf[..n])?;
        pos += n as u64;
    }
    Ok(size as f64 / 1048576.0 / start.elapsed().as_secs_f64())
}

fn one(cli: &Cli, chunk_kib: u32, frame_kib: u32, level: Option<i32>) -> Result<Row> {
    let path = cli.work.join("ds");
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&cli.work)?;
    Datastore::init(&path, Encryption::Repokey, Some(b"bench"), |c| {
        c.image_chunk_size = chunk_kib * 1024;
        c.image_frame_size = frame_kib * 1024;
        if level.is_some() {
            c.image_compression_level = level;
        }
    })?;
    let opts = OpenOptions {
        passphrase: Some(b"bench".to_vec()),
        ..Default::default()
    };
    let ds = Datastore::open(&path, &opts)?;
    drop_caches();
    let start = Instant::now();
    let out = backup(
        &ds,
        &cli.image,
        &ImageOptions {
            source: "disk".into(),
            ..Default::default()
        },
        &Progress::default(),
    )?;
    let backup_s = start.elapsed().as_secs_f64();
    let packs = ds.index().packs()?;
    let stored: u64 = packs.iter().map(|(_, i)| i.size).sum();
    let entries: u64 = packs.iter().map(|(_, i)| i.blobs as u64).sum();
    drop(ds);
    let index_bytes = dir_size(&path.join("index"));
    let ds = Datastore::open(
        &path,
        &OpenOptions {
            read_only: true,
            ..opts
        },
    )?;
    let snap = ds.load_snapshot(&out.snapshot)?;
    let cache = chunk_cache(cli.cache_mib << 20);
    let reader = ImageReader::open(ds.clone(), &snap, cache)?;
    let offs = offsets(&reader, cli.reads, cli.seed)?;
    drop_caches();
    let cold = timed_reads(&reader, &offs)?;
    let warm = timed_reads(&reader, &offs)?;
    drop(reader);
    // Concurrent cold reads: other offsets, a new cache, caches dropped.
    let reader = ImageReader::open(ds.clone(), &snap, chunk_cache(cli.cache_mib << 20))?;
    let offs2 = offsets(&reader, cli.reads, cli.seed + 1)?;
    drop_caches();
    let cold_par = parallel_reads(&reader, &offs2, cli.threads)?;
    drop(reader);
    let reader = ImageReader::open(ds.clone(), &snap, chunk_cache(cli.cache_mib << 20))?;
    drop_caches();
    let seq_mib_s = sequential(&reader)?;
    drop(reader);
    drop(ds);
    std::fs::remove_dir_all(&path).context("removing the datastore")?;
    let mut layout = match frame_kib {
        0 => format!("{} whole", kib(chunk_kib)),
        f => format!("{} / {} frames", kib(chunk_kib), kib(f)),
    };
    if let Some(l) = level {
        layout.push_str(&format!(", zstd {l}"));
    }
    Ok(Row {
        layout,
        backup_s,
        stored,
        entries,
        index_bytes,
        cold,
        cold_par,
        warm,
        seq_mib_s,
    })
}

fn kib(k: u32) -> String {
    if k >= 1024 {
        format!("{} MiB", k / 1024)
    } else {
        format!("{k} KiB")
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let can_drop = drop_caches();
    let size = std::fs::metadata(&cli.image)
        .with_context(|| format!("{}", cli.image.display()))?
        .len();
    println!(
        "image {} ({:.2} GiB), {} random 4 KiB reads per run, {} threads for the concurrent run, frame cache {} MiB, page cache {}",
        cli.image.display(),
        size as f64 / (1u64 << 30) as f64,
        cli.reads,
        cli.threads,
        cli.cache_mib,
        if can_drop { "dropped before cold runs" } else { "NOT dropped (not root): cold columns are warm" }
    );
    println!();
    println!("| layout | backup s | stored MiB | index entries | index MiB | cold p50 µs | cold p99 µs | cold reads/s | cold reads/s ×{} | warm p50 µs | warm p99 µs | warm reads/s | cold sequential MiB/s |", cli.threads);
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in cli.layouts.split(',') {
        let (l, level) = match l.split_once('@') {
            Some((l, v)) => (l, Some(v.trim().parse()?)),
            None => (l, None),
        };
        let (c, f) = match l.split_once('/') {
            Some((c, f)) => (c.trim().parse()?, f.trim().parse()?),
            None => (l.trim().parse()?, 0),
        };
        let r = one(&cli, c, f, level).with_context(|| format!("layout {l}"))?;
        println!(
            "| {} | {:.2} | {:.1} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
            r.layout,
            r.backup_s,
            r.stored as f64 / 1048576.0,
            r.entries,
            r.index_bytes as f64 / 1048576.0,
            r.cold.p50_us,
            r.cold.p99_us,
            r.cold.per_s,
            r.cold_par,
            r.warm.p50_us,
            r.warm.p99_us,
            r.warm.per_s,
            r.seq_mib_s,
        );
    }
    Ok(())
}
