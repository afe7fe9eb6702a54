//! Restore a tree snapshot (or a part of it) to a directory.
//!
//! Directories are created first, then files are written by several threads
//! (chunks read, authenticated and decompressed in parallel); all-zero
//! chunks become holes, so sparse files stay sparse. Hard links are made
//! after all files exist; directory modes and times are set last, deepest
//! first. Ownership is restored when running as root; xattrs where the
//! target file system supports them. Problems with metadata are warnings;
//! problems with content are errors.
//!
//! **Nothing is written outside the target.** The target directory is
//! opened once (its last component must not be a symbolic link); every
//! entry is then made relative to the descriptor of its parent directory,
//! and that parent is opened beneath the target with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (where the kernel lacks
//! `openat2`, one component at a time with `O_NOFOLLOW`). So a symbolic
//! link is never followed, neither one that was in the target before nor
//! one the restore point makes itself (`x -> /etc`, then a file `x/passwd`):
//! a directory replaces a link or file of its name, a file is created with
//! `O_CREAT | O_EXCL` after what had its name is removed, and metadata is
//! set through the entry's own descriptor or with `AT_SYMLINK_NOFOLLOW`.
//!
//! **What is there stays unless asked.** A target that has entries is
//! refused unless [`RestoreOptions::overwrite`]; with it, the restore
//! point's entries replace those of the same name (a directory in the way
//! of a file is an error, never removed) and other entries stay.
//!
//! **Privileges come back only when asked.** Device nodes, setuid and
//! setgid bits and file capabilities (`security.capability`) are restored
//! only with [`RestoreOptions::special_files`]: the server restores as root
//! on behalf of users who are not root, and a device node or a setuid
//! binary from a backup would hand them root's rights. Without it, device
//! nodes are skipped, setuid/setgid bits are cleared on everything but
//! directories (where setgid only chooses the group of new entries) and
//! capabilities are dropped; [`RestoreOutcome`] counts each, and the
//! warnings say so once. FIFOs are always made.
//!
//! **Killed restores leave no half files, and their rerun resumes.** Each
//! file is written under a temporary name and renamed when complete; a
//! marker in the target names the restore under way, so that running the
//! same restore again is allowed into the partial target and skips the
//! files already there ([`resume`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use arca_repo::format::{node_kind, Node, Tree};
use arca_repo::{ChunkId, Datastore, Error, Result, Snapshot};
use filetime::FileTime;
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::Mode;

use crate::Progress;
use beneath::{clear, is_dir_mode, Beneath, DirCache};
use resume::Marker;

mod beneath;
mod meta;
pub mod resume;
mod source;
mod sparse;

pub use source::{Selection, Source, Stored};

use resume::Temp;
use sparse::write_sparse_end;
pub(crate) use sparse::{is_zero, write_sparse};

/// How a restore may treat what is already at its target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Write over what the target holds: a directory with entries (tree
    /// restores), a non-empty file or a block device (image restores).
    pub overwrite: bool,
    /// Image restores may write onto a block device, in place.
    pub allow_block_devices: bool,
    /// Recreate device nodes and keep setuid/setgid bits and file
    /// capabilities (see the module documentation). The local CLI sets it
    /// (it restores with its user's own rights); the server only for
    /// admins who ask.
    pub special_files: bool,
}

/// Mode bits that grant the rights of a file's owner or group.
const SETID: u32 = 0o6000;
/// The xattr that grants capabilities to an executable.
const CAPABILITY_XATTR: &[u8] = b"security.capability";

/// The message for a target that holds data, without `overwrite`.
pub fn not_empty_message(target: &Path, what: &str) -> String {
    format!(
        "the target {} {what}; restore to a new or empty path, or ask to overwrite it (arca restore --overwrite; API: \"overwrite\": true)",
        target.display()
    )
}

#[derive(Debug, Default, Clone)]
pub struct RestoreOutcome {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Without `special_files`: device nodes not made, and entries whose
    /// setuid/setgid bits or capabilities were dropped.
    pub devices_skipped: u64,
    pub privileges_dropped: u64,
    /// Files an interrupted run of the same restore had already restored,
    /// found identical and not written again.
    pub skipped: u64,
    /// Temporaries of an interrupted run that were removed.
    pub temporaries_removed: u64,
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

fn timespec(ns: i64) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(
        ns.div_euclid(1_000_000_000) as _,
        ns.rem_euclid(1_000_000_000) as _,
    )
}

