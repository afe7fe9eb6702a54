//! The NBD protocol's client-side wire format: constants, request
//! encoding and the parsers of what a server sends. Parsers take the
//! server's bytes as untrusted: every length is checked against a limit
//! before anything is allocated, and garbage is an [`Error::Corrupt`],
//! never a panic (fuzz target `nbd_client`).
//!
//! Reference: the protocol document of the NBD project
//! (`doc/proto.md`: fixed newstyle negotiation, structured replies,
//! metadata contexts).

use arca_repo::{Error, Result};

pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

pub const FLAG_FIXED_NEWSTYLE: u16 = 1;
pub const FLAG_NO_ZEROES: u16 = 2;
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1;
pub const FLAG_C_NO_ZEROES: u32 = 2;

pub const OPT_ABORT: u32 = 2;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED_REPLY: u32 = 8;
pub const OPT_SET_META_CONTEXT: u32 = 10;

pub const REP_ACK: u32 = 1;
pub const REP_INFO: u32 = 3;
pub const REP_META_CONTEXT: u32 = 4;
const REP_ERR: u32 = 1 << 31;

pub const INFO_EXPORT: u16 = 0;
pub const INFO_BLOCK_SIZE: u16 = 3;

pub const CMD_READ: u16 = 0;
pub const CMD_DISC: u16 = 2;
pub const CMD_BLOCK_STATUS: u16 = 7;

pub const REPLY_FLAG_DONE: u16 = 1;
pub const REPLY_TYPE_NONE: u16 = 0;
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
pub const REPLY_TYPE_OFFSET_HOLE: u16 = 2;
pub const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
const REPLY_TYPE_ERROR_BIT: u16 = 1 << 15;

/// `base:allocation`: the extent is not allocated (reads may still return
/// data from a backing file unless [`STATE_ZERO`] is set too).
pub const STATE_HOLE: u32 = 1;
/// `base:allocation`: the extent reads as zeros.
pub const STATE_ZERO: u32 = 2;
/// `qemu:dirty-bitmap:*`: the extent is dirty.
pub const STATE_DIRTY: u32 = 1;

/// The largest option reply we accept (export names and context names
/// are at most 4 KiB each by the protocol).
pub const MAX_OPTION_REPLY: u32 = 64 * 1024;
/// The largest error message we accept in a structured error chunk.
const MAX_ERROR_MESSAGE: usize = 4096;

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(format!("NBD server: {}", what.into()))
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// The 18 bytes the server opens with: its two magics and its flags.
pub fn parse_greeting(b: &[u8; 18]) -> Result<u16> {
    if be64(&b[..8]) != NBDMAGIC {
        return Err(corrupt("not an NBD server (no NBDMAGIC in its greeting)"));
    }
    if be64(&b[8..16]) != IHAVEOPT {
        return Err(corrupt(
            "an old-style NBD server; only the fixed newstyle handshake is supported",
        ));
    }
    let flags = be16(&b[16..]);
    if flags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(corrupt("the server does not speak fixed newstyle"));
    }
    Ok(flags)
}

