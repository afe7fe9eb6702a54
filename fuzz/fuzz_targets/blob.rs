//! Blob decoding: `blob::parse_header` and `blob::decode` (both versions),
//! unencrypted and with a fixed sealing key; for framed blobs (version 2)
//! also `frame::FrameTable::parse` and the decoding of each frame on its
//! own, as partial reads do it (with and without the frame mac key).
#![no_main]

use std::sync::OnceLock;

use arca_repo::blob;
use arca_repo::crypto::SealKey;
use arca_repo::frame::{self, FrameTable, MacKey};
use arca_repo::id::ChunkId;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static SealKey {
    static KEY: OnceLock<SealKey> = OnceLock::new();
    KEY.get_or_init(|| SealKey::derive(&[7u8; 32], &[1u8; 32]))
}

fn mac() -> &'static MacKey {
    static MAC: OnceLock<MacKey> = OnceLock::new();
    MAC.get_or_init(|| MacKey::derive(&[3u8; 32]))
}

fuzz_target!(|data: &[u8]| {
    let id = ChunkId([5u8; 32]);
    let _ = blob::parse_header(data);
    let _ = blob::decode(&id, data, None);
    let _ = blob::decode(&id, data, Some(key()));
    let _ = blob::decode_with_mac(&id, data, None, Some(mac()));
    let _ = blob::reseal(&id, data, Some(key()), Some(key()));
    let _ = frame::decode(&id, data, None, Some(mac()));
    if let Ok(t) = FrameTable::parse(data, None) {
        for i in 0..t.frames() {
            let (a, b) = t.span(i, i);
            let Some(stored) = data.get(a as usize..b as usize) else {
                break;
            };
            let _ = t.decode_frame(&id, i, stored, Some(key()), None);
            let _ = t.decode_frame(&id, i, stored, None, Some(mac()));
            let _ = t.decode_frame(&id, i, stored, None, None);
        }
        if t.frames() > 1 {
            let (a, _) = t.span(0, 0);
            let rest = data.get(a as usize..).unwrap_or_default();
            let _ = t.decode_frames(&id, 0, rest, None, Some(mac()), &mut |_, _| {});
        }
    }
});
