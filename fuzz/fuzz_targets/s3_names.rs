//! The S3 gateway's own parsing of client input (`arca-s3`): listing
//! continuation tokens (`Cursor::decode`) must refuse garbage without
//! panicking and round-trip what they accept; bucket names made from
//! arbitrary source names must be valid and unique.
#![no_main]

use arca_s3::names::{bucket_names, Cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = Cursor::decode(text) {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        // Source names: the lines of the input, ids their numbers.
        let sources: Vec<(String, String)> = text
            .lines()
            .take(64)
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.to_string()))
            .collect();
        let names = bucket_names(&sources);
        assert_eq!(names.len(), sources.len());
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            assert!((3..=63).contains(&n.len()), "{n:?}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
                "{n:?}"
            );
            assert!(!n.contains(".."), "{n:?}");
            assert!(seen.insert(n.clone()), "{n:?} twice in {names:?}");
        }
    }
    // Hex of raw bytes: tokens that decode to arbitrary text.
    let _ = Cursor::decode(&hex_of(data));
});

fn hex_of(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
