//! Pack decoding: `pack::parse_pack` (unencrypted and encrypted keys),
//! `pack::parse_trailer` on the last 48 bytes, and `pack::decode_header`
//! with a trailer and data length taken from the first input bytes.
#![no_main]

use arca_repo::crypto::MasterKeys;
use arca_repo::pack::{self, Trailer, TRAILER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let plain = MasterKeys {
        enc_key: None,
        id_key: [3; 32],
    };
    let sealed = MasterKeys {
        enc_key: Some([9; 32]),
        id_key: [3; 32],
    };
    let _ = pack::parse_pack(data, &plain);
    let _ = pack::parse_pack(data, &sealed);
    if data.len() >= TRAILER_LEN {
        let _ = pack::parse_trailer(&data[data.len() - TRAILER_LEN..]);
    }
    // decode_header directly: byte 0 = encrypted flag, bytes 1..9 = data_len,
    // the rest is the header.
    if data.len() >= 9 {
        let trailer = Trailer {
            salt: [1; 32],
            header_len: (data.len() - 9) as u32,
            encrypted: data[0] & 1 != 0,
        };
        let mut dl = [0u8; 8];
        dl.copy_from_slice(&data[1..9]);
        let data_len = u64::from_le_bytes(dl);
        let keys = if trailer.encrypted { &sealed } else { &plain };
        let _ = pack::decode_header(&data[9..], &trailer, keys, data_len);
    }
});
