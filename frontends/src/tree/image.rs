//! The tree of an image restore point: the disk, its partitions and the
//! files of the file systems on them, all read through the shared
//! restore-point reader (frames, chunk cache, read-ahead).
//!
//! Layout of the root:
//!
//! ```text
//! disk.img      the whole disk
//! part1.img     partition N as a file, numbered as the table numbers it:
//! part2.img     GPT entry index + 1; MBR 1-4 primary, 5 and up logical
//! part1/        the file system of partition N, when recognised
//! fs/           a file system on the whole disk (no partition table)
//! ```
//!
//! File systems are recognised by their own signature (ext2/3/4: the
//! superblock magic; FAT12/16/32: a boot sector with a sane BIOS
//! parameter block; NTFS: the boot sector's OEM id), not by the partition
//! type. They are loaded on first use. A damaged partition table leaves
//! `disk.img` alone in the root (a warning is logged); a damaged file
//! system makes its directory fail with `Io` while the other partitions
//! and the `.img` files stay readable; a damaged file fails with `Io`
//! alone. No bytes make the readers panic: calls into the crates are
//! guarded and a panic becomes `Io` for the path read.

mod disk;
mod ext4;
mod fat;
mod local;
mod ntfs;
mod volume;

use std::sync::{Arc, OnceLock};

use arca_repo::{Datastore, Snapshot};

use super::{Attr, BlockFile, Entry, FileReader, FileTree, Result, TreeError, TreePath};
use crate::reader::{BlockSource, ChunkCache, ImageReader};
use disk::FsKind;
use volume::Volume;

/// The name of the whole disk in an image's tree.
pub const DISK_FILE: &str = "disk.img";

/// The name of a file system on the whole disk in an image's tree.
pub const WHOLE_DISK_FS: &str = "fs";

/// A file system found on the disk, loaded on first use.
struct Mount {
    /// Its directory in the root: `part1`, `fs`.
    name: String,
    kind: FsKind,
    vol: Volume,
    /// The loaded tree, or why it cannot be read.
    loaded: OnceLock<std::result::Result<Arc<dyn FileTree>, String>>,
}

impl Mount {
    fn tree(&self) -> Result<Arc<dyn FileTree>> {
        self.loaded
            .get_or_init(|| {
                let vol = self.vol.clone();
                let r: Result<Arc<dyn FileTree>> = match self.kind {
                    FsKind::Ext => ext4::Ext4Tree::open(vol, self.name.clone())
                        .map(|t| Arc::new(t) as Arc<dyn FileTree>),
                    FsKind::Fat => fat::FatTree::open(vol, self.name.clone())
                        .map(|t| Arc::new(t) as Arc<dyn FileTree>),
                    FsKind::Ntfs => ntfs::NtfsTree::open(vol, self.name.clone())
                        .map(|t| Arc::new(t) as Arc<dyn FileTree>),
                };
                r.map_err(|e| {
                    tracing::warn!(mount = %self.name, error = %e, "a file system of the image cannot be read");
                    e.to_string()
                })
            })
            .clone()
            .map_err(TreeError::Io)
    }
}

/// One entry of the root.
enum Top {
    /// `disk.img` or `partN.img`: a byte range of the disk.
    Image { name: String, start: u64, len: u64 },
    /// `partN/` or `fs/`.
    Mount(Mount),
}

impl Top {
    fn name(&self) -> &str {
        match self {
            Top::Image { name, .. } => name,
            Top::Mount(m) => &m.name,
        }
    }
}

/// An image restore point's tree.
pub struct ImageTree {
    disk: Arc<dyn BlockSource>,
    time_ns: i64,
    /// The root's entries, in listing order.
    top: Vec<Top>,
}

impl ImageTree {
    pub fn open(ds: Arc<Datastore>, snap: &Snapshot, cache: Arc<ChunkCache>) -> Result<Self> {
        let disk: Arc<dyn BlockSource> = Arc::new(ImageReader::open(ds, snap, cache)?);
        Ok(Self::from_disk(disk, snap.manifest.time_ns))
    }

