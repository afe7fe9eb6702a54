//! What the unit tests of the iSCSI target share: one export, PDUs an
//! initiator sends, and a session run on them.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::pdu::{op, read_pdu, write_pdu, Bhs, Pdu};
use super::session::{session, IscsiConfig};
use crate::reader::{BlockSource, MemDisk};
use crate::Exports;

struct One(Arc<dyn BlockSource>);

impl Exports for One {
    fn names(&self) -> Vec<String> {
        vec!["vm/latest".into()]
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        (name == "vm/latest").then(|| self.0.clone())
    }
}

pub(super) fn pdu(opcode: u8, flags: u8, itt: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Bhs::new(opcode);
    b.0[1] = flags;
    b.set_u32(16, itt);
    let mut out = Vec::new();
    write_pdu(&mut out, b, data).unwrap();
    out
}

pub(super) fn login(target: &str, extra: &str) -> Vec<u8> {
    let text = format!("InitiatorName=iqn.t\0TargetName={target}\0SessionType=Normal\0{extra}");
    pdu(0x43, 0x87, 1, text.as_bytes())
}

pub(super) fn scsi(cdb: &[u8], edtl: u32) -> Vec<u8> {
    let mut b = Bhs::new(op::SCSI_CMD);
    b.0[1] = 0xc0;
    b.set_u32(16, 7);
    b.set_u32(20, edtl);
    b.0[32..32 + cdb.len()].copy_from_slice(cdb);
    b.0.to_vec()
}

/// The PDUs the target sent for `input`.
pub(super) fn run(input: &[u8], cfg: &IscsiConfig) -> Vec<Pdu> {
    let disk = MemDisk {
        data: (0..64 << 10).map(|i| (i % 251) as u8).collect(),
    };
    run_on(input, cfg, Arc::new(disk))
}

/// The PDUs the target sent for `input`, serving `disk`.
pub(super) fn run_on(input: &[u8], cfg: &IscsiConfig, disk: Arc<dyn BlockSource>) -> Vec<Pdu> {
    let exports = One(disk);
    let mut out = Vec::new();
    let _ = session(input, &mut out, &exports, cfg, "127.0.0.1:3260");
    let mut r = &out[..];
    let mut pdus = Vec::new();
    while !r.is_empty() {
        pdus.push(read_pdu(&mut r, u32::MAX).unwrap());
    }
    pdus
}
