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

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use arca_repo::format::{node_kind, Node, Tree};
use arca_repo::{ChunkId, Datastore, Error, Result, Snapshot};
use filetime::FileTime;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;

use crate::Progress;

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

/// Whether `openat2` works here: 0 not tried yet, 1 yes, 2 no (an old
/// kernel, or a seccomp filter that refuses it).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The target directory, and the directories beneath it, opened without
/// ever following a symbolic link.
struct Beneath {
    root: OwnedFd,
    target: PathBuf,
}

impl Beneath {
    /// Create `target` if needed and open it.
    fn open(target: &Path) -> Result<Beneath> {
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

    fn show(&self, rel: &Path) -> String {
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
    fn dir(&self, rel: &Path) -> std::io::Result<OwnedFd> {
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
    fn parent<'r>(&self, rel: &'r Path) -> std::io::Result<(OwnedFd, &'r OsStr)> {
        let name = rel
            .file_name()
            .ok_or_else(|| std::io::Error::other("the target itself has no parent here"))?;
        Ok((self.dir(rel.parent().unwrap_or(Path::new("")))?, name))
    }

    /// Whether the target has entries.
    fn has_entries(&self) -> Result<bool> {
        let mut entries = fs::read_dir(&self.target)
            .map_err(|e| Error::io(format!("list {}", self.target.display()), e))?;
        Ok(entries.next().is_some())
    }
}

/// Remove the file, link or special file `name` in `dir`, if any, so that
/// a new entry takes its place. Directories are never removed.
fn clear(dir: &OwnedFd, name: &OsStr) -> std::io::Result<()> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(std::io::Error::other(
            "a directory of that name is in the way (a restore does not remove directories)",
        )),
        Err(e) => Err(e.into()),
    }
}

fn is_dir_mode(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
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
    let at = Beneath::open(target)?;
    if !opts.overwrite && at.has_entries()? {
        return Err(Error::InvalidInput(not_empty_message(
            target,
            "is not empty",
        )));
    }
    let mut r = Restorer {
        ds,
        at,
        special: opts.special_files,
        dropped: std::sync::atomic::AtomicU64::new(0),
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
            let rel = PathBuf::from(OsStr::from_bytes(&n.name));
            r.entry(&rel, n)?
        }
        (n, Some(t)) => {
            r.dir_contents(Path::new(""), &t)?;
            if let Some(n) = n {
                r.dirs.push((PathBuf::new(), n));
            }
        }
        (None, None) => {}
    }
    r.write_files()?;
    r.finish()
}

struct Restorer<'a> {
    ds: &'a Datastore,
    at: Beneath,
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
    out: RestoreOutcome,
}

