//! An iSCSI target (RFC 7143) for image restore points: one target per
//! export, named by [`crate::iscsi_target_name`], with one LUN (0) of
//! 512-byte logical blocks.
//!
//! - Discovery sessions answer `SendTargets` with every export.
//! - Login with `AuthMethod=None`, or CHAP (MD5, one-way) when the
//!   target has a user and secret; then only CHAP logins are accepted.
//! - Exports with their own credential ([`Exports::chap`], exports started
//!   through the server) take only CHAP logins with it. When the list is
//!   private ([`Exports::private`]), discovery sessions must authenticate
//!   as one export's CHAP user and `SendTargets` shows only that export.
//!   A failed authentication is the login status 0x0201 (authentication
//!   failure), whatever was wrong.
//! - Error recovery level 0, one connection per session, no digests
//!   (`HeaderDigest=None`, `DataDigest=None`), `InitialR2T=Yes`,
//!   `ImmediateData=Yes`: writes bring at most `FirstBurstLength` bytes
//!   with the command and the rest after R2Ts.
//! - The SCSI command set Linux and libiscsi use is in [`Lun::execute`];
//!   anything else is CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND
//!   OPERATION CODE. Bad PDUs get a Reject or end the connection; the
//!   server keeps serving other clients.
//!
//! The image's last bytes beyond a multiple of 512 (rare: disks are sized
//! in sectors) are not visible over iSCSI.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use crate::reader::BlockSource;
use crate::{iscsi_target_name, Chap, Exports};

/// Logical block size.
pub const BLOCK: u64 = 512;
/// The largest data segment this target accepts (declared in login).
pub const MAX_RECV_DSL: u32 = 256 << 10;
/// The largest READ or WRITE (bytes), as the block limits page says.
pub const MAX_TRANSFER: u64 = 8 << 20;
/// The largest login or text data segment.
const MAX_TEXT: u32 = 64 << 10;
/// Writes waiting for their data at once.
const MAX_PENDING_WRITES: usize = 64;
/// Commands the initiator may have outstanding (MaxCmdSN window).
const CMD_WINDOW: u32 = 64;

/// Target settings.
#[derive(Clone, Debug, Default)]
pub struct IscsiConfig {
    /// CHAP user and secret: when set, logins must authenticate.
    pub chap: Option<(String, String)>,
}

/// Accept connections forever, one thread each.
pub fn serve(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    cfg: Arc<IscsiConfig>,
) -> io::Result<()> {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("iscsi accept: {e}");
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let portal = conn.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let (exports, cfg) = (exports.clone(), cfg.clone());
        std::thread::Builder::new()
            .name("iscsi-conn".into())
            .spawn(move || {
                let _span = tracing::info_span!("client", peer = %peer).entered();
                let w = match conn.try_clone() {
                    Ok(w) => io::BufWriter::with_capacity(256 << 10, w),
                    Err(_) => return,
                };
                let r = io::BufReader::with_capacity(64 << 10, conn);
                if let Err(e) = session(r, w, exports.as_ref(), &cfg, &portal) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        tracing::info!(error = %e, "iscsi client connection ended with an error");
                    }
                }
            })?;
    }
    Ok(())
}

