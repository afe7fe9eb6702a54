//! Partial reads of blobs: the frames of a framed blob (version 2, see
//! [`crate::frame`]) that cover a byte range, without reading the rest of
//! the blob. Whole-chunk blobs (version 1) are read whole.
//!
//! The header and frame table of a blob are read once (one request of at
//! most `12 + 4 * ceil(len / 4096)` bytes, enough for any frame size) and
//! kept in a bounded cache keyed by where the blob is (chunk id, pack,
//! offset): a blob stored again elsewhere gets its own entry, and entries of
//! moved blobs age out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::blob;
use crate::datastore::Datastore;
use crate::error::{Error, Result};
use crate::frame::{self, FrameTable, MacKey};
use crate::id::ChunkId;
use crate::index::Location;
use crate::pack;

/// Frame tables kept per datastore before the cache starts over.
const MAX_TABLES: usize = 16 * 1024;

/// How a blob is laid out, as far as partial reads care.
#[derive(Clone, Debug)]
pub enum Layout {
    /// Version 1: one sealed piece; any read decodes all of it.
    Whole { len: u32 },
    /// Version 2: independently readable frames.
    Framed(Arc<FrameTable>),
}

impl Layout {
    /// Plaintext bytes per independently readable piece.
    pub fn frame_size(&self) -> u32 {
        match self {
            Layout::Whole { len } => (*len).max(1),
            Layout::Framed(t) => t.frame_size(),
        }
    }
}

type Key = (ChunkId, crate::id::PackId, u64);

/// The frame-table cache of a datastore.
#[derive(Default)]
pub struct Tables(Mutex<HashMap<Key, Layout>>);

impl Tables {
    fn get(&self, k: &Key) -> Option<Layout> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(k)
            .cloned()
    }
    fn put(&self, k: Key, l: Layout) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_TABLES {
            m.clear();
        }
        m.insert(k, l);
    }
}

impl Datastore {
    /// The key of the macs of unencrypted frames.
    pub fn frame_mac(&self) -> MacKey {
        MacKey::derive(&self.keys.id_key)
    }

    /// How the blob of `id` is laid out (its frame table, cached).
    /// Follows gc like [`Datastore::read_blob`].
    pub fn blob_layout(&self, id: &ChunkId) -> Result<Layout> {
        self.following_gc(|| {
            let loc = self.locate(id)?;
            self.layout_at(id, &loc)
        })
    }

    fn layout_at(&self, id: &ChunkId, loc: &Location) -> Result<Layout> {
        let key = (*id, loc.pack, loc.offset);
        if let Some(l) = self.tables.get(&key) {
            return Ok(l);
        }
        let want = frame::max_head_len(loc.raw_length).min(loc.length as usize);
        let head = self
            .backend
            .get_range(&pack::object_name(&loc.pack), loc.offset, want)
            .map_err(|e| missing(e, id, loc))?;
        let named = |e: Error| {
            Error::Corrupt(format!(
                "blob {id} in pack {}: {}",
                loc.pack.short(),
                strip(&e)
            ))
        };
        let h = blob::parse_header(&head).map_err(named)?;
        let layout = if h.version == frame::VERSION {
            let t = FrameTable::parse(&head, Some(loc.length as u64)).map_err(named)?;
            if t.header.plaintext_len != loc.raw_length || t.header.kind != loc.kind {
                return Err(named(Error::Corrupt(
                    "header does not match the index".into(),
                )));
            }
            Layout::Framed(Arc::new(t))
        } else {
            Layout::Whole {
                len: loc.raw_length,
            }
        };
        self.tables.put(key, layout.clone());
        Ok(layout)
    }

    /// Read and decode frames `first..=last` of the blob of `id`, each
    /// authenticated on its own (the GCM tag, or the frame's mac), calling
    /// `out(frame index, plaintext)` for each. A blob of version 1 has one
    /// frame, its whole plaintext (checked against the chunk id).
    pub fn read_frames(
        &self,
        id: &ChunkId,
        first: u32,
        last: u32,
        out: &mut dyn FnMut(u32, Vec<u8>),
    ) -> Result<()> {
        self.following_gc(|| {
            let loc = self.locate(id)?;
            match self.layout_at(id, &loc)? {
                Layout::Whole { .. } => {
                    if first != 0 || last != 0 {
                        return Err(Error::InvalidInput(format!(
                            "blob {id} has one frame, not {first}..={last}"
                        )));
                    }
                    out(0, self.read_blob_at(id, &loc)?);
                    Ok(())
                }
                Layout::Framed(t) => {
                    if first > last || last >= t.frames() {
                        return Err(Error::InvalidInput(format!(
                            "blob {id} has {} frames, not {first}..={last}",
                            t.frames()
                        )));
                    }
                    let (a, b) = t.span(first, last);
                    let bytes = self
                        .backend
                        .get_range(
                            &pack::object_name(&loc.pack),
                            loc.offset + a,
                            (b - a) as usize,
                        )
                        .map_err(|e| missing(e, id, &loc))?;
                    let seal = self.pack_key(&loc.pack).map_err(|e| missing(e, id, &loc))?;
                    let mac = self.frame_mac();
                    t.decode_frames(id, first, &bytes, seal.as_ref(), Some(&mac), out)
                        .map_err(|e| {
                            Error::Corrupt(format!(
                                "blob {id} in pack {}: {}",
                                loc.pack.short(),
                                strip(&e)
                            ))
                        })
                }
            }
        })
    }

    /// `len` plaintext bytes of the blob of `id` from `offset`, reading
    /// only the frames that hold them (the whole blob for version 1).
    pub fn read_blob_range(&self, id: &ChunkId, offset: u64, len: usize) -> Result<Vec<u8>> {
        let layout = self.blob_layout(id)?;
        let total = match &layout {
            Layout::Whole { len } => *len as u64,
            Layout::Framed(t) => t.header.plaintext_len as u64,
        };
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= total)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "range of {len} bytes at {offset} is past the end of blob {id} ({total} bytes)"
                ))
            })?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let fs = layout.frame_size() as u64;
        let (first, last) = ((offset / fs) as u32, ((end - 1) / fs) as u32);
        let mut out = Vec::with_capacity(len);
        self.read_frames(id, first, last, &mut |i, f| {
            let base = i as u64 * fs;
            let a = offset.saturating_sub(base).min(f.len() as u64) as usize;
            let b = (end - base).min(f.len() as u64) as usize;
            out.extend_from_slice(&f[a..b.max(a)]);
        })?;
        if out.len() != len {
            return Err(Error::Corrupt(format!("blob {id}: short range read")));
        }
        Ok(out)
    }
}

/// A missing pack object is a missing pack (gc may have moved the blob).
fn missing(e: Error, id: &ChunkId, loc: &Location) -> Error {
    match e {
        Error::NotFound(_) => Error::PackMissing {
            pack: loc.pack,
            chunk: *id,
        },
        e => e,
    }
}

/// The message of a corrupt-data error without its "corrupt data: " prefix.
fn strip(e: &Error) -> String {
    match e {
        Error::Corrupt(m) => m.clone(),
        e => e.to_string(),
    }
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
