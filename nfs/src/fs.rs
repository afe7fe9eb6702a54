//! nfsserve's [`NFSFileSystem`] over a [`Namespace`], for one client
//! address: `/<SOURCE>/<RESTORE-POINT-ID>/...` and `/<SOURCE>/latest/...`,
//! read-only.
//!
//! Every request resolves its id through the [`HandleTable`], checks that
//! the client may see what the id names, and reads the tree on a blocking
//! thread (the datastore's reads block). Directory listings page with
//! cookies that are the file id of the last entry sent; the position
//! after each entry sent is cached, so paging through a 100k-entry
//! directory is linear (a cookie not in the cache, e.g. after a restart,
//! is found by listing from the start).

use std::net::IpAddr;
use std::sync::Arc;

use arca_frontends::tree::{Attr, Entry, FileReader, FileTree, Kind, TreeError, TreePath};
use async_trait::async_trait;
use nfsserve::nfs::{
    fattr3, fileid3, filename3, fsinfo3, ftype3, nfs_fh3, nfspath3, nfsstat3, nfsstring, nfstime3,
    post_op_attr, sattr3, specdata3,
};
use nfsserve::vfs::{DirEntry, NFSFileSystem, ReadDirResult, VFSCapabilities};

use crate::handles::{HandleError, HandleTable, Node, ROOT_ID};
use crate::namespace::{Namespace, Point};

/// The `fsid` of every attribute (one file system).
const FSID: u64 = 0x4152_4341;
/// Largest READ answered, and the preferred size.
const READ_MAX: u32 = 1 << 20;
/// The name of the newest restore point of a source.
pub const LATEST: &str = "latest";

/// Open files and directory positions kept per view.
const OPEN_FILES: usize = 256;
const DIR_POSITIONS: usize = 1 << 17;

/// The export as one client (address) sees it.
pub struct ArcaFs {
    v: View,
}

/// A tree error as NFS says it.
pub fn nfs_error(e: &TreeError) -> nfsstat3 {
    match e {
        TreeError::NotFound(_) => nfsstat3::NFS3ERR_NOENT,
        TreeError::NotADirectory(_) => nfsstat3::NFS3ERR_NOTDIR,
        TreeError::IsADirectory(_) => nfsstat3::NFS3ERR_ISDIR,
        TreeError::Invalid(_) | TreeError::WrongKind(_) => nfsstat3::NFS3ERR_INVAL,
        TreeError::Io(_) | TreeError::Unavailable(_) => nfsstat3::NFS3ERR_IO,
    }
}

fn time(ns: i64) -> nfstime3 {
    if ns <= 0 {
        return nfstime3::default();
    }
    nfstime3 {
        seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX),
        nseconds: (ns % 1_000_000_000) as u32,
    }
}

/// The NFS attributes of `attr`, for file id `id`.
pub fn fattr(id: u64, attr: &Attr) -> fattr3 {
    let ftype = match attr.kind {
        Kind::File => ftype3::NF3REG,
        Kind::Dir => ftype3::NF3DIR,
        Kind::Symlink => ftype3::NF3LNK,
        Kind::Fifo => ftype3::NF3FIFO,
        Kind::CharDevice => ftype3::NF3CHR,
        Kind::BlockDevice => ftype3::NF3BLK,
        Kind::Socket => ftype3::NF3SOCK,
    };
    fattr3 {
        ftype,
        mode: attr.mode & 0o7777,
        nlink: attr.nlink.max(1),
        uid: attr.uid,
        gid: attr.gid,
        size: attr.size,
        used: attr.size,
        rdev: specdata3 {
            specdata1: ((attr.rdev >> 8) & 0xfff) as u32,
            specdata2: ((attr.rdev & 0xff) | ((attr.rdev >> 12) & 0xfff00)) as u32,
        },
        fsid: FSID,
        fileid: id,
        atime: time(attr.atime_ns),
        mtime: time(attr.mtime_ns),
        ctime: time(attr.ctime_ns),
    }
}

/// Run blocking tree work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, nfsstat3> + Send + 'static,
) -> Result<T, nfsstat3> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(nfsstat3::NFS3ERR_SERVERFAULT))
}

