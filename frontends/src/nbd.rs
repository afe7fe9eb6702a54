//! An NBD server (the protocol of <https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md>,
//! written from the document): fixed newstyle handshake; `NBD_OPT_GO`,
//! `INFO`, `LIST`, `EXPORT_NAME`, `ABORT`; structured replies; block status
//! for the `base:allocation` meta context, so holes are reported; any
//! number of exports and connections. Read-only exports refuse writes with
//! `EPERM`; writable ones (an [`crate::overlay::Overlay`]) take writes,
//! trims and write-zeroes into their overlay.
//!
//! A session is generic over `Read + Write`, so the fuzz target drives the
//! whole parser (options and requests) from bytes in memory. Bad input
//! gets the protocol's error (`NBD_REP_ERR_*` while negotiating, `EINVAL`
//! and friends in transmission), or, where the stream can no longer be
//! framed (a wrong magic, an oversized option or write), the connection is
//! closed; the server goes on serving everyone else.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::reader::BlockSource;
use crate::Exports;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_STRUCTURED_REPLY: u32 = 8;
const OPT_LIST_META_CONTEXT: u32 = 9;
const OPT_SET_META_CONTEXT: u32 = 10;

const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_META_CONTEXT: u32 = 4;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const REP_ERR_POLICY: u32 = (1 << 31) + 2;
const REP_ERR_INVALID: u32 = (1 << 31) + 3;
const REP_ERR_TLS_REQD: u32 = (1 << 31) + 5;
const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;
const REP_ERR_TOO_BIG: u32 = (1 << 31) + 9;

const INFO_EXPORT: u16 = 0;
const INFO_NAME: u16 = 1;
const INFO_DESCRIPTION: u16 = 2;
const INFO_BLOCK_SIZE: u16 = 3;

const TFLAG_HAS_FLAGS: u16 = 1;
const TFLAG_READ_ONLY: u16 = 2;
const TFLAG_SEND_FLUSH: u16 = 4;
const TFLAG_SEND_FUA: u16 = 8;
const TFLAG_SEND_TRIM: u16 = 32;
const TFLAG_SEND_WRITE_ZEROES: u16 = 64;
const TFLAG_SEND_DF: u16 = 128;
const TFLAG_CAN_MULTI_CONN: u16 = 256;
const TFLAG_SEND_CACHE: u16 = 1024;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_CACHE: u16 = 5;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_BLOCK_STATUS: u16 = 7;

const CMD_FLAG_FUA: u16 = 1;
const CMD_FLAG_REQ_ONE: u16 = 8;

const REPLY_FLAG_DONE: u16 = 1;
const REPLY_TYPE_NONE: u16 = 0;
const REPLY_TYPE_OFFSET_DATA: u16 = 1;
const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
const REPLY_TYPE_ERROR: u16 = (1 << 15) + 1;

const EPERM: u32 = 1;
const EIO: u32 = 5;
const EINVAL: u32 = 22;
const ENOSPC: u32 = 28;
const EOVERFLOW: u32 = 75;

const STATE_HOLE: u32 = 1;
const STATE_ZERO: u32 = 2;

/// Largest option payload accepted.
const MAX_OPTION: u32 = 64 << 10;
/// Largest read or write payload (the usual NBD limit).
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// The id of `base:allocation` in this server.
const ALLOCATION_ID: u32 = 1;
const ALLOCATION: &str = "base:allocation";

/// Accept connections forever, one thread each (no TLS).
pub fn serve(listener: TcpListener, exports: Arc<dyn Exports>) -> io::Result<()> {
    serve_with(listener, exports, None)
}

