//! The protocol's numbers (magics, options, replies, commands, errors)
//! and the parsers of option payloads and request headers.

use std::io::{self, Read};

pub(super) const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
pub(super) const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
pub(super) const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub(super) const REQUEST_MAGIC: u32 = 0x2560_9513;
pub(super) const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
pub(super) const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

pub(super) const FLAG_FIXED_NEWSTYLE: u16 = 1;
pub(super) const FLAG_NO_ZEROES: u16 = 2;

pub(super) const OPT_EXPORT_NAME: u32 = 1;
pub(super) const OPT_ABORT: u32 = 2;
pub(super) const OPT_LIST: u32 = 3;
pub(super) const OPT_STARTTLS: u32 = 5;
pub(super) const OPT_INFO: u32 = 6;
pub(super) const OPT_GO: u32 = 7;
pub(super) const OPT_STRUCTURED_REPLY: u32 = 8;
pub(super) const OPT_LIST_META_CONTEXT: u32 = 9;
pub(super) const OPT_SET_META_CONTEXT: u32 = 10;

pub(super) const REP_ACK: u32 = 1;
pub(super) const REP_SERVER: u32 = 2;
pub(super) const REP_INFO: u32 = 3;
pub(super) const REP_META_CONTEXT: u32 = 4;
pub(super) const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
pub(super) const REP_ERR_POLICY: u32 = (1 << 31) + 2;
pub(super) const REP_ERR_INVALID: u32 = (1 << 31) + 3;
pub(super) const REP_ERR_TLS_REQD: u32 = (1 << 31) + 5;
pub(super) const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;
pub(super) const REP_ERR_TOO_BIG: u32 = (1 << 31) + 9;

pub(super) const INFO_EXPORT: u16 = 0;
pub(super) const INFO_NAME: u16 = 1;
pub(super) const INFO_DESCRIPTION: u16 = 2;
pub(super) const INFO_BLOCK_SIZE: u16 = 3;

pub(super) const TFLAG_HAS_FLAGS: u16 = 1;
pub(super) const TFLAG_READ_ONLY: u16 = 2;
pub(super) const TFLAG_SEND_FLUSH: u16 = 4;
pub(super) const TFLAG_SEND_FUA: u16 = 8;
pub(super) const TFLAG_SEND_TRIM: u16 = 32;
pub(super) const TFLAG_SEND_WRITE_ZEROES: u16 = 64;
pub(super) const TFLAG_SEND_DF: u16 = 128;
pub(super) const TFLAG_CAN_MULTI_CONN: u16 = 256;
pub(super) const TFLAG_SEND_CACHE: u16 = 1024;

pub(super) const CMD_READ: u16 = 0;
pub(super) const CMD_WRITE: u16 = 1;
pub(super) const CMD_DISC: u16 = 2;
pub(super) const CMD_FLUSH: u16 = 3;
pub(super) const CMD_TRIM: u16 = 4;
pub(super) const CMD_CACHE: u16 = 5;
pub(super) const CMD_WRITE_ZEROES: u16 = 6;
pub(super) const CMD_BLOCK_STATUS: u16 = 7;

pub(super) const CMD_FLAG_FUA: u16 = 1;
pub(super) const CMD_FLAG_REQ_ONE: u16 = 8;

pub(super) const REPLY_FLAG_DONE: u16 = 1;
pub(super) const REPLY_TYPE_NONE: u16 = 0;
pub(super) const REPLY_TYPE_OFFSET_DATA: u16 = 1;
pub(super) const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
pub(super) const REPLY_TYPE_ERROR: u16 = (1 << 15) + 1;

pub(super) const EPERM: u32 = 1;
pub(super) const EIO: u32 = 5;
pub(super) const EINVAL: u32 = 22;
pub(super) const ENOSPC: u32 = 28;
pub(super) const EOVERFLOW: u32 = 75;

pub(super) const STATE_HOLE: u32 = 1;
pub(super) const STATE_ZERO: u32 = 2;

/// Largest option payload accepted.
pub(super) const MAX_OPTION: u32 = 64 << 10;
/// Largest read or write payload (the usual NBD limit).
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// The id of `base:allocation` in this server.
pub(super) const ALLOCATION_ID: u32 = 1;
pub(super) const ALLOCATION: &str = "base:allocation";

pub(super) fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

pub(super) fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

pub(super) fn bad(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.into())
}

/// A cursor over an option's payload that fails instead of panicking.
struct Payload<'a>(&'a [u8]);

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, max: usize) -> Option<String> {
        let n = self.u32()? as usize;
        if n > max {
            return None;
        }
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// `NBD_OPT_INFO`/`GO`: the export name and the info types asked for.
pub fn parse_go(data: &[u8]) -> Option<(String, Vec<u16>)> {
    let mut p = Payload(data);
    let name = p.string(4096)?;
    let n = p.u16()?;
    let infos = (0..n).map(|_| p.u16()).collect::<Option<Vec<_>>>()?;
    p.0.is_empty().then_some((name, infos))
}

/// `NBD_OPT_LIST/SET_META_CONTEXT`: the export name and the queries.
pub fn parse_meta(data: &[u8]) -> Option<(String, Vec<String>)> {
    let mut p = Payload(data);
    let name = p.string(4096)?;
    let n = p.u32()?;
    if n > 1024 {
        return None;
    }
    let queries = (0..n).map(|_| p.string(4096)).collect::<Option<Vec<_>>>()?;
    p.0.is_empty().then_some((name, queries))
}

/// One transmission-phase request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub flags: u16,
    pub kind: u16,
    pub cookie: u64,
    pub offset: u64,
    pub len: u32,
}

/// Parse a 28-byte request header; `None` when the magic is wrong.
pub fn parse_request(b: &[u8; 28]) -> Option<Request> {
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_be_bytes(a)
    };
    (u32_at(0) == REQUEST_MAGIC).then(|| Request {
        flags: u16_at(4),
        kind: u16_at(6),
        cookie: u64_at(8),
        offset: u64_at(16),
        len: u32_at(24),
    })
}
