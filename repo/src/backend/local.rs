//! Local file system backend (also the base of tier targets on mounts).
//!
//! Every call that changes the file system goes through a [`FileOps`]: the
//! real one ([`Direct`], inlined, no cost) or a fault-injecting one
//! ([`super::fault`]) that runs this very code with chosen failures, so
//! crash tests exercise the real write sequence and not a copy of it.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::fdcache::{self, FdCache};
use super::{Backend, ObjectInfo, ObjectWriter};
use crate::crypto::random_bytes;
use crate::error::{Error, IoContext, Result};
use crate::index::Index;

/// The file system calls of the local backend, one method per call, with
/// the file system's own semantics (durability only after `sync_*`).
pub trait FileOps: Clone + Send + Sync + 'static {
    type File: Write + Send + 'static;
    /// Create a new file for writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;
    /// fsync a file's data and metadata.
    fn sync_file(&self, file: &mut Self::File, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// fsync a directory, so that creates, renames and unlinks in it survive
    /// a power loss.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Open a file for positioned reads (kept open by the backend).
    fn open_read(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }
    /// Read `buf.len()` bytes at `offset` of `file`, opened from `path`.
    fn read_at(&self, file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// See [`Backend::wrap_index`].
    fn wrap_index(&self, index: Box<dyn Index>) -> Box<dyn Index> {
        index
    }
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl FileOps for Direct {
    type File = File;
    #[inline]
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }
    #[inline]
    fn sync_file(&self, file: &mut File, _path: &Path) -> io::Result<()> {
        file.sync_all()
    }
    #[inline]
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    #[inline]
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    #[inline]
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    #[inline]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all())
    }
    #[inline]
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    #[inline]
    fn read_at(&self, file: &File, _path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        file.read_exact_at(buf, offset)
    }
}

/// Temporaries being written by this process (all backends): gc never
/// removes these, whatever their age. Any other temporary found while the
/// caller holds the writer lock belongs to a writer that is gone.
static LIVE_TEMPORARIES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live_temporaries() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE_TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file name registered as live until dropped.
struct LiveTemporary(PathBuf);

impl LiveTemporary {
    fn new(dir: &Path) -> Self {
        let path = dir.join(format!(".tmp-{}", hex::encode(random_bytes::<8>())));
        live_temporaries().insert(path.clone());
        LiveTemporary(path)
    }
}

impl Drop for LiveTemporary {
    fn drop(&mut self) {
        live_temporaries().remove(&self.0);
    }
}

pub struct LocalBackend<F: FileOps = Direct> {
    root: PathBuf,
    fs: F,
    /// Packs kept open for range reads (see [`FdCache`]).
    fds: Arc<FdCache>,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_fs(root, Direct)
    }
}

impl<F: FileOps> LocalBackend<F> {
    /// The local backend doing its file system calls through `fs`.
    pub fn with_fs(root: impl Into<PathBuf>, fs: F) -> Self {
        LocalBackend {
            root: root.into(),
            fs,
            fds: Arc::new(FdCache::new(fdcache::CAPACITY)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        object_path(&self.root, name)
    }
}

fn object_path(root: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty()
        || name.starts_with('/')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with('.'))
    {
        return Err(Error::InvalidInput(format!("bad object name {name:?}")));
    }
    Ok(root.join(name))
}

/// Create `dir` (and parents) if needed; every newly created directory's
/// entry in its parent is fsynced so that objects inside it survive a power
/// loss.
fn ensure_dir<F: FileOps>(fs: &F, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.is_dir())
        .map(Path::to_path_buf)
        .collect();
    fs.create_dir_all(dir)
        .ctx(|| format!("create {}", dir.display()))?;
    for new in missing.iter().rev() {
        if let Some(parent) = new.parent() {
            sync_dir_with(fs, parent)?;
        }
    }
    Ok(())
}

/// fsync a directory so that a rename or unlink inside it is durable.
fn sync_dir_with<F: FileOps>(fs: &F, dir: &Path) -> Result<()> {
    // The parent of a bare relative name is "": the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs.sync_dir(dir)
        .ctx(|| format!("fsync directory {}", dir.display()))
}

