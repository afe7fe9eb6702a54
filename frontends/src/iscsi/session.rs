//! A connection: the session state, the full feature phase loop, SCSI
//! command and Data-Out handling (R2Ts), NOP, task management, logout.
//!
//! READ commands (simple or untagged tasks of LUN 0) are served
//! concurrently by a few worker threads ([`WORKERS`]); each answer goes out
//! whole under the session's lock as its read completes, so answers may
//! come in another order than the commands (each carries its Initiator
//! Task Tag; StatSN counts answers in the order they are sent). Reads in
//! flight are bounded like NBD's ([`crate::inflight`]): at the bound the
//! connection stops reading PDUs until one completes. Every other PDU
//! but NOP-Out (writes and their Data-Out, SYNCHRONIZE CACHE, ordered
//! tasks, task management, logout) waits until no read is in flight and
//! is then handled by the connection's thread in arrival order, so a
//! write is ordered after earlier reads and before later ones.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Mutex;

use super::pdu::{op, read_pdu, write_pdu, Bhs, Pdu, PduError, MAX_RECV_DSL};
use super::scsi::{check, decode_rw, invalid_field, sense, sense_data, Lun, Outcome};
use super::scsi::{BLOCK, MAX_TRANSFER};
use crate::inflight::{lock, Budget, Taken, MAX_IN_FLIGHT};
use crate::Exports;

/// Writes waiting for their data at once.
const MAX_PENDING_WRITES: usize = 64;
/// Commands the initiator may have outstanding (MaxCmdSN window).
const CMD_WINDOW: u32 = 64;
/// Worker threads serving the READ commands of one session.
const WORKERS: usize = 4;

/// Target settings.
#[derive(Clone, Debug, Default)]
pub struct IscsiConfig {
    /// CHAP user and secret: when set, logins must authenticate.
    pub chap: Option<(String, String)>,
}

/// Reject reasons.
mod reason {
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x05;
    pub const PROTOCOL_ERROR: u8 = 0x04;
    pub const TOO_MANY_TASKS: u8 = 0x06;
}

/// A write waiting for its Data-Out PDUs.
pub(super) struct PendingWrite {
    cmd: Bhs,
    lun: u64,
    expected: usize,
    data: Vec<u8>,
    ttt: u32,
    r2t_sn: u32,
    /// End of the burst the last R2T asked for.
    burst_end: usize,
}

pub(super) struct Session<'e, W: Write> {
    pub(super) w: W,
    pub(super) exports: &'e dyn Exports,
    pub(super) cfg: &'e IscsiConfig,
    pub(super) portal: &'e str,
    pub(super) stat_sn: u32,
    pub(super) exp_cmd_sn: u32,
    /// What the initiator accepts per data segment.
    pub(super) send_dsl: usize,
    pub(super) max_burst: usize,
    pub(super) first_burst: usize,
    pub(super) lun: Option<Lun>,
    pub(super) discovery: bool,
    /// The export a discovery session of a private list authenticated for.
    pub(super) discovered: Option<String>,
    pub(super) pending: HashMap<u32, PendingWrite>,
    pub(super) next_ttt: u32,
    /// The first failed write of an answer by a read worker: the session
    /// ends with it.
    pub(super) failed: Option<io::Error>,
}