/// The shared state of a view, moved onto blocking threads.
#[derive(Clone)]
struct View {
    ns: Arc<dyn Namespace>,
    table: Arc<HandleTable>,
    client: IpAddr,
    files: Arc<quick_cache::sync::Cache<u64, Arc<dyn FileReader>>>,
    /// (directory id, cookie) → position of the next entry.
    positions: Arc<quick_cache::sync::Cache<(u64, u64), u64>>,
}

/// What a directory id lists.
enum Listing {
    /// Made-up entries (the root, a source): name and node, with their
    /// attributes.
    Synthetic(Vec<(Vec<u8>, Node, Attr)>),
    /// A directory of a restore point.
    Tree {
        source: String,
        snap: arca_repo::SnapshotId,
        tree: Arc<dyn FileTree>,
        path: TreePath,
    },
}

impl View {
    fn node(&self, id: u64) -> Result<Arc<Node>, nfsstat3> {
        self.table.node(id).ok_or(nfsstat3::NFS3ERR_STALE)
    }

    fn latest(&self, source: &str) -> Option<Point> {
        self.ns.points(source, self.client).pop()
    }

    /// The tree of `snap` of `source`, if the client may read it.
    fn tree(
        &self,
        source: &str,
        snap: &arca_repo::SnapshotId,
    ) -> Result<Arc<dyn FileTree>, nfsstat3> {
        if !self.ns.may_read(source, snap, self.client) {
            return Err(nfsstat3::NFS3ERR_ACCES);
        }
        self.ns.tree(snap).map_err(|e| {
            tracing::warn!(client = %self.client, snapshot = %snap.short(), error = %e, "nfs: restore point unreadable");
            match e {
                TreeError::NotFound(_) => nfsstat3::NFS3ERR_STALE,
                e => nfs_error(&e),
            }
        })
    }

    /// Attributes of a source directory: its newest restore point's time.
    fn source_attr(&self, points: &[Point]) -> Attr {
        Attr::synthetic_dir(points.last().map(|p| p.time_ns).unwrap_or(0))
    }

    fn getattr(&self, id: u64) -> Result<fattr3, nfsstat3> {
        let node = self.node(id)?;
        let attr = match &*node {
            Node::Root => {
                let newest = self
                    .ns
                    .sources(self.client)
                    .iter()
                    .filter_map(|s| self.latest(s).map(|p| p.time_ns))
                    .max()
                    .unwrap_or(0);
                Attr::synthetic_dir(newest)
            }
            Node::Source(s) => {
                let points = self.ns.points(s, self.client);
                if points.is_empty() {
                    return Err(nfsstat3::NFS3ERR_ACCES);
                }
                self.source_attr(&points)
            }
            Node::Latest(s) => {
                let p = self.latest(s).ok_or(nfsstat3::NFS3ERR_ACCES)?;
                self.tree(s, &p.id)?
                    .stat(&TreePath::root())
                    .map_err(|e| nfs_error(&e))?
            }
            Node::Tree { source, snap, path } => self
                .tree(source, snap)?
                .stat(path)
                .map_err(|e| nfs_error(&e))?,
        };
        Ok(fattr(id, &attr))
    }

