//! Helpers shared by the datastore's integration tests.
#![allow(dead_code)]

use arca_repo::format::{Disk, Manifest};
use arca_repo::ChunkId;

/// Deterministic pseudo-random bytes (xorshift): the same for the same
/// seed, incompressible, and not deduplicated across seeds.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The manifest of an image snapshot of source "vm": one disk "d" of
/// `blocks` 64 KiB blocks whose chunk table is the blob `table`.
pub fn image_manifest(table: ChunkId, blocks: usize) -> Manifest {
    Manifest {
        source_kind: "image".into(),
        source: "vm".into(),
        disks: vec![Disk {
            name: "d".into(),
            size: blocks as u64 * 65536,
            chunk_size: 65536,
            table: vec![table.0.to_vec()],
            holes: 0,
            ..Default::default()
        }],
        ..Default::default()
    }
}
