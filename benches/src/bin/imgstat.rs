//! `arca-imgstat`: where do the stored bytes of a disk image go?
//!
//! Reads one raw disk image in fixed chunks (1 MiB by default, all-zero
//! chunks are holes as in `arca image backup`) and reports, without a
//! datastore:
//! - zero 4 KiB blocks inside data chunks and frames that are all zero;
//! - duplicate content that fixed chunks cannot dedup: unique 4 KiB and
//!   64 KiB blocks (aligned) against unique chunks;
//! - the stored size of the unique chunks encoded as the datastore would
//!   (blob version 1 whole or version 2 frames, `arca_repo::blob::encode`
//!   and `arca_repo::frame::encode`) for each zstd level and frame size,
//!   with the encoding CPU time of this thread; encrypted sizes (28 bytes
//!   of nonce and tag per sealed piece);
//! - with `--cdc`, what content-defined chunking of the image (the repo's
//!   chunker) would dedup and store at the first level.
//!
//! Prints markdown tables.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arca_repo::chunker::Chunker;
use arca_repo::config::ChunkerParams;
use arca_repo::frame::MacKey;
use arca_repo::{blob, frame, BlobKind, ChunkId};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arca-imgstat", about = "where the stored bytes of an image go")]
struct Cli {
    /// The raw disk image.
    image: PathBuf,
    /// Fixed chunk size, KiB.
    #[arg(long, default_value_t = 1024)]
    chunk_kib: u32,
    /// zstd levels to encode with, comma separated.
    #[arg(long, default_value = "3,5,7,9,12,19")]
    levels: String,
    /// Frame sizes in KiB, comma separated (0 = whole chunks).
    #[arg(long, default_value = "0,64,128")]
    frames: String,
    /// Encode only every Nth unique chunk (sizes are scaled up by N).
    #[arg(long, default_value_t = 1)]
    sample: usize,
    /// Also chunk the image with content-defined chunking, as MIN/AVG/MAX
    /// KiB triples separated by commas (e.g. 256/1024/4096,16/64/256).
    #[arg(long)]
    cdc: Option<String>,
}

/// CPU seconds (user + system) this thread has used.
fn thread_cpu_s() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which ends at the last ')'.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; 11 and 12 here.
    (tick(11) + tick(12)) / 100.0
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

