//! A small synchronous NBD client: the fixed newstyle handshake with
//! structured replies and metadata contexts, then `READ` and
//! `BLOCK_STATUS`. It is what reads a qcow2 file through `qemu-nbd`
//! (allocated extents from `base:allocation`, changed extents from
//! `qemu:dirty-bitmap:NAME`) and what reads a libvirt backup job's pull-mode
//! export through an SSH channel.
//!
//! No crate on crates.io offers a client with block status (the `nbd`
//! crate has neither structured replies nor metadata contexts, and there
//! are no Rust bindings of libnbd here), so this one is written from the
//! protocol document. It is generic over any `Read + Write` stream (TCP,
//! a Unix socket, an SSH channel) and sends one request at a time:
//! simple, and enough to keep a backup's hashing workers busy over a local
//! socket (see docs/vm-ingest.md for the measurements).
//!
//! The server is untrusted: every reply is checked against the request it
//! answers (cookie, offsets inside the request, lengths within limits),
//! and a violation is an error, never a panic (fuzz target `nbd_client`).

pub mod wire;

use std::io::{Read, Write};

use arca_repo::{Error, Result};

use wire::*;

/// One extent of a metadata context: its offset, length and flags
/// (for `base:allocation` [`STATE_HOLE`] / [`STATE_ZERO`], for a dirty bitmap
/// [`STATE_DIRTY`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub flags: u32,
}

/// The largest read request sent (qemu-nbd's limit is 32 MiB).
const MAX_READ: u32 = 32 * 1024 * 1024;
/// The span asked for in one block status request.
const STATUS_SPAN: u64 = 1 << 30;

/// A connected client in the transmission phase.
pub struct NbdClient<S: Read + Write> {
    stream: S,
    info: ExportInfo,
    /// Negotiated metadata contexts: (id, name).
    contexts: Vec<(u32, String)>,
    cookie: u64,
    /// Largest read request.
    max_read: u32,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Io {
            context: format!("NBD {what}: the server closed the connection"),
            source: e,
        },
        _ => Error::io(format!("NBD {what}"), e),
    }
}

impl<S: Read + Write> NbdClient<S> {
    /// Negotiate with the server on `stream`: structured replies, the
    /// metadata `contexts` asked for (each must be granted, else an error
    /// naming it), and the export `name`.
    pub fn connect(mut stream: S, name: &str, contexts: &[&str]) -> Result<Self> {
        let mut greeting = [0u8; 18];
        stream.read_exact(&mut greeting).map_err(io("handshake"))?;
        let flags = parse_greeting(&greeting)?;
        let mut cflags = FLAG_C_FIXED_NEWSTYLE;
        if flags & FLAG_NO_ZEROES != 0 {
            cflags |= FLAG_C_NO_ZEROES;
        }
        stream
            .write_all(&cflags.to_be_bytes())
            .map_err(io("handshake"))?;
        let mut c = NbdClient {
            stream,
            info: ExportInfo::default(),
            contexts: Vec::new(),
            cookie: 0,
            max_read: MAX_READ,
        };
        let structured = !contexts.is_empty();
        if structured {
            c.option(OPT_STRUCTURED_REPLY, &[], "structured replies", |_, _| {
                Err(corrupt_reply("structured replies"))
            })?;
            let mut data = Vec::new();
            put_string(&mut data, name);
            data.extend_from_slice(&(contexts.len() as u32).to_be_bytes());
            for q in contexts {
                put_string(&mut data, q);
            }
            let mut granted = Vec::new();
            c.option(
                OPT_SET_META_CONTEXT,
                &data,
                "metadata contexts",
                |kind, d| {
                    if kind != REP_META_CONTEXT {
                        return Err(corrupt_reply("metadata contexts"));
                    }
                    granted.push(parse_meta_context(d)?);
                    Ok(())
                },
            )?;
            for q in contexts {
                if !granted.iter().any(|(_, n)| n == q) {
                    return Err(Error::NotFound(format!(
                        "NBD metadata context {q} on export {name:?} (the server did not offer it)"
                    )));
                }
            }
            c.contexts = granted;
        }
        let mut data = Vec::new();
        put_string(&mut data, name);
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        let mut info = ExportInfo::default();
        let mut has_export = false;
        c.option(OPT_GO, &data, &format!("export {name:?}"), |kind, d| {
            if kind != REP_INFO {
                return Err(corrupt_reply("export"));
            }
            has_export |= parse_info(d, &mut info)?;
            Ok(())
        })?;
        if !has_export {
            return Err(Error::Corrupt(
                "NBD server: no export size in its reply".into(),
            ));
        }
        if info.max_block >= 4096 {
            c.max_read = info.max_block.min(MAX_READ);
        }
        c.info = info;
        Ok(c)
    }

