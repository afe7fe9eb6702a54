//! Image chunk tables: one 32-byte chunk id per fixed-size block, all zero
//! for a hole. Stored as ImageTable blobs of up to `IDS_PER_BLOB` ids; the
//! manifest's `Disk.table` lists them in order. Block `i` covers bytes
//! `[i * chunk_size, min((i + 1) * chunk_size, size))`.

use crate::datastore::Datastore;
use crate::error::{Error, Result};
use crate::format::Disk;
use crate::id::ChunkId;

pub const IDS_PER_BLOB: usize = 32 * 1024;

pub fn block_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(chunk_size as u64)
}

pub fn encode_table_blob(ids: &[ChunkId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 32);
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
    out
}

pub fn decode_table_blob(b: &[u8]) -> Result<Vec<ChunkId>> {
    if !b.len().is_multiple_of(32) || b.len() > IDS_PER_BLOB * 32 {
        return Err(Error::Corrupt(format!(
            "image table blob of {} bytes",
            b.len()
        )));
    }
    b.chunks_exact(32).map(ChunkId::from_slice).collect()
}

/// Read a disk's whole chunk table and check it against the disk size.
pub fn read_table(ds: &Datastore, disk: &Disk) -> Result<Vec<ChunkId>> {
    if !disk.chunk_size.is_power_of_two() || disk.chunk_size < 512 {
        return Err(Error::Corrupt(format!(
            "disk {}: chunk size {}",
            disk.name, disk.chunk_size
        )));
    }
    let n = block_count(disk.size, disk.chunk_size);
    if disk.table.len() as u64 != n.div_ceil(IDS_PER_BLOB as u64) {
        return Err(Error::Corrupt(format!(
            "disk {}: table has the wrong length",
            disk.name
        )));
    }
    let mut out = Vec::with_capacity(n as usize);
    for t in &disk.table {
        out.extend(decode_table_blob(&ds.read_blob(&ChunkId::from_slice(t)?)?)?);
    }
    if out.len() as u64 != n {
        return Err(Error::Corrupt(format!(
            "disk {}: table has {} of {n} blocks",
            disk.name,
            out.len()
        )));
    }
    Ok(out)
}
