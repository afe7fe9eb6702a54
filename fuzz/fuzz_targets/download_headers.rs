//! The download API's request headers (`arca-web`): `Range`, `If-Range`,
//! `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` from arbitrary bytes, for files of several sizes:
//! a range answered is always inside the file, and a
//! `Content-Disposition` for any name is a valid header value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for size in [0, 1, 10, u64::MAX] {
        arca_web::fuzz_headers(data, size);
    }
});
