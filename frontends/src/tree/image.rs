//! The tree of an image restore point: the disk as a file, `disk.img`,
//! read through the shared restore-point reader (frames, chunk cache,
//! read-ahead).
//!
//! Layout of the root:
//!
//! ```text
//! disk.img        the whole disk
//! ```

use std::sync::Arc;

use arca_repo::{Datastore, Snapshot};

use super::{Attr, BlockFile, Entry, FileReader, FileTree, Result, TreeError, TreePath};
use crate::reader::{BlockSource, ChunkCache, ImageReader};

/// The name of the whole disk in an image's tree.
pub const DISK_FILE: &str = "disk.img";

/// An image restore point's tree.
pub struct ImageTree {
    disk: Arc<dyn BlockSource>,
    time_ns: i64,
}

impl ImageTree {
    pub fn open(ds: Arc<Datastore>, snap: &Snapshot, cache: Arc<ChunkCache>) -> Result<Self> {
        let disk: Arc<dyn BlockSource> = Arc::new(ImageReader::open(ds, snap, cache)?);
        Ok(Self::from_disk(disk, snap.manifest.time_ns))
    }

    /// The tree of any disk (tests give a disk in memory).
    pub fn from_disk(disk: Arc<dyn BlockSource>, time_ns: i64) -> Self {
        ImageTree { disk, time_ns }
    }

    fn disk_entry(&self) -> Entry {
        Entry {
            name: DISK_FILE.as_bytes().to_vec(),
            attr: Attr::synthetic_file(self.disk.size(), self.time_ns),
        }
    }

    fn not_found(path: &TreePath) -> TreeError {
        TreeError::NotFound(format!(
            "no path {:?} in the restore point",
            path.to_string()
        ))
    }
}

impl FileTree for ImageTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        match path.components() {
            [] => Ok(Attr::synthetic_dir(self.time_ns)),
            [n] if n.as_slice() == DISK_FILE.as_bytes() => Ok(self.disk_entry().attr),
            _ => Err(Self::not_found(path)),
        }
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        match path.components() {
            [] => {
                if start == 0 {
                    f(self.disk_entry());
                }
                Ok(())
            }
            [n] if n.as_slice() == DISK_FILE.as_bytes() => Err(TreeError::NotADirectory(format!(
                "{path} is not a directory"
            ))),
            _ => Err(Self::not_found(path)),
        }
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        match path.components() {
            [] => Err(TreeError::IsADirectory("the root is a directory".into())),
            [n] if n.as_slice() == DISK_FILE.as_bytes() => Ok(Arc::new(BlockFile::new(
                self.disk.clone(),
                0,
                self.disk.size(),
            ))),
            _ => Err(Self::not_found(path)),
        }
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        self.stat(path)?;
        Err(TreeError::WrongKind(format!("{path} is not a symlink")))
    }
}
