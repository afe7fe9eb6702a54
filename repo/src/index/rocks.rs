//! RocksDB index. Memory is bounded by explicit settings, independent of the
//! number of chunks: one shared LRU block cache that also holds index and
//! bloom-filter blocks, and a fixed memtable budget.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};

use super::{Index, Location, PackInfo};
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId};

const CF_CHUNKS: &str = "chunks";
const CF_PACKS: &str = "packs";

/// Memory settings. The defaults keep the index under ~200 MiB of RAM.
#[derive(Clone, Debug)]
pub struct RocksLimits {
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    pub max_open_files: i32,
}

impl Default for RocksLimits {
    fn default() -> Self {
        RocksLimits {
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            max_open_files: 256,
        }
    }
}

pub struct RocksIndex {
    /// Swapped for a newer view by [`Index::refresh`] (read-only only).
    db: RwLock<Arc<DB>>,
    read_only: bool,
    path: PathBuf,
    limits: RocksLimits,
}

/// Tries of a read-only open: the writer may delete a file (a WAL after a
/// flush, an old MANIFEST) between the moment RocksDB lists it and the
/// moment it reads it; the next try sees the new state.
const READ_ONLY_OPEN_TRIES: u32 = 5;

impl Drop for RocksIndex {
    /// A writer leaves its memtables in table files when it closes, so the
    /// next open has no log to replay into new files: an open then writes
    /// almost nothing, which lets prune and gc open a datastore whose file
    /// system has filled up since (docs/faults.md). Best effort: on a full
    /// disk the log stays and is replayed later.
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        let db = self.db();
        for name in [CF_CHUNKS, CF_PACKS] {
            if let Some(cf) = db.cf_handle(name) {
                let _ = db.flush_cf(cf);
            }
        }
    }
}

/// RocksDB's errors by their kind, never by their text: corruption is
/// [`Error::IndexCorrupt`] (rebuild the index), everything else
/// [`Error::Index`]. A second writer never gets here: the datastore's own
/// writer lock refuses it before RocksDB opens (see `Datastore::open`).
fn err(e: rocksdb::Error) -> Error {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => Error::IndexCorrupt(e.into_string()),
        _ => Error::Index(e.into_string()),
    }
}

impl RocksIndex {
    pub fn open(path: &Path, limits: &RocksLimits) -> Result<Self> {
        Self::open_mode(path, limits, false)
    }

    /// Open without taking the writer lock: sees the index as of opening
    /// (until [`Index::refresh`]) and can run beside a writing process.
    /// Writes fail.
    pub fn open_read_only(path: &Path, limits: &RocksLimits) -> Result<Self> {
        Self::open_mode(path, limits, true)
    }

    fn open_mode(path: &Path, limits: &RocksLimits, read_only: bool) -> Result<Self> {
        let db = if read_only {
            Self::open_db_read_only(path, limits)?
        } else {
            Self::open_db(path, limits, false)?
        };
        Ok(RocksIndex {
            db: RwLock::new(Arc::new(db)),
            read_only,
            path: path.to_path_buf(),
            limits: limits.clone(),
        })
    }

    fn open_db_read_only(path: &Path, limits: &RocksLimits) -> Result<DB> {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::open_db(path, limits, true) {
                Ok(db) => return Ok(db),
                Err(e) if tries >= READ_ONLY_OPEN_TRIES => return Err(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10 << tries)),
            }
        }
    }

    /// The current view (cheap: one reference count).
    fn db(&self) -> Arc<DB> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn open_db(path: &Path, limits: &RocksLimits, read_only: bool) -> Result<DB> {
        let cache = Cache::new_lru_cache(limits.block_cache_bytes);
        let cf_opts = || {
            let mut bb = BlockBasedOptions::default();
            bb.set_block_cache(&cache);
            bb.set_bloom_filter(10.0, false);
            bb.set_cache_index_and_filter_blocks(true);
            bb.set_pin_l0_filter_and_index_blocks_in_cache(true);
            // Partitioned index and filters: a lookup loads one 4 KiB
            // partition instead of a whole file's filter (over a MiB at
            // tens of millions of ids), so a bounded cache does not mean
            // megabytes read per lookup. Only the small top level is pinned.
            bb.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
            bb.set_partition_filters(true);
            bb.set_metadata_block_size(4096);
            bb.set_pin_top_level_index_and_filter(true);
            bb.set_block_size(16 * 1024);
            let mut o = Options::default();
            o.set_block_based_table_factory(&bb);
            o.set_write_buffer_size(limits.write_buffer_bytes);
            o.set_max_write_buffer_number(2);
            o.set_compression_type(rocksdb::DBCompressionType::None);
            o.set_level_compaction_dynamic_level_bytes(true);
            o
        };
        let mut db_opts = cf_opts();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(limits.max_open_files);
        db_opts.set_db_write_buffer_size(limits.write_buffer_bytes * 3);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(3);
        // RocksDB preallocates 4 MiB for each new MANIFEST at open; on a
        // nearly full disk that alone fails the open that prune and gc need.
        db_opts.set_manifest_preallocation_size(64 << 10);
        db_opts.set_max_total_wal_size(128 << 20);
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_CHUNKS, cf_opts()),
            ColumnFamilyDescriptor::new(CF_PACKS, cf_opts()),
        ];
        if read_only {
            DB::open_cf_descriptors_read_only(&db_opts, path, cfs, false).map_err(err)
        } else {
            DB::open_cf_descriptors(&db_opts, path, cfs).map_err(err)
        }
    }

    fn get_in(db: &DB, id: &ChunkId) -> Result<Option<Location>> {
        match db
            .get_pinned_cf(cf(db, CF_CHUNKS)?, id.as_bytes())
            .map_err(err)?
        {
            Some(v) => Ok(Some(Location::decode(&v)?)),
            None => Ok(None),
        }
    }
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| Error::Index(format!("missing column family {name}")))
}

