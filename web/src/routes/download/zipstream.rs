//! A zip archive written front to back to an output that cannot seek
//! (APPNOTE 6.3.x): stored entries only (no compression), each file's
//! CRC-32 in a data descriptor after its data (its size is known before,
//! its checksum only after), zip64 fields for sizes and offsets of 4 GiB
//! and more and for more than 65535 entries, Unix modes (with the file
//! type, so symlinks are symlinks) in the external attributes, names as
//! their bytes (flagged UTF-8 when they are).
//!
//! The central directory is kept in memory until the end (its record of
//! each entry: the name and 46 bytes or so); that is what a zip needs.

use std::io::{self, Write};

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// Bit 3: sizes and CRC in a data descriptor; bit 11: UTF-8 name.
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
const MAX32: u64 = 0xFFFF_FFFF;
/// "Made by" Unix, spec version 4.5 (zip64).
const MADE_BY: u16 = (3 << 8) | 45;

/// The kind of an entry, for its Unix mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryKind {
    File,
    Dir,
    Symlink,
}

struct Record {
    name: Vec<u8>,
    flags: u16,
    dos: (u16, u16),
    crc: u32,
    size: u64,
    offset: u64,
    external: u32,
}

/// The writer. Call [`ZipStream::entry`] for each entry (a file's data
/// follows through [`ZipStream::data`], then [`ZipStream::end_file`]),
/// then [`ZipStream::finish`].
pub(super) struct ZipStream<W: Write> {
    out: W,
    pos: u64,
    records: Vec<Record>,
    /// The file being written: its CRC so far and bytes written.
    open: Option<(crc32fast::Hasher, u64)>,
}

