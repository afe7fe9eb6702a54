//! SCSI commands on the one LUN: INQUIRY and its VPD pages, READ
//! CAPACITY, READ/WRITE, VERIFY, MODE SENSE, REPORT LUNS, sense data.

use std::sync::Arc;

use crate::reader::BlockSource;

/// Logical block size.
pub const BLOCK: u64 = 512;
/// The largest READ or WRITE (bytes), as the block limits page says.
pub const MAX_TRANSFER: u64 = 8 << 20;

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

pub(super) fn check(key: u8, (asc, ascq): (u8, u8)) -> Outcome {
    Outcome::Check(key, asc, ascq)
}

pub(super) fn invalid_field() -> Outcome {
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
#[derive(Clone)]
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
    pub(super) fn in_range(&self, lba: u64, n: u64) -> bool {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reader::MemDisk;

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
