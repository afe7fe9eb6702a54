//! The set of live blob ids during gc, in bounded memory.
//!
//! Mark produces ids in no order and with repeats. They collect in a buffer
//! of fixed size; a full buffer is sorted, deduplicated and written to a run
//! file beside the datastore. Sweep asks about ids in ascending order (the
//! index iterates in id order), so a k-way merge of the runs answers it in
//! one sequential pass. Memory is the buffer plus one read buffer per run,
//! whatever the number of chunks; the exact "already walked" set is kept only
//! for trees and image tables, which are few.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::ChunkId;

/// Ids held in memory before a run is written (64 MiB).
pub const DEFAULT_BUFFER_IDS: usize = 2 << 20;

/// Prefix of the run directories; leftovers of a killed gc are removed by
/// the next one.
pub(crate) const RUN_DIR_PREFIX: &str = ".gc-live-";

pub(crate) struct LiveSet {
    parent: PathBuf,
    dir: Option<PathBuf>,
    buf: Vec<ChunkId>,
    cap: usize,
    runs: Vec<PathBuf>,
    sorted: bool,
}

impl LiveSet {
    pub(crate) fn new(parent: &Path, cap: usize) -> Self {
        LiveSet {
            parent: parent.to_path_buf(),
            dir: None,
            buf: Vec::new(),
            cap: cap.max(1024),
            runs: Vec::new(),
            sorted: true,
        }
    }

    /// Remove run directories left by a gc that was killed.
    pub(crate) fn remove_leftovers(parent: &Path) {
        if let Ok(rd) = std::fs::read_dir(parent) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(RUN_DIR_PREFIX) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    pub(crate) fn insert(&mut self, id: ChunkId) -> Result<()> {
        self.buf.push(id);
        self.sorted = false;
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        Ok(())
    }

    pub(crate) fn extend(&mut self, ids: impl IntoIterator<Item = ChunkId>) -> Result<()> {
        for id in ids {
            self.insert(id)?;
        }
        Ok(())
    }

    /// Number of run files written so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    fn sort_buffer(&mut self) {
        if !self.sorted {
            self.buf.sort_unstable();
            self.buf.dedup();
            self.sorted = true;
        }
    }

    fn spill(&mut self) -> Result<()> {
        self.sort_buffer();
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let d = self.parent.join(format!(
                    "{RUN_DIR_PREFIX}{}-{}",
                    std::process::id(),
                    hex::encode(crate::crypto::random_bytes::<8>())
                ));
                std::fs::create_dir(&d).map_err(|e| Error::io(d.display().to_string(), e))?;
                self.dir = Some(d.clone());
                d
            }
        };
        let path = dir.join(format!("run-{}", self.runs.len()));
        let f = File::create(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        for id in &self.buf {
            w.write_all(id.as_bytes())
                .map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        w.flush()
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        self.runs.push(path);
        self.buf.clear();
        Ok(())
    }

    /// A fresh cursor over all ids so far, for queries in ascending order.
    pub(crate) fn cursor(&mut self) -> Result<Cursor<'_>> {
        self.sort_buffer();
        let mut heads = BinaryHeap::new();
        let mut readers = Vec::with_capacity(self.runs.len());
        for (i, p) in self.runs.iter().enumerate() {
            let f = File::open(p).map_err(|e| Error::io(p.display().to_string(), e))?;
            let mut r = BufReader::with_capacity(256 << 10, f);
            if let Some(id) = read_id(&mut r, p)? {
                heads.push(Reverse((id, i)));
            }
            readers.push((r, p.clone()));
        }
        Ok(Cursor {
            mem: &self.buf,
            pos: 0,
            heads,
            readers,
        })
    }
}

impl Drop for LiveSet {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn read_id(r: &mut BufReader<File>, p: &Path) -> Result<Option<ChunkId>> {
    let mut b = [0u8; 32];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(ChunkId(b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(p.display().to_string(), e)),
    }
}

pub(crate) struct Cursor<'a> {
    mem: &'a [ChunkId],
    pos: usize,
    heads: BinaryHeap<Reverse<(ChunkId, usize)>>,
    readers: Vec<(BufReader<File>, PathBuf)>,
}

impl Cursor<'_> {
    /// Whether `id` is in the set. Successive calls must not decrease `id`.
    pub(crate) fn contains(&mut self, id: &ChunkId) -> Result<bool> {
        while self.pos < self.mem.len() && self.mem[self.pos] < *id {
            self.pos += 1;
        }
        let mut found = self.mem.get(self.pos) == Some(id);
        while let Some(Reverse((head, i))) = self.heads.peek().copied() {
            if head > *id {
                break;
            }
            found |= head == *id;
            self.heads.pop();
            let (r, p) = &mut self.readers[i];
            if let Some(next) = read_id(r, p)? {
                self.heads.push(Reverse((next, i)));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ChunkId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        ChunkId(b)
    }

    #[test]
    fn spilled_runs_answer_like_a_set() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LiveSet::new(dir.path(), 1024);
        // Multiples of 3, in a scrambled order and with repeats, across runs.
        for round in 0..2 {
            for k in 0..3000u32 {
                let n = (k * 7919 + round) % 3000;
                s.insert(id(n * 3)).unwrap();
            }
        }
        assert!(s.runs() >= 5);
        for _ in 0..2 {
            let mut c = s.cursor().unwrap();
            for n in 0..9100u32 {
                assert_eq!(c.contains(&id(n)).unwrap(), n % 3 == 0 && n < 9000, "{n}");
            }
        }
        let run_dir = s.dir.clone().unwrap();
        drop(s);
        assert!(!run_dir.exists());
    }
}
