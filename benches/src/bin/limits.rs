//! `arca-limits`: single-thread throughput of each CPU stage of a backup on
//! this machine, on a buffer of mixed data (text, binary records,
//! incompressible bytes), and the throughput a perfect pipeline could reach.
//!
//! Stages: FastCDC 2020 chunking (256 KiB / 1 MiB / 4 MiB, as the datastore
//! default), BLAKE3 keyed hashing, zstd level 3 and AES-256-GCM, the last
//! three on 1 MiB chunks. Every figure is input bytes per second (MB = 10^6
//! bytes), best of `--reps` passes.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result};
use arca_benches::{mixed_buffer, Rng};
use clap::Parser;
use fastcdc::v2020::{FastCDC, Normalization};

const CHUNK: usize = 1 << 20;

#[derive(Parser, Debug)]
#[command(name = "arca-limits", about = "Single-stage throughput limits")]
struct Cli {
    /// Size of the test buffer in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: usize,
    /// Passes per stage; the best one counts.
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Cores for the ideal pipeline figure (default: all available).
    #[arg(long)]
    cores: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

struct Stage {
    key: &'static str,
    name: &'static str,
    mb_s: f64,
    note: String,
}

/// Best throughput of `reps` runs of `f` over `bytes` bytes.
fn measure<F: FnMut() -> Result<()>>(bytes: usize, reps: u32, mut f: F) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(bytes as f64 / best.max(1e-9) / 1e6)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let len = cli.size_mib.max(1) << 20;
    let t = Instant::now();
    let buf = mixed_buffer(cli.seed, len);
    let gen_s = t.elapsed().as_secs_f64();
    let mut stages = Vec::new();

    // FastCDC, with the datastore's parameters and normalization level.
    let mut n_chunks = 0usize;
    let mb_s = measure(len, cli.reps, || {
        let cdc = FastCDC::with_level_and_seed(
            &buf,
            256 * 1024,
            1024 * 1024,
            4 * 1024 * 1024,
            Normalization::Level1,
            0,
        );
        n_chunks = 0;
        for c in cdc {
            black_box(c.length);
            n_chunks += 1;
        }
        Ok(())
    })?;
    stages.push(Stage {
        key: "fastcdc",
        name: "FastCDC 2020 (256K/1M/4M)",
        mb_s,
        note: format!(
            "{n_chunks} chunks, avg {} KiB",
            len / n_chunks.max(1) / 1024
        ),
    });

    // BLAKE3 keyed hash (the chunk id).
    let mut key = [0u8; 32];
    Rng::new(cli.seed).fill(&mut key);
    let mb_s = measure(len, cli.reps, || {
        for c in buf.chunks(CHUNK) {
            black_box(blake3::keyed_hash(&key, c));
        }
        Ok(())
    })?;
    stages.push(Stage {
        key: "blake3",
        name: "BLAKE3 keyed hash",
        mb_s,
        note: "1 MiB chunks".into(),
    });

    // zstd level 3, one reused compressor context.
    let mut comp = zstd::bulk::Compressor::new(3).context("zstd context")?;
    let mut out = vec![0u8; zstd::zstd_safe::compress_bound(CHUNK)];
    let mut compressed = 0usize;
    let mb_s = measure(len, cli.reps, || {
        compressed = 0;
        for c in buf.chunks(CHUNK) {
            compressed += comp.compress_to_buffer(c, out.as_mut_slice())?;
        }
        Ok(())
    })?;
    let ratio = len as f64 / compressed.max(1) as f64;
    stages.push(Stage {
        key: "zstd3",
        name: "zstd level 3",
        mb_s,
        note: format!("1 MiB chunks, ratio {ratio:.2}"),
    });

    // AES-256-GCM as Arca seals blobs (random nonce, the id as AAD).
    let cipher = arca_repo::crypto::SealKey::derive(&key, &[7u8; 32]);
    let mut out = Vec::with_capacity(CHUNK + 64);
    let mb_s = measure(len, cli.reps, || {
        for c in buf.chunks(CHUNK) {
            out.clear();
            cipher.seal_into(&key, c, &mut out);
            black_box(&out);
        }
        Ok(())
    })?;
    stages.push(Stage {
        key: "aes256gcm",
        name: "AES-256-GCM",
        mb_s,
        note: "1 MiB chunks".into(),
    });

    let combined = 1.0 / stages.iter().map(|s| 1.0 / s.mb_s).sum::<f64>();
    let cores = cli
        .cores
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let ideal = combined * cores as f64;

    if cli.json {
        let mut doc = serde_json::Map::new();
        doc.insert("buffer_mib".into(), cli.size_mib.into());
        doc.insert("reps".into(), cli.reps.into());
        for s in &stages {
            doc.insert(format!("{}_mb_s", s.key), round1(s.mb_s).into());
        }
        doc.insert(
            "zstd3_ratio".into(),
            ((ratio * 1000.0).round() / 1000.0).into(),
        );
        doc.insert("combined_1core_mb_s".into(), round1(combined).into());
        doc.insert("cores".into(), cores.into());
        doc.insert("ideal_mb_s".into(), round1(ideal).into());
        println!("{}", serde_json::Value::Object(doc));
    } else {
        println!(
            "single-thread limits on {} MiB of mixed data (generated in {gen_s:.1}s), best of {}:",
            cli.size_mib, cli.reps
        );
        println!("| stage | MB/s | notes |\n|---|---:|---|");
        for s in &stages {
            println!("| {} | {:.0} | {} |", s.name, s.mb_s, s.note);
        }
        println!("| combined, 1 core: 1/Σ(1/x) | {combined:.0} | all stages on every byte |");
        println!("| ideal pipeline, {cores} cores | {ideal:.0} | {cores} × combined |");
    }
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
