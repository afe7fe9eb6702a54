//! The transmission phase: requests and (simple or structured) replies.

use std::io::{self, Read, Write};

use super::conn::Session;
use super::proto::*;
use crate::reader::BlockSource;

impl<W: Write> Session<'_, W> {
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

    pub(super) fn transmit<R: Read>(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::nbd::testutil::{go, reply_types, run};

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
}