/// An option request: magic, option, length, data.
pub fn encode_option(opt: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + data.len());
    v.extend_from_slice(&IHAVEOPT.to_be_bytes());
    v.extend_from_slice(&opt.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A string as the option data carries it: a 32-bit length, then bytes.
pub fn put_string(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.len() as u32).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

/// The header of an option reply: (option, reply type, data length).
pub fn parse_option_reply_header(b: &[u8; 20], sent: u32) -> Result<(u32, u32)> {
    if be64(&b[..8]) != OPT_REPLY_MAGIC {
        return Err(corrupt("bad option reply magic"));
    }
    let (opt, kind, len) = (be32(&b[8..]), be32(&b[12..]), be32(&b[16..]));
    if opt != sent {
        return Err(corrupt(format!(
            "reply to option {opt} while option {sent} was asked"
        )));
    }
    if len > MAX_OPTION_REPLY {
        return Err(corrupt(format!("option reply of {len} bytes")));
    }
    Ok((kind, len))
}

/// An option reply of an error type, as a message; `None` for the other types.
pub fn option_error(kind: u32, data: &[u8], what: &str) -> Option<Error> {
    if kind & REP_ERR == 0 {
        return None;
    }
    let reason = match kind & !REP_ERR {
        1 => "not supported by the server",
        2 => "refused by the server's policy",
        3 => "invalid",
        4 => "not available on the server's platform",
        5 => "the server requires TLS",
        6 => "unknown export",
        7 => "the server is shutting down",
        8 => "the server requires block-size negotiation",
        9 => "too big",
        _ => "refused",
    };
    let text = String::from_utf8_lossy(&data[..data.len().min(MAX_ERROR_MESSAGE)]);
    let text = text.trim();
    Some(Error::InvalidInput(if text.is_empty() {
        format!("NBD {what}: {reason}")
    } else {
        format!("NBD {what}: {reason} ({text})")
    }))
}

/// `NBD_REP_META_CONTEXT` data: the context's id and name.
pub fn parse_meta_context(data: &[u8]) -> Result<(u32, String)> {
    if data.len() < 4 {
        return Err(corrupt("short meta context reply"));
    }
    let name =
        std::str::from_utf8(&data[4..]).map_err(|_| corrupt("meta context name is not UTF-8"))?;
    Ok((be32(data), name.to_string()))
}

/// What `NBD_REP_INFO` told about the export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportInfo {
    pub size: u64,
    pub transmission_flags: u16,
    /// Preferred and maximum request sizes (0: not given).
    pub preferred_block: u32,
    pub max_block: u32,
}

/// Fold one `NBD_REP_INFO` into `info`; unknown info types are ignored.
pub fn parse_info(data: &[u8], info: &mut ExportInfo) -> Result<bool> {
    if data.len() < 2 {
        return Err(corrupt("short info reply"));
    }
    match be16(data) {
        INFO_EXPORT => {
            if data.len() != 12 {
                return Err(corrupt("export info of the wrong length"));
            }
            info.size = be64(&data[2..]);
            info.transmission_flags = be16(&data[10..]);
            Ok(true)
        }
        INFO_BLOCK_SIZE => {
            if data.len() != 14 {
                return Err(corrupt("block size info of the wrong length"));
            }
            info.preferred_block = be32(&data[6..]);
            info.max_block = be32(&data[10..]);
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// A transmission request (28 bytes).
pub fn encode_request(kind: u16, flags: u16, cookie: u64, offset: u64, len: u32) -> [u8; 28] {
    let mut b = [0u8; 28];
    b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&flags.to_be_bytes());
    b[6..8].copy_from_slice(&kind.to_be_bytes());
    b[8..16].copy_from_slice(&cookie.to_be_bytes());
    b[16..24].copy_from_slice(&offset.to_be_bytes());
    b[24..28].copy_from_slice(&len.to_be_bytes());
    b
}

/// The header of a structured reply chunk (20 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub flags: u16,
    pub kind: u16,
    pub cookie: u64,
    pub len: u32,
}

impl ChunkHeader {
    pub fn done(&self) -> bool {
        self.flags & REPLY_FLAG_DONE != 0
    }
    pub fn is_error(&self) -> bool {
        self.kind & REPLY_TYPE_ERROR_BIT != 0
    }
}

/// The first 4 bytes of any reply: its magic, telling a simple reply
/// (16 bytes of header) from a structured chunk (20).
pub fn reply_magic(b: &[u8; 4]) -> Result<bool> {
    match be32(b) {
        STRUCTURED_REPLY_MAGIC => Ok(true),
        SIMPLE_REPLY_MAGIC => Ok(false),
        m => Err(corrupt(format!("bad reply magic {m:#x}"))),
    }
}

/// The rest (after the magic) of a simple reply: (error, cookie).
pub fn parse_simple_reply(b: &[u8; 12]) -> (u32, u64) {
    (be32(b), be64(&b[4..]))
}

/// The rest (after the magic) of a structured chunk header; `limit` is
/// the largest payload this request can legitimately have.
pub fn parse_chunk_header(b: &[u8; 16], limit: u32) -> Result<ChunkHeader> {
    let h = ChunkHeader {
        flags: be16(b),
        kind: be16(&b[2..]),
        cookie: be64(&b[4..]),
        len: be32(&b[12..]),
    };
    if h.len > limit {
        return Err(corrupt(format!(
            "reply chunk of {} bytes, more than the {limit} this request allows",
            h.len
        )));
    }
    Ok(h)
}

/// A structured error chunk's payload, as the error to report.
pub fn parse_error_chunk(payload: &[u8]) -> Error {
    if payload.len() < 6 {
        return corrupt("short error chunk");
    }
    let code = be32(payload);
    let n = (be16(&payload[4..]) as usize).min(payload.len() - 6);
    let msg = String::from_utf8_lossy(&payload[6..6 + n]);
    Error::Io {
        context: format!("NBD server error {} ({})", errno_name(code), msg.trim()),
        source: std::io::Error::from_raw_os_error(code as i32),
    }
}

/// The NBD error codes (which are the Linux errno values).
pub fn errno_name(code: u32) -> &'static str {
    match code {
        1 => "EPERM",
        5 => "EIO",
        12 => "ENOMEM",
        22 => "EINVAL",
        28 => "ENOSPC",
        75 => "EOVERFLOW",
        95 => "ENOTSUP",
        108 => "ESHUTDOWN",
        _ => "error",
    }
}