    /// The node of `name` in directory `dir` and its attributes.
    fn lookup(&self, dir: u64, name: &[u8]) -> Result<u64, nfsstat3> {
        let node = self.node(dir)?;
        if name == b"." {
            self.getattr(dir)?;
            return Ok(dir);
        }
        let found = match (&*node, name) {
            (Node::Root, b"..") => Node::Root,
            (Node::Source(_), b"..") => Node::Root,
            (Node::Latest(s), b"..") => Node::Source(s.clone()),
            (Node::Tree { source, snap, path }, b"..") => {
                if path.is_root() {
                    Node::Source(source.clone())
                } else {
                    Node::Tree {
                        source: source.clone(),
                        snap: *snap,
                        path: path.parent(),
                    }
                }
            }
            (Node::Root, name) => {
                let name = std::str::from_utf8(name).map_err(|_| nfsstat3::NFS3ERR_NOENT)?;
                if !self.ns.sources(self.client).iter().any(|s| s == name) {
                    return Err(nfsstat3::NFS3ERR_NOENT);
                }
                Node::Source(name.to_string())
            }
            (Node::Source(s), name) => {
                let points = self.ns.points(s, self.client);
                if name == LATEST.as_bytes() && !points.is_empty() {
                    Node::Latest(s.clone())
                } else {
                    let name = std::str::from_utf8(name).map_err(|_| nfsstat3::NFS3ERR_NOENT)?;
                    let p = points
                        .iter()
                        .find(|p| p.id.to_hex() == name)
                        .ok_or(nfsstat3::NFS3ERR_NOENT)?;
                    Node::Tree {
                        source: s.clone(),
                        snap: p.id,
                        path: TreePath::root(),
                    }
                }
            }
            (Node::Latest(s), name) => {
                let p = self.latest(s).ok_or(nfsstat3::NFS3ERR_ACCES)?;
                let path = TreePath::root().join(name).map_err(|e| nfs_error(&e))?;
                self.tree(s, &p.id)?
                    .stat(&path)
                    .map_err(|e| nfs_error(&e))?;
                Node::Tree {
                    source: s.clone(),
                    snap: p.id,
                    path,
                }
            }
            (Node::Tree { source, snap, path }, name) => {
                let path = path.join(name).map_err(|e| nfs_error(&e))?;
                self.tree(source, snap)?
                    .stat(&path)
                    .map_err(|e| nfs_error(&e))?;
                Node::Tree {
                    source: source.clone(),
                    snap: *snap,
                    path,
                }
            }
        };
        let id = self.table.id(found);
        // The found node may be a made-up one the client may not see.
        self.getattr(id)?;
        self.table.sync();
        Ok(id)
    }

    fn listing(&self, dir: u64) -> Result<Listing, nfsstat3> {
        let node = self.node(dir)?;
        Ok(match &*node {
            Node::Root => Listing::Synthetic(
                self.ns
                    .sources(self.client)
                    .into_iter()
                    .map(|s| {
                        let attr = self.source_attr(&self.ns.points(&s, self.client));
                        (s.as_bytes().to_vec(), Node::Source(s), attr)
                    })
                    .collect(),
            ),
            Node::Source(s) => {
                let points = self.ns.points(s, self.client);
                if points.is_empty() {
                    return Err(nfsstat3::NFS3ERR_ACCES);
                }
                // Made-up attributes (the restore point's time): listing a
                // source must not open the tree of every restore point.
                let mut out = Vec::new();
                for p in &points {
                    let node = Node::Tree {
                        source: s.clone(),
                        snap: p.id,
                        path: TreePath::root(),
                    };
                    let attr = Attr::synthetic_dir(p.time_ns);
                    out.push((p.id.to_hex().into_bytes(), node, attr));
                }
                if let Some(p) = points.last() {
                    let attr = Attr::synthetic_dir(p.time_ns);
                    out.push((LATEST.as_bytes().to_vec(), Node::Latest(s.clone()), attr));
                }
                Listing::Synthetic(out)
            }
            Node::Latest(s) => {
                let p = self.latest(s).ok_or(nfsstat3::NFS3ERR_ACCES)?;
                Listing::Tree {
                    source: s.clone(),
                    tree: self.tree(s, &p.id)?,
                    snap: p.id,
                    path: TreePath::root(),
                }
            }
            Node::Tree { source, snap, path } => Listing::Tree {
                source: source.clone(),
                tree: self.tree(source, snap)?,
                snap: *snap,
                path: path.clone(),
            },
        })
    }

