//! Manifests, image tables, the config and keyfile JSON, and index entries.
#![no_main]

use arca_repo::config::{Config, KeyFile};
use arca_repo::format::{self, Manifest};
use arca_repo::image;
use arca_repo::index::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::decode::<Manifest>("manifest", data);
    let _ = image::decode_table_blob(data);
    let _ = Config::parse(data);
    let _ = KeyFile::parse(data);
    let _ = Location::decode(data);
});