/// Accept connections forever, one thread each; with `tls`, every client
/// must negotiate STARTTLS first (the protocol's FORCEDTLS mode).
pub fn serve_with(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("nbd accept: {e}");
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let exports = exports.clone();
        let tls = tls.clone();
        std::thread::Builder::new()
            .name("nbd-conn".into())
            .spawn(move || {
                let _span = tracing::info_span!("client", peer = %peer).entered();
                let r = match tls {
                    Some(cfg) => tls_session(conn, exports.as_ref(), cfg),
                    None => match conn.try_clone() {
                        Ok(w) => session(
                            io::BufReader::with_capacity(64 << 10, conn),
                            io::BufWriter::with_capacity(256 << 10, w),
                            exports.as_ref(),
                        ),
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = r {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        tracing::info!(error = %e, "nbd client connection ended with an error");
                    }
                }
            })?;
    }
    Ok(())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn bad(m: impl Into<String>) -> io::Error {
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

/// How option negotiation ended.
enum Negotiated {
    Export(String, Arc<dyn BlockSource>),
    /// The client aborted.
    Abort,
    /// STARTTLS was acknowledged: go on inside TLS.
    StartTls,
}

struct Session<'e, W: Write> {
    w: W,
    exports: &'e dyn Exports,
    /// FORCEDTLS and not yet in TLS: only STARTTLS and ABORT are served.
    tls_required: bool,
    /// Inside TLS.
    tls_active: bool,
    structured: bool,
    /// The export `base:allocation` was selected for, if any.
    meta_for: Option<String>,
}

impl<W: Write> Session<'_, W> {
    fn opt_reply(&mut self, opt: u32, kind: u32, data: &[u8]) -> io::Result<()> {
        let mut h = Vec::with_capacity(20 + data.len());
        h.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
        h.extend_from_slice(&opt.to_be_bytes());
        h.extend_from_slice(&kind.to_be_bytes());
        h.extend_from_slice(&(data.len() as u32).to_be_bytes());
        h.extend_from_slice(data);
        self.w.write_all(&h)
    }

    fn opt_error(&mut self, opt: u32, kind: u32, msg: &str) -> io::Result<()> {
        self.opt_reply(opt, kind, msg.as_bytes())?;
        self.w.flush()
    }

    /// The export `name` (the only one, when the name is empty and the
    /// list is public).
    fn find(&self, name: &str) -> Option<(String, Arc<dyn BlockSource>)> {
        if name.is_empty() && !self.exports.private() {
            let names = self.exports.names();
            if names.len() == 1 {
                let n = names.into_iter().next()?;
                return self.exports.open(&n).map(|e| (n, e));
            }
            return None;
        }
        self.exports.open(name).map(|e| (name.to_string(), e))
    }

    fn tflags(disk: &dyn BlockSource) -> u16 {
        let base = TFLAG_HAS_FLAGS
            | TFLAG_SEND_FLUSH
            | TFLAG_SEND_DF
            | TFLAG_CAN_MULTI_CONN
            | TFLAG_SEND_CACHE;
        if disk.writable() {
            base | TFLAG_SEND_FUA | TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES
        } else {
            base | TFLAG_READ_ONLY
        }
    }

    /// Negotiate options until an export is chosen, the client aborts,
    /// or (before TLS on a TLS server) STARTTLS is acknowledged.
    fn negotiate<R: Read>(&mut self, r: &mut R, no_zeroes: bool) -> io::Result<Negotiated> {
        loop {
            if read_u64(r)? != IHAVEOPT {
                return Err(bad("option without IHAVEOPT"));
            }
            let opt = read_u32(r)?;
            let len = read_u32(r)?;
            if len > MAX_OPTION {
                // Cannot be skipped safely in bounded memory: say so, stop.
                self.opt_error(opt, REP_ERR_TOO_BIG, "option too large")?;
                return Err(bad("option too large"));
            }
            let mut data = vec![0; len as usize];
            r.read_exact(&mut data)?;
            if self.tls_required && !self.tls_active {
                match opt {
                    OPT_STARTTLS if data.is_empty() => {
                        self.opt_reply(opt, REP_ACK, &[])?;
                        self.w.flush()?;
                        return Ok(Negotiated::StartTls);
                    }
                    OPT_STARTTLS => self.opt_error(opt, REP_ERR_INVALID, "takes no data")?,
                    OPT_ABORT => {
                        self.opt_reply(opt, REP_ACK, &[])?;
                        self.w.flush()?;
                        return Ok(Negotiated::Abort);
                    }
                    // No way to answer an error here: close.
                    OPT_EXPORT_NAME => return Err(bad("EXPORT_NAME before STARTTLS")),
                    _ => self.opt_error(
                        opt,
                        REP_ERR_TLS_REQD,
                        "this server requires TLS: negotiate STARTTLS first",
                    )?,
                }
                continue;
            }
            match opt {
                OPT_STARTTLS => {
                    let why = if self.tls_active {
                        "TLS is already in use"
                    } else {
                        "this server has no TLS certificate (arca serve nbd --tls-cert)"
                    };
                    let kind = if self.tls_active {
                        REP_ERR_INVALID
                    } else {
                        REP_ERR_UNSUP
                    };
                    self.opt_error(opt, kind, why)?;
                }
                OPT_EXPORT_NAME => {
                    let name = String::from_utf8_lossy(&data).into_owned();
                    // No way to answer an error here: close.
                    let Some((name, e)) = self.find(&name) else {
                        return Err(bad(format!(
                            "unknown export {:?}",
                            self.exports.label(&name)
                        )));
                    };
                    self.w.write_all(&e.size().to_be_bytes())?;
                    self.w.write_all(&Self::tflags(e.as_ref()).to_be_bytes())?;
                    if !no_zeroes {
                        self.w.write_all(&[0; 124])?;
                    }
                    self.w.flush()?;
                    if self.meta_for.as_deref() != Some(&name) {
                        self.meta_for = None;
                    }
                    return Ok(Negotiated::Export(name, e));
                }
                OPT_ABORT => {
                    self.opt_reply(opt, REP_ACK, &[])?;
                    self.w.flush()?;
                    return Ok(Negotiated::Abort);
                }
                OPT_LIST => {
                    if !data.is_empty() {
                        self.opt_error(opt, REP_ERR_INVALID, "LIST takes no data")?;
                        continue;
                    }
                    if self.exports.private() {
                        self.opt_error(
                            opt,
                            REP_ERR_POLICY,
                            "this server does not list its exports: connect with the address the API gave",
                        )?;
                        continue;
                    }
                    for n in self.exports.names() {
                        let mut d = (n.len() as u32).to_be_bytes().to_vec();
                        d.extend_from_slice(n.as_bytes());
                        self.opt_reply(opt, REP_SERVER, &d)?;
                    }
                    self.opt_reply(opt, REP_ACK, &[])?;
                    self.w.flush()?;
                }
                OPT_STRUCTURED_REPLY => {
                    if !data.is_empty() {
                        self.opt_error(opt, REP_ERR_INVALID, "takes no data")?;
                        continue;
                    }
                    self.structured = true;
                    self.opt_reply(opt, REP_ACK, &[])?;
                    self.w.flush()?;
                }
                OPT_INFO | OPT_GO => {
                    let Some((name, infos)) = parse_go(&data) else {
                        self.opt_error(opt, REP_ERR_INVALID, "malformed INFO/GO request")?;
                        continue;
                    };
                    let Some((name, e)) = self.find(&name) else {
                        let msg = format!("no export {:?}", self.exports.label(&name));
                        self.opt_error(opt, REP_ERR_UNKNOWN, &msg)?;
                        continue;
                    };
                    let mut d = INFO_EXPORT.to_be_bytes().to_vec();
                    d.extend_from_slice(&e.size().to_be_bytes());
                    d.extend_from_slice(&Self::tflags(e.as_ref()).to_be_bytes());
                    self.opt_reply(opt, REP_INFO, &d)?;
                    for i in infos {
                        let mut d = i.to_be_bytes().to_vec();
                        match i {
                            INFO_NAME => d.extend_from_slice(name.as_bytes()),
                            INFO_DESCRIPTION => match self.exports.description(&name) {
                                Some(s) => d.extend_from_slice(s.as_bytes()),
                                None => continue,
                            },
                            INFO_BLOCK_SIZE => {
                                d.extend_from_slice(&1u32.to_be_bytes());
                                d.extend_from_slice(&e.block_size().to_be_bytes());
                                d.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
                            }
                            _ => continue,
                        }
                        self.opt_reply(opt, REP_INFO, &d)?;
                    }
                    self.opt_reply(opt, REP_ACK, &[])?;
                    self.w.flush()?;
                    if opt == OPT_GO {
                        if self.meta_for.as_deref() != Some(&name) {
                            self.meta_for = None;
                        }
                        return Ok(Negotiated::Export(name, e));
                    }
                }
                OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => {
                    let Some((name, queries)) = parse_meta(&data) else {
                        self.opt_error(opt, REP_ERR_INVALID, "malformed meta context request")?;
                        continue;
                    };
                    if opt == OPT_SET_META_CONTEXT && !self.structured {
                        self.opt_error(opt, REP_ERR_INVALID, "negotiate structured replies first")?;
                        continue;
                    }
                    let Some((name, _)) = self.find(&name) else {
                        let msg = format!("no export {:?}", self.exports.label(&name));
                        self.opt_error(opt, REP_ERR_UNKNOWN, &msg)?;
                        continue;
                    };
                    let wanted = if opt == OPT_LIST_META_CONTEXT && queries.is_empty() {
                        true
                    } else {
                        queries.iter().any(|q| {
                            q == ALLOCATION || (opt == OPT_LIST_META_CONTEXT && q == "base:")
                        })
                    };
                    if wanted {
                        let mut d = ALLOCATION_ID.to_be_bytes().to_vec();
                        d.extend_from_slice(ALLOCATION.as_bytes());
                        self.opt_reply(opt, REP_META_CONTEXT, &d)?;
                    }
                    if opt == OPT_SET_META_CONTEXT {
                        self.meta_for = wanted.then_some(name);
                    }
                    self.opt_reply(opt, REP_ACK, &[])?;
                    self.w.flush()?;
                }
                _ => {
                    self.opt_error(opt, REP_ERR_UNSUP, "option not supported")?;
                }
            }
        }
    }

    fn chunk(&mut self, flags: u16, kind: u16, cookie: u64, payload: &[&[u8]]) -> io::Result<()> {
        let len: usize = payload.iter().map(|p| p.len()).sum();
        self.w.write_all(&STRUCTURED_REPLY_MAGIC.to_be_bytes())?;
        self.w.write_all(&flags.to_be_bytes())?;
        self.w.write_all(&kind.to_be_bytes())?;
        self.w.write_all(&cookie.to_be_bytes())?;
        self.w.write_all(&(len as u32).to_be_bytes())?;
        for p in payload {
            self.w.write_all(p)?;
        }
        Ok(())
    }

    /// Success without data.
    fn ok(&mut self, cookie: u64) -> io::Result<()> {
        if self.structured {
            self.chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, &[])
        } else {
            self.simple(0, cookie, &[])
        }
    }

    fn simple(&mut self, err: u32, cookie: u64, data: &[u8]) -> io::Result<()> {
        self.w.write_all(&SIMPLE_REPLY_MAGIC.to_be_bytes())?;
        self.w.write_all(&err.to_be_bytes())?;
        self.w.write_all(&cookie.to_be_bytes())?;
        self.w.write_all(data)
    }

    fn error(&mut self, cookie: u64, err: u32, msg: &str) -> io::Result<()> {
        if self.structured {
            let msg = &msg.as_bytes()[..msg.len().min(4096)];
            self.chunk(
                REPLY_FLAG_DONE,
                REPLY_TYPE_ERROR,
                cookie,
                &[&err.to_be_bytes(), &(msg.len() as u16).to_be_bytes(), msg],
            )
        } else {
            self.simple(err, cookie, &[])
        }
    }

    fn transmit<R: Read>(
        &mut self,
        r: &mut R,
        name: &str,
        disk: &dyn BlockSource,
    ) -> io::Result<()> {
        let size = disk.size();
        let mut buf = Vec::new();
        loop {
            let mut h = [0u8; 28];
            r.read_exact(&mut h)?;
            let req = parse_request(&h).ok_or_else(|| bad("request without its magic"))?;
            let end = req.offset.checked_add(req.len as u64);
            let in_range = end.is_some_and(|e| e <= size);
            match req.kind {
                CMD_READ => {
                    if req.len > MAX_PAYLOAD {
                        self.error(req.cookie, EOVERFLOW, "read larger than 32 MiB")?;
                    } else if !in_range {
                        self.error(req.cookie, EINVAL, "read past the end of the export")?;
                    } else {
                        buf.resize(req.len as usize, 0);
                        match disk.read_at(req.offset, &mut buf) {
                            Ok(()) if self.structured => self.chunk(
                                REPLY_FLAG_DONE,
                                REPLY_TYPE_OFFSET_DATA,
                                req.cookie,
                                &[&req.offset.to_be_bytes(), &buf],
                            )?,
                            Ok(()) => self.simple(0, req.cookie, &buf)?,
                            Err(e) => {
                                let label = self.exports.label(name);
                                tracing::warn!("nbd {label}: read at {}: {e}", req.offset);
                                self.error(req.cookie, EIO, &e.to_string())?;
                            }
                        }
                    }
                }
                CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES => {
                    let mut data = Vec::new();
                    if req.kind == CMD_WRITE {
                        if req.len > MAX_PAYLOAD {
                            return Err(bad("write payload larger than 32 MiB"));
                        }
                        // Always consume the payload to stay in step.
                        data.resize(req.len as usize, 0);
                        r.read_exact(&mut data)?;
                    }
                    if !disk.writable() {
                        self.error(req.cookie, EPERM, "the export is read-only")?;
                    } else if !in_range {
                        self.error(req.cookie, ENOSPC, "write past the end of the export")?;
                    } else {
                        let result = if req.kind == CMD_WRITE {
                            disk.write_at(req.offset, &data)
                        } else {
                            // Trim and write-zeroes both leave zeros.
                            let zeros = vec![0u8; (req.len as usize).min(1 << 20)];
                            let mut done = 0u64;
                            let mut r = Ok(());
                            while r.is_ok() && done < req.len as u64 {
                                let n = (req.len as u64 - done).min(zeros.len() as u64);
                                r = disk.write_at(req.offset + done, &zeros[..n as usize]);
                                done += n;
                            }
                            r
                        };
                        let result = result.and_then(|()| {
                            if req.flags & CMD_FLAG_FUA != 0 {
                                disk.flush()
                            } else {
                                Ok(())
                            }
                        });
                        match result {
                            Ok(()) => self.ok(req.cookie)?,
                            Err(e) => self.error(req.cookie, EIO, &e.to_string())?,
                        }
                    }
                }
                CMD_DISC => {
                    self.w.flush()?;
                    return Ok(());
                }
                CMD_FLUSH => match disk.flush() {
                    Ok(()) => self.ok(req.cookie)?,
                    Err(e) => self.error(req.cookie, EIO, &e.to_string())?,
                },
                CMD_CACHE => {
                    if in_range {
                        self.ok(req.cookie)?
                    } else {
                        self.error(req.cookie, EINVAL, "range past the end of the export")?
                    }
                }
                CMD_BLOCK_STATUS => {
                    if self.meta_for.as_deref() != Some(name) {
                        self.error(req.cookie, EINVAL, "no meta context was negotiated")?;
                    } else if req.len == 0 || req.offset >= size {
                        self.error(req.cookie, EINVAL, "range past the end of the export")?;
                    } else {
                        // Clip to the end, as the protocol allows.
                        let len = (req.len as u64).min(size - req.offset);
                        match disk.extents(req.offset, len) {
                            Ok(ext) => {
                                let mut d = Vec::with_capacity(8 * ext.len());
                                for e in ext {
                                    let flags = if e.hole { STATE_HOLE | STATE_ZERO } else { 0 };
                                    let mut left = e.len;
                                    while left > 0 {
                                        let n = left.min(u32::MAX as u64 & !4095) as u32;
                                        d.extend_from_slice(&n.to_be_bytes());
                                        d.extend_from_slice(&flags.to_be_bytes());
                                        left -= n as u64;
                                    }
                                    if req.flags & CMD_FLAG_REQ_ONE != 0 {
                                        d.truncate(8);
                                        break;
                                    }
                                }
                                self.chunk(
                                    REPLY_FLAG_DONE,
                                    REPLY_TYPE_BLOCK_STATUS,
                                    req.cookie,
                                    &[&ALLOCATION_ID.to_be_bytes(), &d],
                                )?;
                            }
                            Err(e) => self.error(req.cookie, EIO, &e.to_string())?,
                        }
                    }
                }
                _ => self.error(req.cookie, EINVAL, "unknown command")?,
            }
            self.w.flush()?;
        }
    }
}