fn key(b: &[u8]) -> u128 {
    let h = blake3::hash(b);
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.as_bytes()[..16]);
    u128::from_le_bytes(k)
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.split(',')
        .map(|x| x.trim().parse::<T>().map_err(Into::into))
        .collect()
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let cs = cli.chunk_kib as usize * 1024;
    let mut f =
        std::fs::File::open(&cli.image).with_context(|| format!("{}", cli.image.display()))?;
    let size = f.metadata()?.len();
    let mut buf = vec![0u8; cs];
    let (mut holes, mut data_chunks) = (0u64, 0u64);
    let mut chunk_keys = HashSet::new();
    let mut unique: Vec<Vec<u8>> = Vec::new();
    let (mut zero4k, mut blocks4k, mut zero64k) = (0u64, 0u64, 0u64);
    let mut u4k = HashSet::new();
    let mut u64k = HashSet::new();
    loop {
        let mut n = 0;
        while n < cs {
            match f.read(&mut buf[n..])? {
                0 => break,
                r => n += r,
            }
        }
        if n == 0 {
            break;
        }
        let c = &buf[..n];
        if is_zero(c) {
            holes += 1;
            continue;
        }
        data_chunks += 1;
        for b in c.chunks(4096) {
            blocks4k += 1;
            if is_zero(b) {
                zero4k += 1;
            } else {
                u4k.insert(key(b));
            }
        }
        for b in c.chunks(65536) {
            if is_zero(b) {
                zero64k += 1;
            } else {
                u64k.insert(key(b));
            }
        }
        if chunk_keys.insert(key(c)) {
            unique.push(c.to_vec());
        }
    }
    let data_bytes = data_chunks * cs as u64;
    let unique_bytes: u64 = unique.iter().map(|c| c.len() as u64).sum();
    println!(
        "image {} ({:.2} GiB), {} KiB chunks: {} holes, {} data chunks ({:.1} MiB), {} unique ({:.1} MiB)",
        cli.image.display(),
        size as f64 / (1u64 << 30) as f64,
        cli.chunk_kib,
        holes,
        data_chunks,
        mib(data_bytes),
        unique.len(),
        mib(unique_bytes)
    );
    println!();
    println!("| inside data chunks | count | MiB |");
    println!("|---|---:|---:|");
    println!(
        "| 4 KiB blocks | {blocks4k} | {:.1} |",
        mib(blocks4k * 4096)
    );
    println!(
        "| all-zero 4 KiB blocks | {zero4k} | {:.1} |",
        mib(zero4k * 4096)
    );
    println!(
        "| unique non-zero 4 KiB blocks | {} | {:.1} |",
        u4k.len(),
        mib(u4k.len() as u64 * 4096)
    );
    println!(
        "| all-zero 64 KiB frames | {zero64k} | {:.1} |",
        mib(zero64k * 65536)
    );
    println!(
        "| unique non-zero 64 KiB blocks | {} | {:.1} |",
        u64k.len(),
        mib(u64k.len() as u64 * 65536)
    );
    println!();

    let levels: Vec<i32> = list(&cli.levels)?;
    let frames: Vec<u32> = list(&cli.frames)?;
    let mac = MacKey([7u8; 32]);
    let sample = cli.sample.max(1);
    println!(
        "unique chunks encoded (every {sample}th, scaled): encrypted stored MiB, encode CPU s of one thread (scaled)"
    );
    println!();
    println!("| layout | level | stored MiB | vs whole level 3 | encode CPU s |");
    println!("|---|---:|---:|---:|---:|");
    let mut base = None;
    for &fk in &frames {
        for &level in &levels {
            let cpu0 = thread_cpu_s();
            let mut stored = 0u64;
            for (i, c) in unique.iter().enumerate().step_by(sample) {
                let id = ChunkId::from_slice(&[i as u8; 32])?;
                stored += if fk == 0 || fk as usize >= c.len() {
                    // Version 1: one sealed piece (12 nonce + 16 tag).
                    blob::encode(&id, BlobKind::Data, c, level, None).len() as u64 + 28
                } else {
                    let b = frame::encode(&id, BlobKind::Data, c, level, None, &mac, fk * 1024);
                    let frames = c.len().div_ceil(fk as usize * 1024) as u64;
                    // Unencrypted frames carry a 16-byte mac; sealed ones 28.
                    b.len() as u64 + 12 * frames
                };
            }
            let cpu = (thread_cpu_s() - cpu0).max(0.0) * sample as f64;
            let stored = stored * sample as u64;
            let b = *base.get_or_insert(stored);
            let layout = match fk {
                0 => format!("{} KiB whole", cli.chunk_kib),
                f => format!("{} KiB / {f} KiB frames", cli.chunk_kib),
            };
            println!(
                "| {layout} | {level} | {:.1} | {:+.1} % | {cpu:.1} |",
                mib(stored),
                (stored as f64 / b as f64 - 1.0) * 100.0
            );
        }
    }
    println!();

    if let Some(cdc) = &cli.cdc {
        let level = levels.first().copied().unwrap_or(3);
        println!("content-defined chunking of the whole image, zstd level {level}, whole blobs");
        println!();
        println!("| min/avg/max KiB | chunks | unique non-zero | unique MiB | stored MiB |");
        println!("|---|---:|---:|---:|---:|");
        for p in cdc.split(',') {
            let v: Vec<u32> = p
                .split('/')
                .map(|x| x.trim().parse())
                .collect::<Result<_, _>>()?;
            let [min, avg, max] = v[..] else {
                anyhow::bail!("--cdc wants MIN/AVG/MAX, got {p}");
            };
            let params = ChunkerParams {
                min_size: min * 1024,
                avg_size: avg * 1024,
                max_size: max * 1024,
            };
            let mut seen = HashSet::new();
            let (mut chunks, mut ubytes, mut stored, mut uniq) = (0u64, 0u64, 0u64, 0u64);
            let file = std::fs::File::open(&cli.image)?;
            Chunker::new(&params, 0).chunk(std::io::BufReader::new(file), |c| {
                chunks += 1;
                if !is_zero(&c) && seen.insert(key(&c)) {
                    uniq += 1;
                    ubytes += c.len() as u64;
                    if uniq % sample as u64 == 0 {
                        let id = ChunkId::from_slice(&[0u8; 32])?;
                        stored +=
                            blob::encode(&id, BlobKind::Data, &c, level, None).len() as u64 + 28;
                    }
                }
                Ok(())
            })?;
            println!(
                "| {p} | {chunks} | {uniq} | {:.1} | {:.1} |",
                mib(ubytes),
                mib(stored * sample as u64)
            );
        }
    }
    Ok(())
}