impl<W: Write> Session<'_, W> {
    fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(CMD_WINDOW - 1)
    }

    /// Fill StatSN (and count it), ExpCmdSN and MaxCmdSN.
    pub(super) fn seq(&mut self, b: &mut Bhs, count: bool) {
        b.set_u32(24, self.stat_sn);
        if count {
            self.stat_sn = self.stat_sn.wrapping_add(1);
        }
        b.set_u32(28, self.exp_cmd_sn);
        b.set_u32(32, self.max_cmd_sn());
    }

    pub(super) fn send(&mut self, b: Bhs, data: &[u8]) -> io::Result<()> {
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
    pub(super) fn took(&mut self, bhs: &Bhs) {
        if !bhs.immediate() && bhs.u32(24) == self.exp_cmd_sn {
            self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
        }
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
            // ABORT TASK: reads in flight complete before task management
            // is handled, so only a write waiting for data can be aborted.
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

/// A READ command a worker may serve: a simple (or untagged) task of
/// LUN 0 without data, on a session with a LUN.
fn concurrent_read(pdu: &Pdu) -> bool {
    let b = &pdu.bhs;
    b.opcode() == op::SCSI_CMD
        && b.flags() & 0x60 == 0x40
        && b.flags() & 0x07 <= 1
        && b.lun() >> 48 == 0
        && pdu.data.is_empty()
        && matches!(b.cdb()[0], 0x08 | 0x28 | 0xa8 | 0x88)
}

/// A READ command handed to a worker, with its share of the budget.
type Queued<'b> = (Bhs, Taken<'b>);

/// Serve one connection: login, then commands until logout or EOF.
pub fn session<R: Read, W: Write + Send>(
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
        failed: None,
    };
    if !s.login(&mut r)? {
        return Ok(());
    }
    let _log = s
        .lun
        .as_ref()
        .map(|l| crate::ClientLog::connected("iscsi", s.exports.label(&l.name)));
    let lun = s.lun.clone();
    let s = Mutex::new(s);
    let budget = Budget::default();
    std::thread::scope(|sc| {
        let (tx, rx) = crossbeam_channel::bounded::<Queued>(MAX_IN_FLIGHT);
        let mut spawned = 0;
        for _ in 0..lun.as_ref().map_or(0, |_| WORKERS) {
            let (rx, s, lun) = (rx.clone(), &s, &lun);
            let worker = std::thread::Builder::new()
                .name("iscsi-read".into())
                .spawn_scoped(sc, move || {
                    // Ends when the connection's thread drops the sender.
                    for (cmd, _taken) in rx {
                        let Some(l) = lun else { continue };
                        let outcome = l.execute(&cmd.cdb(), &[]);
                        let mut g = lock(s);
                        if g.failed.is_some() {
                            continue;
                        }
                        if let Err(e) = g.respond(&cmd, outcome).and_then(|_| g.w.flush()) {
                            g.failed = Some(e);
                        }
                    }
                });
            match worker {
                Ok(_) => spawned += 1,
                Err(e) => tracing::warn!("iscsi: starting a read worker: {e}"),
            }
        }
        drop(rx);
        let pool = (spawned > 0).then_some((&tx, &budget));
        let r = full_feature(&mut r, &s, pool);
        // The workers finish the reads in flight, then the scope ends.
        drop(tx);
        r
    })
}