    fn readdir(&self, dir: u64, after: u64, max: usize) -> Result<ReadDirResult, nfsstat3> {
        let max = max.clamp(1, 4096);
        let mut entries = Vec::new();
        let end;
        match self.listing(dir)? {
            Listing::Synthetic(all) => {
                let mut ids: Vec<u64> = Vec::with_capacity(all.len());
                for (_, node, _) in &all {
                    ids.push(self.table.id(node.clone()));
                }
                let start = if after == 0 {
                    0
                } else {
                    ids.iter()
                        .position(|&i| i == after)
                        .map(|i| i + 1)
                        .ok_or(nfsstat3::NFS3ERR_BAD_COOKIE)?
                };
                for (i, (name, _, attr)) in all.iter().enumerate().skip(start).take(max) {
                    entries.push(DirEntry {
                        fileid: ids[i],
                        name: nfsstring(name.clone()),
                        attr: fattr(ids[i], attr),
                    });
                }
                end = start + entries.len() >= all.len();
            }
            Listing::Tree {
                source,
                snap,
                tree,
                path,
            } => {
                let entry_id = |e: &Entry| -> Result<u64, nfsstat3> {
                    let p = path.join(&e.name).map_err(|e| nfs_error(&e))?;
                    Ok(self.table.id(Node::Tree {
                        source: source.clone(),
                        snap,
                        path: p,
                    }))
                };
                let start = if after == 0 {
                    0
                } else if let Some(pos) = self.positions.get(&(dir, after)) {
                    pos
                } else {
                    // Not cached (evicted, or a restart): find the cookie.
                    let mut pos = 0u64;
                    let mut found = None;
                    tree.read_dir(&path, 0, &mut |e| {
                        pos += 1;
                        if entry_id(&e).ok() == Some(after) {
                            found = Some(pos);
                            return false;
                        }
                        true
                    })
                    .map_err(|e| nfs_error(&e))?;
                    found.ok_or(nfsstat3::NFS3ERR_BAD_COOKIE)?
                };
                let mut got: Vec<Entry> = Vec::new();
                tree.read_dir(&path, start, &mut |e| {
                    got.push(e);
                    got.len() <= max
                })
                .map_err(|e| nfs_error(&e))?;
                end = got.len() <= max;
                got.truncate(max);
                for (i, e) in got.into_iter().enumerate() {
                    let id = entry_id(&e)?;
                    self.positions.insert((dir, id), start + i as u64 + 1);
                    entries.push(DirEntry {
                        fileid: id,
                        name: nfsstring(e.name),
                        attr: fattr(id, &e.attr),
                    });
                }
            }
        }
        self.table.sync();
        Ok(ReadDirResult { entries, end })
    }

    fn read(&self, id: u64, offset: u64, count: u32) -> Result<(Vec<u8>, bool), nfsstat3> {
        let node = self.node(id)?;
        let Node::Tree { source, snap, path } = &*node else {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        };
        let tree = self.tree(source, snap)?;
        let file = match self.files.get(&id) {
            Some(f) => f,
            None => {
                let f = tree.open(path).map_err(|e| nfs_error(&e))?;
                self.files.insert(id, f.clone());
                f
            }
        };
        let size = file.size();
        if offset >= size {
            return Ok((Vec::new(), true));
        }
        let n = (count.min(READ_MAX) as u64).min(size - offset) as usize;
        let mut buf = vec![0u8; n];
        let mut done = 0;
        while done < n {
            let got = file
                .read_at(offset + done as u64, &mut buf[done..])
                .map_err(|e| {
                    tracing::warn!(client = %self.client, snapshot = %snap.short(), path = %path, error = %e, "nfs: read failed");
                    nfs_error(&e)
                })?;
            if got == 0 {
                break;
            }
            done += got;
        }
        buf.truncate(done);
        Ok((buf, offset + done as u64 >= size))
    }

    fn readlink(&self, id: u64) -> Result<nfspath3, nfsstat3> {
        let node = self.node(id)?;
        let Node::Tree { source, snap, path } = &*node else {
            return Err(nfsstat3::NFS3ERR_INVAL);
        };
        let target = self
            .tree(source, snap)?
            .read_link(path)
            .map_err(|e| nfs_error(&e))?;
        Ok(nfsstring(target))
    }
}

impl ArcaFs {
    /// The export of `ns` as `client` sees it, ids from `table`.
    pub fn new(ns: Arc<dyn Namespace>, table: Arc<HandleTable>, client: IpAddr) -> ArcaFs {
        ArcaFs {
            v: View {
                ns,
                table,
                client,
                files: Arc::new(quick_cache::sync::Cache::new(OPEN_FILES)),
                positions: Arc::new(quick_cache::sync::Cache::new(DIR_POSITIONS)),
            },
        }
    }

