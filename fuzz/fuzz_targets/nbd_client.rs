//! The NBD client's parser (arca-ingest): arbitrary bytes as what a
//! server (qemu-nbd, a libvirt pull-mode export reached over SSH) sends,
//! from its greeting through option replies to read and block-status
//! replies. The first byte chooses whether metadata contexts are asked
//! for and which calls follow. The client must end with an error or a
//! result, never a panic, and never allocate beyond the protocol's limits.
#![no_main]

use std::io::{Cursor, Read, Write};

use arca_ingest::nbd::NbdClient;
use libfuzzer_sys::fuzz_target;

struct Server {
    input: Cursor<Vec<u8>>,
}

impl Read for Server {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(b)
    }
}

impl Write for Server {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let server = Server {
        input: Cursor::new(data.to_vec()),
    };
    let contexts: &[&str] = if mode & 1 != 0 {
        &["base:allocation", "qemu:dirty-bitmap:b0"]
    } else {
        &[]
    };
    let Ok(mut c) = NbdClient::connect(server, "disk", contexts) else {
        return;
    };
    let size = c.size();
    if mode & 2 != 0 && !contexts.is_empty() {
        let _ = c.block_status("base:allocation", 0, size);
        let _ = c.extents_where("qemu:dirty-bitmap:b0", |f| f & 1 != 0);
    }
    let len = (size.min(1 << 16)) as usize;
    let mut buf = vec![0u8; len];
    let _ = c.read(0, &mut buf);
    c.disconnect();
});
