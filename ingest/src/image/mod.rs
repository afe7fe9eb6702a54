//! Disk-image source: a raw image file (or block device), or a qcow2
//! image read through qemu-nbd ([`qcow2`]), cut into fixed-size blocks.
//! All-zero blocks become holes and are never stored. A restore point may
//! hold several disks (a VM's); [`backup_disks`] is the core every image
//! source shares.
//!
//! With a list of changed extents and a parent snapshot of the same disk
//! geometry, only the blocks that overlap an extent are read; the others
//! are taken from the parent's chunk table. Without extents the whole image
//! is read and hashed, and only new chunks are stored.

mod disk;
pub mod qcow2;
mod restore;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use arca_repo::format::Disk;
use arca_repo::{Datastore, Error, Result, Snapshot};

pub use disk::{backup_disks, DiskInput, Header, ReadAt};
pub use restore::{restore, restore_disk};

use crate::{BackupOutcome, Progress};

#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    pub source: String,
    pub parent: Option<Snapshot>,
    /// Byte ranges (offset, length) changed since `parent`.
    pub changed_extents: Option<Vec<(u64, u64)>>,
    pub tags: Vec<String>,
    /// Read the whole image even when its size, mtime, ctime, inode and
    /// device equal those recorded in `parent` (which otherwise means:
    /// unchanged, not read).
    pub full_read: bool,
}

/// What identifies an unchanged image file, as the peers (restic, borg,
/// bupstash) judge files: its size, mtime, ctime, inode and device. ctime
/// cannot be set from user space, so a write through any path moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
    device: u64,
}

impl Stamp {
    /// A regular file's stamp; none for block devices (whose times do not
    /// follow their content).
    fn of(md: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        if !md.is_file() {
            return None;
        }
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Some(Stamp {
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            inode: md.ino(),
            device: md.dev(),
        })
    }

    /// The stamp a snapshot's disk recorded, if any.
    fn recorded(d: &Disk) -> Option<Stamp> {
        (d.source_ctime_ns != 0 && d.source_inode != 0).then_some(Stamp {
            mtime_ns: d.source_mtime_ns,
            ctime_ns: d.source_ctime_ns,
            inode: d.source_inode,
            device: d.source_device,
        })
    }
}

/// Parse a changed-extents file: one `OFFSET LENGTH` pair per line (decimal
/// or 0x-hex bytes); blank lines and `#` comments are ignored.
pub fn parse_extents(path: &Path) -> Result<Vec<(u64, u64)>> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let num = |s: &str| -> Option<u64> {
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty());
        let parsed = (it.next().and_then(num), it.next().and_then(num), it.next());
        match parsed {
            (Some(o), Some(l), None) if o.checked_add(l).is_some() => out.push((o, l)),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{}:{}: expected 'OFFSET LENGTH', got {line:?}",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    Ok(out)
}

fn image_size(f: &mut File) -> Result<u64> {
    f.seek(SeekFrom::End(0))
        .map_err(|e| Error::io("size of image", e))
}

pub fn backup(
    ds: &Arc<Datastore>,
    path: &Path,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let mut f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let md = f.metadata().map_err(|e| Error::io("stat", e))?;
    if md.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is a directory; use `backup files`",
            path.display()
        )));
    }
    if qcow2::is_qcow2(path)? {
        if opts.changed_extents.is_some() {
            return Err(Error::InvalidInput(
                "changed extents are for raw images; a qcow2 image's changes come from its dirty bitmaps".into(),
            ));
        }
        return qcow2::backup(ds, path, opts, progress);
    }
    let size = image_size(&mut f)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = std::fs::canonicalize(path)
        .unwrap_or(path.to_path_buf())
        .display()
        .to_string();
    let read = |off: u64, buf: &mut [u8]| {
        f.read_exact_at(buf, off)
            .map_err(|e| Error::io(format!("read {} at {off}", path.display()), e))
    };
    backup_disk(
        ds,
        size,
        &read,
        &name,
        &shown,
        opts,
        Stamp::of(&md),
        progress,
    )
}

/// Back up `size` bytes that `read(offset, buf)` gives (a file, or a
/// frontend's overlay over a restore point) as an image restore point of
/// one disk called `name`, taken from `shown`.
pub fn backup_from(
    ds: &Arc<Datastore>,
    size: u64,
    read: &(dyn Fn(u64, &mut [u8]) -> Result<()> + Sync),
    name: &str,
    shown: &str,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<BackupOutcome> {
    backup_disk(ds, size, read, name, shown, opts, None, progress)
}

/// [`backup_from`], with the stamp of the image file when it is one.
#[allow(clippy::too_many_arguments)]
fn backup_disk(
    ds: &Arc<Datastore>,
    size: u64,
    read: &(dyn Fn(u64, &mut [u8]) -> Result<()> + Sync),
    name: &str,
    shown: &str,
    opts: &ImageOptions,
    stamp: Option<Stamp>,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let mut d = DiskInput::new(name, size, read);
    d.parent = opts
        .parent
        .as_ref()
        .and_then(|p| p.manifest.disks.first().cloned());
    d.changed = opts.changed_extents.clone();
    d.stamp = stamp;
    d.full_read = opts.full_read;
    let header = Header {
        source_kind: "image",
        source: &opts.source,
        path: shown,
        tags: &opts.tags,
        parent: opts.parent.as_ref(),
        metadata_json: String::new(),
    };
    backup_disks(ds, &header, vec![d], progress)
}
