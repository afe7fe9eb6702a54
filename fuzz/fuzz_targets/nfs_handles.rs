//! The NFS export's untrusted bytes: file handles from clients, the handle
//! log read back from the state directory, and `--allow` address blocks.
#![no_main]

use arca_nfs::handles::{parse_handle, parse_log, HandleTable, Node};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_handle(data);
    let _ = Node::decode(data);
    let (records, valid) = parse_log(data);
    assert!(valid <= data.len());
    for (id, node) in records {
        assert_ne!(id, 0);
        assert_eq!(Node::decode(&node.encode()), Some(node));
    }
    if let Ok(t) = HandleTable::in_memory() {
        let _ = t.resolve(data);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = arca_nfs::Cidr::parse(s);
    }
});