/// `NBD_REPLY_TYPE_OFFSET_HOLE`: (offset, length).
pub fn parse_offset_hole(payload: &[u8]) -> Result<(u64, u32)> {
    if payload.len() != 12 {
        return Err(corrupt("hole chunk of the wrong length"));
    }
    Ok((be64(payload), be32(&payload[8..])))
}

/// `NBD_REPLY_TYPE_BLOCK_STATUS`: the context id and its (length, flags)
/// descriptors.
pub fn parse_block_status(payload: &[u8]) -> Result<(u32, Vec<(u32, u32)>)> {
    if payload.len() < 12 || !(payload.len() - 4).is_multiple_of(8) {
        return Err(corrupt("block status chunk of the wrong length"));
    }
    let id = be32(payload);
    let ext = payload[4..]
        .chunks_exact(8)
        .map(|d| (be32(d), be32(&d[4..])))
        .collect();
    Ok((id, ext))
}

/// Whether `[offset, offset+len)` lies inside the request `[r_off, r_off+r_len)`.
pub fn inside(offset: u64, len: u64, r_off: u64, r_len: u64) -> bool {
    offset >= r_off
        && offset
            .checked_add(len)
            .is_some_and(|end| end <= r_off.saturating_add(r_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_needs_both_magics_and_fixed_newstyle() {
        let mut g = [0u8; 18];
        g[..8].copy_from_slice(&NBDMAGIC.to_be_bytes());
        g[8..16].copy_from_slice(&IHAVEOPT.to_be_bytes());
        g[16..].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(parse_greeting(&g).unwrap(), 3);
        g[17] = 0;
        assert!(parse_greeting(&g).is_err());
        g[17] = 1;
        g[8] = 0;
        assert!(parse_greeting(&g)
            .unwrap_err()
            .to_string()
            .contains("old-style"));
    }

    #[test]
    fn block_status_payloads_are_checked() {
        let mut p = 7u32.to_be_bytes().to_vec();
        p.extend_from_slice(&4096u32.to_be_bytes());
        p.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(parse_block_status(&p).unwrap(), (7, vec![(4096, 3)]));
        assert!(parse_block_status(&p[..11]).is_err());
        assert!(parse_block_status(&p[..4]).is_err());
    }

    #[test]
    fn option_errors_name_the_reason_and_the_server_text() {
        let e = option_error(REP_ERR | 6, b"no such export", "export \"x\"").unwrap();
        assert_eq!(
            e.to_string(),
            "invalid input: NBD export \"x\": unknown export (no such export)"
        );
        assert!(option_error(REP_ACK, b"", "x").is_none());
    }

    #[test]
    fn chunk_headers_over_the_limit_are_refused() {
        let mut b = [0u8; 16];
        b[12..].copy_from_slice(&5000u32.to_be_bytes());
        assert!(parse_chunk_header(&b, 4096).is_err());
        assert_eq!(parse_chunk_header(&b, 5000).unwrap().len, 5000);
    }

    #[test]
    fn inside_checks_overflow() {
        assert!(inside(10, 5, 0, 15));
        assert!(!inside(10, 6, 0, 15));
        assert!(!inside(u64::MAX, 2, 0, u64::MAX));
    }
}
