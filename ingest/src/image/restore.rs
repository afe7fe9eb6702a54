//! Restoring an image snapshot's disk to a file or a block device.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use arca_repo::format::Disk;
use arca_repo::image as table;
use arca_repo::{Datastore, Error, Result, Snapshot};
use crossbeam_channel::bounded;

use crate::restore::{write_sparse, RestoreOptions};
use crate::Progress;

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
    restore_disk(ds, disk, target, opts, progress)
}

/// [`restore`] of one disk of an image snapshot (a VM's have several).
pub fn restore_disk(
    ds: &Datastore,
    disk: &Disk,
    target: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<u64> {
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
