//! The chunk index: chunk id → (pack, offset, length), and the pack list.
//!
//! The index is a cache of the pack headers and never the only copy of
//! anything: `Datastore::rebuild_index` recreates it from the packs.
//! Callers see this trait, not the key-value engine behind it. Two
//! implementations pass one shared test suite (`index_suite!`): RocksDB for
//! real datastores (bounded memory, however large the datastore grows) and
//! an in-memory map for fast tests.
//!
//! Contract:
//! - `add_pack` records a pack and all its blobs in one atomic batch; after a
//!   crash either all of them are visible or none. It is called only after
//!   the pack itself is durable.
//! - `remove_pack` deletes the pack record and those of the given blob
//!   entries that still point into that pack (a blob that was since copied
//!   elsewhere keeps its newer location). It is called before the pack file
//!   is deleted, so the index never points to a pack that GC removed.
//! - `sync` makes everything added so far durable (WAL fsync); a snapshot is
//!   only written after it.
//! - `refresh` brings a read-only view up to date with the writer's index.
//!   A read-only RocksDB open is a snapshot of the index as of opening: a
//!   reader in another process than the writer never sees packs indexed or
//!   repacked after that. Readers call it when the view sends them to a pack
//!   that is gone or does not know a chunk they need, then look again
//!   ([`crate::Datastore::read_blob`]). A writer's own index is always
//!   current: `refresh` does nothing there.

pub mod mem;
#[cfg(feature = "rocksdb")]
pub mod rocks;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId};

/// Where a blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub pack: PackId,
    pub offset: u64,
    pub length: u32,
    pub raw_length: u32,
    pub kind: BlobKind,
}

pub const LOCATION_LEN: usize = 32 + 8 + 4 + 4 + 1;

impl Location {
    pub fn encode(&self) -> [u8; LOCATION_LEN] {
        let mut b = [0u8; LOCATION_LEN];
        b[..32].copy_from_slice(self.pack.as_bytes());
        b[32..40].copy_from_slice(&self.offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.length.to_le_bytes());
        b[44..48].copy_from_slice(&self.raw_length.to_le_bytes());
        b[48] = self.kind as u8;
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != LOCATION_LEN {
            return Err(Error::Index(format!("index entry of {} bytes", b.len())));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[32..40]);
        Ok(Location {
            pack: PackId::from_slice(&b[..32])?,
            offset: u64::from_le_bytes(off),
            length: u32_at(40),
            raw_length: u32_at(44),
            kind: BlobKind::from_u8(b[48])?,
        })
    }
}

/// What the index knows about a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackInfo {
    pub size: u64,
    pub blobs: u32,
}

impl PackInfo {
    pub fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..].copy_from_slice(&self.blobs.to_le_bytes());
        b
    }
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 12 {
            return Err(Error::Index(format!("pack entry of {} bytes", b.len())));
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        Ok(PackInfo {
            size: u64::from_le_bytes(s),
            blobs: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

pub trait Index: Send + Sync {
    fn get(&self, id: &ChunkId) -> Result<Option<Location>>;
    fn add_pack(&self, pack: &PackId, info: PackInfo, blobs: &[(ChunkId, Location)]) -> Result<()>;
    /// Durably remove those of `blobs` that point into `pack`; with
    /// `drop_pack` also the pack record.
    fn remove_blobs(&self, pack: &PackId, blobs: &[ChunkId], drop_pack: bool) -> Result<()>;
    fn remove_pack(&self, pack: &PackId, blobs: &[ChunkId]) -> Result<()> {
        self.remove_blobs(pack, blobs, true)
    }
    fn packs(&self) -> Result<Vec<(PackId, PackInfo)>>;
    /// Every blob, in ascending id order (gc's sweep relies on the order).
    fn for_each_blob(&self, f: &mut dyn FnMut(ChunkId, Location) -> Result<()>) -> Result<()>;
    fn sync(&self) -> Result<()>;
    /// Remove everything (before a rebuild).
    fn clear(&self) -> Result<()>;
    /// Catch up with the writer (see the module documentation). Returns
    /// whether the view can have changed (false: it is always current).
    fn refresh(&self) -> Result<bool> {
        Ok(false)
    }
}

/// The shared suite every `Index` implementation must pass.
#[cfg(test)]
#[macro_export]
macro_rules! index_suite {
    ($make:expr) => {
        use $crate::blob::BlobKind;
        use $crate::id::{ChunkId, PackId};
        use $crate::index::{Index, Location, PackInfo};

        fn loc(pack: u8, offset: u64) -> Location {
            Location {
                pack: PackId([pack; 32]),
                offset,
                length: 10,
                raw_length: 20,
                kind: BlobKind::Data,
            }
        }

        #[test]
        fn add_get_remove() {
            let (idx, _guard) = $make;
            let a = ChunkId([1; 32]);
            let b = ChunkId([2; 32]);
            assert_eq!(idx.get(&a).unwrap(), None);
            let info = PackInfo {
                size: 100,
                blobs: 2,
            };
            idx.add_pack(&PackId([9; 32]), info, &[(a, loc(9, 0)), (b, loc(9, 10))])
                .unwrap();
            assert_eq!(idx.get(&a).unwrap(), Some(loc(9, 0)));
            assert_eq!(idx.get(&b).unwrap(), Some(loc(9, 10)));
            assert_eq!(idx.packs().unwrap(), vec![(PackId([9; 32]), info)]);
            // b is copied to another pack; removing pack 9 keeps b's new home.
            idx.add_pack(
                &PackId([8; 32]),
                PackInfo { size: 50, blobs: 1 },
                &[(b, loc(8, 0))],
            )
            .unwrap();
            idx.remove_pack(&PackId([9; 32]), &[a, b]).unwrap();
            assert_eq!(idx.get(&a).unwrap(), None);
            assert_eq!(idx.get(&b).unwrap(), Some(loc(8, 0)));
            assert_eq!(idx.packs().unwrap().len(), 1);
            let mut n = 0;
            idx.for_each_blob(&mut |_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 1);
            idx.sync().unwrap();
            idx.clear().unwrap();
            assert_eq!(idx.get(&b).unwrap(), None);
            assert!(idx.packs().unwrap().is_empty());
        }

        #[test]
        fn many_entries() {
            let (idx, _guard) = $make;
            let blobs: Vec<_> = (0..5000u32)
                .map(|i| {
                    let mut id = [0u8; 32];
                    id[..4].copy_from_slice(&i.to_le_bytes());
                    (ChunkId(id), loc(7, i as u64))
                })
                .collect();
            idx.add_pack(
                &PackId([7; 32]),
                PackInfo {
                    size: 1,
                    blobs: 5000,
                },
                &blobs,
            )
            .unwrap();
            for (id, l) in &blobs {
                assert_eq!(idx.get(id).unwrap(), Some(*l));
            }
        }
    };
}
