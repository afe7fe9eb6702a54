//! What makes a tree restore safe to kill and cheap to run again.
//!
//! **A file appears at its final name only when complete.** Its content
//! goes to a temporary name in the same directory (`.arca-tmp-<random>-`
//! followed by the start of its name), its ownership, xattrs, mode and
//! times are set through the open descriptor, and only then is it renamed
//! to its name (`renameat`, which replaces a file or link of that name in
//! one step and never follows a link). A restore killed at any point leaves
//! whole files at their names and, at worst, temporaries. There is no
//! fsync (as before): a killed process loses nothing the kernel has
//! accepted; a power cut may.
//!
//! **The restore marker.** While a tree restore runs, its target holds a
//! file [`MARKER`] that names the restore point and the path restored from
//! it; it is removed when the restore finishes. A target that holds the
//! marker of the *same* restore point and path is the leftover of an
//! interrupted run of this very restore: a rerun may write into it without
//! `--overwrite`, removes the temporaries it finds in the directories it
//! restores, and skips the files already restored (see [`is_restored`]).
//! A marker of another restore point counts as data like any other file.
//! A first run writes its marker directly into the empty target (a kill
//! there leaves at most the start of it, which counts as nothing); a rerun
//! replaces the marker in one step (temporary and rename), so that a rerun
//! killed at any moment still leaves a whole marker of this restore.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use arca_repo::format::{node_kind, Node};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::UnlinkatFlags;

/// The name of the restore marker in a target.
pub const MARKER: &str = ".arca-restore-in-progress";
/// How the names of temporaries begin.
pub const TEMP_PREFIX: &[u8] = b".arca-tmp-";
/// The longest marker read; a longer file is not one of ours.
const MARKER_MAX: u64 = 64 * 1024;

/// What the target says about an earlier run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Marker {
    /// No marker: no restore was interrupted here.
    None,
    /// The marker of this restore point and path: resume.
    Same,
    /// The marker of another restore (or a file of that name we did not
    /// write).
    Other,
    /// The start of this restore's marker: a run killed while writing it,
    /// its first step, so it wrote nothing else.
    Partial,
}

/// The marker's content for a restore of `restore_point` (hex) at `path`.
pub(super) fn marker_bytes(restore_point: &str, path: Option<&str>) -> Vec<u8> {
    format!(
        "arca restore in progress: run the same restore again to finish it\nrestore_point {restore_point}\npath {}\n",
        path.unwrap_or("")
    )
    .into_bytes()
}

fn open_at(dir: &OwnedFd, name: &OsStr, flags: OFlag, mode: u32) -> nix::Result<File> {
    nix::fcntl::openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .map(File::from)
}

/// Read the marker in `root`, if any, and compare it with `expected`.
pub(super) fn read_marker(root: &OwnedFd, expected: &[u8]) -> Marker {
    let Ok(f) = open_at(root, OsStr::new(MARKER), OFlag::O_RDONLY, 0) else {
        // Missing, a link (ELOOP), unreadable: nothing we can trust.
        return match nix::sys::stat::fstatat(root, MARKER, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Marker::None,
            _ => Marker::Other,
        };
    };
    let mut buf = Vec::new();
    let regular = f.metadata().is_ok_and(|m| m.is_file());
    if !regular || f.take(MARKER_MAX).read_to_end(&mut buf).is_err() {
        return Marker::Other;
    }
    if buf == expected {
        Marker::Same
    } else if expected.starts_with(&buf) {
        Marker::Partial
    } else {
        Marker::Other
    }
}

/// Put the marker `bytes` in `root`, replacing a file or link of its name.
pub(super) fn write_marker(root: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    super::beneath::clear(root, OsStr::new(MARKER))?;
    let mut f = open_at(
        root,
        OsStr::new(MARKER),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        0o600,
    )?;
    f.write_all(bytes)
}

/// Put the marker `bytes` in `root` in place of this restore's marker, in
/// one step: a temporary renamed over it, so that a rerun killed at any
/// point still leaves a whole marker of this restore (and at worst a
/// temporary, which the next rerun removes). Not for a first run: there a
/// kill between the two steps would leave a temporary and no marker.
pub(super) fn replace_marker(root: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    let (mut f, tmp) = create_temp(root, OsStr::new(MARKER), 0o600)?;
    f.write_all(bytes)?;
    drop(f);
    Ok(nix::fcntl::renameat(root, tmp.as_os_str(), root, MARKER)?)
}