/// The full feature phase: PDUs until logout, EOF or an error; READ
/// commands go to `pool` when there is one.
fn full_feature<'b, R: Read, W: Write>(
    r: &mut R,
    s: &Mutex<Session<'_, W>>,
    pool: Option<(&crossbeam_channel::Sender<Queued<'b>>, &'b Budget)>,
) -> io::Result<()> {
    loop {
        let pdu = match read_pdu(r, MAX_RECV_DSL) {
            Ok(p) => p,
            Err(PduError::Io(e)) => return Err(e),
            Err(PduError::TooLong(n)) => {
                // The stream cannot be resynchronised: end the connection.
                return Err(io::Error::other(format!(
                    "a data segment of {n} bytes, more than the {MAX_RECV_DSL} negotiated"
                )));
            }
        };
        if let Some(e) = lock(s).failed.take() {
            return Err(e);
        }
        match pool {
            Some((tx, budget)) if concurrent_read(&pdu) => {
                // What the worker will hold: the blocks the CDB asks for
                // (a longer read is refused), or what the initiator expects.
                let blocks = decode_rw(&pdu.bhs.cdb()).map_or(0, |(_, n, _, _)| n);
                let asked = blocks.saturating_mul(BLOCK).max(pdu.bhs.u32(20) as u64);
                let taken = budget.take(asked.min(MAX_TRANSFER));
                lock(s).took(&pdu.bhs);
                tx.send((pdu.bhs, taken))
                    .map_err(|_| io::Error::other("the iscsi read workers stopped"))?;
                continue;
            }
            // Ordered after every read before it.
            Some((_, budget)) if pdu.bhs.opcode() != op::NOP_OUT => budget.wait_idle(),
            _ => {}
        }
        let mut s = lock(s);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::iscsi::testutil::{login, pdu, run, run_on, scsi};
    use crate::reader::{MemDisk, RamDisk};
    use std::sync::Arc;

    /// A READ(10) or WRITE(10) of `n` blocks at `lba` with task tag `itt`
    /// and CmdSN `sn`.
    fn rw(write: bool, itt: u32, sn: u32, lba: u32, n: u16, data: &[u8]) -> Vec<u8> {
        let mut b = Bhs::new(op::SCSI_CMD);
        b.0[1] = if write { 0xa1 } else { 0xc1 };
        b.set_u32(16, itt);
        b.set_u32(20, n as u32 * 512);
        b.set_u32(24, sn);
        b.0[32] = if write { 0x2a } else { 0x28 };
        b.0[34..38].copy_from_slice(&lba.to_be_bytes());
        b.0[39..41].copy_from_slice(&n.to_be_bytes());
        let mut out = Vec::new();
        crate::iscsi::pdu::write_pdu(&mut out, b, data).unwrap();
        out
    }

    /// Each task's Data-In bytes (in buffer offset order) and its status.
    fn by_task(out: &[Pdu]) -> HashMap<u32, (Vec<u8>, u8)> {
        let mut m: HashMap<u32, (Vec<u8>, u8)> = HashMap::new();
        for p in out.iter().filter(|p| p.bhs.opcode() == op::DATA_IN) {
            let e = m.entry(p.bhs.itt()).or_default();
            assert_eq!(p.bhs.u32(40) as usize, e.0.len(), "Data-In in offset order");
            e.0.extend_from_slice(&p.data);
        }
        for p in out.iter().filter(|p| p.bhs.opcode() == op::SCSI_RSP) {
            m.entry(p.bhs.itt()).or_default().1 = p.bhs.0[3];
        }
        m
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
    fn many_outstanding_reads_of_one_session_each_get_their_own_bytes() {
        let data: Vec<u8> = (0..8 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut input = login("iqn.2026-11.io.arca:vm.latest", "");
        // More reads than may be in flight, of different sizes and places.
        let mut want = HashMap::new();
        let mut x = 99u64;
        for itt in 0..300u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = if itt % 60 == 0 {
                4096
            } else {
                1 + (x >> 58) as u16
            };
            let lba = (x >> 20) as u32 % (data.len() as u32 / 512 - n as u32);
            input.extend(rw(false, itt, itt, lba, n, &[]));
            let at = lba as usize * 512;
            want.insert(itt, data[at..at + n as usize * 512].to_vec());
        }
        input.extend(pdu(op::LOGOUT_REQ, 0x80, 1000, b""));
        let out = run_on(&input, &IscsiConfig::default(), Arc::new(MemDisk { data }));
        let got = by_task(&out);
        assert_eq!(got.len(), want.len());
        for (itt, bytes) in &want {
            assert!(got[itt].0 == *bytes, "task {itt}: wrong bytes");
        }
        // StatSN counts the answers in the order they went out; the last
        // answer (logout) acknowledges every command.
        let with_status: Vec<&Pdu> = out[1..]
            .iter()
            .filter(|p| p.bhs.opcode() != op::DATA_IN || p.bhs.flags() & 0x01 != 0)
            .collect();
        assert_eq!(with_status.len(), 301);
        for (i, p) in with_status.iter().enumerate() {
            assert_eq!(
                p.bhs.u32(24),
                i as u32 + 1,
                "StatSN (the login answer was 0)"
            );
        }
        let last = out.last().unwrap();
        assert_eq!(last.bhs.opcode(), op::LOGOUT_RSP);
        assert_eq!(last.bhs.u32(28), 300, "ExpCmdSN");
    }

    #[test]
    fn a_write_is_ordered_after_earlier_reads_and_before_later_ones() {
        let disk = Arc::new(RamDisk::new(vec![1; 1 << 20]));
        let mut input = login("iqn.2026-11.io.arca:vm.latest", "");
        let (mut sn, mut itt) = (0, 0);
        let mut round = |input: &mut Vec<u8>, fill: u8| {
            // Reads of what the last round wrote, a write, reads again.
            for i in 0..8 {
                input.extend(rw(false, itt, sn, i * 16, 16, &[]));
                (itt, sn) = (itt + 1, sn + 1);
            }
            input.extend(rw(true, itt, sn, 0, 128, &vec![fill; 128 * 512]));
            (itt, sn) = (itt + 1, sn + 1);
        };
        for fill in 2..6 {
            round(&mut input, fill);
        }
        round(&mut input, 9);
        input.extend(pdu(op::LOGOUT_REQ, 0x80, 1000, b""));
        let out = run_on(&input, &IscsiConfig::default(), disk);
        let got = by_task(&out);
        for r in 0..5u32 {
            let before = if r == 0 { 1 } else { r as u8 + 1 };
            for i in 0..8 {
                let (bytes, _) = &got[&(r * 9 + i)];
                assert_eq!(bytes.len(), 16 * 512);
                assert!(bytes.iter().all(|&b| b == before), "round {r} read {i}");
            }
            assert_eq!(got[&(r * 9 + 8)].1, 0, "the write is GOOD");
        }
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
}
