//! Structured blobs: `format::decode` of `Tree` and `CatalogChunk`.
#![no_main]

use arca_repo::format::{self, CatalogChunk, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::decode::<Tree>("tree", data);
    let _ = format::decode::<CatalogChunk>("catalog", data);
});