fn not_found(e: std::io::Error, name: &str, context: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::NotFound(name.to_string())
    } else {
        Error::io(format!("{context} {name}"), e)
    }
}

struct LocalWriter<F: FileOps> {
    fs: F,
    root: PathBuf,
    tmp: LiveTemporary,
    file: Option<BufWriter<F::File>>,
    /// The backend's open packs: the committed name is forgotten there.
    fds: Arc<FdCache>,
}

impl<F: FileOps> ObjectWriter for LocalWriter<F> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Poisoned("object writer already closed".into()))?;
        f.write_all(data)
            .ctx(|| format!("write {}", self.tmp.0.display()))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let path = object_path(&self.root, name)?;
        self.fds.remove(name);
        let f = self
            .file
            .take()
            .ok_or_else(|| Error::Poisoned("object writer already closed".into()))?;
        let tmp = self.tmp.0.clone();
        let result = (|| {
            let mut f = f
                .into_inner()
                .map_err(|e| Error::io(format!("write {}", tmp.display()), e.into_error()))?;
            // Same sequence as `put`: data durable before the name appears,
            // and the name durable before we report success.
            self.fs
                .sync_file(&mut f, &tmp)
                .ctx(|| format!("fsync {}", tmp.display()))?;
            let dir = path.parent().unwrap_or(&self.root).to_path_buf();
            ensure_dir(&self.fs, &dir)?;
            self.fs
                .rename(&tmp, &path)
                .ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
            sync_dir_with(&self.fs, &dir)
        })();
        if result.is_err() {
            // Best effort: what stays behind is an unlisted temporary.
            let _ = self.fs.remove_file(&tmp);
        }
        result
    }
}

impl<F: FileOps> Drop for LocalWriter<F> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.fs.remove_file(&self.tmp.0);
        }
    }
}

impl<F: FileOps> Backend for LocalBackend<F> {
    fn writer(&self, dir: &str) -> Result<Box<dyn ObjectWriter>> {
        let dir_path = self.path(dir)?;
        ensure_dir(&self.fs, &dir_path)?;
        let tmp = LiveTemporary::new(&dir_path);
        let f = self
            .fs
            .create_new(&tmp.0)
            .ctx(|| format!("create {}", tmp.0.display()))?;
        Ok(Box::new(LocalWriter {
            fs: self.fs.clone(),
            root: self.root.clone(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, f)),
            fds: Arc::clone(&self.fds),
        }))
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(name)?;
        self.fds.remove(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        ensure_dir(&self.fs, &dir)?;
        // Write a temporary file in the same directory, fsync it, then rename:
        // readers see either no object or the complete one. The directory is
        // fsynced afterwards so that the rename itself survives a power loss.
        let tmp = LiveTemporary::new(&dir);
        let tmp = &tmp.0;
        let mut created = false;
        let result = (|| {
            let mut f = self
                .fs
                .create_new(tmp)
                .ctx(|| format!("create {}", tmp.display()))?;
            created = true;
            f.write_all(data)
                .ctx(|| format!("write {}", tmp.display()))?;
            self.fs
                .sync_file(&mut f, tmp)
                .ctx(|| format!("fsync {}", tmp.display()))?;
            drop(f);
            self.fs
                .rename(tmp, &path)
                .ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
            created = false;
            sync_dir_with(&self.fs, &dir)
        })();
        if created {
            let _ = self.fs.remove_file(tmp);
        }
        result
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.fs
            .read(&self.path(name)?)
            .map_err(|e| not_found(e, name, "read"))
    }

