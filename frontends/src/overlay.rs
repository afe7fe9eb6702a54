//! A writable overlay over a read-only restore point (instant restore):
//! writes go to a local sparse file, copy-on-write per 4 KiB page; reads
//! take written pages from the file and everything else from the restore
//! point, which never changes. Discarding the overlay is deleting its file.
//!
//! Which pages were written is a bitmap in memory, saved beside the file
//! (`<file>.map`) on every flush that follows new pages: what a client
//! flushed survives a restart of the server ([`Overlay::open`] reloads
//! it), as on a real disk; unflushed writes may not. The map is written
//! to a temporary file and renamed, so it is always whole.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use arca_repo::{Error, Result};

use crate::reader::{push_extent, BlockSource, Extent};

const PAGE: u64 = 4096;

pub struct Overlay {
    base: Arc<dyn BlockSource>,
    file: File,
    /// One bit per page: written here.
    written: RwLock<Vec<u64>>,
    /// Where the bitmap is saved.
    map: std::path::PathBuf,
    /// Pages were written since the map was last saved.
    dirty: AtomicBool,
}

const MAP_MAGIC: &[u8; 8] = b"ARCAOVL1";

/// The bitmap file of the overlay at `path`.
pub fn map_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".map");
    p.into()
}

/// Delete an overlay and its bitmap (missing files are fine).
pub fn remove(path: &Path) -> Result<()> {
    for p in [path.to_path_buf(), map_path(path)] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(format!("remove {}", p.display()), e))
            }
            _ => {}
        }
    }
    Ok(())
}