/// Send the greeting and read the client's flags; returns `no_zeroes`.
fn greet<R: Read, W: Write>(r: &mut R, w: &mut W) -> io::Result<bool> {
    w.write_all(&NBDMAGIC.to_be_bytes())?;
    w.write_all(&IHAVEOPT.to_be_bytes())?;
    w.write_all(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes())?;
    w.flush()?;
    let client = read_u32(r)?;
    if client & FLAG_FIXED_NEWSTYLE as u32 == 0 {
        return Err(bad("the client does not speak fixed newstyle"));
    }
    Ok(client & FLAG_NO_ZEROES as u32 != 0)
}

fn new_session<W: Write>(w: W, exports: &dyn Exports, tls: bool) -> Session<'_, W> {
    Session {
        w,
        exports,
        tls_required: tls,
        tls_active: false,
        structured: false,
        meta_for: None,
    }
}

/// Serve one client from handshake to disconnect (no TLS).
pub fn session<R: Read, W: Write>(mut r: R, mut w: W, exports: &dyn Exports) -> io::Result<()> {
    let no_zeroes = greet(&mut r, &mut w)?;
    let mut s = new_session(w, exports, false);
    match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::Export(name, disk) => {
            let _log = crate::ClientLog::connected("nbd", s.exports.label(&name));
            s.transmit(&mut r, &name, disk.as_ref())
        }
        Negotiated::Abort | Negotiated::StartTls => Ok(()),
    }
}