    fn get_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let path = self.path(name)?;
        // Only packs are kept open: named by their content, they never
        // change under a name (other objects may be replaced in place).
        // A cached descriptor of a pack that was unlinked since (gc of
        // another process, an admin, a lost file) is dropped: a pack that
        // is gone reads as gone, as without the cache. One fstat instead of
        // an open and a close.
        let cached = if name.starts_with("packs/") {
            self.fds.get(name).filter(|f| {
                use std::os::unix::fs::MetadataExt;
                let linked = f.metadata().map(|m| m.nlink() > 0).unwrap_or(false);
                if !linked {
                    self.fds.remove(name);
                }
                linked
            })
        } else {
            None
        };
        let file = match cached {
            Some(f) => Ok(f),
            None => self.fs.open_read(&path).map(|f| {
                if name.starts_with("packs/") {
                    self.fds.insert(name, f)
                } else {
                    Arc::new(f)
                }
            }),
        };
        file.and_then(|f| self.fs.read_at(&f, &path, offset, &mut buf))
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::NotFound(name.to_string()),
                ErrorKind::UnexpectedEof => Error::Corrupt(format!(
                    "{name} is truncated (wanted {len} bytes at {offset})"
                )),
                _ => Error::io(format!("read {name}"), e),
            })?;
        Ok(buf)
    }

    fn size(&self, name: &str) -> Result<u64> {
        Ok(fs::metadata(self.path(name)?)
            .map_err(|e| not_found(e, name, "stat"))?
            .len())
    }

    fn exists(&self, name: &str) -> Result<bool> {
        match fs::symlink_metadata(self.path(name)?) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("stat {name}"), e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let base = self.path(prefix)?;
        let mut stack = vec![(base, prefix.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
            };
            for ent in rd {
                let ent = ent.ctx(|| format!("list {}", dir.display()))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let md = match ent.metadata() {
                    Ok(md) => md,
                    // Deleted since the directory was read (gc beside us).
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(format!("stat {name}"), e)),
                };
                let rel_name = format!("{rel}/{name}");
                if md.is_dir() {
                    stack.push((ent.path(), rel_name));
                } else {
                    out.push(ObjectInfo {
                        name: rel_name,
                        size: md.len(),
                        modified: md.modified().ctx(|| format!("mtime {name}"))?,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn remove_stale_temporaries(&self, prefix: &str, older_than: Duration) -> Result<(u64, u64)> {
        let now = SystemTime::now();
        let (mut n, mut bytes) = (0, 0);
        let mut stack = vec![self.path(prefix)?];
        while let Some(dir) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
            };
            for ent in rd {
                let ent = ent.ctx(|| format!("list {}", dir.display()))?;
                let Ok(md) = ent.metadata() else { continue };
                if md.is_dir() {
                    stack.push(ent.path());
                    continue;
                }
                if !ent.file_name().as_encoded_bytes().starts_with(b".tmp-") {
                    continue;
                }
                let old_enough = md
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or_default()
                    >= older_than;
                let path = ent.path();
                // Checked and removed under the registry lock, so that a
                // writer of this process never loses its temporary.
                let live = live_temporaries();
                if !old_enough || live.contains(&path) {
                    continue;
                }
                match self.fs.remove_file(&path) {
                    Ok(()) => {
                        n += 1;
                        bytes += md.len();
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
                }
            }
        }
        Ok((n, bytes))
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        self.fds.remove(name);
        match self.fs.remove_file(&path) {
            Ok(()) => sync_dir_with(&self.fs, path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("delete {name}"), e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn wrap_index(&self, index: Box<dyn Index>) -> Box<dyn Index> {
        self.fs.wrap_index(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.put("packs/ab/abc", b"hello").unwrap();
        assert_eq!(b.get("packs/ab/abc").unwrap(), b"hello");
        assert_eq!(b.get_range("packs/ab/abc", 1, 3).unwrap(), b"ell");
        assert!(matches!(
            b.get_range("packs/ab/abc", 3, 5),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(b.get("packs/ab/nope"), Err(Error::NotFound(_))));
        b.put("packs/ab/abc", b"again").unwrap();
        assert_eq!(b.get("packs/ab/abc").unwrap(), b"again");
        let l = b.list("packs").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "packs/ab/abc");
        b.delete("packs/ab/abc").unwrap();
        b.delete("packs/ab/abc").unwrap();
        assert!(b.list("packs").unwrap().is_empty());
        assert!(b.put("../escape", b"x").is_err());
    }

    /// Direct, counting the opens for reading.
    #[derive(Clone, Default)]
    struct CountOpens(Arc<std::sync::atomic::AtomicUsize>);

    impl FileOps for CountOpens {
        type File = File;
        fn create_new(&self, path: &Path) -> io::Result<File> {
            Direct.create_new(path)
        }
        fn sync_file(&self, file: &mut File, path: &Path) -> io::Result<()> {
            Direct.sync_file(file, path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            Direct.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            Direct.remove_file(path)
        }
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            Direct.create_dir_all(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            Direct.sync_dir(dir)
        }
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            Direct.read(path)
        }
        fn open_read(&self, path: &Path) -> io::Result<File> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Direct.open_read(path)
        }
        fn read_at(&self, file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            Direct.read_at(file, path, offset, buf)
        }
    }

    #[test]
    fn packs_stay_open_and_deletes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let opens = CountOpens::default();
        let n = || opens.0.load(std::sync::atomic::Ordering::Relaxed);
        let b = LocalBackend::with_fs(dir.path(), opens.clone());
        b.put("packs/ab/p1", b"0123456789").unwrap();
        for i in 0..100u64 {
            assert_eq!(b.get_range("packs/ab/p1", i % 8, 2).unwrap().len(), 2);
        }
        assert_eq!(n(), 1, "one open for 100 reads of one pack");
        // Removed behind the backend's back (another process, a lost
        // file): the cached descriptor is not used, the pack is gone.
        fs::remove_file(dir.path().join("packs/ab/p1")).unwrap();
        assert!(matches!(
            b.get_range("packs/ab/p1", 2, 3),
            Err(Error::NotFound(_))
        ));
        // Deleted through the backend: gone, reported as today.
        b.put("packs/ab/p1", b"0123456789").unwrap();
        assert_eq!(b.get_range("packs/ab/p1", 2, 3).unwrap(), b"234");
        b.delete("packs/ab/p1").unwrap();
        assert!(matches!(
            b.get_range("packs/ab/p1", 0, 1),
            Err(Error::NotFound(_))
        ));
        // Written again (a repack) through a writer: read afresh.
        let mut w = b.writer("packs/ab").unwrap();
        w.write(b"abcdefghij").unwrap();
        w.commit("packs/ab/p1").unwrap();
        assert_eq!(b.get_range("packs/ab/p1", 0, 3).unwrap(), b"abc");
        // A pack never opened by this backend and missing: NotFound.
        assert!(matches!(
            b.get_range("packs/cd/none", 0, 1),
            Err(Error::NotFound(_))
        ));
        // More packs than the cache holds: bounded.
        for i in 0..(fdcache::CAPACITY + 10) {
            let name = format!("packs/ef/q{i}");
            b.put(&name, b"xyz").unwrap();
            assert_eq!(b.get_range(&name, 1, 1).unwrap(), b"y");
        }
        assert_eq!(b.fds.len(), fdcache::CAPACITY);
        // Other objects are opened per read, as they may be replaced.
        b.put("config", b"c1").unwrap();
        let before = n();
        b.get_range("config", 0, 1).unwrap();
        b.get_range("config", 0, 1).unwrap();
        assert_eq!(n(), before + 2);
    }

    #[test]
    fn stale_temporaries_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.put("packs/ab/abc", b"kept").unwrap();
        let old = dir.path().join("packs/ab/.tmp-old");
        let fresh = dir.path().join("packs/ab/.tmp-fresh");
        fs::write(&old, b"12345").unwrap();
        fs::write(&fresh, b"123").unwrap();
        let day_ago = SystemTime::now() - Duration::from_secs(25 * 3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        let (n, bytes) = b
            .remove_stale_temporaries("packs", Duration::from_secs(24 * 3600))
            .unwrap();
        assert_eq!((n, bytes), (1, 5));
        assert!(!old.exists());
        assert!(fresh.exists());
        assert_eq!(b.get("packs/ab/abc").unwrap(), b"kept");
        // A missing prefix is simply empty.
        assert_eq!(
            b.remove_stale_temporaries("nothing", Duration::ZERO)
                .unwrap(),
            (0, 0)
        );
    }
}