impl Restorer<'_> {
    /// The permission bits to set on `n`: without `special_files`, those of
    /// the backup less setuid/setgid (kept on directories).
    fn mode_of(&self, n: &Node) -> u32 {
        let mode = n.mode & 0o7777;
        if self.special || n.kind == node_kind::DIR || mode & SETID == 0 {
            mode
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            mode & !SETID
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
        let (p, name) = self.at.parent(rel)?;
        let mode = Mode::from_bits_truncate(0o700);
        match nix::sys::stat::mkdirat(&p, name, mode) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                let st = nix::sys::stat::fstatat(&p, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                if is_dir_mode(st.st_mode) {
                    return Ok(());
                }
                clear(&p, name)?;
                Ok(nix::sys::stat::mkdirat(&p, name, mode)?)
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
                let t = self.ds.read_tree(&ChunkId::from_slice(&n.subtree)?)?;
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
                    let (p, name) = self.at.parent(rel)?;
                    clear(&p, name)?;
                    Ok(nix::unistd::symlinkat(
                        OsStr::from_bytes(&n.link_target),
                        &p,
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
                    let (p, name) = self.at.parent(rel)?;
                    clear(&p, name)?;
                    Ok(nix::sys::stat::mknodat(
                        &p,
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
                    match self.write_file(&j.rel, &j.node) {
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
            (|| -> std::io::Result<()> {
                let (pf, nf) = self.at.parent(&from)?;
                let (pt, nt) = self.at.parent(&to)?;
                clear(&pt, nt)?;
                Ok(nix::unistd::linkat(&pf, nf, &pt, nt, AtFlags::empty())?)
            })()
            .map_err(|e| Error::io(format!("link {}", self.at.show(&to)), e))?;
        }
        Ok(())
    }

    fn write_file(&self, rel: &Path, n: &Node) -> Result<u64> {
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("{what} {}", self.at.show(rel)), e);
        let f = (|| -> std::io::Result<File> {
            let (p, name) = self.at.parent(rel)?;
            clear(&p, name)?;
            let fd = nix::fcntl::openat(
                &p,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            Ok(File::from(fd))
        })()
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
        self.meta_fd(rel, n, &f);
        Ok(written)
    }

    /// Ownership, xattrs, mode and times of an open file or directory;
    /// failures are warnings.
    fn meta_fd(&self, rel: &Path, n: &Node, f: &File) {
        use nix::unistd::{Gid, Uid};
        use xattr::FileExt as _;
        if nix::unistd::geteuid().is_root() {
            let owner = (Some(Uid::from_raw(n.uid)), Some(Gid::from_raw(n.gid)));
            if let Err(e) = nix::unistd::fchown(f, owner.0, owner.1) {
                self.warn(format!("{}: chown: {e}", self.at.show(rel)));
            }
        }
        for x in self.xattrs_of(n) {
            let name = OsStr::from_bytes(&x.name);
            if let Err(e) = f.set_xattr(name, &x.value) {
                self.warn(format!(
                    "{}: xattr {}: {e}",
                    self.at.show(rel),
                    name.to_string_lossy()
                ));
            }
        }
        if let Err(e) = f.set_permissions(fs::Permissions::from_mode(self.mode_of(n))) {
            self.warn(format!("{}: chmod: {e}", self.at.show(rel)));
        }
        let atime = if n.atime_ns == 0 {
            n.mtime_ns
        } else {
            n.atime_ns
        };
        if let Err(e) = filetime::set_file_handle_times(f, Some(ft(atime)), Some(ft(n.mtime_ns))) {
            self.warn(format!("{}: times: {e}", self.at.show(rel)));
        }
    }

    /// The same for a symbolic link or special file, by name in its
    /// directory, never following a link.
    fn meta_at(&self, rel: &Path, n: &Node) {
        use nix::unistd::{Gid, Uid};
        let (p, name) = match self.at.parent(rel) {
            Ok(x) => x,
            Err(e) => return self.warn(format!("{}: {e}", self.at.show(rel))),
        };
        if nix::unistd::geteuid().is_root() {
            if let Err(e) = nix::unistd::fchownat(
                &p,
                name,
                Some(Uid::from_raw(n.uid)),
                Some(Gid::from_raw(n.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                self.warn(format!("{}: chown: {e}", self.at.show(rel)));
            }
        }
        if !n.xattrs.is_empty() {
            // lsetxattr through the directory's descriptor: the last
            // component is not followed.
            let path = Path::new("/proc/self/fd")
                .join(p.as_raw_fd().to_string())
                .join(name);
            for x in self.xattrs_of(n) {
                let xname = OsStr::from_bytes(&x.name);
                if let Err(e) = xattr::set(&path, xname, &x.value) {
                    self.warn(format!(
                        "{}: xattr {}: {e}",
                        self.at.show(rel),
                        xname.to_string_lossy()
                    ));
                }
            }
        }
        if n.kind != node_kind::SYMLINK {
            if let Err(e) = nix::sys::stat::fchmodat(
                &p,
                name,
                Mode::from_bits_truncate(self.mode_of(n)),
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            ) {
                self.warn(format!("{}: chmod: {e}", self.at.show(rel)));
            }
        }
        let atime = if n.atime_ns == 0 {
            n.mtime_ns
        } else {
            n.atime_ns
        };
        if let Err(e) = nix::sys::stat::utimensat(
            &p,
            name,
            &timespec(atime),
            &timespec(n.mtime_ns),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        ) {
            self.warn(format!("{}: times: {e}", self.at.show(rel)));
        }
    }

    fn finish(mut self) -> Result<RestoreOutcome> {
        for (p, n) in std::mem::take(&mut self.links) {
            self.meta_at(&p, &n);
        }
        // Deepest directories first, so that setting a parent's mtime is not
        // undone by creating its children.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, n) in dirs {
            match self.at.dir(&p) {
                Ok(fd) => self.meta_fd(&p, &n, &File::from(fd)),
                Err(e) => self.warn(format!("{}: {e}", self.at.show(&p))),
            }
        }
        self.out.privileges_dropped = self.dropped.load(Ordering::Relaxed);
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
}
