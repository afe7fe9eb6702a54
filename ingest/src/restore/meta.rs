//! The metadata of restored entries: ownership, xattrs, mode and times,
//! set through the entry's own descriptor or by name in its directory
//! without following a link. Failures are warnings.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use arca_repo::format::{node_kind, Node};
use nix::fcntl::AtFlags;
use nix::sys::stat::Mode;

use super::{ft, timespec, Restorer};

impl Restorer<'_> {
    /// Ownership, xattrs, mode and times of an open file or directory;
    /// failures are warnings. With `st`, the file's status now: ownership
    /// and mode already as wanted are not set again.
    pub(super) fn meta_fd(
        &self,
        rel: &Path,
        n: &Node,
        f: &File,
        st: Option<&nix::sys::stat::FileStat>,
    ) {
        use nix::unistd::{Gid, Uid};
        use xattr::FileExt as _;
        let mode = self.mode_of(n);
        let owned = st.is_some_and(|st| (st.st_uid, st.st_gid) == (n.uid, n.gid));
        // A chown clears setuid/setgid bits: the mode is set after it.
        let chown = self.as_root && !owned;
        if chown {
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
        let mode_right = !chown && st.is_some_and(|st| st.st_mode & 0o7777 == mode);
        if !mode_right {
            if let Err(e) = f.set_permissions(fs::Permissions::from_mode(mode)) {
                self.warn(format!("{}: chmod: {e}", self.at.show(rel)));
            }
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
    pub(super) fn meta_at(&self, rel: &Path, n: &Node) {
        use nix::unistd::{Gid, Uid};
        let mut cache = self.walk_cache();
        let (p, name) = match self.at.parent_in(&mut cache, rel) {
            Ok(x) => x,
            Err(e) => return self.warn(format!("{}: {e}", self.at.show(rel))),
        };
        if self.as_root {
            if let Err(e) = nix::unistd::fchownat(
                p,
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
                p,
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
            p,
            name,
            &timespec(atime),
            &timespec(n.mtime_ns),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        ) {
            self.warn(format!("{}: times: {e}", self.at.show(rel)));
        }
    }
}