/// A read-only view lost a table file to the writer's compaction (it opens
/// files lazily): a fresh view has the merged file instead.
fn is_vanished_file(e: &Error) -> bool {
    matches!(e, Error::Index(m) if m.contains("No such file"))
}

impl Index for RocksIndex {
    fn get(&self, id: &ChunkId) -> Result<Option<Location>> {
        match Self::get_in(&self.db(), id) {
            Err(e) if self.read_only && is_vanished_file(&e) => {
                self.refresh()?;
                Self::get_in(&self.db(), id)
            }
            r => r,
        }
    }

    fn add_pack(&self, pack: &PackId, info: PackInfo, blobs: &[(ChunkId, Location)]) -> Result<()> {
        let db = self.db();
        let chunks = cf(&db, CF_CHUNKS)?;
        let mut b = WriteBatch::default();
        for (id, loc) in blobs {
            b.put_cf(chunks, id.as_bytes(), loc.encode());
        }
        b.put_cf(cf(&db, CF_PACKS)?, pack.as_bytes(), info.encode());
        db.write(b).map_err(err)
    }

    fn remove_blobs(&self, pack: &PackId, blobs: &[ChunkId], drop_pack: bool) -> Result<()> {
        let db = self.db();
        let chunks = cf(&db, CF_CHUNKS)?;
        let mut b = WriteBatch::default();
        for id in blobs {
            if Self::get_in(&db, id)?.is_some_and(|l| l.pack == *pack) {
                b.delete_cf(chunks, id.as_bytes());
            }
        }
        if drop_pack {
            b.delete_cf(cf(&db, CF_PACKS)?, pack.as_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(b, &wo).map_err(err)
    }

    fn packs(&self) -> Result<Vec<(PackId, PackInfo)>> {
        let db = self.db();
        let mut out = Vec::new();
        for kv in db.iterator_cf(cf(&db, CF_PACKS)?, IteratorMode::Start) {
            let (k, v) = kv.map_err(err)?;
            out.push((PackId::from_slice(&k)?, PackInfo::decode(&v)?));
        }
        Ok(out)
    }

    fn for_each_blob(&self, f: &mut dyn FnMut(ChunkId, Location) -> Result<()>) -> Result<()> {
        let db = self.db();
        for kv in db.iterator_cf(cf(&db, CF_CHUNKS)?, IteratorMode::Start) {
            let (k, v) = kv.map_err(err)?;
            f(ChunkId::from_slice(&k)?, Location::decode(&v)?)?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.db().flush_wal(true).map_err(err)
    }

    fn clear(&self) -> Result<()> {
        let db = self.db();
        let mut b = WriteBatch::default();
        for name in [CF_CHUNKS, CF_PACKS] {
            // Keys are 32 bytes, so this range covers every key.
            b.delete_range_cf(cf(&db, name)?, &[][..], &[0xffu8; 33][..]);
        }
        db.write(b).map_err(err)?;
        self.sync()
    }

    /// A read-only view is reopened: the new one replays the writer's
    /// table files and logs as they are now (a synced write of the writer,
    /// such as gc's index update before it deletes a pack, is in its log).
    /// Readers that hold the old view keep it until they finish with it.
    fn refresh(&self) -> Result<bool> {
        if !self.read_only {
            return Ok(false);
        }
        let fresh = Arc::new(Self::open_db_read_only(&self.path, &self.limits)?);
        let old = std::mem::replace(
            &mut *self.db.write().unwrap_or_else(|e| e.into_inner()),
            fresh,
        );
        drop(old);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    fn make() -> (super::RocksIndex, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let idx = super::RocksIndex::open(dir.path(), &Default::default()).unwrap();
        (idx, dir)
    }
    crate::index_suite!(make());

    /// A read-only view sees what the writer added after it opened only
    /// once refreshed, and the writer's removals likewise.
    #[test]
    fn read_only_view_follows_the_writer_on_refresh() {
        let (w, dir) = make();
        let a = ChunkId([1; 32]);
        let b = ChunkId([2; 32]);
        let info = PackInfo { size: 10, blobs: 1 };
        w.add_pack(&PackId([9; 32]), info, &[(a, loc(9, 0))])
            .unwrap();
        w.sync().unwrap();
        let r = super::RocksIndex::open_read_only(dir.path(), &Default::default()).unwrap();
        assert_eq!(r.get(&a).unwrap(), Some(loc(9, 0)));
        // The writer moves a to pack 8 (a repack) and adds b.
        w.add_pack(&PackId([8; 32]), info, &[(a, loc(8, 0)), (b, loc(8, 10))])
            .unwrap();
        w.remove_pack(&PackId([9; 32]), &[a]).unwrap();
        w.sync().unwrap();
        assert_eq!(r.get(&a).unwrap(), Some(loc(9, 0)), "a frozen view");
        assert_eq!(r.get(&b).unwrap(), None);
        assert!(r.refresh().unwrap());
        assert_eq!(r.get(&a).unwrap(), Some(loc(8, 0)));
        assert_eq!(r.get(&b).unwrap(), Some(loc(8, 10)));
        assert_eq!(r.packs().unwrap().len(), 1);
        assert!(!w.refresh().unwrap(), "a writer's view is always current");
        assert!(r.add_pack(&PackId([7; 32]), info, &[]).is_err());
    }
}
