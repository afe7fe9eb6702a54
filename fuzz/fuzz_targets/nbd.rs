//! The NBD server's parser (arca-frontends): arbitrary bytes as what a
//! client sends, from the handshake through option negotiation to
//! transmission requests, against an in-memory export with data and a
//! hole, or a writable one (second bit of the first byte), and either as a
//! plain server or as a TLS-only one before STARTTLS (first bit). The
//! session must end with an error or a clean disconnect, never a panic,
//! and never read or allocate beyond the protocol's limits.
#![no_main]

use std::sync::Arc;

use arca_frontends::{nbd, Exports};
use arca_frontends::reader::{BlockSource, MemDisk, RamDisk};
use libfuzzer_sys::fuzz_target;

struct One(Arc<dyn BlockSource>);

impl Exports for One {
    fn names(&self) -> Vec<String> {
        vec!["disk".into()]
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        (name == "disk").then(|| self.0.clone())
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let mut disk = vec![7u8; 64 << 10];
    disk[16 << 10..48 << 10].fill(0);
    let disk: Arc<dyn BlockSource> = if mode & 2 != 0 {
        Arc::new(RamDisk::new(disk))
    } else {
        Arc::new(MemDisk { data: disk })
    };
    let exports = One(disk);
    if mode & 1 != 0 {
        let _ = nbd::before_tls(data, std::io::sink(), &exports);
    } else {
        let _ = nbd::session(data, std::io::sink(), &exports);
    }
    if let Ok(h) = <&[u8; 28]>::try_from(data.get(..28).unwrap_or(&[])) {
        let _ = nbd::parse_request(h);
    }
    let _ = nbd::parse_go(data);
    let _ = nbd::parse_meta(data);
});
