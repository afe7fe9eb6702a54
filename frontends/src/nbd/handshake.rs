//! The fixed newstyle handshake: the greeting and option negotiation.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::conn::{Negotiated, Session};
use super::proto::*;
use crate::reader::BlockSource;

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
    pub(super) fn negotiate<R: Read>(
        &mut self,
        r: &mut R,
        no_zeroes: bool,
    ) -> io::Result<Negotiated> {
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
}

/// Send the greeting and read the client's flags; returns `no_zeroes`.
pub(super) fn greet<R: Read, W: Write>(r: &mut R, w: &mut W) -> io::Result<bool> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::nbd::session;
    use crate::nbd::testutil::{go, opt, reply_types, req, run, simple_replies, transmission};
    use crate::reader::MemDisk;
    use crate::Exports;

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
        // Simple replies (in completion order): data, EINVAL, EPERM, EINVAL.
        let m = simple_replies(transmission(&out), |c| if c == 1 { 16 } else { 0 });
        assert_eq!(m.len(), 4);
        assert_eq!(m[&1], (0, vec![1u8; 16]));
        assert_eq!(m[&2].0, EINVAL);
        assert_eq!(m[&3].0, EPERM);
        assert_eq!(m[&4].0, EINVAL);
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
}
