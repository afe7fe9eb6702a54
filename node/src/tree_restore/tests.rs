use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use arca_frontends::tree::{FileReader, Result as TreeResult};

use super::*;

/// A file tree in memory: paths ('/'-separated, "" the root) to their
/// attributes and bytes (a symlink's bytes are its target).
#[derive(Default)]
pub(crate) struct MemTree {
    entries: BTreeMap<String, (Attr, Vec<u8>)>,
}

struct MemFile(Vec<u8>);

impl FileReader for MemFile {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> TreeResult<usize> {
        let data = self.0.get(offset as usize..).unwrap_or_default();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
}

const T: i64 = 1_700_000_000_123_456_789;

impl MemTree {
    pub(crate) fn new() -> Self {
        let mut t = MemTree::default();
        t.entries
            .insert(String::new(), (Attr::synthetic_dir(T), Vec::new()));
        t
    }

    fn add(&mut self, path: &str, kind: Kind, mode: u32, data: &[u8]) -> &mut Self {
        let attr = Attr {
            kind,
            size: data.len() as u64,
            mode,
            mtime_ns: T - 1_000_000_007 * path.len() as i64,
            ..Attr::synthetic_dir(T)
        };
        self.entries.insert(path.to_string(), (attr, data.to_vec()));
        self
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.add(path, Kind::Dir, mode, b"")
    }

    pub(crate) fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.add(path, Kind::File, mode, data)
    }

    pub(crate) fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(path, Kind::Symlink, 0o777, target.as_bytes())
    }

    fn get(&self, p: &TreePath) -> TreeResult<&(Attr, Vec<u8>)> {
        self.entries
            .get(&p.to_string())
            .ok_or_else(|| TreeError::NotFound(format!("no path {p}")))
    }
}

impl FileTree for MemTree {
    fn stat(&self, path: &TreePath) -> TreeResult<Attr> {
        Ok(self.get(path)?.0.clone())
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> TreeResult<()> {
        if self.get(path)?.0.kind != Kind::Dir {
            return Err(TreeError::NotADirectory(path.to_string()));
        }
        let depth = path.components().len() + 1;
        let children = self.entries.iter().filter_map(|(k, (a, _))| {
            let p = TreePath::parse(k).ok()?;
            (p.components().len() == depth && p.parent() == *path).then(|| Entry {
                name: p.name().unwrap_or_default().to_vec(),
                attr: a.clone(),
            })
        });
        for e in children.skip(start as usize) {
            if !f(e) {
                break;
            }
        }
        Ok(())
    }

    fn open(&self, path: &TreePath) -> TreeResult<Arc<dyn FileReader>> {
        let (a, data) = self.get(path)?;
        if a.kind == Kind::Dir {
            return Err(TreeError::IsADirectory(path.to_string()));
        }
        Ok(Arc::new(MemFile(data.clone())))
    }

    fn read_link(&self, path: &TreePath) -> TreeResult<Vec<u8>> {
        let (a, data) = self.get(path)?;
        if a.kind != Kind::Symlink {
            return Err(TreeError::WrongKind(path.to_string()));
        }
        Ok(data.clone())
    }
}

fn sample() -> MemTree {
    let mut t = MemTree::new();
    t.dir("part1", 0o755)
        .dir("part1/etc", 0o750)
        .file("part1/etc/hostname", 0o644, b"vm1\n")
        .file("part1/etc/big", 0o600, &vec![7u8; 3 << 20])
        .link("part1/etc/self", "../etc")
        .file("disk.img", 0o444, &[0u8; 4096]);
    t
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

#[test]
fn a_directory_comes_out_with_modes_times_and_links() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("out");
    let p = Progress::default();
    let o = restore(&t, "ab", "part1/etc", &to, &RestoreOptions::default(), &p).unwrap();
    assert_eq!(o.files, 2);
    assert_eq!(o.bytes, 4 + (3 << 20));
    assert_eq!(p.total.load(Ordering::Relaxed), 4 + (3 << 20));
    assert_eq!(std::fs::read(to.join("hostname")).unwrap(), b"vm1\n");
    assert_eq!(std::fs::read(to.join("big")).unwrap(), vec![7u8; 3 << 20]);
    assert_eq!(
        std::fs::read_link(to.join("self")).unwrap(),
        std::path::Path::new("../etc")
    );
    let m = std::fs::metadata(to.join("hostname")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o644);
    let want = t.entries["part1/etc/hostname"].0.mtime_ns;
    assert_eq!(mtime_ns(&m), want);
    // The directory's own mode and time are the target's.
    let m = std::fs::metadata(&to).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
    assert_eq!(mtime_ns(&m), t.entries["part1/etc"].0.mtime_ns);
    // Not empty any more: refused without overwrite, allowed with it.
    let e = restore(&t, "ab", "part1/etc", &to, &RestoreOptions::default(), &p).unwrap_err();
    assert!(e.to_string().contains("is not empty"), "{e}");
    let o = RestoreOptions {
        overwrite: true,
        ..Default::default()
    };
    restore(&t, "ab", "part1/etc", &to, &o, &p).unwrap();
}

#[test]
fn a_file_comes_out_under_its_name() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let p = Progress::default();
    let o = restore(
        &t,
        "ab",
        "/part1/etc/hostname",
        dir.path(),
        &RestoreOptions::default(),
        &p,
    )
    .unwrap();
    assert_eq!((o.files, o.bytes), (1, 4));
    assert_eq!(
        std::fs::read(dir.path().join("hostname")).unwrap(),
        b"vm1\n"
    );
}

#[test]
fn the_root_restores_everything_and_keeps_the_targets_mode() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("all");
    std::fs::create_dir(&to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o711)).unwrap();
    let p = Progress::default();
    let o = restore(&t, "ab", "", &to, &RestoreOptions::default(), &p).unwrap();
    assert_eq!(o.files, 3);
    assert_eq!(std::fs::read(to.join("disk.img")).unwrap(), vec![0u8; 4096]);
    assert_eq!(
        std::fs::read(to.join("part1/etc/hostname")).unwrap(),
        b"vm1\n"
    );
    let m = std::fs::metadata(&to).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o711);
}

#[test]
fn dotdot_and_missing_paths_are_refused_and_nothing_is_written() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("x");
    let p = Progress::default();
    let e = restore(
        &t,
        "ab",
        "part1/../etc",
        &to,
        &RestoreOptions::default(),
        &p,
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains(".."), "{e}");
    let e = restore(&t, "ab", "part1/nope", &to, &RestoreOptions::default(), &p).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    assert!(!to.exists());
}

#[test]
fn large_directories_are_read_in_batches() {
    let mut t = MemTree::new();
    t.dir("d", 0o755);
    for i in 0..(DIR_BATCH + 5) {
        t.file(&format!("d/f{i:05}"), 0o644, format!("{i}").as_bytes());
    }
    let src = TreeSource::new(&t);
    let d = src
        .node(&TreePath::parse("d").unwrap(), &t.entries["d"].0)
        .unwrap();
    let kids = src.children(&d).unwrap();
    assert_eq!(kids.nodes.len(), DIR_BATCH + 5);
    assert_eq!(kids.nodes[DIR_BATCH + 4].name, b"f01028");
    assert_eq!(kids.nodes[0].subtree, b"d/f00000");
}