/// Remove the marker from `root`.
pub(super) fn remove_marker(root: &OwnedFd) -> std::io::Result<()> {
    match nix::unistd::unlinkat(root, MARKER, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A name for a temporary of `name`: unique enough, at most 255 bytes.
fn temp_name(name: &OsStr) -> OsString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // Time and process id start the sequence differently in each run
    // (taken once: not two system calls per file); O_EXCL settles any
    // collision.
    let seed = *SEED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 40)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let r = (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut v = TEMP_PREFIX.to_vec();
    v.extend_from_slice(format!("{r:016x}-").as_bytes());
    let room = 255 - v.len();
    let b = name.as_bytes();
    v.extend_from_slice(&b[..b.len().min(room)]);
    OsString::from_vec(v)
}

/// Create a new temporary for `name` in `dir`; returns it and its name.
pub(super) fn create_temp(
    dir: &OwnedFd,
    name: &OsStr,
    mode: u32,
) -> std::io::Result<(File, OsString)> {
    loop {
        let tmp = temp_name(name);
        match open_at(
            dir,
            &tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
        ) {
            Ok(f) => return Ok((f, tmp)),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Remove the temporaries (regular files named [`TEMP_PREFIX`]…) that a
/// killed run left in `dir`; how many.
pub(super) fn remove_temps(dir: &OwnedFd) -> std::io::Result<u64> {
    // The directory through its own descriptor: no path is resolved again.
    let path = Path::new("/proc/self/fd").join(dir.as_fd().as_raw_fd().to_string());
    let mut removed = 0;
    for e in fs::read_dir(path)? {
        let e = e?;
        let name = e.file_name();
        if !name.as_bytes().starts_with(TEMP_PREFIX) || !e.file_type()?.is_file() {
            continue;
        }
        match nix::unistd::unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => removed += 1,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

/// Whether `st` (of an entry at a file's final name, not followed) is that
/// file as a finished restore left it: a regular file of the node's size,
/// modification time (to the nanosecond) and `mode`, and when restoring
/// as root its owner.
///
/// Content is not compared. A file reaches its final name only after its
/// content and times are complete, so a file a run of this restore put
/// there is whole; what differs is written again in full (cheaper than
/// reading both to compare, and always correct). What is trusted is that
/// nobody rewrote a file between the runs keeping its size and its
/// nanosecond mtime — the rule of rsync's quick check and restic's
/// default.
pub(super) fn is_restored(st: &FileStat, n: &Node, mode: u32, as_root: bool) -> bool {
    let mtime = (
        n.mtime_ns.div_euclid(1_000_000_000),
        n.mtime_ns.rem_euclid(1_000_000_000),
    );
    n.kind == node_kind::FILE
        && st.st_mode & libc::S_IFMT == libc::S_IFREG
        && st.st_size as u64 == n.size
        && (st.st_mtime, st.st_mtime_nsec) == (mtime.0 as _, mtime.1 as _)
        && st.st_mode & 0o7777 == mode
        && (!as_root || (st.st_uid, st.st_gid) == (n.uid, n.gid))
}

/// A temporary file's name in its directory; removed on drop unless it
/// was renamed to its final name.
pub(super) struct Temp<'d> {
    pub(super) dir: &'d OwnedFd,
    pub(super) name: Option<std::ffi::OsString>,
}

impl Temp<'_> {
    /// Rename the temporary to `to` in the same directory, replacing a
    /// file or link of that name (never a directory).
    pub(super) fn rename_to(&mut self, to: &OsStr) -> std::io::Result<()> {
        let Some(from) = self.name.as_deref() else {
            return Ok(());
        };
        match nix::fcntl::renameat(self.dir, from, self.dir, to) {
            Ok(()) => {
                self.name = None;
                Ok(())
            }
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => Err(std::io::Error::other(
                "a directory of that name is in the way (a restore does not remove directories)",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.name.take() {
            let _ = nix::unistd::unlinkat(
                self.dir,
                n.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root(d: &Path) -> OwnedFd {
        nix::fcntl::open(d, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn marker_round_trip_and_mismatch() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let mine = marker_bytes("ab12", Some("etc"));
        assert_eq!(read_marker(&r, &mine), Marker::None);
        write_marker(&r, &mine).unwrap();
        assert_eq!(read_marker(&r, &mine), Marker::Same);
        std::fs::write(d.path().join(MARKER), &mine[..mine.len() / 2]).unwrap();
        assert_eq!(read_marker(&r, &mine), Marker::Partial, "killed mid-write");
        write_marker(&r, &mine).unwrap();
        assert_eq!(read_marker(&r, &mine), Marker::Same);
        // A rerun's replacement is a new file, whole, and no temporary stays.
        let ino = fs::metadata(d.path().join(MARKER)).unwrap().ino();
        replace_marker(&r, &mine).unwrap();
        assert_eq!(read_marker(&r, &mine), Marker::Same);
        assert_ne!(fs::metadata(d.path().join(MARKER)).unwrap().ino(), ino);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert_eq!(read_marker(&r, &marker_bytes("ab12", None)), Marker::Other);
        assert_eq!(
            read_marker(&r, &marker_bytes("cd34", Some("etc"))),
            Marker::Other
        );
        // A link named like the marker is never read, and is replaced.
        remove_marker(&r).unwrap();
        let elsewhere = d.path().join("elsewhere");
        fs::write(&elsewhere, &mine).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join(MARKER)).unwrap();
        assert_eq!(read_marker(&r, &mine), Marker::Other);
        write_marker(&r, &mine).unwrap();
        assert!(fs::symlink_metadata(d.path().join(MARKER))
            .unwrap()
            .is_file());
        assert_eq!(fs::read(&elsewhere).unwrap(), mine);
    }

    #[test]
    fn temporaries_are_unique_short_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let long = OsString::from("n".repeat(255));
        let (_f1, t1) = create_temp(&r, &long, 0o600).unwrap();
        let (_f2, t2) = create_temp(&r, &long, 0o600).unwrap();
        assert_ne!(t1, t2);
        assert!(t1.len() <= 255 && t1.as_bytes().starts_with(TEMP_PREFIX));
        fs::create_dir(d.path().join(".arca-tmp-a-dir")).unwrap();
        fs::write(d.path().join("keep"), b"k").unwrap();
        assert_eq!(remove_temps(&r).unwrap(), 2);
        let mut left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, [OsString::from(".arca-tmp-a-dir"), "keep".into()]);
    }
}
