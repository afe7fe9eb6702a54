//! The space reserve: a file of zeros that keeps a little room in the
//! datastore's file system, so that deleting works when it is full.
//!
//! On a 100% full file system RocksDB cannot open (it writes a new
//! MANIFEST, WAL and info log when it opens), so `prune` and `gc`, the only
//! tools that free space, could not run, and every try left more index
//! files behind. Therefore:
//! - every writable open creates `space-reserve` ([`RESERVE_BYTES`] of
//!   zeros, fsynced) if it is missing and fits;
//! - an open *for deletion* ([`crate::OpenOptions::for_deletion`]: prune,
//!   gc) whose index fails to open for lack of space removes the reserve
//!   and tries once more;
//! - gc re-creates the reserve when it has freed space.
//!
//! Backups never release it: a backup on a full disk fails with ENOSPC and
//! leaves the reserve for the prune and gc that follow.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::options::OpenOptions;

/// File at the datastore's root naming the process that holds it open
/// for writing (see [`lock_writer`]).
pub const HELD_BY: &str = "HELD-BY";

/// File at the datastore's root.
pub const RESERVE: &str = "space-reserve";
/// Enough for RocksDB to open (new MANIFEST, WAL, info log, OPTIONS) and
/// for gc's index writes before its first delete frees more.
pub const RESERVE_BYTES: u64 = 4 << 20;
/// Below this much free space RocksDB is not even asked to open for
/// writing: a failed open leaves files behind (empty WALs, rotated logs),
/// more with every try.
pub const MIN_FREE_TO_OPEN: u64 = 1 << 20;

type OpenFn = fn(&Path, bool) -> Result<(Box<dyn Index>, bool)>;

/// The index, whether it must be rebuilt from the packs, and (for a
/// writer) the datastore's writer lock, held as long as the index is open.
pub(crate) type Opened = (Box<dyn Index>, bool, Option<WriterLock>);

/// Open the index under `root`, releasing the reserve for an open for
/// deletion that finds the file system full. A writer first takes the
/// writer lock ([`lock_writer`]); with `discard`, it then removes the index
/// directory (a damaged index), which the open rebuilds from the packs.
pub(crate) fn open_index(
    root: &Path,
    opts: &OpenOptions,
    discard: bool,
    open: OpenFn,
) -> Result<Opened> {
    let dir = root.join("index");
    let fs = (!opts.read_only)
        .then(|| nix::sys::statvfs::statvfs(root).ok())
        .flatten();
    if fs
        .as_ref()
        .is_some_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        // Said plainly, before RocksDB tries (and fails at) rotating its log.
        return Err(Error::io(
            format!("open the index {} for writing", dir.display()),
            io::Error::from_raw_os_error(EROFS),
        ));
    }
    if fs
        .as_ref()
        .is_some_and(|s| free_space(s) < MIN_FREE_TO_OPEN)
    {
        let full = Error::io(
            format!("open the index {}", dir.display()),
            io::Error::from_raw_os_error(ENOSPC),
        );
        if !(opts.for_deletion && release(root)) {
            return Err(full_hint(full));
        }
    }
    let lock = if opts.read_only {
        None
    } else {
        Some(match lock_writer(root) {
            Err(e) if e.is_no_space() && opts.for_deletion && release(root) => lock_writer(root)?,
            r => r.map_err(full_hint)?,
        })
    };
    if discard && !opts.read_only {
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io(format!("remove the index {}", dir.display()), e))
            }
            _ => {}
        }
    }
    let with_lock = |(index, fresh)| (index, fresh, lock);
    match open(&dir, opts.read_only) {
        Ok(r) => {
            // An open for deletion leaves the space it may have released to
            // the deletions; gc puts the reserve back once it has freed space.
            if !opts.read_only && !opts.for_deletion {
                ensure(root);
            }
            Ok(with_lock(r))
        }
        Err(e) if !opts.read_only && e.is_no_space() => {
            if opts.for_deletion && release(root) {
                open(&dir, false).map(with_lock).map_err(full_hint)
            } else {
                Err(full_hint(e))
            }
        }
        Err(e) => Err(e),
    }
}

/// File at the datastore's root that a writer holds with an exclusive
/// `flock` while it is open. It is empty; only the lock matters, and the
/// kernel drops it when the holder exits, however it ends.
pub const LOCK: &str = "lock";

/// The writer lock of an open datastore: released when dropped.
pub type WriterLock = nix::fcntl::Flock<File>;

/// Take the writer lock without waiting. Refused: [`Error::Held`] with the
/// text of `HELD-BY` when the holder left one, else [`Error::Locked`]. The
/// lock is per open file: a second writer in the same process is refused
/// as well.
pub fn lock_writer(root: &Path) -> Result<WriterLock> {
    let path = root.join(LOCK);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("open the writer lock {}", path.display()), e))?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            Err(match fs::read_to_string(root.join(HELD_BY)) {
                Ok(h) if !h.trim().is_empty() => Error::Held(h.trim().to_string()),
                _ => Error::Locked(path.display().to_string()),
            })
        }
        Err((_, e)) => Err(Error::io(
            format!("lock {}", path.display()),
            io::Error::from(e),
        )),
    }
}

const ENOSPC: i32 = 28;
const EROFS: i32 = 30;

/// Bytes free for unprivileged writers.
fn free_space(s: &nix::sys::statvfs::Statvfs) -> u64 {
    s.blocks_available().saturating_mul(s.fragment_size())
}

fn full_hint(e: Error) -> Error {
    if !e.is_no_space() {
        return e;
    }
    let mut msg = match e {
        Error::Index(s) => s,
        e => e.to_string(),
    };
    // RocksDB says it twice ("IO error: No space left on device: While
    // appending to file: …: No space left on device"): once is enough.
    const NO_SPACE: &str = ": No space left on device";
    if msg.matches(&NO_SPACE[2..]).count() > 1 {
        if let Some(s) = msg.strip_suffix(NO_SPACE) {
            msg = s.to_string();
        }
    }
    Error::Index(format!(
        "{msg}: the datastore's file system is full; free space with `arca prune` and \
         `arca gc` (they can run on a full disk once), or make room on the file system"
    ))
}

/// Create the reserve if it is missing (best effort: nothing happens when
/// it does not fit).
pub fn ensure(root: &Path) {
    let path = root.join(RESERVE);
    if path.exists() {
        return;
    }
    let tmp = root.join("space-reserve.tmp");
    let r = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..RESERVE_BYTES.div_ceil(1 << 20) {
            f.write_all(&zeros)?;
        }
        // Really allocated, not sparse, and durable before it counts.
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(root)?.sync_all()
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Remove the reserve; whether there was one.
pub fn release(root: &Path) -> bool {
    fs::remove_file(root.join(RESERVE)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_and_release() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path());
        assert_eq!(
            fs::metadata(dir.path().join(RESERVE)).unwrap().len(),
            RESERVE_BYTES
        );
        assert!(release(dir.path()));
        assert!(!release(dir.path()));
    }
}