/// The part of a TLS-only (FORCEDTLS) session before the TLS handshake:
/// greeting, then options until STARTTLS. Returns `Some(no_zeroes)` when
/// STARTTLS was acknowledged, `None` when the client aborted.
pub fn before_tls<R: Read, W: Write>(
    mut r: R,
    mut w: W,
    exports: &dyn Exports,
) -> io::Result<Option<bool>> {
    let no_zeroes = greet(&mut r, &mut w)?;
    let mut s = new_session(w, exports, true);
    Ok(match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::StartTls => Some(no_zeroes),
        _ => None,
    })
}

/// A rustls server configuration from PEM files (certificate chain and
/// private key).
pub fn tls_config(cert: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| io::Error::other(format!("certificate and key: {e}")))?;
    Ok(Arc::new(cfg))
}

/// One object as both halves of a session (a TLS stream): the session
/// reads and writes from one thread, never at once.
struct Half<S>(Rc<RefCell<S>>);

impl<S: Read> Read for Half<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

impl<S: Write> Write for Half<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// A TLS-only session on a TCP connection.
fn tls_session(
    conn: TcpStream,
    exports: &dyn Exports,
    cfg: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    let Some(no_zeroes) = before_tls(&conn, &conn, exports)? else {
        return Ok(());
    };
    let tls = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
    let stream = Rc::new(RefCell::new(rustls::StreamOwned::new(tls, conn)));
    let mut r = io::BufReader::with_capacity(64 << 10, Half(stream.clone()));
    let w = io::BufWriter::with_capacity(256 << 10, Half(stream));
    let mut s = new_session(w, exports, true);
    s.tls_active = true;
    match s.negotiate(&mut r, no_zeroes)? {
        Negotiated::Export(name, disk) => {
            let _log = crate::ClientLog::connected("nbd", s.exports.label(&name));
            s.transmit(&mut r, &name, disk.as_ref())
        }
        Negotiated::Abort | Negotiated::StartTls => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reader::MemDisk;

    struct One(Arc<MemDisk>);

    impl Exports for One {
        fn names(&self) -> Vec<String> {
            vec!["disk".into()]
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            (name == "disk").then(|| self.0.clone() as Arc<dyn BlockSource>)
        }
    }

    fn opt(o: u32, data: &[u8]) -> Vec<u8> {
        let mut v = IHAVEOPT.to_be_bytes().to_vec();
        v.extend_from_slice(&o.to_be_bytes());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn go(name: &str) -> Vec<u8> {
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&0u16.to_be_bytes());
        opt(OPT_GO, &d)
    }

    fn req(kind: u16, cookie: u64, offset: u64, len: u32) -> Vec<u8> {
        let mut v = REQUEST_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&kind.to_be_bytes());
        v.extend_from_slice(&cookie.to_be_bytes());
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    /// Option replies' types, in order, from the server's output after
    /// the 18-byte greeting (stops at the first non-reply).
    fn reply_types(out: &[u8]) -> Vec<u32> {
        let mut p = &out[18..];
        let mut v = Vec::new();
        while p.len() >= 20 && p[..8] == OPT_REPLY_MAGIC.to_be_bytes() {
            let kind = u32::from_be_bytes(p[12..16].try_into().unwrap());
            let len = u32::from_be_bytes(p[16..20].try_into().unwrap()) as usize;
            v.push(kind);
            p = &p[20 + len..];
        }
        v
    }

    fn run(input: &[u8]) -> (io::Result<()>, Vec<u8>) {
        let mut data = vec![1u8; 8192];
        data[4096..].fill(0);
        let e = One(Arc::new(MemDisk { data }));
        let mut out = Vec::new();
        let r = session(input, &mut out, &e);
        (r, out)
    }

    #[test]
    fn bad_options_get_the_protocol_s_errors_and_negotiation_goes_on() {
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_GO, &[0, 0, 0, 9, b'x'])); // truncated name
        input.extend(go("nope"));
        input.extend(opt(OPT_SET_META_CONTEXT, &[0; 12])); // before structured
        input.extend(opt(99, b""));
        input.extend(go("disk"));
        input.extend(req(CMD_READ, 1, 0, 16));
        input.extend(req(CMD_READ, 2, 8190, 16)); // past the end
        input.extend(req(CMD_WRITE, 3, 0, 2));
        input.extend(b"hi");
        input.extend(req(CMD_BLOCK_STATUS, 4, 0, 8192)); // no meta context
        input.extend(req(CMD_DISC, 5, 0, 0));
        let (r, out) = run(&input);
        r.unwrap();
        assert_eq!(
            reply_types(&out),
            vec![
                REP_ERR_INVALID,
                REP_ERR_UNKNOWN,
                REP_ERR_INVALID,
                REP_ERR_UNSUP,
                REP_INFO,
                REP_ACK
            ]
        );
        // Simple replies: data, then EINVAL, EPERM, EINVAL.
        let tail = &out[out.len() - (16 + 16) - 16 * 3..];
        let err = |at: usize| u32::from_be_bytes(tail[at + 4..at + 8].try_into().unwrap());
        assert_eq!(err(0), 0);
        assert_eq!(&tail[16..32], &[1u8; 16]);
        assert_eq!(err(32), EINVAL);
        assert_eq!(err(48), EPERM);
        assert_eq!(err(64), EINVAL);
    }

    #[test]
    fn a_wrong_request_magic_or_huge_option_closes_the_connection() {
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(go("disk"));
        input.extend([0u8; 28]);
        assert!(run(&input).0.is_err());
        let mut input = 3u32.to_be_bytes().to_vec();
        let mut big = IHAVEOPT.to_be_bytes().to_vec();
        big.extend_from_slice(&OPT_GO.to_be_bytes());
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        input.extend(big);
        let (r, out) = run(&input);
        assert!(r.is_err());
        assert_eq!(reply_types(&out), vec![REP_ERR_TOO_BIG]);
    }

    /// One export whose name carries a secret; nothing is listed.
    struct Private(Arc<MemDisk>);

    impl Exports for Private {
        fn names(&self) -> Vec<String> {
            Vec::new()
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            crate::same_secret(name.as_bytes(), b"export-1-s3cr3t")
                .then(|| self.0.clone() as Arc<dyn BlockSource>)
        }
        fn private(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_private_list_is_not_listed_and_only_the_full_name_opens() {
        let e = Private(Arc::new(MemDisk {
            data: vec![7; 4096],
        }));
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_LIST, b""));
        input.extend(go(""));
        input.extend(go("export-1"));
        input.extend(go("export-1-s3cr3u"));
        input.extend(go("export-1-s3cr3t"));
        let mut out = Vec::new();
        let r = session(&input[..], &mut out, &e);
        assert!(r.is_err()); // EOF after GO
        assert_eq!(
            reply_types(&out),
            [
                REP_ERR_POLICY,
                REP_ERR_UNKNOWN,
                REP_ERR_UNKNOWN,
                REP_ERR_UNKNOWN,
                REP_INFO,
                REP_ACK
            ]
        );
        // EXPORT_NAME with a wrong name: the connection ends unserved.
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_EXPORT_NAME, b"export-1"));
        let mut out = Vec::new();
        assert!(session(&input[..], &mut out, &e).is_err());
        assert_eq!(out.len(), 18, "only the greeting was sent");
    }

    #[test]
    fn a_tls_server_refuses_options_before_starttls() {
        let e = One(Arc::new(MemDisk {
            data: vec![0; 4096],
        }));
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(go("disk"));
        input.extend(opt(OPT_LIST, b""));
        input.extend(opt(OPT_STARTTLS, b"x"));
        input.extend(opt(OPT_STARTTLS, b""));
        let mut out = Vec::new();
        assert_eq!(before_tls(&input[..], &mut out, &e).unwrap(), Some(true));
        assert_eq!(
            reply_types(&out),
            [REP_ERR_TLS_REQD, REP_ERR_TLS_REQD, REP_ERR_INVALID, REP_ACK]
        );
        // EXPORT_NAME cannot be answered with an error: the connection ends.
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_EXPORT_NAME, b"disk"));
        assert!(before_tls(&input[..], &mut Vec::new(), &e).is_err());
        // Without TLS configured, STARTTLS is unsupported and GO still works.
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(opt(OPT_STARTTLS, b""));
        input.extend(go("disk"));
        let (r, out) = run(&input);
        assert!(r.is_err()); // EOF after GO
        assert_eq!(reply_types(&out)[..2], [REP_ERR_UNSUP, REP_INFO]);
    }
}
