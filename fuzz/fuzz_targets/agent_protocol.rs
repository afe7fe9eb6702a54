//! The agent protocol (arca-proto, docs/vm-ingest.md "Agent"): arbitrary
//! bytes as each message the server receives from an agent (the first
//! byte picks the call), decoded with prost, then read as the server
//! reads them: chunk ids and tables (packed 32-byte ids) and each
//! uploaded chunk's zstd frame against its declared length and a chunk
//! size. Anything malformed is an error, never a panic, and a chunk
//! never decompresses to more than its declared length.
#![no_main]

use arca_proto::agent::{id, ids, plaintext};
use arca_proto::agent_pb as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|input: &[u8]| {
    let Some((&call, data)) = input.split_first() else {
        return;
    };
    match call % 6 {
        0 => {
            let _ = pb::BeginRequest::decode(data);
        }
        1 => {
            if let Ok(r) = pb::HaveRequest::decode(data) {
                for i in &r.ids {
                    let _ = id(i);
                }
            }
        }
        2 => {
            if let Ok(r) = pb::PutRequest::decode(data) {
                for c in &r.chunks {
                    let _ = id(&c.id);
                    // A small chunk size keeps each run fast.
                    if let Ok(p) = plaintext(&c.data, c.length, 1 << 16) {
                        assert_eq!(p.len(), c.length as usize);
                    }
                }
            }
        }
        3 => {
            if let Ok(r) = pb::CommitRequest::decode(data) {
                for d in &r.disks {
                    if let Ok(t) = ids(&d.ids) {
                        assert_eq!(t.len() * 32, d.ids.len());
                    }
                }
            }
        }
        4 => {
            let _ = pb::AbortRequest::decode(data);
        }
        _ => {
            // A raw frame: the length is the first 2 bytes.
            if data.len() >= 2 {
                let len = u16::from_le_bytes([data[0], data[1]]) as u32;
                if let Ok(p) = plaintext(&data[2..], len, 1 << 16) {
                    assert_eq!(p.len(), len as usize);
                }
            }
        }
    }
});