    /// Send an option and read its replies until `ACK`, giving the others
    /// to `each`; an error reply becomes the error.
    fn option(
        &mut self,
        opt: u32,
        data: &[u8],
        what: &str,
        mut each: impl FnMut(u32, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.stream
            .write_all(&encode_option(opt, data))
            .map_err(io(what))?;
        loop {
            let mut h = [0u8; 20];
            self.stream.read_exact(&mut h).map_err(io(what))?;
            let (kind, len) = parse_option_reply_header(&h, opt)?;
            let mut d = vec![0u8; len as usize];
            self.stream.read_exact(&mut d).map_err(io(what))?;
            if let Some(e) = option_error(kind, &d, what) {
                return Err(e);
            }
            if kind == REP_ACK {
                return Ok(());
            }
            each(kind, &d)?;
        }
    }

    /// The export's size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    fn next_cookie(&mut self) -> u64 {
        self.cookie = self.cookie.wrapping_add(1);
        self.cookie
    }

    fn send(&mut self, kind: u16, offset: u64, len: u32) -> Result<u64> {
        let cookie = self.next_cookie();
        self.stream
            .write_all(&encode_request(kind, 0, cookie, offset, len))
            .and_then(|()| self.stream.flush())
            .map_err(io("request"))?;
        Ok(cookie)
    }

    /// Read one reply header: Ok(None) for a simple reply without error,
    /// Some(header) for a structured chunk.
    fn reply_header(&mut self, cookie: u64, limit: u32) -> Result<Option<ChunkHeader>> {
        let mut m = [0u8; 4];
        self.stream.read_exact(&mut m).map_err(io("reply"))?;
        if reply_magic(&m)? {
            let mut b = [0u8; 16];
            self.stream.read_exact(&mut b).map_err(io("reply"))?;
            let h = parse_chunk_header(&b, limit)?;
            if h.cookie != cookie {
                return Err(corrupt_reply("a reply to a request never sent"));
            }
            Ok(Some(h))
        } else {
            let mut b = [0u8; 12];
            self.stream.read_exact(&mut b).map_err(io("reply"))?;
            let (err, c) = parse_simple_reply(&b);
            if c != cookie {
                return Err(corrupt_reply("a reply to a request never sent"));
            }
            if err != 0 {
                return Err(Error::Io {
                    context: format!("NBD server error {}", errno_name(err)),
                    source: std::io::Error::from_raw_os_error(err as i32),
                });
            }
            Ok(None)
        }
    }

    fn payload(&mut self, len: u32) -> Result<Vec<u8>> {
        let mut p = vec![0u8; len as usize];
        self.stream.read_exact(&mut p).map_err(io("reply"))?;
        Ok(p)
    }