struct Job {
    /// Relative to the target.
    rel: PathBuf,
    node: Node,
}

/// Restore `snapshot` (or the file or directory at `subpath` inside it) so
/// that `target` holds the directory's contents (or, for a single file,
/// `target/<name>`). `target` is created if missing; one that has entries
/// is refused unless `opts.overwrite`.
pub fn restore(
    ds: &Datastore,
    snapshot: &Snapshot,
    target: &Path,
    subpath: Option<&str>,
    opts: &RestoreOptions,
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
    let sel = Selection {
        restore_point: snapshot.id.to_hex(),
        path: subpath.map(str::to_string),
        node,
        tree,
    };
    restore_from(&Stored(ds), sel, target, opts, progress)
}

/// Restore `sel` read from `src` as [`restore`] does (the same
/// confinement, `overwrite` and special-file rules, resuming). When
/// `progress.total` is 0, it is set to the bytes of the files to write
/// once they are known.
pub fn restore_from(
    src: &dyn Source,
    sel: Selection,
    target: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreOutcome> {
    let Selection {
        restore_point,
        path: subpath,
        node,
        tree,
    } = sel;
    let subpath = subpath.as_deref();
    let at = Beneath::open(target)?;
    let marker = resume::marker_bytes(&restore_point, subpath);
    let found = resume::read_marker(&at.root, &marker);
    // A partial marker of this restore is all a run killed at its first
    // step left: the target counts as empty if nothing else is in it.
    let others = match found {
        Marker::Partial => at.has_entries_besides(resume::MARKER)?,
        _ => at.has_entries()?,
    };
    if !opts.overwrite && found != Marker::Same && others {
        return Err(Error::InvalidInput(not_empty_message(
            target,
            "is not empty",
        )));
    }
    let marker_io = |e| {
        Error::io(
            format!("write the restore marker in {}", target.display()),
            e,
        )
    };
    // A rerun replaces its marker in one step (a kill leaves this
    // restore's marker whole); a first run writes it directly (a kill
    // leaves at most the start of it, which counts as nothing).
    if found == Marker::Same {
        resume::replace_marker(&at.root, &marker).map_err(marker_io)?;
    } else {
        resume::write_marker(&at.root, &marker).map_err(marker_io)?;
    }
    let mut r = Restorer {
        src,
        at,
        resume: found == Marker::Same,
        clean: found != Marker::None,
        as_root: nix::unistd::geteuid().is_root(),
        me: (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
        walk_dirs: Mutex::new(DirCache::default()),
        marker_shadowed: false,
        special: opts.special_files,
        dropped: std::sync::atomic::AtomicU64::new(0),
        progress,
        jobs: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
        warnings: Mutex::new(Vec::new()),
        skipped: std::sync::atomic::AtomicU64::new(0),
        temps: std::sync::atomic::AtomicU64::new(0),
        out: RestoreOutcome::default(),
    };
    if r.clean {
        r.remove_temps(Path::new(""));
    }
    match (node, tree) {
        (Some(n), None) => {
            if !is_safe_name(&n.name) {
                return Err(Error::Corrupt("unsafe file name in snapshot".into()));
            }
            r.marker_shadowed = n.name == resume::MARKER.as_bytes();
            let rel = PathBuf::from(OsStr::from_bytes(&n.name));
            r.entry(&rel, n)?
        }
        (n, Some(t)) => {
            r.marker_shadowed = t.nodes.iter().any(|n| n.name == resume::MARKER.as_bytes());
            r.dir_contents(Path::new(""), &t)?;
            if let Some(n) = n {
                r.dirs.push((PathBuf::new(), n));
            }
        }
        (None, None) => {}
    }
    if progress.total.load(Ordering::Relaxed) == 0 {
        let total = r.jobs.iter().map(|j| j.node.size).sum();
        progress.total.store(total, Ordering::Relaxed);
    }
    r.write_files()?;
    r.finish()
}

struct Restorer<'a> {
    src: &'a dyn Source,
    at: Beneath,
    /// The target holds the marker of this restore: skip what is restored.
    resume: bool,
    /// The target holds a marker: remove temporaries of a killed run.
    clean: bool,
    as_root: bool,
    /// The effective user and group ids: those of the files it creates.
    me: (u32, u32),
    /// The last parent directory opened by the single-threaded steps
    /// (directories, links, special files and their metadata).
    walk_dirs: Mutex<DirCache>,
    /// The restore point has an entry named like the marker at the top,
    /// which took the marker's place.
    marker_shadowed: bool,
    /// [`RestoreOptions::special_files`].
    special: bool,
    /// Entries whose setuid/setgid bits or capabilities were dropped.
    dropped: std::sync::atomic::AtomicU64,
    progress: &'a Progress,
    jobs: Vec<Job>,
    /// Symbolic links and special files, whose metadata is set at the end.
    links: Vec<(PathBuf, Node)>,
    dirs: Vec<(PathBuf, Node)>,
    warnings: Mutex<Vec<String>>,
    skipped: std::sync::atomic::AtomicU64,
    /// Temporaries of a killed run removed.
    temps: std::sync::atomic::AtomicU64,
    out: RestoreOutcome,
}

impl Restorer<'_> {
    /// The permission bits to set on `n`: without `special_files`, those of
    /// the backup less setuid/setgid (kept on directories).
    fn mode_of(&self, n: &Node) -> u32 {
        let mode = self.wanted_mode(n);
        if mode != n.mode & 0o7777 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        mode
    }

    /// [`Self::mode_of`] without counting.
    fn wanted_mode(&self, n: &Node) -> u32 {
        let mode = n.mode & 0o7777;
        if self.special || n.kind == node_kind::DIR {
            mode
        } else {
            mode & !SETID
        }
    }

    /// Remove what a killed run left in the directory `rel`; a warning if
    /// that fails.
    fn remove_temps(&self, rel: &Path) {
        match self.at.dir(rel).and_then(|d| resume::remove_temps(&d)) {
            Ok(n) => {
                self.temps.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => self.warn(format!(
                "{}: removing temporaries of an interrupted restore: {e}",
                self.at.show(rel)
            )),
        }
    }

    /// The xattrs to set on `n`: without `special_files`, no capabilities.
    fn xattrs_of<'n>(&self, n: &'n Node) -> Vec<&'n arca_repo::format::Xattr> {
        let keep: Vec<_> = n
            .xattrs
            .iter()
            .filter(|x| self.special || x.name != CAPABILITY_XATTR)
            .collect();
        // Counted once per entry: mode_of counts those with setid bits.
        if keep.len() < n.xattrs.len() && (n.mode & SETID == 0 || n.kind == node_kind::DIR) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    /// [`Self::walk_dirs`], locked (only the single-threaded steps use it).
    fn walk_cache(&self) -> std::sync::MutexGuard<'_, DirCache> {
        self.walk_dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

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

    /// Make the directory `rel`, or keep the one there. A link or file of
    /// its name is replaced, never followed.
    fn make_dir(&self, rel: &Path) -> std::io::Result<()> {
        let mut cache = self.walk_cache();
        let (p, name) = self.at.parent_in(&mut cache, rel)?;
        let mode = Mode::from_bits_truncate(0o700);
        match nix::sys::stat::mkdirat(p, name, mode) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                let st = nix::sys::stat::fstatat(p, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                if is_dir_mode(st.st_mode) {
                    // A killed run may have set a mode that keeps us out;
                    // the final mode comes at the end.
                    if self.resume && st.st_mode & 0o700 != 0o700 {
                        nix::sys::stat::fchmodat(
                            p,
                            name,
                            Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o700),
                            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                        )?;
                    }
                    if self.clean {
                        drop(cache);
                        self.remove_temps(rel);
                    }
                    return Ok(());
                }
                clear(p, name)?;
                Ok(nix::sys::stat::mkdirat(p, name, mode)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn entry(&mut self, rel: &Path, n: Node) -> Result<()> {
        self.progress.check_cancel()?;
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("{what} {}", self.at.show(rel)), e);
        match n.kind {
            node_kind::DIR => {
                self.make_dir(rel).map_err(|e| io("create directory", e))?;
                self.out.dirs += 1;
                let t = self.src.children(&n)?;
                self.dir_contents(rel, &t)?;
                self.dirs.push((rel.to_path_buf(), n));
            }
            node_kind::FILE => {
                self.out.files += 1;
                self.jobs.push(Job {
                    rel: rel.to_path_buf(),
                    node: n,
                });
            }
            node_kind::SYMLINK => {
                (|| -> std::io::Result<()> {
                    let mut cache = self.walk_cache();
                    let (p, name) = self.at.parent_in(&mut cache, rel)?;
                    clear(p, name)?;
                    Ok(nix::unistd::symlinkat(
                        OsStr::from_bytes(&n.link_target),
                        p,
                        name,
                    )?)
                })()
                .map_err(|e| io("symlink", e))?;
                self.links.push((rel.to_path_buf(), n));
            }
            node_kind::CHARDEV | node_kind::BLOCKDEV if !self.special => {
                self.out.devices_skipped += 1;
            }
            node_kind::FIFO | node_kind::CHARDEV | node_kind::BLOCKDEV => {
                use nix::sys::stat::SFlag;
                let kind = match n.kind {
                    node_kind::FIFO => SFlag::S_IFIFO,
                    node_kind::CHARDEV => SFlag::S_IFCHR,
                    _ => SFlag::S_IFBLK,
                };
                let made = (|| -> std::io::Result<()> {
                    let mut cache = self.walk_cache();
                    let (p, name) = self.at.parent_in(&mut cache, rel)?;
                    clear(p, name)?;
                    Ok(nix::sys::stat::mknodat(
                        p,
                        name,
                        kind,
                        // Permission bits only; meta_at sets the rest.
                        Mode::from_bits_truncate(n.mode & 0o777),
                        n.rdev as _,
                    )?)
                })();
                match made {
                    Ok(()) => self.links.push((rel.to_path_buf(), n)),
                    Err(e) => self.warn(format!(
                        "{}: cannot create special file: {e}",
                        self.at.show(rel)
                    )),
                }
            }
            _ => self.warn(format!("{}: sockets are not restored", self.at.show(rel))),
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
                    hardlinks.push((p.clone(), j.rel));
                    continue;
                }
                first.insert((j.node.dev, j.node.inode), j.rel.clone());
            }
            jobs.push(j);
        }
        // In the order of the tree, which is the order the backup wrote
        // them to packs: reads go forward through each pack, and files of
        // one directory come in a row (each thread keeps its last parent
        // directory open).
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8)
            * 3;
        let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
        let bytes = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut dirs = DirCache::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { break };
                        if !errors.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                            break;
                        }
                        match self.write_file(&mut dirs, &j.rel, &j.node) {
                            Ok(n) => {
                                bytes.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(e) => errors.lock().unwrap_or_else(|e| e.into_inner()).push(e),
                        }
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
            (|| -> std::io::Result<()> {
                let (pf, nf) = self.at.parent(&from)?;
                let (pt, nt) = self.at.parent(&to)?;
                if self.resume && same_inode(&pf, nf, &pt, nt) {
                    return Ok(());
                }
                clear(&pt, nt)?;
                Ok(nix::unistd::linkat(&pf, nf, &pt, nt, AtFlags::empty())?)
            })()
            .map_err(|e| Error::io(format!("link {}", self.at.show(&to)), e))?;
        }
        Ok(())
    }

    /// Write the file `rel` under a temporary name, set its metadata and
    /// rename it to its name: complete, or not there. Resuming, a file
    /// already restored is skipped. The bytes written.
    fn write_file(&self, dirs: &mut DirCache, rel: &Path, n: &Node) -> Result<u64> {
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("{what} {}", self.at.show(rel)), e);
        let (p, name) = self.at.parent_in(dirs, rel).map_err(|e| io("create", e))?;
        if self.resume {
            let st = nix::sys::stat::fstatat(p, name, AtFlags::AT_SYMLINK_NOFOLLOW);
            if st.is_ok_and(|st| resume::is_restored(&st, n, self.wanted_mode(n), self.as_root)) {
                // Counted as the restore that wrote it counted it.
                let _ = (self.mode_of(n), self.xattrs_of(n));
                self.skipped.fetch_add(1, Ordering::Relaxed);
                self.progress.add(n.size);
                self.progress.files.fetch_add(1, Ordering::Relaxed);
                return Ok(0);
            }
        }
        // Created with its final permission bits where no chown follows
        // (the file is ours, and stays ours): then, umask and the group a
        // setgid directory gives aside, neither chown nor chmod is needed.
        // Files owned by others are created private until chown-ed.
        let mode = if !self.as_root || (n.uid, n.gid) == self.me {
            self.wanted_mode(n) & 0o777
        } else {
            0o600
        };
        let (f, tmp) = resume::create_temp(p, name, mode).map_err(|e| io("create", e))?;
        // Removes the temporary unless it became the file.
        let mut tmp = Temp {
            dir: p,
            name: Some(tmp),
        };
        let mut written = 0u64;
        // The file's length: the end of the last run written.
        let mut len = 0u64;
        self.src.content(n, &mut |data| {
            self.progress.check_cancel()?;
            len = len.max(write_sparse_end(&f, written, data).map_err(|e| io("write", e))?);
            written += data.len() as u64;
            self.progress.add(data.len() as u64);
            Ok(())
        })?;
        // Sets the size where it ends in a hole.
        if len != written {
            f.set_len(written).map_err(|e| io("truncate", e))?;
        }
        let st = nix::sys::stat::fstat(&f).map_err(|e| io("stat", e.into()))?;
        self.meta_fd(rel, n, &f, Some(&st));
        drop(f);
        tmp.rename_to(name)
            .map_err(|e| io("rename into place", e))?;
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        Ok(written)
    }

    /// Remove the restore marker once (`pending` says it is still there).
    fn remove_marker(&self, pending: &mut bool) {
        if std::mem::take(pending) {
            if let Err(e) = resume::remove_marker(&self.at.root) {
                self.warn(format!("{}: {e}", self.at.show(Path::new(resume::MARKER))));
            }
        }
    }

    fn finish(mut self) -> Result<RestoreOutcome> {
        for (p, n) in std::mem::take(&mut self.links) {
            self.meta_at(&p, &n);
        }
        // Deepest directories first, so that setting a parent's mtime is not
        // undone by creating its children. The target itself comes last;
        // the marker goes just before its times are set (removing it
        // changes them), when all else is done.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        let mut marker = !self.marker_shadowed;
        for (p, n) in dirs {
            if p.as_os_str().is_empty() {
                self.remove_marker(&mut marker);
            }
            match self.at.dir(&p) {
                Ok(fd) => self.meta_fd(&p, &n, &File::from(fd), None),
                Err(e) => self.warn(format!("{}: {e}", self.at.show(&p))),
            }
        }
        self.remove_marker(&mut marker);
        self.out.privileges_dropped = self.dropped.load(Ordering::Relaxed);
        self.out.skipped = self.skipped.load(Ordering::Relaxed);
        self.out.temporaries_removed = self.temps.load(Ordering::Relaxed);
        let mut warnings = self
            .warnings
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        if self.out.devices_skipped > 0 || self.out.privileges_dropped > 0 {
            warnings.push(format!(
                "{} device node(s) not recreated and setuid/setgid bits or capabilities dropped from {} file(s): this restore was not asked to restore special files (an admin may ask for them)",
                self.out.devices_skipped, self.out.privileges_dropped
            ));
        }
        self.out.warnings = warnings;
        Ok(self.out)
    }
}

/// Whether `a` in `da` and `b` in `db` are the same file (hard links).
fn same_inode(da: &std::os::fd::OwnedFd, a: &OsStr, db: &std::os::fd::OwnedFd, b: &OsStr) -> bool {
    let stat = |d, n| nix::sys::stat::fstatat(d, n, AtFlags::AT_SYMLINK_NOFOLLOW);
    match (stat(da, a), stat(db, b)) {
        (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino),
        _ => false,
    }
}
