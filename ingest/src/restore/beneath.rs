//! Opening directories beneath a restore's target without ever following
//! a symbolic link (see the documentation of [`super`]).

use std::ffi::OsStr;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use arca_repo::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
/// Whether `openat2` works here: 0 not tried yet, 1 yes, 2 no (an old
/// kernel, or a seccomp filter that refuses it).
pub(super) static OPENAT2: AtomicU8 = AtomicU8::new(0);

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The target directory, and the directories beneath it, opened without
/// ever following a symbolic link.
pub(super) struct Beneath {
    pub(super) root: OwnedFd,
    target: PathBuf,
}

impl Beneath {
    /// Create `target` if needed and open it.
    pub(super) fn open(target: &Path) -> Result<Beneath> {
        fs::create_dir_all(target)
            .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
        let is_link = || fs::symlink_metadata(target).is_ok_and(|m| m.is_symlink());
        let root = nix::fcntl::open(target, dir_flags(), Mode::empty()).map_err(|e| match e {
            // O_DIRECTORY | O_NOFOLLOW on a link answers ENOTDIR.
            Errno::ELOOP | Errno::ENOTDIR if is_link() => Error::InvalidInput(format!(
                "the target {} is a symbolic link; give the directory it leads to",
                target.display()
            )),
            Errno::ENOTDIR => Error::InvalidInput(format!(
                "the target {} exists and is not a directory",
                target.display()
            )),
            e => Error::io(format!("open {}", target.display()), e.into()),
        })?;
        Ok(Beneath {
            root,
            target: target.to_path_buf(),
        })
    }

    pub(super) fn show(&self, rel: &Path) -> String {
        self.target.join(rel).display().to_string()
    }

    fn in_the_way(&self, rel: &Path, e: Errno) -> std::io::Error {
        match e {
            Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR => std::io::Error::other(format!(
                "{}: a symbolic link or a file is in the way of a directory; a restore never follows links out of its target",
                self.show(rel)
            )),
            e => e.into(),
        }
    }

    /// The directory `rel` (relative to the target; empty: the target).
    pub(super) fn dir(&self, rel: &Path) -> std::io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return self.root.try_clone();
        }
        if OPENAT2.load(Ordering::Relaxed) != 2 {
            use nix::fcntl::{OpenHow, ResolveFlag};
            let how = OpenHow::new().flags(dir_flags()).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            match nix::fcntl::openat2(&self.root, rel, how) {
                Ok(fd) => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return Ok(fd);
                }
                Err(Errno::ENOSYS | Errno::EPERM) if OPENAT2.load(Ordering::Relaxed) == 0 => {
                    OPENAT2.store(2, Ordering::Relaxed);
                }
                Err(e) => return Err(self.in_the_way(rel, e)),
            }
        }
        // One component at a time, none followed if it is a link.
        let mut cur = self.root.try_clone()?;
        for c in rel.components() {
            cur = nix::fcntl::openat(&cur, c.as_os_str(), dir_flags(), Mode::empty())
                .map_err(|e| self.in_the_way(rel, e))?;
        }
        Ok(cur)
    }

    /// The directory that holds `rel`, and the name of `rel` in it.
    pub(super) fn parent<'r>(&self, rel: &'r Path) -> std::io::Result<(OwnedFd, &'r OsStr)> {
        let name = rel
            .file_name()
            .ok_or_else(|| std::io::Error::other("the target itself has no parent here"))?;
        Ok((self.dir(rel.parent().unwrap_or(Path::new("")))?, name))
    }

    /// The directory that holds `rel` and the name of `rel` in it, through
    /// `cache`: the descriptor of the last parent opened is kept, so that
    /// entries of one directory in a row resolve it once.
    pub(super) fn parent_in<'r, 'c>(
        &self,
        cache: &'c mut DirCache,
        rel: &'r Path,
    ) -> std::io::Result<(&'c OwnedFd, &'r OsStr)> {
        let name = rel
            .file_name()
            .ok_or_else(|| std::io::Error::other("the target itself has no parent here"))?;
        let dir = rel.parent().unwrap_or(Path::new(""));
        if cache.last.as_ref().is_none_or(|(p, _)| p != dir) {
            cache.last = None;
            cache.last = Some((dir.to_path_buf(), self.dir(dir)?));
        }
        match &cache.last {
            Some((_, fd)) => Ok((fd, name)),
            None => Err(std::io::Error::other("no parent directory")),
        }
    }

    /// Whether the target has entries.
    pub(super) fn has_entries(&self) -> Result<bool> {
        let mut entries = fs::read_dir(&self.target)
            .map_err(|e| Error::io(format!("list {}", self.target.display()), e))?;
        Ok(entries.next().is_some())
    }

    /// Whether the target holds an entry other than `name`.
    pub(super) fn has_entries_besides(&self, name: &str) -> Result<bool> {
        let entries = fs::read_dir(&self.target)
            .map_err(|e| Error::io(format!("list {}", self.target.display()), e))?;
        Ok(entries.flatten().any(|e| e.file_name() != name))
    }
}