    fn view(&self) -> View {
        self.v.clone()
    }
}

#[async_trait]
impl NFSFileSystem for ArcaFs {
    fn capabilities(&self) -> VFSCapabilities {
        VFSCapabilities::ReadOnly
    }

    fn root_dir(&self) -> fileid3 {
        ROOT_ID
    }

    async fn lookup(&self, dirid: fileid3, filename: &filename3) -> Result<fileid3, nfsstat3> {
        let v = self.view();
        let name = filename.0.clone();
        blocking(move || v.lookup(dirid, &name)).await
    }

    async fn getattr(&self, id: fileid3) -> Result<fattr3, nfsstat3> {
        let v = self.view();
        blocking(move || v.getattr(id)).await
    }

    async fn setattr(&self, _id: fileid3, _setattr: sattr3) -> Result<fattr3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn read(
        &self,
        id: fileid3,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), nfsstat3> {
        let v = self.view();
        blocking(move || v.read(id, offset, count)).await
    }

    async fn write(&self, _id: fileid3, _offset: u64, _data: &[u8]) -> Result<fattr3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn create(
        &self,
        _dirid: fileid3,
        _filename: &filename3,
        _attr: sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn create_exclusive(
        &self,
        _dirid: fileid3,
        _filename: &filename3,
    ) -> Result<fileid3, nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn mkdir(
        &self,
        _dirid: fileid3,
        _dirname: &filename3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn remove(&self, _dirid: fileid3, _filename: &filename3) -> Result<(), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn rename(
        &self,
        _from_dirid: fileid3,
        _from_filename: &filename3,
        _to_dirid: fileid3,
        _to_filename: &filename3,
    ) -> Result<(), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn readdir(
        &self,
        dirid: fileid3,
        start_after: fileid3,
        max_entries: usize,
    ) -> Result<ReadDirResult, nfsstat3> {
        let v = self.view();
        blocking(move || v.readdir(dirid, start_after, max_entries)).await
    }

    async fn symlink(
        &self,
        _dirid: fileid3,
        _linkname: &filename3,
        _symlink: &nfspath3,
        _attr: &sattr3,
    ) -> Result<(fileid3, fattr3), nfsstat3> {
        Err(nfsstat3::NFS3ERR_ROFS)
    }

    async fn readlink(&self, id: fileid3) -> Result<nfspath3, nfsstat3> {
        let v = self.view();
        blocking(move || v.readlink(id)).await
    }

    async fn fsinfo(&self, root_fileid: fileid3) -> Result<fsinfo3, nfsstat3> {
        let obj_attributes = match self.getattr(root_fileid).await {
            Ok(a) => post_op_attr::attributes(a),
            Err(_) => post_op_attr::Void,
        };
        Ok(fsinfo3 {
            obj_attributes,
            rtmax: READ_MAX,
            rtpref: READ_MAX,
            rtmult: 4096,
            // Writes are refused (ROFS), but clients (libnfs) refuse to
            // mount a server whose write size is 0.
            wtmax: READ_MAX,
            wtpref: READ_MAX,
            wtmult: 4096,
            dtpref: 64 * 1024,
            maxfilesize: u64::MAX >> 1,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: nfsserve::nfs::FSF_SYMLINK | nfsserve::nfs::FSF_HOMOGENEOUS,
        })
    }

    fn id_to_fh(&self, id: fileid3) -> nfs_fh3 {
        nfs_fh3 {
            data: self.v.table.handle(id),
        }
    }

    fn fh_to_id(&self, fh: &nfs_fh3) -> Result<fileid3, nfsstat3> {
        self.v.table.resolve(&fh.data).map_err(|e| {
            tracing::info!(client = %self.v.client, error = ?e, "nfs: handle refused");
            match e {
                HandleError::BadHandle => nfsstat3::NFS3ERR_BADHANDLE,
                HandleError::Stale => nfsstat3::NFS3ERR_STALE,
            }
        })
    }
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
