//! What the server reads out of an agent's messages beyond prost's
//! decoding (docs/vm-ingest.md, "Agent"): chunk ids and tables as packed
//! 32-byte ids, and chunk data as a zstd frame. Untrusted bytes: every
//! function refuses with the reason, never panics, and never allocates
//! more than the declared length (fuzz target `agent_protocol`).

/// Bytes of a chunk id.
pub const ID_LEN: usize = 32;

/// One chunk id.
pub fn id(b: &[u8]) -> Result<[u8; ID_LEN], String> {
    b.try_into()
        .map_err(|_| format!("a chunk id of {} bytes (not {ID_LEN})", b.len()))
}

/// A chunk table: ids packed one after another (all zero for a hole).
pub fn ids(b: &[u8]) -> Result<Vec<[u8; ID_LEN]>, String> {
    if !b.len().is_multiple_of(ID_LEN) {
        return Err(format!(
            "a chunk table of {} bytes (not a multiple of {ID_LEN})",
            b.len()
        ));
    }
    b.chunks_exact(ID_LEN).map(id).collect()
}

/// A chunk's plaintext from its zstd frame: exactly `length` bytes, and
/// `length` at most `chunk_size`. Decompression stops at `length` bytes,
/// so a small frame cannot make the server allocate more.
pub fn plaintext(compressed: &[u8], length: u32, chunk_size: u32) -> Result<Vec<u8>, String> {
    if length == 0 || length > chunk_size {
        return Err(format!(
            "a chunk of {length} bytes (the chunk size is {chunk_size})"
        ));
    }
    let data = zstd::bulk::decompress(compressed, length as usize)
        .map_err(|e| format!("not a zstd frame of at most {length} bytes: {e}"))?;
    if data.len() != length as usize {
        return Err(format!("{} bytes, declared {length}", data.len()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_frames() {
        assert_eq!(ids(&[7; 64]).unwrap(), vec![[7; 32], [7; 32]]);
        assert!(ids(&[0; 33]).is_err());
        assert!(id(&[0; 31]).is_err());
        let z = zstd::bulk::compress(&[1u8; 5000], 3).unwrap();
        assert_eq!(plaintext(&z, 5000, 8192).unwrap(), vec![1u8; 5000]);
        // Declared shorter than the frame, longer, beyond the chunk size,
        // empty, not zstd.
        assert!(plaintext(&z, 4999, 8192).is_err());
        assert!(plaintext(&z, 5001, 8192).is_err());
        assert!(plaintext(&z, 9000, 8192).is_err());
        assert!(plaintext(&z, 0, 8192).is_err());
        assert!(plaintext(b"nope", 10, 8192).is_err());
    }
}
