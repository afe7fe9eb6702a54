//! Restore a tree snapshot (or a part of it) to a directory.
//!
//! Directories are created first, then files are written by several threads
//! (chunks read, authenticated and decompressed in parallel); all-zero
//! chunks become holes, so sparse files stay sparse. Hard links are made
//! after all files exist; directory modes and times are set last, deepest
//! first. Ownership is restored when running as root; xattrs where the
//! target file system supports them. Problems with metadata are warnings;
//! problems with content are errors.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use arca_repo::format::{node_kind, Node, Tree};
use arca_repo::{ChunkId, Datastore, Error, Result, Snapshot};
use filetime::FileTime;

use crate::Progress;

#[derive(Debug, Default, Clone)]
pub struct RestoreOutcome {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

fn ft(ns: i64) -> FileTime {
    FileTime::from_unix_time(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// Find the node at `path` ('/'-separated) below `root`. Returns the node
/// (None for the root itself) and the tree of the directory it names.
pub fn lookup(ds: &Datastore, root: &ChunkId, path: &str) -> Result<(Option<Node>, Option<Tree>)> {
    let mut tree = ds.read_tree(root)?;
    let mut node: Option<Node> = None;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let n = tree
            .nodes
            .iter()
            .find(|n| n.name == comp.as_bytes())
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("path {path:?} in snapshot")))?;
        if n.kind == node_kind::DIR {
            tree = ds.read_tree(&ChunkId::from_slice(&n.subtree)?)?;
            node = Some(n);
        } else {
            node = Some(n);
            tree = Tree::default();
            break;
        }
    }
    let is_dir = node.as_ref().is_none_or(|n| n.kind == node_kind::DIR);
    Ok((node, is_dir.then_some(tree)))
}

struct Job {
    path: PathBuf,
    node: Node,
}

/// Restore `snapshot` (or the file or directory at `subpath` inside it) so
/// that `target` holds the directory's contents (or, for a single file,
/// `target/<name>`).
pub fn restore(
    ds: &Datastore,
    snapshot: &Snapshot,
    target: &Path,
    subpath: Option<&str>,
    progress: &Progress,
) -> Result<RestoreOutcome> {
    if snapshot.is_image() {
        return Err(Error::InvalidInput(
            "this is an image snapshot; it restores to a file".into(),
        ));
    }
    let root = ChunkId::from_slice(&snapshot.manifest.tree)?;
    let (node, tree) = lookup(ds, &root, subpath.unwrap_or(""))?;
    // Only the root has no node of its own in a tree; the manifest keeps it.
    let node = match (node, &tree) {
        (None, Some(_)) => snapshot.manifest.root.clone(),
        (n, _) => n,
    };
    progress.total.store(
        match (&node, &tree) {
            (Some(n), None) => n.size,
            _ => snapshot
                .manifest
                .stats
                .as_ref()
                .map_or(0, |s| s.bytes_total),
        },
        Ordering::Relaxed,
    );
    fs::create_dir_all(target).map_err(|e| Error::io(format!("create {}", target.display()), e))?;
    let mut r = Restorer {
        ds,
        progress,
        jobs: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
        warnings: Mutex::new(Vec::new()),
        out: RestoreOutcome::default(),
    };
    match (node, tree) {
        (Some(n), None) => {
            if !is_safe_name(&n.name) {
                return Err(Error::Corrupt("unsafe file name in snapshot".into()));
            }
            r.entry(&target.join(OsStr::from_bytes(&n.name)), n)?
        }
        (n, Some(t)) => {
            r.dir_contents(target, &t)?;
            if let Some(n) = n {
                r.dirs.push((target.to_path_buf(), n));
            }
        }
        (None, None) => {}
    }
    r.write_files()?;
    r.finish()
}

