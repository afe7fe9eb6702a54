//! The iSCSI target's PDU parsing and SCSI command handling
//! (arca-frontends): arbitrary bytes as what an initiator sends, either
//! from the first login PDU, or after a valid login into a normal session
//! (first input byte odd), against an in-memory disk that is writable
//! when the second byte is odd. The session must end with an error or a
//! clean logout, never a panic, and never allocate beyond the negotiated
//! limits. The pure parsers (text keys, READ/WRITE CDBs, one CDB run
//! against the disk) get the same bytes.
#![no_main]

use std::sync::{Arc, Mutex};

use arca_frontends::iscsi::{self, IscsiConfig, Lun};
use arca_frontends::reader::{BlockSource, Extent};
use arca_frontends::Exports;
use arca_repo::{Error, Result};
use libfuzzer_sys::fuzz_target;

/// A small disk, writable or not.
struct Disk {
    data: Mutex<Vec<u8>>,
    writable: bool,
}

impl BlockSource for Disk {
    fn size(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let d = self.data.lock().unwrap();
        let s = offset as usize;
        let src = d
            .get(s..s.saturating_add(buf.len()))
            .ok_or_else(|| Error::InvalidInput("past the end".into()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn extents(&self, _offset: u64, len: u64) -> Result<Vec<Extent>> {
        Ok(vec![Extent { len, hole: false }])
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let mut d = self.data.lock().unwrap();
        let s = offset as usize;
        d.get_mut(s..s.saturating_add(data.len()))
            .ok_or_else(|| Error::InvalidInput("past the end".into()))?
            .copy_from_slice(data);
        Ok(())
    }
}

struct One(Arc<Disk>);

impl Exports for One {
    fn names(&self) -> Vec<String> {
        vec!["disk".into()]
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        (name == "disk").then(|| self.0.clone() as Arc<dyn BlockSource>)
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
    let disk = Arc::new(Disk {
        data: Mutex::new(vec![7u8; 64 << 10]),
        writable: mode.1 & 1 == 1,
    });
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
