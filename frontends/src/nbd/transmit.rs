//! The transmission phase: requests and (simple or structured) replies.
//!
//! Reads are served concurrently: the connection's thread parses requests
//! and hands reads to a few worker threads ([`WORKERS`]); each reply is
//! built whole and written under a lock, in completion order (a reply
//! carries its request's cookie). Everything else (writes, trims,
//! write-zeroes, flush, block status, cache) is served by the connection's
//! thread in request order, so a FLUSH replies only after every write sent
//! before it has completed. Reads in flight are bounded in number and in
//! bytes ([`crate::inflight`]): when the bound is
//! reached the connection stops reading requests until a read completes
//! (back-pressure). On `NBD_CMD_DISC`, or when the client goes away, the
//! reads in flight finish before the session ends.

use std::io::{self, Read, Write};
use std::sync::Mutex;

use super::conn::Session;
use super::proto::*;
use crate::inflight::{lock, Budget, Taken, MAX_IN_FLIGHT};
use crate::reader::BlockSource;

/// Worker threads serving the reads of one connection.
pub(crate) const WORKERS: usize = 4;

/// A structured reply chunk.
fn chunk(flags: u16, kind: u16, cookie: u64, payload: &[&[u8]]) -> Vec<u8> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let mut v = Vec::with_capacity(20 + len);
    v.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&cookie.to_be_bytes());
    v.extend_from_slice(&(len as u32).to_be_bytes());
    for p in payload {
        v.extend_from_slice(p);
    }
    v
}

fn simple(err: u32, cookie: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&err.to_be_bytes());
    v.extend_from_slice(&cookie.to_be_bytes());
    v
}

/// Success without data.
fn ok(structured: bool, cookie: u64) -> Vec<u8> {
    if structured {
        chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, &[])
    } else {
        simple(0, cookie)
    }
}

fn error(structured: bool, cookie: u64, err: u32, msg: &str) -> Vec<u8> {
    if structured {
        let msg = &msg.as_bytes()[..msg.len().min(4096)];
        chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_ERROR,
            cookie,
            &[&err.to_be_bytes(), &(msg.len() as u16).to_be_bytes(), msg],
        )
    } else {
        simple(err, cookie)
    }
}

/// A read the range checks have passed.
struct ReadJob {
    cookie: u64,
    offset: u64,
    len: u32,
}

/// The whole reply to a read: header and data in one buffer, the data
/// read straight into it.
fn read_reply(structured: bool, label: &str, disk: &dyn BlockSource, job: &ReadJob) -> Vec<u8> {
    let mut v = if structured {
        let mut v = chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_OFFSET_DATA,
            job.cookie,
            &[&job.offset.to_be_bytes()],
        );
        // The length field counts the offset and the data.
        v[16..20].copy_from_slice(&(8 + job.len).to_be_bytes());
        v
    } else {
        simple(0, job.cookie)
    };
    let head = v.len();
    v.resize(head + job.len as usize, 0);
    match disk.read_at(job.offset, &mut v[head..]) {
        Ok(()) => v,
        Err(e) => {
            tracing::warn!("nbd {label}: read at {}: {e}", job.offset);
            error(structured, job.cookie, EIO, &e.to_string())
        }
    }
}

/// Where replies go: written whole, one at a time. The first write error
/// is kept; the session then ends with it.
struct Out<'a, W> {
    w: Mutex<(&'a mut W, Option<io::Error>)>,
}

impl<W: Write> Out<'_, W> {
    fn send(&self, reply: &[u8]) -> io::Result<()> {
        let mut g = lock(&self.w);
        let (w, failed) = &mut *g;
        if let Some(e) = failed {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        let r = w.write_all(reply).and_then(|()| w.flush());
        if let Err(e) = &r {
            *failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    fn failed(&self) -> bool {
        lock(&self.w).1.is_some()
    }
}

/// A read waiting for a worker, with its share of the budget.
type Queued<'b> = (ReadJob, Taken<'b>);

/// What serving one connection's requests needs.
struct Ctx<'a, W> {
    structured: bool,
    /// `base:allocation` was negotiated for this export.
    meta: bool,
    label: &'a str,
    disk: &'a dyn BlockSource,
    out: &'a Out<'a, W>,
    budget: &'a Budget,
}

