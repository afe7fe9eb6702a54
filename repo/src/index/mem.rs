//! In-memory index for tests and throwaway datastores.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Index, Location, PackInfo};
use crate::error::Result;
use crate::id::{ChunkId, PackId};

#[derive(Default)]
pub struct MemIndex {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    blobs: HashMap<ChunkId, Location>,
    packs: BTreeMap<PackId, PackInfo>,
}

impl MemIndex {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Index for MemIndex {
    fn get(&self, id: &ChunkId) -> Result<Option<Location>> {
        Ok(self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .blobs
            .get(id)
            .copied())
    }

    fn add_pack(&self, pack: &PackId, info: PackInfo, blobs: &[(ChunkId, Location)]) -> Result<()> {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.packs.insert(*pack, info);
        for (id, loc) in blobs {
            g.blobs.insert(*id, *loc);
        }
        Ok(())
    }

    fn remove_blobs(&self, pack: &PackId, blobs: &[ChunkId], drop_pack: bool) -> Result<()> {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if drop_pack {
            g.packs.remove(pack);
        }
        for id in blobs {
            if g.blobs.get(id).is_some_and(|l| l.pack == *pack) {
                g.blobs.remove(id);
            }
        }
        Ok(())
    }

    fn packs(&self) -> Result<Vec<(PackId, PackInfo)>> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        Ok(g.packs.iter().map(|(k, v)| (*k, *v)).collect())
    }

    fn for_each_blob(&self, f: &mut dyn FnMut(ChunkId, Location) -> Result<()>) -> Result<()> {
        let all: Vec<_> = {
            let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let mut all: Vec<_> = g.blobs.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_unstable_by_key(|(k, _)| *k);
            all
        };
        for (k, v) in all {
            f(k, v)?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Inner::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    crate::index_suite!((super::MemIndex::new(), ()));
}