    /// Read `buf.len()` bytes at `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.info.size)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "NBD read of {} bytes at {offset} beyond the export's {} bytes",
                    buf.len(),
                    self.info.size
                ))
            })?;
        let mut at = offset;
        while at < end {
            let n = (end - at).min(self.max_read as u64) as u32;
            let piece = &mut buf[(at - offset) as usize..][..n as usize];
            self.read_one(at, piece)?;
            at += n as u64;
        }
        Ok(())
    }

    fn read_one(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len() as u32;
        let cookie = self.send(CMD_READ, offset, len)?;
        // A structured read may come in pieces: data and holes, each
        // inside the request, together covering all of it.
        let mut covered = 0u64;
        let mut failure = None;
        loop {
            let Some(h) = self.reply_header(cookie, len.saturating_add(8))? else {
                // A simple reply: the data follows.
                self.stream.read_exact(buf).map_err(io("read"))?;
                return Ok(());
            };
            let p = self.payload(h.len)?;
            if h.is_error() {
                failure.get_or_insert(parse_error_chunk(&p));
            } else {
                match h.kind {
                    REPLY_TYPE_OFFSET_DATA if p.len() >= 8 => {
                        let at = u64::from_be_bytes(p[..8].try_into().unwrap_or_default());
                        let data = &p[8..];
                        if !inside(at, data.len() as u64, offset, len as u64) {
                            return Err(corrupt_reply("data outside the read request"));
                        }
                        buf[(at - offset) as usize..][..data.len()].copy_from_slice(data);
                        covered += data.len() as u64;
                    }
                    REPLY_TYPE_OFFSET_HOLE => {
                        let (at, n) = parse_offset_hole(&p)?;
                        if !inside(at, n as u64, offset, len as u64) {
                            return Err(corrupt_reply("a hole outside the read request"));
                        }
                        buf[(at - offset) as usize..][..n as usize].fill(0);
                        covered += n as u64;
                    }
                    REPLY_TYPE_NONE if h.len == 0 => {}
                    _ => return Err(corrupt_reply("an unexpected chunk in a read reply")),
                }
            }
            if h.done() {
                break;
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if covered != len as u64 {
            return Err(corrupt_reply(
                "a read reply that does not cover the request",
            ));
        }
        Ok(())
    }

    /// The extents of metadata context `context` (negotiated at connect)
    /// over `[offset, offset+len)`, in order and contiguous. The server may
    /// describe less than asked at each step; this asks again from where it
    /// stopped.
    pub fn block_status(&mut self, context: &str, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let id = self
            .contexts
            .iter()
            .find(|(_, n)| n == context)
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                Error::InvalidInput(format!("NBD metadata context {context} was not negotiated"))
            })?;
        let end = offset.saturating_add(len).min(self.info.size);
        let mut out: Vec<Extent> = Vec::new();
        let mut at = offset;
        while at < end {
            let ask = (end - at).min(STATUS_SPAN) as u32;
            let cookie = self.send(CMD_BLOCK_STATUS, at, ask)?;
            let mut got: Option<Vec<(u32, u32)>> = None;
            let mut failure = None;
            loop {
                // Up to 2 M descriptors (16 MiB) per context per reply.
                let Some(h) = self.reply_header(cookie, 16 << 20)? else {
                    return Err(corrupt_reply("a simple reply to block status"));
                };
                let p = self.payload(h.len)?;
                if h.is_error() {
                    failure.get_or_insert(parse_error_chunk(&p));
                } else if h.kind == REPLY_TYPE_BLOCK_STATUS {
                    let (cid, ext) = parse_block_status(&p)?;
                    if cid == id {
                        got = Some(ext);
                    }
                } else if !(h.kind == REPLY_TYPE_NONE && h.len == 0) {
                    return Err(corrupt_reply("an unexpected chunk in a block status reply"));
                }
                if h.done() {
                    break;
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
            let ext = got.ok_or_else(|| corrupt_reply("no extents for the context asked"))?;
            let mut progressed = false;
            for (n, flags) in ext {
                if n == 0 || at >= end {
                    // Descriptors past the request's end may be clipped away.
                    break;
                }
                let n = (n as u64).min(end - at);
                match out.last_mut() {
                    Some(l) if l.flags == flags && l.offset + l.len == at => l.len += n,
                    _ => out.push(Extent {
                        offset: at,
                        len: n,
                        flags,
                    }),
                }
                at += n;
                progressed = true;
            }
            if !progressed {
                return Err(corrupt_reply("block status that describes nothing"));
            }
        }
        Ok(out)
    }

    /// The extents of `context` over the whole export whose flags match
    /// `pred`, as (offset, length) pairs.
    pub fn extents_where(
        &mut self,
        context: &str,
        pred: impl Fn(u32) -> bool,
    ) -> Result<Vec<(u64, u64)>> {
        let size = self.info.size;
        Ok(self
            .block_status(context, 0, size)?
            .into_iter()
            .filter(|e| pred(e.flags))
            .map(|e| (e.offset, e.len))
            .collect())
    }

    /// Tell the server we are done (it sends no reply) and close.
    pub fn disconnect(mut self) {
        let cookie = self.next_cookie();
        let _ = self
            .stream
            .write_all(&encode_request(CMD_DISC, 0, cookie, 0, 0))
            .and_then(|()| self.stream.flush());
    }
}

fn corrupt_reply(what: &str) -> Error {
    Error::Corrupt(format!("NBD server sent {what}"))
}

#[cfg(test)]
mod tests;