impl<W: Write + Send> Session<'_, W> {
    /// Serve requests until the client disconnects; `workers` threads
    /// serve reads (0: every request on this thread, in order).
    pub(super) fn transmit<R: Read>(
        &mut self,
        r: &mut R,
        name: &str,
        disk: &dyn BlockSource,
        workers: usize,
    ) -> io::Result<()> {
        let label = self.exports.label(name);
        let out = Out {
            w: Mutex::new((&mut self.w, None)),
        };
        let budget = Budget::default();
        let ctx = Ctx {
            structured: self.structured,
            meta: self.meta_for.as_deref() == Some(name),
            label: &label,
            disk,
            out: &out,
            budget: &budget,
        };
        let served = std::thread::scope(|sc| {
            let (tx, rx) = crossbeam_channel::bounded::<Queued>(MAX_IN_FLIGHT);
            let mut spawned = 0;
            for _ in 0..workers {
                let (rx, ctx) = (rx.clone(), &ctx);
                let worker = std::thread::Builder::new()
                    .name("nbd-read".into())
                    .spawn_scoped(sc, move || {
                        // Ends when the connection's thread drops the sender.
                        for (job, _taken) in rx {
                            let reply = read_reply(ctx.structured, ctx.label, ctx.disk, &job);
                            // A failed write is kept in `out` and ends the session.
                            let _ = ctx.out.send(&reply);
                        }
                    });
                match worker {
                    Ok(_) => spawned += 1,
                    Err(e) => tracing::warn!("nbd {label}: starting a read worker: {e}"),
                }
            }
            drop(rx);
            let r = ctx.requests(r, (spawned > 0).then_some(&tx));
            // The workers finish the reads in flight, then the scope ends.
            drop(tx);
            r
        });
        served?;
        // Flush what is buffered; report a failed reply write.
        out.send(&[])
    }
}

