//! Metadata read-ahead for tree backups.
//!
//! The walker visits a tree in a fixed order (depth first, sorted names) on
//! one thread, so on a cold cache every `readdir` and `lstat` waits for the
//! disk in turn. [`Prefetch`] lists and stats the same tree with several
//! threads at once, ahead of the walker, so the disk sees many requests in
//! parallel and the walker finds the kernel's dentry and inode caches warm.
//! It starts before the datastore is opened, so it also overlaps the key
//! derivation. It only reads metadata, never file contents, keeps nothing
//! but a queue of directory paths, and stops when dropped.
//!
//! On the way it adds up the sizes of the regular files it sees, so the
//! backup knows its total long before the walker gets there ([`Scanned`]):
//! the progress bar's total and ETA are true from the first seconds (the
//! walker raises its total as the scan goes and takes the scan's sum when it
//! is complete).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Threads that stat ahead of the walker: metadata reads wait on the disk,
/// not the CPU, so this is about I/O depth rather than cores.
const THREADS: usize = 8;

/// Entries of listings kept for the walker at most (about 11 MiB: an
/// entry is its name and `lstat`, some 230 bytes); beyond it
/// the read-ahead still stats but keeps nothing, and the walker lists and
/// stats itself.
pub const HELD: usize = 48 * 1024;

/// One entry of a directory listing: name and `lstat` result.
pub type Listed = (OsString, Metadata);

#[derive(Default)]
struct Listings {
    dirs: HashMap<PathBuf, Vec<Listed>>,
    /// Entries in `dirs`.
    entries: usize,
}

#[derive(Default)]
struct Queue {
    dirs: Vec<PathBuf>,
    /// Threads currently listing a directory (and so may push more).
    busy: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    stop: AtomicBool,
    /// Bytes of the regular files seen so far.
    bytes: AtomicU64,
    /// Every directory listed: `bytes` is the tree's whole size.
    complete: AtomicBool,
    /// Complete listings the walker has not taken yet.
    listings: Mutex<Listings>,
}

/// A running metadata read-ahead; dropping it stops the threads.
pub struct Prefetch {
    shared: Arc<Shared>,
}

/// How much of the tree the read-ahead has sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes of the regular files seen so far (a hard-linked file counts
    /// once per name, as the walker counts it).
    pub bytes: u64,
    /// The whole tree has been seen: `bytes` is its size.
    pub complete: bool,
}

impl Prefetch {
    /// Start listing and stat-ing everything under `root`.
    pub fn start(root: &Path) -> Prefetch {
        let shared = Arc::new(Shared::default());
        shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dirs
            .push(root.to_path_buf());
        for i in 0..THREADS {
            let s = Arc::clone(&shared);
            // Read-ahead is an optimisation: if a thread cannot start, the
            // walker simply reads the metadata itself.
            let _ = std::thread::Builder::new()
                .name(format!("prefetch-{i}"))
                .spawn(move || run(&s));
        }
        Prefetch { shared }
    }

    /// The listing of `dir` made by the read-ahead, if it has one: every
    /// entry (unsorted) with its `lstat`, or `None` (not listed yet, or an
    /// error there, or over [`HELD`]): then the caller lists it itself.
    /// A listing is handed out once.
    pub fn take(&self, dir: &Path) -> Option<Vec<Listed>> {
        let mut l = self
            .shared
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let v = l.dirs.remove(dir)?;
        l.entries -= v.len();
        Some(v)
    }

    /// What the read-ahead has sized so far.
    pub fn scanned(&self) -> Scanned {
        Scanned {
            // Acquire: with `complete` seen, every addition is too.
            complete: self.shared.complete.load(Ordering::Acquire),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
    }
}

fn run(s: &Shared) {
    loop {
        let dir = {
            let mut q = s.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(d) = q.dirs.pop() {
                    q.busy += 1;
                    break d;
                }
                if q.busy == 0 {
                    // Nothing queued and nobody can add more: done.
                    s.complete.store(true, Ordering::Release);
                    s.ready.notify_all();
                    return;
                }
                q = s.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut subdirs = Vec::new();
        let mut listed = Vec::new();
        // Only a listing without any error is kept: the walker reports
        // errors itself, so it must meet them itself.
        let mut whole = false;
        if let Ok(rd) = fs::read_dir(&dir) {
            whole = true;
            for e in rd {
                if s.stop.load(Ordering::Relaxed) {
                    whole = false;
                    break;
                }
                let Ok(e) = e else {
                    whole = false;
                    continue;
                };
                // The stat is the point: it loads the inode. Relative to
                // the open directory (`fstatat`, no symlink followed): the
                // kernel looks up one name, not the whole path again.
                match e.metadata() {
                    Ok(md) => {
                        if md.is_dir() {
                            subdirs.push(e.path());
                        } else if md.is_file() {
                            s.bytes.fetch_add(md.len(), Ordering::Relaxed);
                        }
                        if whole {
                            listed.push((e.file_name(), md));
                        }
                    }
                    Err(_) => whole = false,
                }
            }
        }
        if whole {
            let mut l = s.listings.lock().unwrap_or_else(|e| e.into_inner());
            if l.entries + listed.len() <= HELD {
                l.entries += listed.len();
                l.dirs.insert(dir.clone(), listed);
            }
        }
        // Reverse name order on the stack pops in name order, roughly
        // following the walker.
        subdirs.sort_unstable_by(|a, b| b.cmp(a));
        let mut q = s.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.busy -= 1;
        let n = subdirs.len();
        q.dirs.extend(subdirs);
        drop(q);
        if n > 0 || s.stop.load(Ordering::Relaxed) {
            s.ready.notify_all();
        } else {
            s.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_everything_and_finishes() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..20 {
            let sub = d.path().join(format!("d{i}/e/f"));
            fs::create_dir_all(&sub).unwrap();
            fs::write(sub.join("x"), b"x").unwrap();
        }
        fs::write(d.path().join("big"), vec![7u8; 10_000]).unwrap();
        let p = Prefetch::start(d.path());
        // Wait until a thread has found the queue empty and idle.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let q = p.shared.queue.lock().unwrap();
            if q.dirs.is_empty() && q.busy == 0 && p.scanned().complete {
                break;
            }
            drop(q);
            assert!(
                std::time::Instant::now() < deadline,
                "prefetch did not finish"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // 20 one-byte files and one of 10 000 bytes; directories count 0.
        assert_eq!(
            p.scanned(),
            Scanned {
                bytes: 10_020,
                complete: true
            }
        );
        // Every directory's listing is there once, with its entries.
        let sub = d.path().join("d3/e/f");
        let l = p.take(&sub).expect("listing kept");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].0, "x");
        assert_eq!(l[0].1.len(), 1);
        assert!(p.take(&sub).is_none(), "handed out once");
        let top = p.take(d.path()).expect("root listing kept");
        assert_eq!(top.len(), 21);
        drop(p);
    }

    #[test]
    fn missing_root_is_harmless() {
        let p = Prefetch::start(Path::new("/nonexistent/arca-prefetch-test"));
        drop(p);
    }
}
