//! Disk-image source: a raw image file (or block device) cut into
//! fixed-size blocks. All-zero blocks become holes and are never stored.
//!
//! With a list of changed extents and a parent snapshot of the same disk
//! geometry, only the blocks that overlap an extent are read; the others
//! are taken from the parent's chunk table. Without extents the whole image
//! is read and hashed, and only new chunks are stored.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arca_repo::format::{Disk, Manifest, Stats};
use arca_repo::image::{self as table, IDS_PER_BLOB};
use arca_repo::{BlobKind, ChunkId, Datastore, Error, PendingChunk, Result, Snapshot};
use crossbeam_channel::bounded;

use crate::restore::{is_zero, write_sparse, RestoreOptions};
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
struct Stamp {
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
    read: &dyn Fn(u64, &mut [u8]) -> Result<()>,
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
    read: &dyn Fn(u64, &mut [u8]) -> Result<()>,
    name: &str,
    shown: &str,
    opts: &ImageOptions,
    stamp: Option<Stamp>,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let start = Instant::now();
    let cs = ds.config().image_chunk_size;
    let blocks = table::block_count(size, cs) as usize;
    // Image blocks are framed (blob version 2) when the datastore says so,
    // for fast random reads of restore points (docs/decisions.md).
    let frames = Some(ds.config().image_frame_size).filter(|&f| f > 0);
    let session = ds.begin_session_framed(frames)?;

    // Decide which blocks to read.
    let parent_disk = opts
        .parent
        .as_ref()
        .and_then(|p| p.manifest.disks.first().cloned());
    // The same file, untouched since the parent read it: nothing is read,
    // unless verify found one of its chunks damaged.
    let unchanged = match (&parent_disk, stamp) {
        (Some(pd), Some(now))
            if !opts.full_read
                && opts.changed_extents.is_none()
                && pd.size == size
                && pd.chunk_size == cs
                && Stamp::recorded(pd) == Some(now) =>
        {
            let ids = table::read_table(ds, pd)?;
            let quarantined = ds.quarantined_ids()?;
            if ids.iter().any(|id| quarantined.contains(id)) {
                None
            } else {
                for t in &pd.table {
                    session.add_root(ChunkId::from_slice(t)?);
                }
                Some(ids)
            }
        }
        _ => None,
    };
    let (mut ids, to_read, mode): (Vec<ChunkId>, Vec<bool>, String) = match unchanged {
        Some(ids) => (
            ids,
            vec![false; blocks],
            format!(
                "unchanged, not read (size, mtime, ctime and inode equal those at {}; --full-read reads it)",
                opts.parent.as_ref().map(|p| p.id.short()).unwrap_or_default()
            ),
        ),
        None => match (&opts.changed_extents, &parent_disk) {
            (Some(ext), Some(pd)) if pd.size == size && pd.chunk_size == cs => {
                for t in &pd.table {
                    session.add_root(ChunkId::from_slice(t)?);
                }
                let ids = table::read_table(ds, pd)?;
                let mut read = vec![false; blocks];
                // Blocks whose chunk verify found damaged are read again.
                let quarantined = ds.quarantined_ids()?;
                if !quarantined.is_empty() {
                    for (r, id) in read.iter_mut().zip(&ids) {
                        *r |= quarantined.contains(id);
                    }
                }
                for &(off, len) in ext {
                    if len == 0 || off >= size {
                        continue;
                    }
                    let first = off / cs as u64;
                    let last = (off + len - 1).min(size - 1) / cs as u64;
                    for b in first..=last {
                        read[b as usize] = true;
                    }
                }
                let n = read.iter().filter(|r| **r).count();
                let p = opts
                    .parent
                    .as_ref()
                    .map(|p| p.id.short())
                    .unwrap_or_default();
                (
                    ids,
                    read,
                    format!(
                    "incremental ({n} of {blocks} blocks changed since {p}, from changed extents)"
                ),
                )
            }
            (Some(_), Some(_)) => (
                vec![ChunkId::default(); blocks],
                vec![true; blocks],
                "full (changed extents ignored: the parent has a different size or chunk size)"
                    .into(),
            ),
            (Some(_), None) => (
                vec![ChunkId::default(); blocks],
                vec![true; blocks],
                "full (changed extents ignored: no parent snapshot)".into(),
            ),
            (None, _) => (
                vec![ChunkId::default(); blocks],
                vec![true; blocks],
                match &opts.parent {
                    Some(p) => format!(
                        "full read, dedup against {} (no changed extents given)",
                        p.id.short()
                    ),
                    None => "full (no parent snapshot)".into(),
                },
            ),
        },
    };
    let read_bytes: u64 = (0..blocks)
        .filter(|b| to_read[*b])
        .map(|b| (size - b as u64 * cs as u64).min(cs as u64))
        .sum();
    progress.total.store(read_bytes, Ordering::Relaxed);

