//! The quarantine list (`<datastore>/quarantine`): `quarantine::parse`, and
//! what it accepts must encode and parse back to the same entries.
#![no_main]

use arca_repo::quarantine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = quarantine::parse(data) {
        let again = quarantine::parse(&quarantine::encode(&entries)).expect("re-parse");
        assert_eq!(entries, again);
    }
});
