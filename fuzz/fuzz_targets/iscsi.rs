//! The iSCSI target's PDU parsing and SCSI command handling
//! (arca-frontends): arbitrary bytes as what an initiator sends, either
//! from the first login PDU, or after a valid login into a normal session
//! (first input byte odd), against an in-memory disk that is writable
//! when the second byte is odd. The session must end with an error or a
//! clean logout, never a panic, and never allocate beyond the negotiated
//! limits. The pure parsers (text keys, READ/WRITE CDBs, one CDB run
//! against the disk) get the same bytes.
#![no_main]

use std::sync::Arc;

use arca_frontends::iscsi::{self, IscsiConfig, Lun};
use arca_frontends::reader::{BlockSource, MemDisk, RamDisk};
use arca_frontends::Exports;
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

/// A login PDU straight into the full feature phase of target "disk".
fn login() -> Vec<u8> {
    let text = b"InitiatorName=iqn.2026-11.io.arca:fuzz\0TargetName=iqn.2026-11.io.arca:disk\0SessionType=Normal\0MaxRecvDataSegmentLength=4096\0";
    let mut b = vec![0u8; 48];
    b[0] = 0x43;
    b[1] = 0x87;
    b[5..8].copy_from_slice(&(text.len() as u32).to_be_bytes()[1..]);
    b.extend_from_slice(text);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = match data {
        [a, b, rest @ ..] => ((*a, *b), rest),
        _ => return,
    };
    let disk: Arc<dyn BlockSource> = if mode.1 & 1 == 1 {
        Arc::new(RamDisk::new(vec![7u8; 64 << 10]))
    } else {
        Arc::new(MemDisk {
            data: vec![7u8; 64 << 10],
        })
    };
    let exports = One(disk.clone());
    let input: Vec<u8> = if mode.0 & 1 == 1 {
        [login(), rest.to_vec()].concat()
    } else {
        rest.to_vec()
    };
    let cfg = IscsiConfig::default();
    let _ = iscsi::session(&input[..], std::io::sink(), &exports, &cfg, "127.0.0.1:3260");
    let _ = iscsi::parse_text(rest);
    if let Ok(cdb) = <[u8; 16]>::try_from(rest.get(..16).unwrap_or(&[])) {
        let _ = iscsi::decode_rw(&cdb);
        let lun = Lun {
            disk,
            name: "disk".into(),
        };
        let _ = lun.execute(&cdb, &rest[16..]);
    }
});
