//! PDUs: the basic header segment, reading and writing PDUs, and the
//! `key=value` text of login and text data segments.

use std::io::{self, Read, Write};

/// The largest data segment this target accepts (declared in login).
pub const MAX_RECV_DSL: u32 = 256 << 10;
/// The largest login or text data segment.
pub(super) const MAX_TEXT: u32 = 64 << 10;

pub mod op {
    pub const NOP_OUT: u8 = 0x00;
    pub const SCSI_CMD: u8 = 0x01;
    pub const TMF_REQ: u8 = 0x02;
    pub const LOGIN_REQ: u8 = 0x03;
    pub const TEXT_REQ: u8 = 0x04;
    pub const DATA_OUT: u8 = 0x05;
    pub const LOGOUT_REQ: u8 = 0x06;
    pub const NOP_IN: u8 = 0x20;
    pub const SCSI_RSP: u8 = 0x21;
    pub const TMF_RSP: u8 = 0x22;
    pub const LOGIN_RSP: u8 = 0x23;
    pub const TEXT_RSP: u8 = 0x24;
    pub const DATA_IN: u8 = 0x25;
    pub const LOGOUT_RSP: u8 = 0x26;
    pub const R2T: u8 = 0x31;
    pub const REJECT: u8 = 0x3f;
}

/// A basic header segment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bhs(pub [u8; 48]);

impl Bhs {
    pub fn new(opcode: u8) -> Bhs {
        let mut b = [0u8; 48];
        b[0] = opcode;
        Bhs(b)
    }
    pub fn opcode(&self) -> u8 {
        self.0[0] & 0x3f
    }
    pub fn immediate(&self) -> bool {
        self.0[0] & 0x40 != 0
    }
    pub fn flags(&self) -> u8 {
        self.0[1]
    }
    pub fn ahs_len(&self) -> usize {
        self.0[4] as usize * 4
    }
    pub fn dsl(&self) -> u32 {
        u32::from_be_bytes([0, self.0[5], self.0[6], self.0[7]])
    }
    fn set_dsl(&mut self, n: usize) {
        let n = n as u32;
        self.0[5..8].copy_from_slice(&n.to_be_bytes()[1..]);
    }
    pub fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    pub(super) fn set_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    pub fn lun(&self) -> u64 {
        u64::from_be_bytes(self.0[8..16].try_into().unwrap_or_default())
    }
    pub fn itt(&self) -> u32 {
        self.u32(16)
    }
    pub fn cdb(&self) -> [u8; 16] {
        self.0[32..48].try_into().unwrap_or_default()
    }
}

impl std::fmt::Debug for Bhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bhs(op {:#04x}, itt {:#x})", self.opcode(), self.itt())
    }
}

/// A PDU as received: header and data segment (AHS skipped).
#[derive(Debug)]
pub struct Pdu {
    pub bhs: Bhs,
    pub data: Vec<u8>,
}

/// Why a PDU could not be read.
#[derive(Debug)]
pub enum PduError {
    Io(io::Error),
    /// The data segment is longer than allowed: the connection must end.
    TooLong(u32),
}

impl From<io::Error> for PduError {
    fn from(e: io::Error) -> Self {
        PduError::Io(e)
    }
}

/// Read one PDU whose data segment may be at most `max_dsl` bytes.
pub fn read_pdu(r: &mut impl Read, max_dsl: u32) -> Result<Pdu, PduError> {
    let mut b = [0u8; 48];
    r.read_exact(&mut b)?;
    let bhs = Bhs(b);
    let dsl = bhs.dsl();
    if dsl > max_dsl {
        return Err(PduError::TooLong(dsl));
    }
    // AHS (only for extended CDBs, which no supported command needs).
    let ahs = bhs.ahs_len();
    if ahs > 0 {
        io::copy(&mut r.by_ref().take(ahs as u64), &mut io::sink())?;
    }
    let padded = (dsl as usize).div_ceil(4) * 4;
    let mut data = vec![0u8; padded];
    r.read_exact(&mut data)?;
    data.truncate(dsl as usize);
    Ok(Pdu { bhs, data })
}

pub(super) fn write_pdu(w: &mut impl Write, mut bhs: Bhs, data: &[u8]) -> io::Result<()> {
    bhs.set_dsl(data.len());
    w.write_all(&bhs.0)?;
    w.write_all(data)?;
    let pad = data.len().div_ceil(4) * 4 - data.len();
    w.write_all(&[0u8; 3][..pad])
}

/// `key=value` pairs of a login or text data segment, in order. Pairs
/// without `=` or that are not UTF-8 are skipped.
pub fn parse_text(data: &[u8]) -> Vec<(String, String)> {
    data.split(|b| *b == 0)
        .filter_map(|kv| {
            let s = std::str::from_utf8(kv).ok()?;
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

pub(super) fn text(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keys_parse() {
        assert_eq!(
            parse_text(b"A=1\0B\0C=x=y\0\xff=1\0"),
            vec![("A".into(), "1".into()), ("C".into(), "x=y".into())]
        );
    }
}
