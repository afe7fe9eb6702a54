//! A byte range of a disk (the whole disk, or a partition) as the
//! `Read + Seek` stream the partition-table and file-system crates read,
//! with a `Write` that refuses (fatfs and gpt want one; nothing here ever
//! writes), and as ext4-view's [`ext4_view::Ext4Read`].
//!
//! Small reads (fatfs reads directory entries and FAT sectors a few bytes
//! at a time) are served from a window of [`WINDOW`] bytes, so they cost
//! one copy instead of a trip through the restore-point reader each.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::reader::BlockSource;

use super::super::{Result, TreeError};

/// Bytes read at once for small reads.
const WINDOW: usize = 64 << 10;

/// A byte range of a block source, read as a stream.
pub(crate) struct Volume {
    src: Arc<dyn BlockSource>,
    start: u64,
    len: u64,
    pos: u64,
    /// Bytes `[window_at, window_at + window.len())` of the volume.
    window: Vec<u8>,
    window_at: u64,
}

impl Clone for Volume {
    /// The same range, at position 0, without the window.
    fn clone(&self) -> Self {
        Volume::new(self.src.clone(), self.start, self.len)
    }
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Volume({}+{})", self.start, self.len)
    }
}

impl Volume {
    /// The bytes `[start, start + len)` of `src`, clamped to its size.
    pub(crate) fn new(src: Arc<dyn BlockSource>, start: u64, len: u64) -> Volume {
        let size = src.size();
        let start = start.min(size);
        let len = len.min(size - start);
        Volume {
            src,
            start,
            len,
            pos: 0,
            window: Vec::new(),
            window_at: 0,
        }
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fill `buf` from `offset`, which must lie within the volume.
    pub(crate) fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} is past the end of the {}-byte volume",
                    buf.len(),
                    self.len
                ),
            ));
        }
        self.src
            .read_at(self.start + offset, buf)
            .map_err(io::Error::other)
    }
}

impl Read for Volume {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        if n >= WINDOW {
            self.read_exact_at(self.pos, &mut buf[..n])?;
        } else {
            let in_window = self.pos >= self.window_at
                && self.pos + n as u64 <= self.window_at + self.window.len() as u64;
            if !in_window {
                let at = self.pos;
                let w = (WINDOW as u64).min(self.len - at) as usize;
                self.window.resize(w, 0);
                let mut window = std::mem::take(&mut self.window);
                let r = self.read_exact_at(at, &mut window);
                self.window = window;
                if let Err(e) = r {
                    self.window.clear();
                    return Err(e);
                }
                self.window_at = at;
            }
            let from = (self.pos - self.window_at) as usize;
            buf[..n].copy_from_slice(&self.window[from..from + n]);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Volume {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the volume",
            )),
        }
    }
}

impl Write for Volume {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "restore points are read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ext4_view::Ext4Read for Volume {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.read_exact_at(start_byte, dst).map_err(|e| e.into())
    }
}

/// Run a call into a file-system or partition-table crate, turning a
/// panic on malformed bytes into `Io` for the path being read (the crates
/// check most input, but promise nothing on every corruption).
pub(crate) fn guard<T>(what: &dyn std::fmt::Display, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(path = %what, "a file system reader stopped on malformed data");
            Err(TreeError::Io(format!(
                "{what}: the file system is damaged (malformed data)"
            )))
        }
    }
}
