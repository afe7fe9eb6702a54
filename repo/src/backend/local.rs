//! Local file system backend (also the base of tier targets on mounts).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Backend, ObjectInfo, ObjectWriter};
use crate::crypto::random_bytes;
use crate::error::{Error, IoContext, Result};

pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with('.'))
        {
            return Err(Error::InvalidInput(format!("bad object name {name:?}")));
        }
        Ok(self.root.join(name))
    }
}

/// Create `dir` (and parents) if needed; a newly created directory's entry
/// in its parent is fsynced so that objects inside it survive a power loss.
fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    match dir.parent() {
        Some(p) => sync_dir(p),
        None => Ok(()),
    }
}

/// fsync a directory so that a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // The parent of a bare relative name is "": the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync directory {}", dir.display()))
}

fn not_found(e: std::io::Error, name: &str, context: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::NotFound(name.to_string())
    } else {
        Error::io(format!("{context} {name}"), e)
    }
}

struct LocalWriter {
    root: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl ObjectWriter for LocalWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Poisoned("object writer already closed".into()))?;
        f.write_all(data)
            .ctx(|| format!("write {}", self.tmp.display()))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let path = LocalBackend::new(self.root.clone()).path(name)?;
        let f = self
            .file
            .take()
            .ok_or_else(|| Error::Poisoned("object writer already closed".into()))?;
        let f = f
            .into_inner()
            .map_err(|e| Error::io(format!("write {}", self.tmp.display()), e.into_error()))?;
        // Same sequence as `put`: data durable before the name appears, and
        // the name durable before we report success.
        f.sync_all()
            .ctx(|| format!("fsync {}", self.tmp.display()))?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        ensure_dir(&dir)?;
        fs::rename(&self.tmp, &path).ctx(|| format!("rename to {}", path.display()))?;
        sync_dir(&dir)
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Backend for LocalBackend {
    fn writer(&self, dir: &str) -> Result<Box<dyn ObjectWriter>> {
        let dir_path = self.path(dir)?;
        ensure_dir(&dir_path)?;
        let tmp = dir_path.join(format!(".tmp-{}", hex::encode(random_bytes::<8>())));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        Ok(Box::new(LocalWriter {
            root: self.root.clone(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, f)),
        }))
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(name)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        ensure_dir(&dir)?;
        // Write a temporary file in the same directory, fsync it, then rename:
        // readers see either no object or the complete one. The directory is
        // fsynced afterwards so that the rename itself survives a power loss.
        let tmp = dir.join(format!(".tmp-{}", hex::encode(random_bytes::<8>())));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .ctx(|| format!("create {}", tmp.display()))?;
            f.write_all(data)
                .ctx(|| format!("write {}", tmp.display()))?;
            f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
            fs::rename(&tmp, &path).ctx(|| format!("rename to {}", path.display()))?;
            sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        fs::read(self.path(name)?).map_err(|e| not_found(e, name, "read"))
    }

    fn get_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let f = File::open(self.path(name)?).map_err(|e| not_found(e, name, "open"))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                Error::Corrupt(format!(
                    "{name} is truncated (wanted {len} bytes at {offset})"
                ))
            } else {
                Error::io(format!("read {name}"), e)
            }
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
                let md = ent.metadata().ctx(|| format!("stat {name}"))?;
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
                let stale = md
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= older_than);
                if ent.file_name().as_encoded_bytes().starts_with(b".tmp-") && stale {
                    match fs::remove_file(ent.path()) {
                        Ok(()) => {
                            n += 1;
                            bytes += md.len();
                        }
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(Error::io(format!("remove {}", ent.path().display()), e))
                        }
                    }
                }
            }
        }
        Ok((n, bytes))
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("delete {name}"), e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
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