// ---- PDUs ----

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
    fn set_u32(&mut self, at: usize, v: u32) {
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

fn write_pdu(w: &mut impl Write, mut bhs: Bhs, data: &[u8]) -> io::Result<()> {
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

fn text(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

// ---- SCSI ----

/// A SCSI command's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// GOOD, with data for the initiator (reads).
    Good(Vec<u8>),
    /// CHECK CONDITION with (sense key, ASC, ASCQ).
    Check(u8, u8, u8),
}

pub mod sense {
    pub const NOT_READY: u8 = 0x02;
    pub const MEDIUM_ERROR: u8 = 0x03;
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    pub const DATA_PROTECT: u8 = 0x07;
    pub const MISCOMPARE: u8 = 0x0e;
    pub const MISCOMPARE_DURING_VERIFY: (u8, u8) = (0x1d, 0x00);
    pub const INVALID_OPCODE: (u8, u8) = (0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: (u8, u8) = (0x21, 0x00);
    pub const INVALID_FIELD_IN_CDB: (u8, u8) = (0x24, 0x00);
    pub const LUN_NOT_SUPPORTED: (u8, u8) = (0x25, 0x00);
    pub const WRITE_PROTECTED: (u8, u8) = (0x27, 0x00);
    pub const SAVING_NOT_SUPPORTED: (u8, u8) = (0x39, 0x00);
    pub const UNRECOVERED_READ: (u8, u8) = (0x11, 0x00);
    pub const WRITE_ERROR: (u8, u8) = (0x0c, 0x00);
}

fn check(key: u8, (asc, ascq): (u8, u8)) -> Outcome {
    Outcome::Check(key, asc, ascq)
}

fn invalid_field() -> Outcome {
    check(sense::ILLEGAL_REQUEST, sense::INVALID_FIELD_IN_CDB)
}

/// Fixed-format sense data.
pub fn sense_data(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
    let mut s = [0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    s[13] = ascq;
    s
}

/// What a READ or WRITE CDB asks: (lba, blocks, write, protect field).
pub fn decode_rw(cdb: &[u8; 16]) -> Option<(u64, u64, bool, u8)> {
    let be = |a: &[u8]| a.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    let prot = cdb[1] >> 5;
    Some(match cdb[0] {
        0x08 | 0x0a => {
            let lba = be(&[cdb[1] & 0x1f, cdb[2], cdb[3]]);
            let n = if cdb[4] == 0 { 256 } else { cdb[4] as u64 };
            (lba, n, cdb[0] == 0x0a, 0)
        }
        0x28 | 0x2a => (be(&cdb[2..6]), be(&cdb[7..9]), cdb[0] == 0x2a, prot),
        0xa8 | 0xaa => (be(&cdb[2..6]), be(&cdb[6..10]), cdb[0] == 0xaa, prot),
        0x88 | 0x8a => (be(&cdb[2..10]), be(&cdb[10..14]), cdb[0] == 0x8a, prot),
        _ => return None,
    })
}

/// The allocation length of a CDB that has one.
fn alloc_len(cdb: &[u8; 16]) -> usize {
    let be = |a: &[u8]| a.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
    match cdb[0] {
        0x03 => cdb[4] as usize,
        0x12 => be(&cdb[3..5]),
        0x1a => cdb[4] as usize,
        0x5a => be(&cdb[7..9]),
        0xa0 => be(&cdb[6..10]),
        0x9e => be(&cdb[10..14]),
        _ => usize::MAX,
    }
}

fn truncated(mut v: Vec<u8>, cdb: &[u8; 16]) -> Outcome {
    v.truncate(alloc_len(cdb));
    Outcome::Good(v)
}

/// One logical unit: a disk of 512-byte blocks.
pub struct Lun {
    pub disk: Arc<dyn BlockSource>,
    /// The export's name (serial number and designators derive from it).
    pub name: String,
}

impl Lun {
    pub fn blocks(&self) -> u64 {
        self.disk.size() / BLOCK
    }

    fn serial(&self) -> String {
        let h = blake3::hash(self.name.as_bytes());
        h.to_hex()[..16].to_string()
    }

    /// Check LBA and length against the capacity.
    fn in_range(&self, lba: u64, n: u64) -> bool {
        lba.checked_add(n).is_some_and(|e| e <= self.blocks())
    }

    /// Run a CDB; `data_out` is a write's data.
    pub fn execute(&self, cdb: &[u8; 16], data_out: &[u8]) -> Outcome {
        match cdb[0] {
            0x00 => Outcome::Good(Vec::new()), // TEST UNIT READY
            0x03 => truncated(sense_data(0, 0, 0).to_vec(), cdb), // REQUEST SENSE
            0x12 => self.inquiry(cdb),
            0x1a | 0x5a => self.mode_sense(cdb),
            0x1b | 0x1e => Outcome::Good(Vec::new()), // START STOP UNIT, PREVENT ALLOW
            0x25 => {
                // READ CAPACITY (10)
                let last = self.blocks().saturating_sub(1).min(u32::MAX as u64) as u32;
                let mut v = last.to_be_bytes().to_vec();
                v.extend_from_slice(&(BLOCK as u32).to_be_bytes());
                Outcome::Good(v)
            }
            0x9e if cdb[1] & 0x1f == 0x10 => self.read_capacity16(cdb),
            0x9e if cdb[1] & 0x1f == 0x12 => self.lba_status(cdb),
            0x35 | 0x91 => {
                // SYNCHRONIZE CACHE (10/16)
                let be = |a: &[u8]| a.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
                let (lba, n) = if cdb[0] == 0x35 {
                    (be(&cdb[2..6]), be(&cdb[7..9]))
                } else {
                    (be(&cdb[2..10]), be(&cdb[10..14]))
                };
                if !self.in_range(lba, n) {
                    return check(sense::ILLEGAL_REQUEST, sense::LBA_OUT_OF_RANGE);
                }
                match self.disk.flush() {
                    Ok(()) => Outcome::Good(Vec::new()),
                    Err(_) => check(sense::MEDIUM_ERROR, sense::WRITE_ERROR),
                }
            }
            0x2f | 0x8f => self.verify(cdb, data_out),
            0xa0 => {
                // REPORT LUNS: LUN 0.
                if cdb[2] > 2 {
                    return invalid_field();
                }
                let mut v = 8u32.to_be_bytes().to_vec();
                v.extend_from_slice(&[0; 4]);
                v.extend_from_slice(&[0; 8]);
                truncated(v, cdb)
            }
            _ => match decode_rw(cdb) {
                Some((lba, n, write, prot)) => self.read_write(lba, n, write, prot, data_out),
                None => check(sense::ILLEGAL_REQUEST, sense::INVALID_OPCODE),
            },
        }
    }

    fn read_write(&self, lba: u64, n: u64, write: bool, prot: u8, data: &[u8]) -> Outcome {
        if prot != 0 {
            // No protection information on these disks.
            return invalid_field();
        }
        if !self.in_range(lba, n) {
            return check(sense::ILLEGAL_REQUEST, sense::LBA_OUT_OF_RANGE);
        }
        let bytes = n * BLOCK;
        if bytes > MAX_TRANSFER {
            return invalid_field();
        }
        if write {
            if !self.disk.writable() {
                return check(sense::DATA_PROTECT, sense::WRITE_PROTECTED);
            }
            if (data.len() as u64) < bytes {
                // Fewer bytes came than the CDB names.
                return invalid_field();
            }
            return match self.disk.write_at(lba * BLOCK, &data[..bytes as usize]) {
                Ok(()) => Outcome::Good(Vec::new()),
                Err(e) => {
                    tracing::warn!("iscsi write at block {lba} of {}: {e}", self.name);
                    check(sense::MEDIUM_ERROR, sense::WRITE_ERROR)
                }
            };
        }
        let mut buf = vec![0u8; bytes as usize];
        match self.disk.read_at(lba * BLOCK, &mut buf) {
            Ok(()) => Outcome::Good(buf),
            Err(e) => {
                tracing::warn!("iscsi read at block {lba} of {}: {e}", self.name);
                check(sense::MEDIUM_ERROR, sense::UNRECOVERED_READ)
            }
        }
    }

    /// VERIFY (10/16): the data is authenticated on every read, so without
    /// BYTCHK only the range is checked; with it, the bytes sent are
    /// compared (BYTCHK 01: all of them; 11: one block against each).
    fn verify(&self, cdb: &[u8; 16], data: &[u8]) -> Outcome {
        let be = |a: &[u8]| a.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        let (lba, n) = if cdb[0] == 0x2f {
            (be(&cdb[2..6]), be(&cdb[7..9]))
        } else {
            (be(&cdb[2..10]), be(&cdb[10..14]))
        };
        let bytchk = (cdb[1] >> 1) & 3;
        if cdb[1] >> 5 != 0 || bytchk == 2 {
            return invalid_field();
        }
        if !self.in_range(lba, n) {
            return check(sense::ILLEGAL_REQUEST, sense::LBA_OUT_OF_RANGE);
        }
        if bytchk == 0 || n == 0 {
            return Outcome::Good(Vec::new());
        }
        if n * BLOCK > MAX_TRANSFER {
            return invalid_field();
        }
        let want = if bytchk == 1 { n * BLOCK } else { BLOCK } as usize;
        if data.len() < want {
            return invalid_field();
        }
        let mut buf = vec![0u8; (n * BLOCK) as usize];
        if self.disk.read_at(lba * BLOCK, &mut buf).is_err() {
            return check(sense::MEDIUM_ERROR, sense::UNRECOVERED_READ);
        }
        let same = if bytchk == 1 {
            buf == data[..want]
        } else {
            buf.chunks(BLOCK as usize).all(|b| b == &data[..want])
        };
        if same {
            Outcome::Good(Vec::new())
        } else {
            check(sense::MISCOMPARE, sense::MISCOMPARE_DURING_VERIFY)
        }
    }

    fn inquiry(&self, cdb: &[u8; 16]) -> Outcome {
        let evpd = cdb[1] & 1 != 0;
        let page = cdb[2];
        if !evpd {
            if page != 0 {
                return invalid_field();
            }
            let mut v = vec![0u8; 74];
            v[2] = 0x06; // SPC-4
            v[3] = 0x12; // HiSup, response data format 2
            v[4] = 74 - 5;
            v[7] = 0x02; // CmdQue
            v[8..16].copy_from_slice(b"ARCA    ");
            v[16..32].copy_from_slice(b"RESTORE POINT   ");
            v[32..36].copy_from_slice(b"0001");
            // Version descriptors: SAM-5, SPC-4, SBC-3, iSCSI.
            for (i, d) in [0x00a0u16, 0x0460, 0x04c0, 0x0960].iter().enumerate() {
                v[58 + 2 * i..60 + 2 * i].copy_from_slice(&d.to_be_bytes());
            }
            return truncated(v, cdb);
        }
        let body: Vec<u8> = match page {
            0x00 => vec![0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2],
            0x80 => self.serial().into_bytes(),
            0x83 => {
                let mut d = Vec::new();
                // T10 vendor id: "ARCA    " + serial (ASCII).
                let t10 = [b"ARCA    ".as_slice(), self.serial().as_bytes()].concat();
                d.extend_from_slice(&[0x02, 0x01, 0x00, t10.len() as u8]);
                d.extend_from_slice(&t10);
                // NAA 6 (binary): locally made from the name's hash.
                let h = blake3::hash(self.name.as_bytes());
                let mut naa = [0u8; 16];
                naa.copy_from_slice(&h.as_bytes()[..16]);
                naa[0] = 0x60 | (naa[0] & 0x0f);
                d.extend_from_slice(&[0x01, 0x03, 0x00, 16]);
                d.extend_from_slice(&naa);
                d
            }
            0xb0 => {
                let mut p = vec![0u8; 0x3c];
                let gran = (self.disk.block_size() as u64 / BLOCK).max(1) as u16;
                p[2..4].copy_from_slice(&gran.to_be_bytes()); // optimal granularity
                let max = (MAX_TRANSFER / BLOCK) as u32;
                p[4..8].copy_from_slice(&max.to_be_bytes()); // maximum transfer length
                p[8..12].copy_from_slice(&max.to_be_bytes()); // optimal transfer length
                p
            }
            0xb1 => {
                let mut p = vec![0u8; 0x3c];
                p[0..2].copy_from_slice(&1u16.to_be_bytes()); // non-rotating
                p
            }
            0xb2 => {
                // Thin provisioned; deallocated blocks read as zeros; no UNMAP.
                vec![0x00, 0x04, 0x02, 0x00]
            }
            _ => return invalid_field(),
        };
        let mut v = vec![0x00, page];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(&body);
        truncated(v, cdb)
    }

    fn read_capacity16(&self, cdb: &[u8; 16]) -> Outcome {
        let mut v = vec![0u8; 32];
        v[0..8].copy_from_slice(&self.blocks().saturating_sub(1).to_be_bytes());
        v[8..12].copy_from_slice(&(BLOCK as u32).to_be_bytes());
        let per_phys = (self.disk.block_size() as u64 / BLOCK).max(1);
        v[13] = per_phys.trailing_zeros() as u8 & 0x0f;
        v[14] = 0x80 | 0x40; // LBPME, LBPRZ: holes are deallocated, read zeros
        truncated(v, cdb)
    }

    fn lba_status(&self, cdb: &[u8; 16]) -> Outcome {
        let be = |a: &[u8]| a.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        let lba = be(&cdb[2..10]);
        if lba >= self.blocks() {
            return check(sense::ILLEGAL_REQUEST, sense::LBA_OUT_OF_RANGE);
        }
        let room = (alloc_len(cdb).saturating_sub(8) / 16).clamp(1, 256);
        // Look at up to 1 GiB from the LBA.
        let len = ((self.blocks() - lba) * BLOCK).min(1 << 30);
        let extents = match self.disk.extents(lba * BLOCK, len) {
            Ok(e) => e,
            Err(_) => return check(sense::MEDIUM_ERROR, sense::UNRECOVERED_READ),
        };
        let mut v = vec![0u8; 8];
        let mut at = lba;
        for e in extents.iter().take(room) {
            let n = e.len / BLOCK;
            if n == 0 {
                break;
            }
            v.extend_from_slice(&at.to_be_bytes());
            v.extend_from_slice(&(n.min(u32::MAX as u64) as u32).to_be_bytes());
            v.extend_from_slice(&[u8::from(e.hole), 0, 0, 0]);
            at += n;
        }
        let len = (v.len() - 4) as u32;
        v[0..4].copy_from_slice(&len.to_be_bytes());
        truncated(v, cdb)
    }

    fn mode_sense(&self, cdb: &[u8; 16]) -> Outcome {
        let ten = cdb[0] == 0x5a;
        let dbd = cdb[1] & 0x08 != 0;
        let pc = cdb[2] >> 6;
        let page = cdb[2] & 0x3f;
        if pc == 3 {
            return check(sense::ILLEGAL_REQUEST, sense::SAVING_NOT_SUPPORTED);
        }
        if cdb[3] != 0 && cdb[3] != 0xff {
            return invalid_field(); // subpages
        }
        let changeable = pc == 1;
        let caching = || {
            let mut p = vec![0u8; 20];
            p[0] = 0x08;
            p[1] = 18;
            if !changeable && self.disk.writable() {
                p[2] = 0x04; // WCE: writes are durable at SYNCHRONIZE CACHE
            }
            p
        };
        let control = || {
            let mut p = vec![0u8; 12];
            p[0] = 0x0a;
            p[1] = 10;
            p
        };
        let pages: Vec<u8> = match page {
            0x08 => caching(),
            0x0a => control(),
            0x3f => [caching(), control()].concat(),
            _ => return invalid_field(),
        };
        let mut desc = Vec::new();
        if !dbd {
            let n = self.blocks().min(0xff_ffff) as u32;
            desc.extend_from_slice(&n.to_be_bytes());
            desc[0] = 0; // density code
            desc.extend_from_slice(&(BLOCK as u32).to_be_bytes());
            desc[4] = 0;
        }
        // WP when read-only; DPOFUA: DPO and FUA are accepted.
        let wp = if self.disk.writable() { 0x10 } else { 0x90 };
        let mut v = if ten {
            let mut h = vec![0u8; 8];
            let len = (6 + desc.len() + pages.len()) as u16;
            h[0..2].copy_from_slice(&len.to_be_bytes());
            h[3] = wp;
            h[6..8].copy_from_slice(&(desc.len() as u16).to_be_bytes());
            h
        } else {
            vec![
                (3 + desc.len() + pages.len()) as u8,
                0,
                wp,
                desc.len() as u8,
            ]
        };
        v.extend_from_slice(&desc);
        v.extend_from_slice(&pages);
        truncated(v, cdb)
    }
}

// ---- sessions ----

/// Login status (class, detail).
mod status {
    pub const AUTH_FAILED: (u8, u8) = (0x02, 0x01);
    pub const NOT_FOUND: (u8, u8) = (0x02, 0x03);
    pub const MISSING_PARAMETER: (u8, u8) = (0x02, 0x07);
    pub const INIT_ERROR: (u8, u8) = (0x02, 0x00);
    pub const UNSUPPORTED_VERSION: (u8, u8) = (0x02, 0x05);
}

/// Reject reasons.
mod reason {
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x05;
    pub const PROTOCOL_ERROR: u8 = 0x04;
    pub const TOO_MANY_TASKS: u8 = 0x06;
}

/// A write waiting for its Data-Out PDUs.
struct PendingWrite {
    cmd: Bhs,
    lun: u64,
    expected: usize,
    data: Vec<u8>,
    ttt: u32,
    r2t_sn: u32,
    /// End of the burst the last R2T asked for.
    burst_end: usize,
}

struct Session<'e, W: Write> {
    w: W,
    exports: &'e dyn Exports,
    cfg: &'e IscsiConfig,
    portal: &'e str,
    stat_sn: u32,
    exp_cmd_sn: u32,
    /// What the initiator accepts per data segment.
    send_dsl: usize,
    max_burst: usize,
    first_burst: usize,
    lun: Option<Lun>,
    discovery: bool,
    /// The export a discovery session of a private list authenticated for.
    discovered: Option<String>,
    pending: HashMap<u32, PendingWrite>,
    next_ttt: u32,
}

/// The export whose target name is `iqn`.
fn find_target(exports: &dyn Exports, iqn: &str) -> Option<(String, Arc<dyn BlockSource>)> {
    let name = exports.by_target_name(iqn)?;
    let disk = exports.open(&name)?;
    Some((name, disk))
}

/// What a login must present.
enum Auth {
    /// Nothing (`AuthMethod=None`).
    None,
    /// CHAP with this credential.
    Chap(Chap),
    /// CHAP as the user of any one export (discovery of a private list).
    AnyExport,
}

impl<W: Write> Session<'_, W> {
    fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(CMD_WINDOW - 1)
    }

    /// Fill StatSN (and count it), ExpCmdSN and MaxCmdSN.
    fn seq(&mut self, b: &mut Bhs, count: bool) {
        b.set_u32(24, self.stat_sn);
        if count {
            self.stat_sn = self.stat_sn.wrapping_add(1);
        }
        b.set_u32(28, self.exp_cmd_sn);
        b.set_u32(32, self.max_cmd_sn());
    }

    fn send(&mut self, b: Bhs, data: &[u8]) -> io::Result<()> {
        write_pdu(&mut self.w, b, data)
    }

    fn reject(&mut self, why: u8, bad: &Bhs) -> io::Result<()> {
        let mut b = Bhs::new(op::REJECT);
        b.0[1] = 0x80;
        b.0[2] = why;
        b.set_u32(16, 0xffff_ffff);
        self.seq(&mut b, true);
        self.send(b, &bad.0)?;
        self.w.flush()
    }

    /// Note a command's CmdSN (non-immediate ones advance the window).
    fn took(&mut self, bhs: &Bhs) {
        if !bhs.immediate() && bhs.u32(24) == self.exp_cmd_sn {
            self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
        }
    }

    // -- login --

    fn login_reply(
        &mut self,
        req: &Bhs,
        flags: u8,
        st: (u8, u8),
        tsih: u16,
        pairs: &[(String, String)],
    ) -> io::Result<()> {
        let mut b = Bhs::new(op::LOGIN_RSP);
        b.0[1] = flags;
        b.0[8..14].copy_from_slice(&req.0[8..14]); // ISID
        b.0[14..16].copy_from_slice(&tsih.to_be_bytes());
        b.set_u32(16, req.itt());
        self.seq(&mut b, true);
        b.0[36] = st.0;
        b.0[37] = st.1;
        self.send(b, &text(pairs))?;
        self.w.flush()
    }

    /// Run the login phase; Ok(true) when full feature phase begins.
    fn login<R: Read>(&mut self, r: &mut R) -> io::Result<bool> {
        let mut target: Option<(String, Arc<dyn BlockSource>)> = None;
        let mut keys: HashMap<String, String> = HashMap::new();
        let mut chap: Option<(u8, [u8; 16])> = None;
        let mut auth = Auth::None;
        let mut authed = false;
        let mut first = true;
        loop {
            let pdu = match read_pdu(r, MAX_TEXT) {
                Ok(p) => p,
                Err(PduError::Io(e)) => return Err(e),
                Err(PduError::TooLong(n)) => {
                    return Err(io::Error::other(format!("login data of {n} bytes")))
                }
            };
            let req = pdu.bhs;
            if req.opcode() != op::LOGIN_REQ {
                // Only logins before the full feature phase.
                let fail = status::INIT_ERROR;
                self.login_reply(&req, 0, fail, 0, &[])?;
                return Ok(false);
            }
            if first {
                // StatSN starts where the initiator expects it.
                self.stat_sn = req.u32(28);
                self.exp_cmd_sn = req.u32(24);
                if req.0[3] > 0 {
                    self.login_reply(&req, 0, status::UNSUPPORTED_VERSION, 0, &[])?;
                    return Ok(false);
                }
            }
            let transit = req.flags() & 0x80 != 0;
            let csg = (req.flags() >> 2) & 3;
            let nsg = req.flags() & 3;
            let pairs = parse_text(&pdu.data);
            for (k, v) in &pairs {
                keys.insert(k.clone(), v.clone());
            }
            let mut out: Vec<(String, String)> = Vec::new();
            if first {
                first = false;
                self.discovery = keys.get("SessionType").map(String::as_str) == Some("Discovery");
                if !keys.contains_key("InitiatorName") {
                    self.login_reply(&req, 0, status::MISSING_PARAMETER, 0, &[])?;
                    return Ok(false);
                }
                let cfg = self.cfg;
                let global = || cfg.chap.clone().map(|(user, secret)| Chap { user, secret });
                if !self.discovery {
                    let Some(name) = keys.get("TargetName") else {
                        self.login_reply(&req, 0, status::MISSING_PARAMETER, 0, &[])?;
                        return Ok(false);
                    };
                    match find_target(self.exports, name) {
                        Some(t) => {
                            auth = match self.exports.chap(&t.0).or_else(global) {
                                Some(c) => Auth::Chap(c),
                                None => Auth::None,
                            };
                            target = Some(t);
                        }
                        None => {
                            self.login_reply(&req, 0, status::NOT_FOUND, 0, &[])?;
                            return Ok(false);
                        }
                    }
                    out.push(("TargetPortalGroupTag".into(), "1".into()));
                } else if self.exports.private() {
                    auth = Auth::AnyExport;
                } else if let Some(c) = global() {
                    auth = Auth::Chap(c);
                }
                authed = matches!(auth, Auth::None);
            }
            if csg == 0 {
                // Security negotiation.
                if let Some(m) = keys.get("AuthMethod").filter(|_| chap.is_none()) {
                    let offered: Vec<&str> = m.split(',').collect();
                    let pick = if !matches!(auth, Auth::None) {
                        offered.contains(&"CHAP").then_some("CHAP")
                    } else {
                        offered.contains(&"None").then_some("None")
                    };
                    match pick {
                        Some(p) => out.push(("AuthMethod".into(), p.into())),
                        None => {
                            self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                            return Ok(false);
                        }
                    }
                }
                if let (false, Some(a)) = (matches!(auth, Auth::None), keys.get("CHAP_A")) {
                    if chap.is_none() {
                        if !a.split(',').any(|x| x == "5") {
                            self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                            return Ok(false);
                        }
                        let mut c = [0u8; 17];
                        getrandom::fill(&mut c).map_err(|e| io::Error::other(e.to_string()))?;
                        let challenge: [u8; 16] = c[1..].try_into().unwrap_or_default();
                        chap = Some((c[0], challenge));
                        out.push(("CHAP_A".into(), "5".into()));
                        out.push(("CHAP_I".into(), c[0].to_string()));
                        out.push(("CHAP_C".into(), format!("0x{}", hex(&challenge))));
                        keys.remove("CHAP_A");
                    }
                }
                if let (Some((id, challenge)), Some(n), Some(resp)) =
                    (chap, keys.get("CHAP_N"), keys.get("CHAP_R"))
                {
                    // The credential the user name stands for.
                    let (cred, export) = match &auth {
                        Auth::None => (None, None),
                        Auth::Chap(c) => (Some(c.clone()), None),
                        Auth::AnyExport => match self.exports.by_chap_user(n) {
                            Some(e) => (self.exports.chap(&e), Some(e)),
                            None => (None, None),
                        },
                    };
                    // Mutual CHAP (the initiator challenging us) is not offered.
                    let mutual = keys.contains_key("CHAP_I") || keys.contains_key("CHAP_C");
                    let ok = cred.is_some_and(|c| {
                        c.user == *n && chap_response_ok(id, &c.secret, &challenge, resp)
                    });
                    if !ok || mutual {
                        tracing::info!(
                            "iscsi: CHAP authentication of {n:?} failed (initiator {:?})",
                            keys.get("InitiatorName").map(String::as_str).unwrap_or("")
                        );
                        self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                        return Ok(false);
                    }
                    self.discovered = export;
                    authed = true;
                }
            } else if !authed {
                // Operational negotiation before CHAP succeeded.
                self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                return Ok(false);
            } else {
                out.extend(self.negotiate(&pairs));
            }
            let can_transit = transit && (csg != 0 || authed);
            let flags = if can_transit {
                0x80 | (csg << 2) | nsg
            } else {
                csg << 2 | csg
            };
            let full = can_transit && nsg == 3;
            let tsih = if full { 1 } else { 0 };
            self.login_reply(&req, flags, (0, 0), tsih, &out)?;
            if full {
                if let Some((name, disk)) = target.take() {
                    self.lun = Some(Lun { disk, name });
                }
                return Ok(true);
            }
        }
    }

    /// Answers to operational keys, and the session's limits.
    fn negotiate(&mut self, pairs: &[(String, String)]) -> Vec<(String, String)> {
        let num = |v: &str| v.parse::<u64>().ok();
        let mut out = Vec::new();
        let mut said_dsl = false;
        for (k, v) in pairs {
            let answer: Option<String> = match k.as_str() {
                "HeaderDigest" | "DataDigest" => Some(if v.split(',').any(|x| x == "None") {
                    "None".into()
                } else {
                    "Reject".into()
                }),
                "MaxRecvDataSegmentLength" => {
                    if let Some(n) = num(v) {
                        self.send_dsl = n.clamp(512, 16 << 20) as usize;
                    }
                    said_dsl = true;
                    Some(MAX_RECV_DSL.to_string())
                }
                "MaxBurstLength" => num(v).map(|n| {
                    self.max_burst = n.clamp(512, MAX_TRANSFER) as usize;
                    self.max_burst.to_string()
                }),
                "FirstBurstLength" => num(v).map(|n| {
                    self.first_burst = n.clamp(512, MAX_RECV_DSL as u64) as usize;
                    self.first_burst.to_string()
                }),
                "InitialR2T" => Some("Yes".into()),
                "ImmediateData" => Some(v.clone()),
                "MaxOutstandingR2T" => Some("1".into()),
                "DataPDUInOrder" | "DataSequenceInOrder" => Some("Yes".into()),
                "ErrorRecoveryLevel" => Some("0".into()),
                "MaxConnections" => Some("1".into()),
                "DefaultTime2Wait" => num(v).map(|n| n.max(2).to_string()),
                "DefaultTime2Retain" => Some("0".into()),
                "IFMarker" | "OFMarker" => Some("No".into()),
                "InitiatorName" | "InitiatorAlias" | "TargetName" | "SessionType"
                | "AuthMethod" | "TargetAlias" => None,
                k if k.starts_with("X-") || k.starts_with("X#") => Some("NotUnderstood".into()),
                _ => Some("NotUnderstood".into()),
            };
            if let Some(a) = answer {
                out.push((k.clone(), a));
            }
        }
        if !said_dsl && !pairs.is_empty() {
            out.push(("MaxRecvDataSegmentLength".into(), MAX_RECV_DSL.to_string()));
        }
        self.first_burst = self.first_burst.min(self.max_burst);
        out
    }

    // -- full feature phase --

    fn text_request(&mut self, pdu: &Pdu) -> io::Result<()> {
        let pairs = parse_text(&pdu.data);
        let mut out = Vec::new();
        for (k, v) in &pairs {
            if k == "SendTargets" {
                let names: Vec<String> = match (&self.lun, v.as_str()) {
                    (Some(l), _) => vec![l.name.clone()],
                    (None, _) if self.exports.private() => self
                        .discovered
                        .iter()
                        .filter(|n| v == "All" || iscsi_target_name(n) == v.to_ascii_lowercase())
                        .cloned()
                        .collect(),
                    (None, "All") => self.exports.names(),
                    (None, iqn) => find_target(self.exports, iqn)
                        .map(|(n, _)| vec![n])
                        .unwrap_or_default(),
                };
                for n in names {
                    out.push(("TargetName".to_string(), iscsi_target_name(&n)));
                    out.push(("TargetAddress".to_string(), format!("{},1", self.portal)));
                }
            } else {
                out.push((k.clone(), "NotUnderstood".into()));
            }
        }
        let mut data = text(&out);
        // One PDU (with a larger list than the initiator takes, the rest is cut).
        data.truncate(self.send_dsl);
        let mut b = Bhs::new(op::TEXT_RSP);
        b.0[1] = 0x80;
        b.0[8..16].copy_from_slice(&pdu.bhs.0[8..16]);
        b.set_u32(16, pdu.bhs.itt());
        b.set_u32(20, 0xffff_ffff);
        self.took(&pdu.bhs);
        self.seq(&mut b, true);
        self.send(b, &data)?;
        self.w.flush()
    }

    /// Send a command's outcome: Data-In PDUs (the last with status), or a
    /// SCSI Response (with sense data).
    fn respond(&mut self, cmd: &Bhs, outcome: Outcome) -> io::Result<()> {
        let itt = cmd.itt();
        let edtl = cmd.u32(20) as usize;
        match outcome {
            Outcome::Good(data) if !data.is_empty() && edtl > 0 && cmd.flags() & 0x40 != 0 => {
                let n = data.len().min(edtl);
                let (flag, residual) = match data.len().cmp(&edtl) {
                    std::cmp::Ordering::Less => (0x02, edtl - data.len()),
                    std::cmp::Ordering::Greater => (0x04, data.len() - edtl),
                    std::cmp::Ordering::Equal => (0, 0),
                };
                let step = self.send_dsl.max(512);
                let mut off = 0;
                let mut data_sn = 0u32;
                while off < n {
                    let end = (off + step).min(n);
                    let last = end == n;
                    let mut b = Bhs::new(op::DATA_IN);
                    b.set_u32(16, itt);
                    b.set_u32(20, 0xffff_ffff);
                    if last {
                        b.0[1] = 0x80 | 0x01 | flag;
                        b.0[3] = 0; // GOOD
                        self.seq(&mut b, true);
                        b.set_u32(44, residual as u32);
                    } else {
                        b.set_u32(28, self.exp_cmd_sn);
                        b.set_u32(32, self.max_cmd_sn());
                    }
                    b.set_u32(36, data_sn);
                    b.set_u32(40, off as u32);
                    self.send(b, &data[off..end])?;
                    data_sn += 1;
                    off = end;
                }
                Ok(())
            }
            Outcome::Good(data) => {
                // No data moved: status alone, with what was not sent.
                let mut b = Bhs::new(op::SCSI_RSP);
                b.0[1] = 0x80;
                let write = cmd.flags() & 0x20 != 0;
                if !write && data.len() > edtl {
                    b.0[1] |= 0x04;
                    b.set_u32(44, (data.len() - edtl) as u32);
                } else if !write && edtl > data.len() {
                    b.0[1] |= 0x02;
                    b.set_u32(44, (edtl - data.len()) as u32);
                }
                b.set_u32(16, itt);
                self.seq(&mut b, true);
                self.send(b, &[])
            }
            Outcome::Check(key, asc, ascq) => {
                let mut b = Bhs::new(op::SCSI_RSP);
                b.0[1] = 0x80;
                b.0[3] = 0x02; // CHECK CONDITION
                b.set_u32(16, itt);
                self.seq(&mut b, true);
                let mut d = 18u16.to_be_bytes().to_vec();
                d.extend_from_slice(&sense_data(key, asc, ascq));
                self.send(b, &d)
            }
        }
    }

    fn execute(&mut self, cmd: &Bhs, lun: u64, data: &[u8]) -> io::Result<()> {
        let cdb = cmd.cdb();
        let outcome = match &self.lun {
            Some(l) if lun == 0 => l.execute(&cdb, data),
            Some(l) if cdb[0] == 0x12 => {
                // INQUIRY of a LUN that does not exist: qualifier 3.
                match l.execute(&cdb, data) {
                    Outcome::Good(mut v) => {
                        if let Some(b) = v.first_mut() {
                            *b = 0x7f;
                        }
                        Outcome::Good(v)
                    }
                    o => o,
                }
            }
            Some(_) if cdb[0] == 0xa0 || cdb[0] == 0x03 => self
                .lun
                .as_ref()
                .map_or(Outcome::Good(Vec::new()), |l| l.execute(&cdb, data)),
            _ => check(sense::ILLEGAL_REQUEST, sense::LUN_NOT_SUPPORTED),
        };
        self.respond(cmd, outcome)
    }

    fn send_r2t(&mut self, itt: u32) -> io::Result<()> {
        let max_burst = self.max_burst;
        let Some(p) = self.pending.get_mut(&itt) else {
            return Ok(());
        };
        let offset = p.data.len();
        let len = (p.expected - offset).min(max_burst);
        p.burst_end = offset + len;
        let mut b = Bhs::new(op::R2T);
        b.0[1] = 0x80;
        b.0[8..16].copy_from_slice(&p.lun.to_be_bytes());
        b.set_u32(16, itt);
        b.set_u32(20, p.ttt);
        b.set_u32(36, p.r2t_sn);
        b.set_u32(40, offset as u32);
        b.set_u32(44, len as u32);
        p.r2t_sn += 1;
        self.seq(&mut b, false);
        self.send(b, &[])?;
        self.w.flush()
    }

    fn scsi_command(&mut self, pdu: Pdu) -> io::Result<()> {
        let cmd = pdu.bhs;
        self.took(&cmd);
        if self.lun.is_none() {
            // A discovery session runs no commands.
            return self.reject(reason::PROTOCOL_ERROR, &cmd);
        }
        let lun = cmd.lun() >> 48;
        let write = cmd.flags() & 0x20 != 0;
        let edtl = cmd.u32(20) as usize;
        if !write || edtl <= pdu.data.len() {
            let r = self.execute(&cmd, lun, &pdu.data);
            return r.and_then(|_| self.w.flush());
        }
        // A write whose data comes after R2Ts; refuse early what cannot be
        // done, so no data is asked for.
        let cdb = cmd.cdb();
        let early = match (&self.lun, decode_rw(&cdb)) {
            (Some(l), Some((lba, n, true, prot))) => {
                if lun != 0 {
                    Some(check(sense::ILLEGAL_REQUEST, sense::LUN_NOT_SUPPORTED))
                } else if prot != 0 || n * BLOCK > MAX_TRANSFER || edtl as u64 > MAX_TRANSFER {
                    Some(invalid_field())
                } else if !l.in_range(lba, n) {
                    Some(check(sense::ILLEGAL_REQUEST, sense::LBA_OUT_OF_RANGE))
                } else if !l.disk.writable() {
                    Some(check(sense::DATA_PROTECT, sense::WRITE_PROTECTED))
                } else {
                    None
                }
            }
            // Other commands with data (VERIFY with BYTCHK) run once it came.
            _ => (edtl as u64 > MAX_TRANSFER).then(invalid_field),
        };
        if let Some(o) = early {
            self.respond(&cmd, o)?;
            return self.w.flush();
        }
        if self.pending.len() >= MAX_PENDING_WRITES {
            return self.reject(reason::TOO_MANY_TASKS, &cmd);
        }
        self.next_ttt = self.next_ttt.wrapping_add(1) & 0x7fff_ffff;
        let itt = cmd.itt();
        let mut data = Vec::with_capacity(edtl);
        data.extend_from_slice(&pdu.data);
        self.pending.insert(
            itt,
            PendingWrite {
                cmd,
                lun,
                expected: edtl,
                data,
                ttt: self.next_ttt,
                r2t_sn: 0,
                burst_end: 0,
            },
        );
        self.send_r2t(itt)
    }

    fn data_out(&mut self, pdu: Pdu) -> io::Result<()> {
        let b = pdu.bhs;
        let itt = b.itt();
        let Some(p) = self.pending.get_mut(&itt) else {
            return self.reject(reason::PROTOCOL_ERROR, &b);
        };
        let offset = b.u32(40) as usize;
        if b.u32(20) != p.ttt || offset != p.data.len() || offset + pdu.data.len() > p.burst_end {
            // Out of order or past what was asked for (DataPDUInOrder=Yes).
            self.pending.remove(&itt);
            return self.reject(reason::PROTOCOL_ERROR, &b);
        }
        p.data.extend_from_slice(&pdu.data);
        if b.flags() & 0x80 == 0 {
            return Ok(());
        }
        if p.data.len() < p.expected {
            if p.data.len() < p.burst_end {
                // The burst ended short of what the R2T asked.
                self.pending.remove(&itt);
                return self.reject(reason::PROTOCOL_ERROR, &b);
            }
            return self.send_r2t(itt);
        }
        let Some(p) = self.pending.remove(&itt) else {
            return Ok(());
        };
        self.execute(&p.cmd, p.lun, &p.data)?;
        self.w.flush()
    }

    fn nop_out(&mut self, pdu: Pdu) -> io::Result<()> {
        let b = pdu.bhs;
        self.took(&b);
        if b.itt() == 0xffff_ffff {
            // The answer to a NOP-In of ours (we send none).
            return Ok(());
        }
        let mut r = Bhs::new(op::NOP_IN);
        r.0[1] = 0x80;
        r.0[8..16].copy_from_slice(&b.0[8..16]);
        r.set_u32(16, b.itt());
        r.set_u32(20, 0xffff_ffff);
        self.seq(&mut r, true);
        self.send(r, &pdu.data)?;
        self.w.flush()
    }

    fn task_management(&mut self, pdu: Pdu) -> io::Result<()> {
        let b = pdu.bhs;
        self.took(&b);
        let function = b.flags() & 0x7f;
        let response = match function {
            // ABORT TASK: commands run to completion as they arrive, so
            // only a write waiting for data can be aborted.
            1 => {
                self.pending.remove(&b.u32(20));
                0
            }
            // ABORT TASK SET, CLEAR TASK SET, LUN RESET, TARGET WARM/COLD RESET.
            2 | 3 | 5 | 6 | 7 => {
                self.pending.clear();
                0
            }
            // CLEAR ACA, TASK REASSIGN (error recovery level 0): not supported.
            _ => 5,
        };
        let mut r = Bhs::new(op::TMF_RSP);
        r.0[1] = 0x80;
        r.0[2] = response;
        r.set_u32(16, b.itt());
        self.seq(&mut r, true);
        self.send(r, &[])?;
        self.w.flush()
    }

    fn logout(&mut self, pdu: Pdu) -> io::Result<()> {
        let b = pdu.bhs;
        self.took(&b);
        let mut r = Bhs::new(op::LOGOUT_RSP);
        r.0[1] = 0x80;
        r.set_u32(16, b.itt());
        self.seq(&mut r, true);
        self.send(r, &[])?;
        self.w.flush()
    }
}

/// Serve one connection: login, then commands until logout or EOF.
pub fn session<R: Read, W: Write>(
    mut r: R,
    w: W,
    exports: &dyn Exports,
    cfg: &IscsiConfig,
    portal: &str,
) -> io::Result<()> {
    let mut s = Session {
        w,
        exports,
        cfg,
        portal,
        stat_sn: 0,
        exp_cmd_sn: 0,
        send_dsl: 8192,
        max_burst: 256 << 10,
        first_burst: 64 << 10,
        lun: None,
        discovery: false,
        discovered: None,
        pending: HashMap::new(),
        next_ttt: 0,
    };
    if !s.login(&mut r)? {
        return Ok(());
    }
    let _log = s
        .lun
        .as_ref()
        .map(|l| crate::ClientLog::connected("iscsi", s.exports.label(&l.name)));
    loop {
        let pdu = match read_pdu(&mut r, MAX_RECV_DSL) {
            Ok(p) => p,
            Err(PduError::Io(e)) => return Err(e),
            Err(PduError::TooLong(n)) => {
                // The stream cannot be resynchronised: end the connection.
                return Err(io::Error::other(format!(
                    "a data segment of {n} bytes, more than the {MAX_RECV_DSL} negotiated"
                )));
            }
        };
        match pdu.bhs.opcode() {
            op::SCSI_CMD => s.scsi_command(pdu)?,
            op::DATA_OUT => s.data_out(pdu)?,
            op::NOP_OUT => s.nop_out(pdu)?,
            op::TEXT_REQ => s.text_request(&pdu)?,
            op::TMF_REQ => s.task_management(pdu)?,
            op::LOGOUT_REQ => return s.logout(pdu),
            op::LOGIN_REQ => s.reject(reason::PROTOCOL_ERROR, &pdu.bhs)?,
            _ if s.discovery => s.reject(reason::PROTOCOL_ERROR, &pdu.bhs)?,
            _ => s.reject(reason::COMMAND_NOT_SUPPORTED, &pdu.bhs)?,
        }
    }
}

/// Whether `resp` (hex) is MD5(id, secret, challenge), as RFC 1994 says.
fn chap_response_ok(id: u8, secret: &str, challenge: &[u8], resp: &str) -> bool {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update([id]);
    h.update(secret.as_bytes());
    h.update(challenge);
    let want = h.finalize();
    unhex(resp).is_some_and(|got| crate::same_secret(&got, want.as_slice()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `0x…` hex (CHAP values); base64 (`0b…`) is not accepted.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() % 2 != 0 || h.len() > 1024 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reader::MemDisk;

    struct One(Arc<MemDisk>);

    impl Exports for One {
        fn names(&self) -> Vec<String> {
            vec!["vm/latest".into()]
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            (name == "vm/latest").then(|| self.0.clone() as Arc<dyn BlockSource>)
        }
    }

    fn pdu(opcode: u8, flags: u8, itt: u32, data: &[u8]) -> Vec<u8> {
        let mut b = Bhs::new(opcode);
        b.0[1] = flags;
        b.set_u32(16, itt);
        let mut out = Vec::new();
        write_pdu(&mut out, b, data).unwrap();
        out
    }

    fn login(target: &str, extra: &str) -> Vec<u8> {
        let text = format!("InitiatorName=iqn.t\0TargetName={target}\0SessionType=Normal\0{extra}");
        pdu(0x43, 0x87, 1, text.as_bytes())
    }

    fn scsi(cdb: &[u8], edtl: u32) -> Vec<u8> {
        let mut b = Bhs::new(op::SCSI_CMD);
        b.0[1] = 0xc0;
        b.set_u32(16, 7);
        b.set_u32(20, edtl);
        b.0[32..32 + cdb.len()].copy_from_slice(cdb);
        b.0.to_vec()
    }

    /// The PDUs the target sent for `input`.
    fn run(input: &[u8], cfg: &IscsiConfig) -> Vec<Pdu> {
        let disk = MemDisk {
            data: (0..64 << 10).map(|i| (i % 251) as u8).collect(),
        };
        let exports = One(Arc::new(disk));
        let mut out = Vec::new();
        let _ = session(input, &mut out, &exports, cfg, "127.0.0.1:3260");
        let mut r = &out[..];
        let mut pdus = Vec::new();
        while !r.is_empty() {
            pdus.push(read_pdu(&mut r, u32::MAX).unwrap());
        }
        pdus
    }

    #[test]
    fn discovery_lists_targets_and_an_unknown_target_is_refused() {
        let mut input = pdu(
            0x43,
            0x87,
            1,
            b"InitiatorName=iqn.t\0SessionType=Discovery\0",
        );
        input.extend(pdu(op::TEXT_REQ, 0x80, 2, b"SendTargets=All\0"));
        let out = run(&input, &IscsiConfig::default());
        assert_eq!(out[0].bhs.opcode(), op::LOGIN_RSP);
        assert_eq!(out[0].bhs.0[36..38], [0, 0]);
        let keys = parse_text(&out[1].data);
        assert!(keys.contains(&("TargetName".into(), "iqn.2026-11.io.arca:vm.latest".into())));
        assert!(keys.contains(&("TargetAddress".into(), "127.0.0.1:3260,1".into())));

        let out = run(
            &login("iqn.2026-11.io.arca:nope", ""),
            &IscsiConfig::default(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bhs.0[36..38], [2, 3], "target not found");
        // No InitiatorName: missing parameter.
        let out = run(
            &pdu(0x43, 0x87, 1, b"TargetName=iqn.2026-11.io.arca:vm.latest\0"),
            &IscsiConfig::default(),
        );
        assert_eq!(out[0].bhs.0[36..38], [2, 7]);
    }

    #[test]
    fn chap_is_required_when_configured() {
        let cfg = IscsiConfig {
            chap: Some(("u".into(), "secretsecret".into())),
        };
        // Straight to operational negotiation, no authentication.
        let out = run(&login("iqn.2026-11.io.arca:vm.latest", ""), &cfg);
        assert_eq!(out[0].bhs.0[36..38], [2, 1]);
        // AuthMethod=None only.
        let mut p = login("iqn.2026-11.io.arca:vm.latest", "AuthMethod=None\0");
        p[1] = 0x81; // CSG 0 → NSG 1
        let out = run(&p, &cfg);
        assert_eq!(out[0].bhs.0[36..38], [2, 1]);
    }

    /// One export with its own CHAP credential, in a private list.
    struct Private(Arc<MemDisk>);

    const SECRET: &str = "0123456789abcdef";

    impl Exports for Private {
        fn names(&self) -> Vec<String> {
            Vec::new()
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            (name == "export-1").then(|| self.0.clone() as Arc<dyn BlockSource>)
        }
        fn private(&self) -> bool {
            true
        }
        fn by_target_name(&self, iqn: &str) -> Option<String> {
            (iqn == "iqn.2026-11.io.arca:export-1").then(|| "export-1".to_string())
        }
        fn chap(&self, name: &str) -> Option<Chap> {
            (name == "export-1").then(|| Chap {
                user: "export-1".into(),
                secret: SECRET.into(),
            })
        }
        fn by_chap_user(&self, user: &str) -> Option<String> {
            (user == "export-1").then(|| user.to_string())
        }
    }

    /// A login as `user` with `secret` (CHAP, answering the target's
    /// challenge) to `target`, or a discovery session when it is `None`;
    /// then `SendTargets=All`. Returns the final login status and the
    /// targets listed.
    fn chap_login(target: Option<&str>, user: &str, secret: &str) -> ((u8, u8), Vec<String>) {
        use std::os::unix::net::UnixStream;
        let (mut client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let exports = Private(Arc::new(MemDisk {
                data: vec![0; 4096],
            }));
            let w = server.try_clone().unwrap();
            let _ = session(
                server,
                w,
                &exports,
                &IscsiConfig::default(),
                "127.0.0.1:3260",
            );
        });
        let first = match target {
            Some(t) => format!(
                "InitiatorName=iqn.t\0TargetName={t}\0SessionType=Normal\0AuthMethod=CHAP,None\0"
            ),
            None => "InitiatorName=iqn.t\0SessionType=Discovery\0AuthMethod=CHAP,None\0".into(),
        };
        let mut exchange = |flags: u8, text: &str| {
            client
                .write_all(&pdu(0x43, flags, 1, text.as_bytes()))
                .unwrap();
            let p = read_pdu(&mut client, u32::MAX).unwrap();
            ((p.bhs.0[36], p.bhs.0[37]), parse_text(&p.data))
        };
        let (st, keys) = exchange(0x81, &first);
        assert_eq!(st, (0, 0));
        assert!(
            keys.contains(&("AuthMethod".into(), "CHAP".into())),
            "{keys:?}"
        );
        let (st, keys) = exchange(0x01, "CHAP_A=5\0");
        assert_eq!(st, (0, 0));
        let get = |k: &str| keys.iter().find(|(x, _)| x == k).unwrap().1.clone();
        let id: u8 = get("CHAP_I").parse().unwrap();
        let challenge = unhex(&get("CHAP_C")).unwrap();
        use md5::Digest as _;
        let mut h = md5::Md5::new();
        h.update([id]);
        h.update(secret.as_bytes());
        h.update(&challenge);
        let resp = format!("CHAP_N={user}\0CHAP_R=0x{}\0", hex(&h.finalize()));
        let (st, _) = exchange(0x81, &resp);
        if st != (0, 0) {
            t.join().unwrap();
            return (st, Vec::new());
        }
        let (st, _) = exchange(0x87, "MaxRecvDataSegmentLength=8192\0");
        assert_eq!(st, (0, 0));
        client
            .write_all(&pdu(op::TEXT_REQ, 0x80, 2, b"SendTargets=All\0"))
            .unwrap();
        let p = read_pdu(&mut client, u32::MAX).unwrap();
        drop(client);
        t.join().unwrap();
        let targets = parse_text(&p.data)
            .into_iter()
            .filter(|(k, _)| k == "TargetName")
            .map(|(_, v)| v)
            .collect();
        ((0, 0), targets)
    }

    #[test]
    fn an_export_with_its_own_credential_takes_only_chap_logins_with_it() {
        let iqn = "iqn.2026-11.io.arca:export-1";
        let disk = || {
            Private(Arc::new(MemDisk {
                data: vec![0; 4096],
            }))
        };
        let run_private = |input: &[u8]| {
            let mut out = Vec::new();
            let _ = session(input, &mut out, &disk(), &IscsiConfig::default(), "p");
            let mut r = &out[..];
            read_pdu(&mut r, u32::MAX).unwrap()
        };
        // No authentication at all, or AuthMethod=None only: refused.
        assert_eq!(run_private(&login(iqn, "")).bhs.0[36..38], [2, 1]);
        let mut p = login(iqn, "AuthMethod=None\0");
        p[1] = 0x81;
        assert_eq!(run_private(&p).bhs.0[36..38], [2, 1]);
        // Discovery without CHAP: refused too.
        let p = pdu(
            0x43,
            0x81,
            1,
            b"InitiatorName=iqn.t\0SessionType=Discovery\0AuthMethod=None\0",
        );
        assert_eq!(run_private(&p).bhs.0[36..38], [2, 1]);
        // Wrong secret, wrong user: authentication failure.
        assert_eq!(
            chap_login(Some(iqn), "export-1", "0123456789abcdeX").0,
            (2, 1)
        );
        assert_eq!(chap_login(Some(iqn), "export-2", SECRET).0, (2, 1));
        assert_eq!(chap_login(None, "export-1", "wrong").0, (2, 1));
        assert_eq!(chap_login(None, "nobody", SECRET).0, (2, 1));
        // The right credential logs in; discovery lists only that export.
        assert_eq!(chap_login(Some(iqn), "export-1", SECRET).0, (0, 0));
        assert_eq!(
            chap_login(None, "export-1", SECRET),
            ((0, 0), vec![iqn.to_string()])
        );
    }

    #[test]
    fn commands_after_login_get_data_or_sense_and_the_session_goes_on() {
        let mut input = login(
            "iqn.2026-11.io.arca:vm.latest",
            "MaxRecvDataSegmentLength=4096\0",
        );
        // READ(10) of 16 blocks: 8 KiB in 4 KiB Data-In PDUs.
        input.extend(scsi(&[0x28, 0, 0, 0, 0, 1, 0, 0, 16, 0], 8192));
        // Past the end, an unknown opcode, a write to a read-only disk.
        input.extend(scsi(&[0x28, 0, 0, 0, 0, 200, 0, 0, 1, 0], 512));
        input.extend(scsi(&[0xee], 0));
        let mut w = scsi(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512);
        w[1] = 0xa0;
        input.extend(w);
        input.extend(pdu(op::NOP_OUT, 0x80, 9, b"ping"));
        input.extend(pdu(op::LOGOUT_REQ, 0x80, 10, b""));
        let out = run(&input, &IscsiConfig::default());
        let ops: Vec<u8> = out.iter().map(|p| p.bhs.opcode()).collect();
        assert_eq!(
            ops,
            [
                op::LOGIN_RSP,
                op::DATA_IN,
                op::DATA_IN,
                op::SCSI_RSP,
                op::SCSI_RSP,
                op::SCSI_RSP,
                op::NOP_IN,
                op::LOGOUT_RSP
            ]
        );
        let data: Vec<u8> = [out[1].data.clone(), out[2].data.clone()].concat();
        let want: Vec<u8> = (512..512 + 8192).map(|i| (i % 251) as u8).collect();
        assert_eq!(data, want);
        assert_eq!(out[2].bhs.flags() & 0x81, 0x81, "final with status");
        let sense = |p: &Pdu| (p.bhs.0[3], p.data[2 + 2], p.data[2 + 12]);
        assert_eq!(sense(&out[3]), (0x02, 0x05, 0x21));
        assert_eq!(sense(&out[4]), (0x02, 0x05, 0x20));
        assert_eq!(sense(&out[5]), (0x02, 0x07, 0x27));
        assert_eq!(out[6].data, b"ping");
        // StatSN counts every response.
        let sns: Vec<u32> = out.iter().map(|p| p.bhs.u32(24)).collect();
        assert_eq!(sns, [0, 0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn oversized_segments_end_the_connection() {
        let mut input = login("iqn.2026-11.io.arca:vm.latest", "");
        let mut b = Bhs::new(op::SCSI_CMD);
        b.0[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        input.extend_from_slice(&b.0);
        let out = run(&input, &IscsiConfig::default());
        assert_eq!(out.len(), 1, "only the login answer");
        assert!(matches!(
            read_pdu(&mut &b.0[..], MAX_RECV_DSL),
            Err(PduError::TooLong(_))
        ));
    }

    #[test]
    fn cdbs_decode() {
        let mut c = [0u8; 16];
        c[..6].copy_from_slice(&[0x08, 0x01, 0x02, 0x03, 0, 0]);
        assert_eq!(decode_rw(&c), Some((0x10203, 256, false, 0)));
        c = [0; 16];
        c[0] = 0x8a;
        c[9] = 5;
        c[13] = 2;
        assert_eq!(decode_rw(&c), Some((5, 2, true, 0)));
        c[0] = 0x12;
        assert_eq!(decode_rw(&c), None);
        assert_eq!(
            parse_text(b"A=1\0B\0C=x=y\0\xff=1\0"),
            vec![("A".into(), "1".into()), ("C".into(), "x=y".into())]
        );
        assert_eq!(unhex("0x0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("0x0"), None);
    }

    #[test]
    fn the_usual_commands_answer_as_spc_and_sbc_say() {
        let lun = Lun {
            disk: Arc::new(MemDisk {
                data: vec![1; 8 << 10],
            }),
            name: "d".into(),
        };
        let cdb = |b: &[u8]| {
            let mut c = [0u8; 16];
            c[..b.len()].copy_from_slice(b);
            c
        };
        let good = |o: Outcome| match o {
            Outcome::Good(v) => v,
            o => panic!("{o:?}"),
        };
        // READ CAPACITY(10): last LBA 15, 512-byte blocks.
        assert_eq!(
            good(lun.execute(&cdb(&[0x25]), &[])),
            [0, 0, 0, 15, 0, 0, 2, 0]
        );
        // MODE SENSE(10), all pages, with the block descriptor: WP and DPOFUA.
        let v = good(lun.execute(&cdb(&[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x10, 0]), &[]));
        assert_eq!(u16::from_be_bytes([v[0], v[1]]) as usize, v.len() - 2);
        assert_eq!(v[3], 0x90);
        assert_eq!(u16::from_be_bytes([v[6], v[7]]), 8);
        assert_eq!(v[8 + 8], 0x08, "caching page first");
        // Saved values are not supported; unknown pages are invalid.
        assert_eq!(
            lun.execute(&cdb(&[0x1a, 0, 0xc8, 0, 0xff]), &[]),
            Outcome::Check(0x05, 0x39, 0)
        );
        assert_eq!(
            lun.execute(&cdb(&[0x1a, 0, 0x19, 0, 0xff]), &[]),
            Outcome::Check(0x05, 0x24, 0)
        );
        // REQUEST SENSE: no sense, cut to the allocation length.
        assert_eq!(good(lun.execute(&cdb(&[0x03, 0, 0, 0, 8]), &[])).len(), 8);
        // REPORT LUNS: LUN 0.
        let v = good(lun.execute(&cdb(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), &[]));
        assert_eq!(v, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // SYNCHRONIZE CACHE within and past the end.
        assert_eq!(lun.execute(&cdb(&[0x35]), &[]), Outcome::Good(Vec::new()));
        assert_eq!(
            lun.execute(&cdb(&[0x35, 0, 0, 0, 0, 16, 0, 0, 1]), &[]),
            Outcome::Check(0x05, 0x21, 0)
        );
        // READ(10) with RDPROTECT: no protection information here.
        assert_eq!(
            lun.execute(&cdb(&[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1]), &[]),
            Outcome::Check(0x05, 0x24, 0)
        );
        // Standard INQUIRY and an unknown VPD page.
        let v = good(lun.execute(&cdb(&[0x12, 0, 0, 0, 96]), &[]));
        assert_eq!(&v[8..12], b"ARCA");
        assert_eq!(
            lun.execute(&cdb(&[0x12, 1, 0x99, 0, 96]), &[]),
            Outcome::Check(0x05, 0x24, 0)
        );
    }
}
