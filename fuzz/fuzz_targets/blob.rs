//! Blob decoding: `blob::parse_header` and `blob::decode`, unencrypted and
//! with a fixed sealing key.
#![no_main]

use std::sync::OnceLock;

use arca_repo::blob;
use arca_repo::crypto::SealKey;
use arca_repo::id::ChunkId;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static SealKey {
    static KEY: OnceLock<SealKey> = OnceLock::new();
    KEY.get_or_init(|| SealKey::derive(&[7u8; 32], &[1u8; 32]))
}

fuzz_target!(|data: &[u8]| {
    let id = ChunkId([5u8; 32]);
    let _ = blob::parse_header(data);
    let _ = blob::decode(&id, data, None);
    let _ = blob::decode(&id, data, Some(key()));
});