    // Reader (this thread) → workers → resolver thread fills the table.
    let (tx, rx) = bounded::<(usize, PendingChunk)>(64);
    let resolved: Result<Vec<(usize, ChunkId)>> = std::thread::scope(|s| {
        let resolver = s.spawn(move || -> Result<Vec<(usize, ChunkId)>> {
            let mut out = Vec::new();
            for (i, p) in rx {
                out.push((i, p.wait()?));
            }
            Ok(out)
        });
        let r = (|| -> Result<()> {
            for b in (0..blocks).filter(|b| to_read[*b]) {
                progress.check_cancel()?;
                let off = b as u64 * cs as u64;
                let len = (size - off).min(cs as u64) as usize;
                let mut buf = vec![0u8; len];
                read(off, &mut buf)?;
                progress.add(len as u64);
                if is_zero(&buf) {
                    tx.send((b, PendingChunk::Ready(ChunkId::default())))
                } else {
                    tx.send((b, session.submit(BlobKind::Data, buf)?))
                }
                .map_err(|_| Error::Poisoned("resolver stopped".into()))?;
            }
            Ok(())
        })();
        drop(tx);
        let out = resolver
            .join()
            .unwrap_or_else(|_| Err(Error::Poisoned("resolver panicked".into())));
        r.and(out)
    });
    // The session's first error is the cause of any later one.
    for (i, id) in resolved.map_err(|e| session.cause(e))? {
        ids[i] = id;
    }
    let total_holes = ids.iter().filter(|i| i.is_zero()).count() as u64;
    let mut table_ids = Vec::new();
    for part in ids.chunks(IDS_PER_BLOB) {
        table_ids.push(
            session
                .store(BlobKind::ImageTable, &table::encode_table_blob(part))
                .map_err(|e| session.cause(e))?
                .0
                .to_vec(),
        );
    }
    if blocks == 0 {
        // An empty image still has one (empty) table blob list: none.
        table_ids.clear();
    }
    let manifest = Manifest {
        source_kind: "image".into(),
        source: opts.source.clone(),
        time_ns: crate::now_ns(),
        parent: opts
            .parent
            .as_ref()
            .map(|p| p.id.0.to_vec())
            .unwrap_or_default(),
        tags: opts.tags.clone(),
        disks: vec![Disk {
            name: name.to_string(),
            size,
            chunk_size: cs,
            table: table_ids,
            holes: total_holes,
            source_mtime_ns: stamp.map_or(0, |s| s.mtime_ns),
            source_ctime_ns: stamp.map_or(0, |s| s.ctime_ns),
            source_inode: stamp.map_or(0, |s| s.inode),
            source_device: stamp.map_or(0, |s| s.device),
        }],
        hostname: crate::hostname(),
        backup_mode: mode.clone(),
        path: shown.to_string(),
        stats: Some(Stats {
            files: 1,
            bytes_read: read_bytes,
            bytes_total: size,
            duration_s: start.elapsed().as_secs_f64(),
            ..Default::default()
        }),
        ..Default::default()
    };
    crate::commit(session, manifest, start, Vec::new())
}