/// The descriptor of the directory last opened by [`Beneath::parent_in`].
///
/// Keeping it is as safe as opening the directory again: it was opened
/// beneath the target without following a link, and a restore never
/// removes or replaces a directory (a file or link of a directory's name is
/// replaced by the directory, the other way round is an error), so the
/// descriptor still names the directory at that path of the target.
#[derive(Default)]
pub(super) struct DirCache {
    last: Option<(PathBuf, OwnedFd)>,
}

/// Remove the file, link or special file `name` in `dir`, if any, so that
/// a new entry takes its place. Directories are never removed.
pub(super) fn clear(dir: &OwnedFd, name: &OsStr) -> std::io::Result<()> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(std::io::Error::other(
            "a directory of that name is in the way (a restore does not remove directories)",
        )),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn is_dir_mode(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Directories beneath the target open, links never: with `openat2`
    /// and with the component-by-component fallback of older kernels.
    #[test]
    fn beneath_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("t");
        let outside = d.path().join("outside");
        fs::create_dir_all(target.join("a/b")).unwrap();
        fs::create_dir_all(outside.join("b")).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("a/l")).unwrap();
        fs::write(target.join("a/f"), b"x").unwrap();
        let at = Beneath::open(&target).unwrap();
        for mode in [0, 2] {
            OPENAT2.store(mode, Ordering::Relaxed);
            assert!(at.dir(Path::new("a/b")).is_ok(), "mode {mode}");
            assert!(at.dir(Path::new("")).is_ok());
            for bad in ["a/l", "a/l/b", "a/f"] {
                let e = at.dir(Path::new(bad)).unwrap_err().to_string();
                assert!(e.contains("in the way"), "mode {mode}, {bad}: {e}");
            }
        }
        // The target itself may not be a link.
        std::os::unix::fs::symlink(&outside, d.path().join("lt")).unwrap();
        let e = Beneath::open(&d.path().join("lt"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    /// The cached parent is reused for entries of one directory, opened
    /// again for another, and never resolves through a link.
    #[test]
    fn parent_in_reuses_and_refuses_links() {
        use std::os::fd::AsRawFd;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("t");
        fs::create_dir_all(target.join("a/b")).unwrap();
        std::os::unix::fs::symlink(d.path(), target.join("a/l")).unwrap();
        let at = Beneath::open(&target).unwrap();
        let mut cache = DirCache::default();
        let (fd, name) = at.parent_in(&mut cache, Path::new("a/b/x")).unwrap();
        assert_eq!(name, "x");
        let first = fd.as_raw_fd();
        let (fd, name) = at.parent_in(&mut cache, Path::new("a/b/y")).unwrap();
        assert_eq!((fd.as_raw_fd(), name), (first, OsStr::new("y")));
        let (fd, _) = at.parent_in(&mut cache, Path::new("a/z")).unwrap();
        let st = nix::sys::stat::fstat(fd).unwrap();
        let want: u64 =
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(target.join("a")).unwrap());
        assert_eq!(st.st_ino as u64, want);
        let e = at
            .parent_in(&mut cache, Path::new("a/l/passwd"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("in the way"), "{e}");
        // A failed open leaves no stale descriptor behind.
        assert!(cache.last.is_none());
    }
}