struct Restorer<'a> {
    ds: &'a Datastore,
    progress: &'a Progress,
    jobs: Vec<Job>,
    links: Vec<(PathBuf, Node)>,
    dirs: Vec<(PathBuf, Node)>,
    warnings: Mutex<Vec<String>>,
    out: RestoreOutcome,
}

impl Restorer<'_> {
    fn warn(&self, msg: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
    }

    fn dir_contents(&mut self, dir: &Path, tree: &Tree) -> Result<()> {
        for n in &tree.nodes {
            if !is_safe_name(&n.name) {
                self.warn(format!(
                    "skipped unsafe name {:?}",
                    String::from_utf8_lossy(&n.name)
                ));
                continue;
            }
            self.entry(&dir.join(OsStr::from_bytes(&n.name)), n.clone())?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, n: Node) -> Result<()> {
        self.progress.check_cancel()?;
        let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}", path.display()), e);
        match n.kind {
            node_kind::DIR => {
                match fs::create_dir(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
                    Err(e) => return Err(io("create directory", e)),
                }
                self.out.dirs += 1;
                let t = self.ds.read_tree(&ChunkId::from_slice(&n.subtree)?)?;
                self.dir_contents(path, &t)?;
                self.dirs.push((path.to_path_buf(), n));
            }
            node_kind::FILE => {
                self.out.files += 1;
                self.jobs.push(Job {
                    path: path.to_path_buf(),
                    node: n,
                });
            }
            node_kind::SYMLINK => {
                let _ = fs::remove_file(path);
                std::os::unix::fs::symlink(OsStr::from_bytes(&n.link_target), path)
                    .map_err(|e| io("symlink", e))?;
                self.links.push((path.to_path_buf(), n));
            }
            node_kind::FIFO | node_kind::CHARDEV | node_kind::BLOCKDEV => {
                use nix::sys::stat::{mknod, Mode, SFlag};
                let kind = match n.kind {
                    node_kind::FIFO => SFlag::S_IFIFO,
                    node_kind::CHARDEV => SFlag::S_IFCHR,
                    _ => SFlag::S_IFBLK,
                };
                let _ = fs::remove_file(path);
                match mknod(path, kind, Mode::from_bits_truncate(n.mode), n.rdev as _) {
                    Ok(()) => self.links.push((path.to_path_buf(), n)),
                    Err(e) => self.warn(format!(
                        "{}: cannot create special file: {e}",
                        path.display()
                    )),
                }
            }
            _ => self.warn(format!("{}: sockets are not restored", path.display())),
        }
        Ok(())
    }

    /// Write all regular files, several at a time; later occurrences of a
    /// hard-linked inode become links to the first.
    fn write_files(&mut self) -> Result<()> {
        let mut first: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut hardlinks = Vec::new();
        let mut jobs = Vec::new();
        for j in std::mem::take(&mut self.jobs) {
            if j.node.nlink > 1 {
                if let Some(p) = first.get(&(j.node.dev, j.node.inode)) {
                    hardlinks.push((p.clone(), j.path));
                    continue;
                }
                first.insert((j.node.dev, j.node.inode), j.path.clone());
            }
            jobs.push(j);
        }
        // Big files first so that the pool finishes together.
        jobs.sort_by_key(|j| std::cmp::Reverse(j.node.size));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8)
            * 3;
        let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
        let bytes = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(j) = jobs.get(i) else { break };
                    if !errors.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                        break;
                    }
                    match self.write_file(&j.path, &j.node) {
                        Ok(n) => {
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => errors.lock().unwrap_or_else(|e| e.into_inner()).push(e),
                    }
                });
            }
        });
        if let Some(e) = errors
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .next()
        {
            return Err(e);
        }
        self.out.bytes += bytes.into_inner();
        for (from, to) in hardlinks {
            let _ = fs::remove_file(&to);
            fs::hard_link(&from, &to)
                .map_err(|e| Error::io(format!("link {}", to.display()), e))?;
        }
        Ok(())
    }

    fn write_file(&self, path: &Path, n: &Node) -> Result<u64> {
        let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}", path.display()), e);
        let _ = fs::remove_file(path);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io("create", e))?;
        let mut written = 0u64;
        for c in &n.content {
            self.progress.check_cancel()?;
            let id = ChunkId::from_slice(c)?;
            let data = self.ds.read_blob(&id)?;
            write_sparse(&f, written, &data).map_err(|e| io("write", e))?;
            written += data.len() as u64;
            self.progress.add(data.len() as u64);
        }
        // Sets the size, including trailing holes.
        f.set_len(written).map_err(|e| io("truncate", e))?;
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        self.set_meta(path, n, Some(&f));
        Ok(written)
    }

    /// Ownership, mode, xattrs and times; failures are warnings.
    fn set_meta(&self, path: &Path, n: &Node, file: Option<&File>) {
        let symlink = n.kind == node_kind::SYMLINK;
        if nix::unistd::geteuid().is_root() {
            if let Err(e) = std::os::unix::fs::lchown(path, Some(n.uid), Some(n.gid)) {
                self.warn(format!("{}: chown: {e}", path.display()));
            }
        }
        for x in &n.xattrs {
            let name = OsStr::from_bytes(&x.name);
            if let Err(e) = xattr::set(path, name, &x.value) {
                self.warn(format!(
                    "{}: xattr {}: {e}",
                    path.display(),
                    name.to_string_lossy()
                ));
            }
        }
        if !symlink {
            let perm = fs::Permissions::from_mode(n.mode & 0o7777);
            let r = match file {
                Some(f) => f.set_permissions(perm),
                None => fs::set_permissions(path, perm),
            };
            if let Err(e) = r {
                self.warn(format!("{}: chmod: {e}", path.display()));
            }
        }
        let r = if symlink {
            filetime::set_symlink_file_times(
                path,
                ft(if n.atime_ns == 0 {
                    n.mtime_ns
                } else {
                    n.atime_ns
                }),
                ft(n.mtime_ns),
            )
        } else {
            filetime::set_file_times(
                path,
                ft(if n.atime_ns == 0 {
                    n.mtime_ns
                } else {
                    n.atime_ns
                }),
                ft(n.mtime_ns),
            )
        };
        if let Err(e) = r {
            self.warn(format!("{}: times: {e}", path.display()));
        }
    }

    fn finish(mut self) -> Result<RestoreOutcome> {
        for (p, n) in std::mem::take(&mut self.links) {
            self.set_meta(&p, &n, None);
        }
        // Deepest directories first, so that setting a parent's mtime is not
        // undone by creating its children.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, n) in dirs {
            self.set_meta(&p, &n, None);
        }
        self.out.warnings = self
            .warnings
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        Ok(self.out)
    }
}

/// Write `data` at `offset` of a file that reads as zeros there, skipping
/// all-zero 4 KiB blocks so that they stay holes.
pub(crate) fn write_sparse(f: &File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    const B: usize = 4096;
    let mut i = 0;
    while i < data.len() {
        // Blocks aligned to the file offset, so that holes are whole blocks.
        let end = (((offset as usize + i) / B + 1) * B - offset as usize).min(data.len());
        if is_zero(&data[i..end]) {
            i = end;
            continue;
        }
        // Extend the run over following non-zero blocks.
        let mut run_end = end;
        while run_end < data.len() {
            let next = (run_end + B).min(data.len());
            if is_zero(&data[run_end..next]) {
                break;
            }
            run_end = next;
        }
        f.write_all_at(&data[i..run_end], offset + i as u64)?;
        i = run_end;
    }
    Ok(())
}

pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut blocks = data.chunks_exact(64);
    // The fold has no early exit, so it vectorises; `all` stops per block.
    blocks.all(|c| c.iter().fold(0u8, |a, &b| a | b) == 0)
        && blocks.remainder().iter().all(|&b| b == 0)
}