/// Open (or create) an image restore's target and check what it is; see
/// [`restore`]. Returns the file and whether it is a block device.
fn open_target(target: &Path, size: u64, opts: &RestoreOptions) -> Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let show = target.display();
    // O_NONBLOCK: a FIFO put in the target's place fails at once instead
    // of waiting for a reader; it changes nothing for files and devices.
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(target)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::InvalidInput(format!(
                "the target {show} is a symbolic link; give the path it leads to"
            )),
            Some(libc::EISDIR) => Error::InvalidInput(format!(
                "the target {show} is a directory; an image restores to a file or a block device"
            )),
            _ => Error::io(format!("open {show}"), e),
        })?;
    // Back to blocking writes (a block device could otherwise answer EAGAIN).
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .map_err(|e| Error::io(format!("open {show}"), e.into()))?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("stat {show}"), e))?;
    let kind = meta.file_type();
    if kind.is_block_device() {
        if !opts.allow_block_devices {
            return Err(Error::InvalidInput(format!(
                "the target {show} is a block device, and restores may not write block devices here"
            )));
        }
        if !opts.overwrite {
            return Err(Error::InvalidInput(crate::restore::not_empty_message(
                target,
                "is a block device (its data would be overwritten)",
            )));
        }
        // A block device (a VM's volume, a LUN) is written in place: it
        // cannot be truncated or hold holes.
        let dev_size = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("size of {show}"), e))?;
        if dev_size < size {
            return Err(Error::InvalidInput(format!(
                "{show} holds {dev_size} bytes, the disk needs {size}"
            )));
        }
        return Ok((f, true));
    }
    if !kind.is_file() {
        return Err(Error::InvalidInput(format!(
            "the target {show} is neither a regular file nor a block device"
        )));
    }
    if meta.len() > 0 && !opts.overwrite {
        return Err(Error::InvalidInput(crate::restore::not_empty_message(
            target,
            &format!("holds {} bytes", meta.len()),
        )));
    }
    // Emptied first, so that old data never shows through the holes.
    f.set_len(0)
        .and_then(|()| f.set_len(size))
        .map_err(|e| Error::io(format!("set the length of {show}"), e))?;
    Ok((f, false))
}

/// Write an image snapshot's first disk to `target`, sparse: holes are not
/// written. A missing target is created as a file. A target that holds
/// data (a non-empty file, or a block device) is written only with
/// `opts.overwrite`, and a block device only with
/// `opts.allow_block_devices`. A symbolic link as the target is refused,
/// and the checks are made on the opened file, so nothing can be swapped
/// in between.
pub fn restore(
    ds: &Datastore,
    snapshot: &Snapshot,
    target: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<u64> {
    let disk = snapshot.manifest.disks.first().ok_or_else(|| {
        Error::InvalidInput("not an image snapshot; restore it to a directory".into())
    })?;
    let ids = if disk.size == 0 {
        Vec::new()
    } else {
        table::read_table(ds, disk)?
    };
    let (f, to_device) = open_target(target, disk.size, opts)?;
    progress.total.store(disk.size, Ordering::Relaxed);
    // Readers fetch, decrypt, decompress and verify blocks in parallel; this
    // thread alone writes them. Several threads writing one file would only
    // queue on its inode lock.
    let next = AtomicUsize::new(0);
    let err: Mutex<Option<Error>> = Mutex::new(None);
    let failed = || err.lock().unwrap_or_else(|e| e.into_inner()).is_some();
    let fail = |e: Error| {
        err.lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    };
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let (tx, rx) = bounded::<(u64, Vec<u8>)>(threads * 2);
    let (next, ids, failed, fail) = (&next, &ids, &failed, &fail);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                if failed() {
                    break;
                }
                let off = i as u64 * disk.chunk_size as u64;
                let want = (disk.size - off).min(disk.chunk_size as u64);
                let r = (|| -> Result<()> {
                    progress.check_cancel()?;
                    if id.is_zero() {
                        if to_device {
                            tx.send((off, vec![0; want as usize]))
                                .map_err(|_| Error::Poisoned("restore writer stopped".into()))?;
                        } else {
                            progress.add(want);
                        }
                        return Ok(());
                    }
                    let data = ds.read_blob(id)?;
                    if data.len() as u64 != want {
                        return Err(Error::Corrupt(format!(
                            "block {i} has {} bytes, expected {want}",
                            data.len()
                        )));
                    }
                    tx.send((off, data))
                        .map_err(|_| Error::Poisoned("restore writer stopped".into()))
                })();
                if let Err(e) = r {
                    fail(e);
                }
            });
        }
        drop(tx);
        for (off, data) in &rx {
            if failed() {
                break;
            }
            let written = if to_device {
                f.write_all_at(&data, off)
            } else {
                write_sparse(&f, off, &data)
            };
            match written {
                Ok(()) => progress.add(data.len() as u64),
                Err(e) => fail(Error::io(format!("write {} at {off}", target.display()), e)),
            }
        }
        // Unblock readers waiting to send after a write error.
        drop(rx);
    });
    if let Some(e) = err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    // Like the tree restore, no fsync: the datastore stays the durable copy
    // and `sync` makes a restored image durable when that matters.
    Ok(disk.size)
}