impl<W: Write> ZipStream<W> {
    pub(super) fn new(out: W) -> Self {
        ZipStream {
            out,
            pos: 0,
            records: Vec::new(),
            open: None,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Start an entry named `name` (a directory's without the trailing
    /// '/', added here). A file's `size` bytes follow through
    /// [`ZipStream::data`]; a symlink's target is `content`; a
    /// directory has none.
    pub(super) fn entry(
        &mut self,
        kind: EntryKind,
        name: &[u8],
        mode: u32,
        mtime: i64,
        size: u64,
        content: &[u8],
    ) -> io::Result<()> {
        if self.open.is_some() {
            return Err(io::Error::other("zip: the previous file was not ended"));
        }
        let mut name = name.to_vec();
        let (type_bits, dos_attr, size) = match kind {
            EntryKind::File => (0o100_000, 0, size),
            EntryKind::Dir => {
                name.push(b'/');
                (0o040_000, 0x10, 0)
            }
            EntryKind::Symlink => (0o120_000, 0, content.len() as u64),
        };
        if name.len() > 0xFFFF {
            return Err(io::Error::other("zip: a name is longer than 65535 bytes"));
        }
        let mut flags = if std::str::from_utf8(&name).is_ok() {
            FLAG_UTF8
        } else {
            0
        };
        let file = kind == EntryKind::File;
        if file {
            flags |= FLAG_DESCRIPTOR;
        }
        let crc = if file { 0 } else { crc32fast::hash(content) };
        let zip64 = size >= MAX32;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&LOCAL.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        let dos = dos_time(mtime);
        h.extend_from_slice(&dos.0.to_le_bytes());
        h.extend_from_slice(&dos.1.to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
        let small = if zip64 { MAX32 as u32 } else { size as u32 };
        let (csize, usize_) = if file && !zip64 {
            (0, 0)
        } else {
            (small, small)
        };
        h.extend_from_slice(&csize.to_le_bytes());
        h.extend_from_slice(&usize_.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(&name);
        if zip64 {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&16u16.to_le_bytes());
            let v = if file { 0 } else { size };
            h.extend_from_slice(&v.to_le_bytes());
            h.extend_from_slice(&v.to_le_bytes());
        }
        let offset = self.pos;
        self.put(&h)?;
        self.records.push(Record {
            name,
            flags,
            dos,
            crc,
            size,
            offset,
            external: ((type_bits | (mode & 0o7777)) << 16) | dos_attr,
        });
        if file {
            self.open = Some((crc32fast::Hasher::new(), 0));
        } else {
            self.put(content)?;
        }
        Ok(())
    }

    /// Bytes of the file being written.
    pub(super) fn data(&mut self, b: &[u8]) -> io::Result<()> {
        match &mut self.open {
            Some((h, n)) => {
                h.update(b);
                *n += b.len() as u64;
            }
            None => return Err(io::Error::other("zip: no file is being written")),
        }
        self.put(b)
    }

    /// End the file being written: its data descriptor. Its length must
    /// be the size given to [`ZipStream::entry`].
    pub(super) fn end_file(&mut self) -> io::Result<()> {
        let Some((h, n)) = self.open.take() else {
            return Err(io::Error::other("zip: no file is being written"));
        };
        let crc = h.finalize();
        let rec = self
            .records
            .last_mut()
            .ok_or_else(|| io::Error::other("zip: no entry"))?;
        if n != rec.size {
            return Err(io::Error::other(format!(
                "zip: {} bytes written for a file of {}",
                n, rec.size
            )));
        }
        rec.crc = crc;
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&DESCRIPTOR.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        if n >= MAX32 {
            d.extend_from_slice(&n.to_le_bytes());
            d.extend_from_slice(&n.to_le_bytes());
        } else {
            d.extend_from_slice(&(n as u32).to_le_bytes());
            d.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.put(&d)
    }

    /// Write the central directory and the end records; the output.
    pub(super) fn finish(mut self) -> io::Result<W> {
        if self.open.is_some() {
            return Err(io::Error::other("zip: the last file was not ended"));
        }
        let start = self.pos;
        let records = std::mem::take(&mut self.records);
        for r in &records {
            let mut extra = Vec::new();
            let big_size = r.size >= MAX32;
            if big_size {
                extra.extend_from_slice(&r.size.to_le_bytes());
                extra.extend_from_slice(&r.size.to_le_bytes());
            }
            if r.offset >= MAX32 {
                extra.extend_from_slice(&r.offset.to_le_bytes());
            }
            let zip64 = !extra.is_empty();
            let mut h = Vec::with_capacity(46 + r.name.len() + 4 + extra.len());
            h.extend_from_slice(&CENTRAL.to_le_bytes());
            h.extend_from_slice(&MADE_BY.to_le_bytes());
            h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
            h.extend_from_slice(&r.flags.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&r.dos.0.to_le_bytes());
            h.extend_from_slice(&r.dos.1.to_le_bytes());
            h.extend_from_slice(&r.crc.to_le_bytes());
            let size = if big_size { MAX32 } else { r.size } as u32;
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(r.name.len() as u16).to_le_bytes());
            let extra_len = if zip64 { extra.len() + 4 } else { 0 };
            h.extend_from_slice(&(extra_len as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&r.external.to_le_bytes());
            h.extend_from_slice(&(r.offset.min(MAX32) as u32).to_le_bytes());
            h.extend_from_slice(&r.name);
            if zip64 {
                h.extend_from_slice(&1u16.to_le_bytes());
                h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
                h.extend_from_slice(&extra);
            }
            self.put(&h)?;
        }
        let count = records.len() as u64;
        let cd_size = self.pos - start;
        let mut e = Vec::with_capacity(98);
        if count >= 0xFFFF || cd_size >= MAX32 || start >= MAX32 {
            let end64 = self.pos;
            e.extend_from_slice(&END64.to_le_bytes());
            e.extend_from_slice(&44u64.to_le_bytes());
            e.extend_from_slice(&MADE_BY.to_le_bytes());
            e.extend_from_slice(&45u16.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&count.to_le_bytes());
            e.extend_from_slice(&count.to_le_bytes());
            e.extend_from_slice(&cd_size.to_le_bytes());
            e.extend_from_slice(&start.to_le_bytes());
            e.extend_from_slice(&LOCATOR64.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&end64.to_le_bytes());
            e.extend_from_slice(&1u32.to_le_bytes());
        }
        e.extend_from_slice(&END.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        let n16 = count.min(0xFFFF) as u16;
        e.extend_from_slice(&n16.to_le_bytes());
        e.extend_from_slice(&n16.to_le_bytes());
        e.extend_from_slice(&(cd_size.min(MAX32) as u32).to_le_bytes());
        e.extend_from_slice(&(start.min(MAX32) as u32).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        self.put(&e)?;
        Ok(self.out)
    }
}

/// `secs` since the epoch (UTC) as a DOS (time, date), clamped to
/// 1980..=2107; seconds in 2-second steps.
pub(super) fn dos_time(secs: i64) -> (u16, u16) {
    let secs = secs.clamp(315_532_800, 4_354_819_198);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let time = ((rem / 3600) << 11) | ((rem % 3600 / 60) << 5) | ((rem % 60) / 2);
    let date = ((y - 1980) << 9) | (m << 5) | d;
    (time as u16, date as u16)
}

/// The (year, month, day) of a day number since 1970-01-01 (proleptic
/// Gregorian).
pub(super) fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_and_dos_times() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(19_723), (2024, 1, 1));
        // 2023-11-14 22:13:20 UTC.
        let (t, d) = dos_time(1_700_000_000);
        assert_eq!((d >> 9, (d >> 5) & 15, d & 31), (43, 11, 14));
        assert_eq!((t >> 11, (t >> 5) & 63, (t & 31) * 2), (22, 13, 20));
        assert_eq!(dos_time(0), (0, (1 << 5) | 1));
    }

    /// The layout of a small archive: local headers, descriptor, central
    /// directory, end record with the right counts and offsets.
    #[test]
    fn a_small_archive_is_laid_out() {
        let mut z = ZipStream::new(Vec::new());
        z.entry(EntryKind::Dir, b"top", 0o755, 0, 0, b"").unwrap();
        z.entry(EntryKind::File, b"top/a", 0o644, 0, 3, b"")
            .unwrap();
        z.data(b"abc").unwrap();
        z.end_file().unwrap();
        z.entry(EntryKind::Symlink, b"top/l", 0o777, 0, 0, b"a")
            .unwrap();
        let out = z.finish().unwrap();
        let end = &out[out.len() - 22..];
        assert_eq!(&end[..4], &END.to_le_bytes());
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 3);
        let cd = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(&out[cd..cd + 4], &CENTRAL.to_le_bytes());
        // The file's CRC in the central directory is crc32("abc").
        let second = cd + 46 + 4;
        let crc = u32::from_le_bytes([
            out[second + 16],
            out[second + 17],
            out[second + 18],
            out[second + 19],
        ]);
        assert_eq!(crc, 0x3524_41C2);
        // A wrong length is refused.
        let mut z = ZipStream::new(Vec::new());
        z.entry(EntryKind::File, b"x", 0o644, 0, 5, b"").unwrap();
        z.data(b"abc").unwrap();
        assert!(z.end_file().is_err());
    }
}
