//! The file catalog of a tree snapshot: every path with its kind, mode,
//! size and mtime, in depth-first order, so that listing and search never
//! walk trees. Stored as Catalog blobs; a blob ends after an entry whose
//! path hash has its low 10 bits zero (or after 16384 entries), so the
//! boundaries depend on content and unchanged stretches of the catalog
//! dedup across snapshots.

use prost::Message;

use crate::blob::BlobKind;
use crate::datastore::Datastore;
use crate::error::Result;
use crate::format::{self, CatalogChunk, CatalogEntry};
use crate::id::ChunkId;
use crate::session::BackupSession;

const MAX_ENTRIES: usize = 16 * 1024;

#[derive(Default)]
pub struct CatalogWriter {
    current: Vec<CatalogEntry>,
    ids: Vec<ChunkId>,
}

impl CatalogWriter {
    pub fn push(&mut self, s: &BackupSession, e: CatalogEntry) -> Result<()> {
        let h = blake3::hash(&e.path);
        let cut = h.as_bytes()[0] == 0 && h.as_bytes()[1] & 3 == 0;
        self.current.push(e);
        if cut || self.current.len() >= MAX_ENTRIES {
            self.flush(s)?;
        }
        Ok(())
    }

    fn flush(&mut self, s: &BackupSession) -> Result<()> {
        if self.current.is_empty() {
            return Ok(());
        }
        let chunk = CatalogChunk {
            version: format::STRUCT_VERSION,
            entries: std::mem::take(&mut self.current),
        };
        self.ids
            .push(s.store(BlobKind::Catalog, &chunk.encode_to_vec())?);
        Ok(())
    }

    /// Store what is left and return the catalog's blob ids.
    pub fn finish(mut self, s: &BackupSession) -> Result<Vec<ChunkId>> {
        self.flush(s)?;
        Ok(self.ids)
    }
}

/// Call `f` for every catalog entry, in order; stop early if it returns false.
pub fn for_each(
    ds: &Datastore,
    ids: &[ChunkId],
    f: &mut dyn FnMut(&CatalogEntry) -> bool,
) -> Result<()> {
    for id in ids {
        let c: CatalogChunk = format::decode("catalog", &ds.read_blob(id)?)?;
        for e in &c.entries {
            if !f(e) {
                return Ok(());
            }
        }
    }
    Ok(())
}