impl<W: Write> Ctx<'_, W> {
    fn send(&self, reply: &[u8]) -> io::Result<()> {
        self.out.send(reply)
    }

    /// Read and serve requests until `NBD_CMD_DISC` (Ok) or an error; reads
    /// go to `pool` when there is one.
    fn requests<'b, R: Read>(
        &self,
        r: &mut R,
        pool: Option<&crossbeam_channel::Sender<Queued<'b>>>,
    ) -> io::Result<()>
    where
        Self: 'b,
    {
        let (size, structured) = (self.disk.size(), self.structured);
        loop {
            let mut h = [0u8; 28];
            r.read_exact(&mut h)?;
            if self.out.failed() {
                return self.send(&[]);
            }
            let req = parse_request(&h).ok_or_else(|| bad("request without its magic"))?;
            let end = req.offset.checked_add(req.len as u64);
            let in_range = end.is_some_and(|e| e <= size);
            match req.kind {
                CMD_READ => {
                    if req.len > MAX_PAYLOAD {
                        self.send(&error(
                            structured,
                            req.cookie,
                            EOVERFLOW,
                            "read larger than 32 MiB",
                        ))?;
                    } else if !in_range {
                        self.send(&error(
                            structured,
                            req.cookie,
                            EINVAL,
                            "read past the end of the export",
                        ))?;
                    } else {
                        let job = ReadJob {
                            cookie: req.cookie,
                            offset: req.offset,
                            len: req.len,
                        };
                        match pool {
                            Some(tx) => {
                                let taken = self.budget.take(req.len as u64);
                                tx.send((job, taken)).map_err(|_| {
                                    io::Error::other("the nbd read workers stopped")
                                })?;
                            }
                            None => {
                                self.send(&read_reply(structured, self.label, self.disk, &job))?
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
                    let reply = if !self.disk.writable() {
                        error(structured, req.cookie, EPERM, "the export is read-only")
                    } else if !in_range {
                        error(
                            structured,
                            req.cookie,
                            ENOSPC,
                            "write past the end of the export",
                        )
                    } else {
                        match self.write(&req, &data) {
                            Ok(()) => ok(structured, req.cookie),
                            Err(e) => error(structured, req.cookie, EIO, &e.to_string()),
                        }
                    };
                    self.send(&reply)?;
                }
                CMD_DISC => return Ok(()),
                // Writes are served on this thread, in order: every write
                // sent before the flush has completed.
                CMD_FLUSH => self.send(&match self.disk.flush() {
                    Ok(()) => ok(structured, req.cookie),
                    Err(e) => error(structured, req.cookie, EIO, &e.to_string()),
                })?,
                CMD_CACHE => self.send(&if in_range {
                    ok(structured, req.cookie)
                } else {
                    error(
                        structured,
                        req.cookie,
                        EINVAL,
                        "range past the end of the export",
                    )
                })?,
                CMD_BLOCK_STATUS => self.send(&self.block_status(&req))?,
                _ => self.send(&error(structured, req.cookie, EINVAL, "unknown command"))?,
            }
        }
    }

    /// A write, trim or write-zeroes (both leave zeros), durable with FUA.
    fn write(&self, req: &Request, data: &[u8]) -> arca_repo::Result<()> {
        if req.kind == CMD_WRITE {
            self.disk.write_at(req.offset, data)?;
        } else {
            let zeros = vec![0u8; (req.len as usize).min(1 << 20)];
            let mut done = 0u64;
            while done < req.len as u64 {
                let n = (req.len as u64 - done).min(zeros.len() as u64);
                self.disk
                    .write_at(req.offset + done, &zeros[..n as usize])?;
                done += n;
            }
        }
        if req.flags & CMD_FLAG_FUA != 0 {
            self.disk.flush()?;
        }
        Ok(())
    }

    fn block_status(&self, req: &Request) -> Vec<u8> {
        let (size, structured) = (self.disk.size(), self.structured);
        if !self.meta {
            return error(
                structured,
                req.cookie,
                EINVAL,
                "no meta context was negotiated",
            );
        }
        if req.len == 0 || req.offset >= size {
            return error(
                structured,
                req.cookie,
                EINVAL,
                "range past the end of the export",
            );
        }
        // Clip to the end, as the protocol allows.
        let len = (req.len as u64).min(size - req.offset);
        let ext = match self.disk.extents(req.offset, len) {
            Ok(ext) => ext,
            Err(e) => return error(structured, req.cookie, EIO, &e.to_string()),
        };
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
        chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_BLOCK_STATUS,
            req.cookie,
            &[&ALLOCATION_ID.to_be_bytes(), &d],
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::nbd::session;
    use crate::nbd::testutil::{go, reply_types, req, run, simple_replies, transmission};
    use crate::reader::{MemDisk, RamDisk};
    use crate::Exports;
    use std::sync::Arc;

    struct Disk(Arc<dyn BlockSource>);

    impl Exports for Disk {
        fn names(&self) -> Vec<String> {
            vec!["disk".into()]
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            (name == "disk").then(|| self.0.clone())
        }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn many_outstanding_reads_each_get_their_own_bytes() {
        let data = pattern(4 << 20);
        let e = Disk(Arc::new(MemDisk { data: data.clone() }));
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(go("disk"));
        // More reads than may be in flight, and more bytes: back-pressure.
        let mut want = std::collections::HashMap::new();
        let mut x = 12345u64;
        for cookie in 0..200u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = if cookie % 50 == 0 {
                3 << 20
            } else {
                4096 * (1 + (x >> 60)) as usize
            };
            let off = (x >> 20) as usize % (data.len() - len);
            input.extend(req(CMD_READ, cookie, off as u64, len as u32));
            want.insert(cookie, data[off..off + len].to_vec());
        }
        input.extend(req(CMD_READ, 999, (data.len() - 10) as u64, 20)); // past the end
        input.extend(req(CMD_DISC, 1000, 0, 0));
        let mut out = Vec::new();
        session(&input[..], &mut out, &e).unwrap();
        let got = simple_replies(transmission(&out), |c| want.get(&c).map_or(0, |d| d.len()));
        assert_eq!(got.len(), 201, "every read answered once");
        assert_eq!(got[&999].0, EINVAL);
        for (cookie, bytes) in &want {
            assert_eq!(got[cookie].0, 0);
            assert!(got[cookie].1 == *bytes, "cookie {cookie}: wrong bytes");
        }
    }

    #[test]
    fn a_flush_replies_after_the_writes_before_it_and_reads_see_them() {
        let e = Disk(Arc::new(RamDisk::new(vec![0; 1 << 20])));
        let mut input = 3u32.to_be_bytes().to_vec();
        input.extend(go("disk"));
        for i in 0..20u64 {
            input.extend(req(CMD_WRITE, i, i * 4096, 4096));
            input.extend(vec![i as u8 + 1; 4096]);
        }
        input.extend(req(CMD_FLUSH, 100, 0, 0));
        input.extend(req(CMD_READ, 101, 0, 20 * 4096));
        input.extend(req(CMD_DISC, 102, 0, 0));
        let mut out = Vec::new();
        session(&input[..], &mut out, &e).unwrap();
        let t = transmission(&out);
        // Write and flush replies come in request order (one thread).
        let cookies: Vec<u64> = (0..21)
            .map(|i| u64::from_be_bytes(t[i * 16 + 8..i * 16 + 16].try_into().unwrap()))
            .collect();
        assert_eq!(cookies[..20], (0..20).collect::<Vec<_>>()[..]);
        assert_eq!(cookies[20], 100);
        let got = simple_replies(t, |c| if c == 101 { 20 * 4096 } else { 0 });
        let read = &got[&101].1;
        for i in 0..20 {
            assert!(read[i * 4096..(i + 1) * 4096]
                .iter()
                .all(|&b| b == i as u8 + 1));
        }
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
}
