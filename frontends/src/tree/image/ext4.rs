//! An ext2/3/4 file system of an image, read with `ext4-view` through a
//! [`Volume`] of its partition.
//!
//! What ext4-view 1.0 exposes, and so what is shown: kinds (files,
//! directories, fast and slow symlinks, fifos, character and block
//! devices, sockets), sizes, permission bits, uid/gid, access and
//! modification times in ns (ctime is shown as the modification time).
//! It does not expose inode numbers, link counts or device numbers: `ino`
//! and `rdev` are 0 and `nlink` is 1 (2 for directories). Sparse files
//! and unwritten extents read as zeros (ext4-view fills holes).

use std::rc::Rc;
use std::sync::Arc;

use ext4_view::{Ext4, Ext4Error, FileType, Metadata};

use super::super::{Attr, Entry, FileReader, FileTree, Kind, Result, TreeError, TreePath};
use super::local;
use super::volume::{guard, Volume};

/// A mounted ext file system (shared by the readers of its files).
struct Shared {
    id: u64,
    vol: Volume,
    /// The mount's name in the image's tree (`part1`), for messages.
    name: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        local::forget(self.id);
    }
}

impl Shared {
    /// This thread's instance.
    fn fs(&self) -> Result<Rc<Ext4>> {
        local::get(self.id, || {
            guard(&self.name, || {
                Ext4::load(Box::new(self.vol.clone())).map_err(|e| {
                    TreeError::Io(format!(
                        "{}: the ext file system cannot be read: {e}",
                        self.name
                    ))
                })
            })
        })
    }

    fn error(&self, path: &TreePath, e: Ext4Error) -> TreeError {
        let shown = if path.is_root() {
            self.name.clone()
        } else {
            format!("{}/{path}", self.name)
        };
        match e {
            Ext4Error::NotFound => {
                TreeError::NotFound(format!("no path {shown:?} in the restore point"))
            }
            Ext4Error::NotADirectory => {
                TreeError::NotADirectory(format!("{shown} is not a directory"))
            }
            Ext4Error::IsADirectory => TreeError::IsADirectory(format!("{shown} is a directory")),
            Ext4Error::IsASpecialFile | Ext4Error::NotASymlink => {
                TreeError::WrongKind(format!("{shown} is not a file or symlink"))
            }
            e => TreeError::Io(format!("{shown}: {e}")),
        }
    }
}

/// The ext file system of a partition (or of the whole disk).
pub(crate) struct Ext4Tree {
    shared: Arc<Shared>,
}

/// The absolute path ext4-view takes.
fn abs(path: &TreePath) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    for c in path.components() {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

fn ns(t: ext4_view::Timestamp) -> i64 {
    t.seconds()
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.nanoseconds()))
}

fn attr(m: &Metadata) -> Attr {
    let t = m.file_type();
    let kind = if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else if t.is_fifo() {
        Kind::Fifo
    } else if t.is_char_dev() {
        Kind::CharDevice
    } else if t.is_block_dev() {
        Kind::BlockDevice
    } else if t.is_socket() {
        Kind::Socket
    } else {
        Kind::File
    };
    let mtime = ns(m.modified());
    Attr {
        kind,
        size: match kind {
            Kind::File | Kind::Symlink | Kind::Dir => m.len(),
            _ => 0,
        },
        mode: u32::from(m.mode()),
        uid: m.uid(),
        gid: m.gid(),
        nlink: if kind == Kind::Dir { 2 } else { 1 },
        mtime_ns: mtime,
        atime_ns: ns(m.accessed()),
        ctime_ns: mtime,
        ino: 0,
        rdev: 0,
    }
}

impl Ext4Tree {
    /// Mount the ext file system of `vol`; a file system that cannot be
    /// loaded is `Io`.
    pub(crate) fn open(vol: Volume, name: String) -> Result<Ext4Tree> {
        let shared = Arc::new(Shared {
            id: local::new_id(),
            vol,
            name,
        });
        shared.fs()?;
        Ok(Ext4Tree { shared })
    }

    fn metadata(&self, path: &TreePath) -> Result<Metadata> {
        let s = &self.shared;
        let fs = s.fs()?;
        guard(&s.name, || {
            fs.symlink_metadata(abs(path).as_slice())
                .map_err(|e| s.error(path, e))
        })
    }
}

impl FileTree for Ext4Tree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        Ok(attr(&self.metadata(path)?))
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let s = &self.shared;
        let m = self.metadata(path)?;
        if !m.is_dir() {
            return Err(TreeError::NotADirectory(format!(
                "{}/{path} is not a directory",
                s.name
            )));
        }
        let fs = s.fs()?;
        let mut iter = guard(&s.name, || {
            fs.read_dir(abs(path).as_slice())
                .map_err(|e| s.error(path, e))
        })?;
        let mut pos = 0u64;
        loop {
            let next = guard(&s.name, || match iter.next() {
                None => Ok(None),
                Some(Err(e)) => Err(s.error(path, e)),
                Some(Ok(e)) => {
                    let name = e.file_name().as_ref().to_vec();
                    if name == b"." || name == b".." {
                        return Ok(Some(None));
                    }
                    if pos < start {
                        pos += 1;
                        return Ok(Some(None));
                    }
                    pos += 1;
                    let m = e.metadata().map_err(|e| s.error(path, e))?;
                    Ok(Some(Some(Entry {
                        name,
                        attr: attr(&m),
                    })))
                }
            })?;
            match next {
                None => return Ok(()),
                Some(None) => {}
                Some(Some(entry)) => {
                    if !f(entry) {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        let m = self.metadata(path)?;
        let s = &self.shared;
        match m.file_type() {
            t if t.is_regular_file() => Ok(Arc::new(Ext4File {
                shared: self.shared.clone(),
                path: path.clone(),
                size: m.len(),
            })),
            t if t.is_dir() => Err(TreeError::IsADirectory(format!(
                "{}/{path} is a directory",
                s.name
            ))),
            _ => Err(TreeError::WrongKind(format!(
                "{}/{path} is not a regular file",
                s.name
            ))),
        }
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        let m = self.metadata(path)?;
        let s = &self.shared;
        if m.file_type() != FileType::Symlink {
            return Err(TreeError::WrongKind(format!(
                "{}/{path} is not a symlink",
                s.name
            )));
        }
        let fs = s.fs()?;
        guard(&s.name, || {
            fs.read_link(abs(path).as_slice())
                .map(|t| t.as_ref().to_vec())
                .map_err(|e| s.error(path, e))
        })
    }
}

/// A regular file of an ext file system. Each read opens the file in the
/// reading thread's instance (path lookups hit ext4-view's block cache).
struct Ext4File {
    shared: Arc<Shared>,
    path: TreePath,
    size: u64,
}

impl FileReader for Ext4File {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let s = &self.shared;
        let fs = s.fs()?;
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        guard(&s.name, || {
            let mut file = fs
                .open(abs(&self.path).as_slice())
                .map_err(|e| s.error(&self.path, e))?;
            file.seek_to(offset).map_err(|e| s.error(&self.path, e))?;
            let mut done = 0;
            while done < want {
                let n = file
                    .read_bytes(&mut buf[done..want])
                    .map_err(|e| s.error(&self.path, e))?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            Ok(done)
        })
    }
}