impl Overlay {
    /// A new, empty overlay in `path` (created; must not exist).
    pub fn create(base: Arc<dyn BlockSource>, path: &Path) -> Result<Overlay> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(format!("create overlay {}", path.display()), e))?;
        file.set_len(base.size())
            .map_err(|e| Error::io("size the overlay", e))?;
        let words = Self::words(base.size());
        Ok(Overlay {
            base,
            file,
            written: RwLock::new(vec![0; words]),
            map: map_path(path),
            dirty: AtomicBool::new(false),
        })
    }

    fn words(size: u64) -> usize {
        size.div_ceil(PAGE).div_ceil(64) as usize
    }

    /// The overlay in `path` with the pages its saved map lists, or a new
    /// one when there is no file yet.
    pub fn open(base: Arc<dyn BlockSource>, path: &Path) -> Result<Overlay> {
        if !path.exists() {
            return Self::create(base, path);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("open overlay {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat the overlay", e))?
            .len();
        if len != base.size() {
            return Err(Error::Corrupt(format!(
                "overlay {} has {len} bytes, its restore point {}",
                path.display(),
                base.size()
            )));
        }
        let words = Self::words(base.size());
        let map = map_path(path);
        let bits = match std::fs::read(&map) {
            Ok(b) => {
                let ok = b.len() == 16 + 8 * words
                    && &b[..8] == MAP_MAGIC
                    && b[8..16] == base.size().to_le_bytes();
                if !ok {
                    return Err(Error::Corrupt(format!(
                        "overlay map {} does not match its overlay",
                        map.display()
                    )));
                }
                b[16..]
                    .chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                    .collect()
            }
            // Nothing was flushed: nothing is owed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![0; words],
            Err(e) => return Err(Error::io(format!("read {}", map.display()), e)),
        };
        Ok(Overlay {
            base,
            file,
            written: RwLock::new(bits),
            map,
            dirty: AtomicBool::new(false),
        })
    }

    /// The bitmap as saved, if pages were written since the last save.
    fn map_snapshot(&self) -> Option<Vec<u8>> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAP_MAGIC);
        out.extend_from_slice(&self.base.size().to_le_bytes());
        let bits = self.written.read().unwrap_or_else(|e| e.into_inner());
        for w in bits.iter() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        Some(out)
    }

    /// Save a bitmap from [`Overlay::map_snapshot`] (after the data it
    /// describes is on disk).
    fn save_map(&self, out: &[u8]) -> Result<()> {
        let tmp = self.map.with_extension("map.tmp");
        let r = (|| {
            use std::io::Write;
            let mut f = File::create(&tmp)?;
            f.write_all(out)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.map)
        })();
        r.map_err(|e| {
            self.dirty.store(true, Ordering::Release);
            Error::io(format!("save {}", self.map.display()), e)
        })
    }

    /// Byte ranges `(offset, len)` written into the overlay, merged.
    pub fn written_ranges(&self) -> Vec<(u64, u64)> {
        let bits = self.written.read().unwrap_or_else(|e| e.into_inner());
        let size = self.base.size();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for page in 0..size.div_ceil(PAGE) {
            if !Self::is_written(&bits, page) {
                continue;
            }
            let (a, b) = (page * PAGE, ((page + 1) * PAGE).min(size));
            match out.last_mut() {
                Some((o, l)) if *o + *l == a => *l += b - a,
                _ => out.push((a, b - a)),
            }
        }
        out
    }

    fn is_written(bits: &[u64], page: u64) -> bool {
        bits[(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    fn check(&self, offset: u64, len: u64) -> Result<u64> {
        offset
            .checked_add(len)
            .filter(|&e| e <= self.base.size())
            .ok_or_else(|| Error::InvalidInput(format!("range at {offset} is past the end")))
    }

    /// Pages written so far (for reports and tests).
    pub fn pages_written(&self) -> u64 {
        let bits = self.written.read().unwrap_or_else(|e| e.into_inner());
        bits.iter().map(|w| w.count_ones() as u64).sum()
    }
}

impl BlockSource for Overlay {
    fn size(&self) -> u64 {
        self.base.size()
    }

    fn block_size(&self) -> u32 {
        PAGE as u32
    }

    fn writable(&self) -> bool {
        true
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = self.check(offset, buf.len() as u64)?;
        let bits = self.written.read().unwrap_or_else(|e| e.into_inner());
        // Runs of pages from the same side, read in one call each.
        let mut pos = offset;
        while pos < end {
            let page = pos / PAGE;
            let here = Self::is_written(&bits, page);
            let mut run_end = ((page + 1) * PAGE).min(end);
            while run_end < end && Self::is_written(&bits, run_end / PAGE) == here {
                run_end = (run_end + PAGE).min(end);
            }
            let piece = &mut buf[(pos - offset) as usize..(run_end - offset) as usize];
            if here {
                self.file
                    .read_exact_at(piece, pos)
                    .map_err(|e| Error::io("read the overlay", e))?;
            } else {
                self.base.read_at(pos, piece)?;
            }
            pos = run_end;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let end = self.check(offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(());
        }
        // Writers are serialised: a partial page is read, merged and
        // written whole, and must not race another write to that page.
        let mut bits = self.written.write().unwrap_or_else(|e| e.into_inner());
        let first = offset / PAGE;
        let last = (end - 1) / PAGE;
        let size = self.base.size();
        for page in first..=last {
            let p0 = page * PAGE;
            let p1 = (p0 + PAGE).min(size);
            let (a, b) = (offset.max(p0), end.min(p1));
            let src = &data[(a - offset) as usize..(b - offset) as usize];
            if (a, b) == (p0, p1) || Self::is_written(&bits, page) {
                self.file
                    .write_all_at(src, a)
                    .map_err(|e| Error::io("write the overlay", e))?;
            } else {
                // Copy on write: the page's other bytes come from the base.
                let mut whole = vec![0; (p1 - p0) as usize];
                self.base.read_at(p0, &mut whole)?;
                whole[(a - p0) as usize..(b - p0) as usize].copy_from_slice(src);
                self.file
                    .write_all_at(&whole, p0)
                    .map_err(|e| Error::io("write the overlay", e))?;
            }
            bits[(page / 64) as usize] |= 1 << (page % 64);
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // The map is taken before the data is synced, so it never lists a
        // page written after the sync (whose data may not be on disk).
        let map = self.map_snapshot();
        let synced = self
            .file
            .sync_data()
            .map_err(|e| Error::io("flush the overlay", e));
        match (synced, map) {
            (Ok(()), Some(m)) => self.save_map(&m),
            (Ok(()), None) => Ok(()),
            (Err(e), m) => {
                if m.is_some() {
                    self.dirty.store(true, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>> {
        let end = self.check(offset, len)?;
        let base = self.base.extents(offset, len)?;
        let bits = self.written.read().unwrap_or_else(|e| e.into_inner());
        // Written pages are data; the rest is as in the base.
        let mut out = Vec::new();
        let mut pos = offset;
        for e in base {
            let e_end = pos + e.len;
            while pos < e_end {
                let page = pos / PAGE;
                let run_end = ((page + 1) * PAGE).min(e_end).min(end);
                push_extent(
                    &mut out,
                    run_end - pos,
                    e.hole && !Self::is_written(&bits, page),
                );
                pos = run_end;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reader::MemDisk;

    #[test]
    fn writes_stay_in_the_overlay_and_partial_pages_keep_the_base_bytes() {
        let mut data: Vec<u8> = (0..5 * PAGE + 100).map(|i| (i % 251) as u8).collect();
        data[(2 * PAGE) as usize..(4 * PAGE) as usize].fill(0);
        let base = Arc::new(MemDisk { data: data.clone() });
        let dir = tempfile::tempdir().unwrap();
        let o = Overlay::create(base.clone(), &dir.path().join("o")).unwrap();
        let mut want = data.clone();
        for (off, len, byte) in [
            (100u64, 10usize, 0xaa),
            (PAGE - 3, 6, 0xbb),
            (3 * PAGE, 4096, 0xcc),
        ] {
            o.write_at(off, &vec![byte; len]).unwrap();
            want[off as usize..off as usize + len].fill(byte);
        }
        // Overwrite inside an already written page.
        o.write_at(101, &[0xdd]).unwrap();
        want[101] = 0xdd;
        let mut got = vec![0; want.len()];
        o.read_at(0, &mut got).unwrap();
        assert!(got == want);
        // The base never changed.
        assert!(base.data == data);
        assert_eq!(o.pages_written(), 3);
        // The written page inside the hole is data now.
        let ext = o.extents(2 * PAGE, 2 * PAGE).unwrap();
        assert_eq!(
            ext,
            vec![
                Extent {
                    len: PAGE,
                    hole: true
                },
                Extent {
                    len: PAGE,
                    hole: false
                }
            ]
        );
        assert!(o.write_at(o.size() - 1, &[1, 2]).is_err());
        // The last, short page.
        o.write_at(o.size() - 1, &[9]).unwrap();
        let mut b = [0u8; 1];
        o.read_at(o.size() - 1, &mut b).unwrap();
        assert_eq!(b, [9]);
    }

    #[test]
    fn flushed_writes_survive_reopening_and_unflushed_ones_are_not_owed() {
        let data: Vec<u8> = (0..8 * PAGE).map(|i| (i % 13) as u8).collect();
        let base = Arc::new(MemDisk { data: data.clone() });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        let o = Overlay::open(base.clone(), &path).unwrap();
        o.write_at(PAGE, &[7; 10]).unwrap();
        o.write_at(5 * PAGE, &vec![8; 2 * PAGE as usize]).unwrap();
        o.flush().unwrap();
        assert_eq!(o.written_ranges(), vec![(PAGE, PAGE), (5 * PAGE, 2 * PAGE)]);
        // Written but never flushed: the map does not list it.
        o.write_at(3 * PAGE, &[9; 1]).unwrap();
        drop(o);
        let o = Overlay::open(base.clone(), &path).unwrap();
        assert_eq!(o.pages_written(), 3);
        let mut b = vec![0; 12];
        o.read_at(PAGE, &mut b).unwrap();
        assert_eq!(&b[..10], &[7; 10]);
        assert_eq!(&b[10..], &data[(PAGE + 10) as usize..(PAGE + 12) as usize]);
        // A map of another size is refused, not guessed at.
        let small = Arc::new(MemDisk {
            data: vec![0; PAGE as usize],
        });
        assert!(Overlay::open(small, &path).is_err());
        remove(&path).unwrap();
        assert!(!path.exists() && !map_path(&path).exists());
    }
}