    /// The tree of any disk (tests give a disk in memory). Reads the
    /// partition table and the first sectors of each partition.
    pub fn from_disk(disk: Arc<dyn BlockSource>, time_ns: i64) -> Self {
        let whole = Volume::new(disk.clone(), 0, disk.size());
        let mut top = vec![Top::Image {
            name: DISK_FILE.into(),
            start: 0,
            len: disk.size(),
        }];
        let parts = disk::partitions(&whole);
        if parts.is_empty() {
            if let Some(kind) = disk::detect(&whole) {
                top.push(Top::Mount(Mount {
                    name: WHOLE_DISK_FS.into(),
                    kind,
                    vol: whole,
                    loaded: OnceLock::new(),
                }));
            }
        }
        for p in parts {
            top.push(Top::Image {
                name: format!("part{}.img", p.number),
                start: p.start,
                len: p.len,
            });
            let vol = Volume::new(disk.clone(), p.start, p.len);
            if let Some(kind) = disk::detect(&vol) {
                top.push(Top::Mount(Mount {
                    name: format!("part{}", p.number),
                    kind,
                    vol,
                    loaded: OnceLock::new(),
                }));
            }
        }
        ImageTree { disk, time_ns, top }
    }

    fn find(&self, name: &[u8]) -> Option<&Top> {
        self.top.iter().find(|t| t.name().as_bytes() == name)
    }

    fn entry(&self, t: &Top) -> Entry {
        Entry {
            name: t.name().as_bytes().to_vec(),
            attr: match t {
                Top::Image { len, .. } => Attr::synthetic_file(*len, self.time_ns),
                Top::Mount(_) => Attr::synthetic_dir(self.time_ns),
            },
        }
    }

    fn not_found(path: &TreePath) -> TreeError {
        TreeError::NotFound(format!(
            "no path {:?} in the restore point",
            path.to_string()
        ))
    }

    /// What `path` is under: its top entry, and the path below it.
    fn resolve(&self, path: &TreePath) -> Result<(&Top, TreePath)> {
        let first = path
            .components()
            .first()
            .ok_or_else(|| Self::not_found(path))?;
        let top = self.find(first).ok_or_else(|| Self::not_found(path))?;
        let rest = path.skip(1);
        if !rest.is_root() && matches!(top, Top::Image { .. }) {
            return Err(TreeError::NotADirectory(format!(
                "{} is not a directory",
                top.name()
            )));
        }
        Ok((top, rest))
    }
}

impl FileTree for ImageTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        if path.is_root() {
            return Ok(Attr::synthetic_dir(self.time_ns));
        }
        match self.resolve(path)? {
            (t, rest) if rest.is_root() => Ok(self.entry(t).attr),
            (Top::Mount(m), rest) => m.tree()?.stat(&rest),
            (Top::Image { .. }, _) => Err(Self::not_found(path)),
        }
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        if path.is_root() {
            for t in self
                .top
                .iter()
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
            {
                if !f(self.entry(t)) {
                    break;
                }
            }
            return Ok(());
        }
        match self.resolve(path)? {
            (Top::Mount(m), rest) => m.tree()?.read_dir(&rest, start, f),
            (Top::Image { name, .. }, _) => Err(TreeError::NotADirectory(format!(
                "{name} is not a directory"
            ))),
        }
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        if path.is_root() {
            return Err(TreeError::IsADirectory("the root is a directory".into()));
        }
        match self.resolve(path)? {
            (Top::Image { start, len, .. }, _) => {
                Ok(Arc::new(BlockFile::new(self.disk.clone(), *start, *len)))
            }
            (Top::Mount(m), rest) if rest.is_root() => Err(TreeError::IsADirectory(format!(
                "{} is a directory",
                m.name
            ))),
            (Top::Mount(m), rest) => m.tree()?.open(&rest),
        }
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        match self.resolve(path) {
            Ok((Top::Mount(m), rest)) if !rest.is_root() => m.tree()?.read_link(&rest),
            _ => {
                self.stat(path)?;
                Err(TreeError::WrongKind(format!("{path} is not a symlink")))
            }
        }
    }
}

#[cfg(test)]
mod tests;
