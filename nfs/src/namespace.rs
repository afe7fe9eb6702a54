//! What the export shows, to whom: the sources, their restore points and
//! the trees, filtered by the client's address.
//!
//! [`Namespace`] is what the NFS file system asks; [`DatastoreNamespace`]
//! is `arca serve nfs` (every restore point of a datastore, one allow
//! list). The node's exports (`arca mount --nfs`) implement it over the
//! active exports, each with its own allow list.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_frontends::tree::{FileTree, TreeError, Trees};
pub use arca_model::net::{allowed, canonical, default_allow, Cidr};
use arca_repo::{Datastore, SnapshotId};

/// A restore point as the export lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    pub id: SnapshotId,
    pub time_ns: i64,
}

/// What the export shows. Sources are named by their directory name
/// ([`dir_name`]). Every method answers for one client address.
pub trait Namespace: Send + Sync + 'static {
    /// Whether `client` may connect at all (else the connection is
    /// closed at once).
    fn admits(&self, client: IpAddr) -> bool;
    /// The sources `client` sees, sorted.
    fn sources(&self, client: IpAddr) -> Vec<String>;
    /// The restore points of `source` that `client` sees, oldest first.
    fn points(&self, source: &str, client: IpAddr) -> Vec<Point>;
    /// The tree of restore point `snap`.
    fn tree(&self, snap: &SnapshotId) -> Result<Arc<dyn FileTree>, TreeError>;
    /// Whether `client` may read restore point `snap` of `source`.
    fn may_read(&self, source: &str, snap: &SnapshotId, client: IpAddr) -> bool {
        self.points(source, client).iter().any(|p| p.id == *snap)
    }
}

/// The directory name of a source: the name, with `/` as `%2F` and `%`
/// as `%25` (a name is one path component); `.`/`..`/empty get a `%`
/// prefix.
pub fn dir_name(source: &str) -> String {
    let s = source.replace('%', "%25").replace('/', "%2F");
    match s.as_str() {
        "" | "." | ".." => format!("%{s}"),
        _ => s,
    }
}

/// Sources (by directory name, sorted) and their restore points.
type Listing = Vec<(String, Vec<Point>)>;

/// How long a datastore's listing of restore points is reused.
const LISTING_TTL: Duration = Duration::from_secs(5);

/// Every restore point of a datastore, to the clients of one allow list
/// (`arca serve nfs`).
pub struct DatastoreNamespace {
    ds: Arc<Datastore>,
    trees: Arc<Trees>,
    allow: Vec<Cidr>,
    listing: Mutex<Option<(Instant, Arc<Listing>)>>,
}

impl DatastoreNamespace {
    pub fn new(ds: Arc<Datastore>, trees: Arc<Trees>, allow: Vec<Cidr>) -> DatastoreNamespace {
        DatastoreNamespace {
            ds,
            trees,
            allow,
            listing: Mutex::new(None),
        }
    }

    /// Sources (by directory name, sorted) and their points, listed at
    /// most every [`LISTING_TTL`].
    fn listing(&self) -> Arc<Listing> {
        let mut g = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, l)) = g.as_ref() {
            if at.elapsed() < LISTING_TTL {
                return l.clone();
            }
        }
        let mut by_source: std::collections::BTreeMap<String, Vec<Point>> = Default::default();
        match self.ds.snapshots() {
            Ok(snaps) => {
                for s in snaps {
                    by_source
                        .entry(dir_name(&s.manifest.source))
                        .or_default()
                        .push(Point {
                            id: s.id,
                            time_ns: s.manifest.time_ns,
                        });
                }
            }
            Err(e) => tracing::error!(error = %e, "nfs: listing restore points failed"),
        }
        let l = Arc::new(by_source.into_iter().collect::<Vec<_>>());
        *g = Some((Instant::now(), l.clone()));
        l
    }
}

impl Namespace for DatastoreNamespace {
    fn admits(&self, client: IpAddr) -> bool {
        allowed(&self.allow, client)
    }

    fn sources(&self, client: IpAddr) -> Vec<String> {
        if !self.admits(client) {
            return Vec::new();
        }
        self.listing().iter().map(|(s, _)| s.clone()).collect()
    }

    fn points(&self, source: &str, client: IpAddr) -> Vec<Point> {
        if !self.admits(client) {
            return Vec::new();
        }
        self.listing()
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    fn tree(&self, snap: &SnapshotId) -> Result<Arc<dyn FileTree>, TreeError> {
        self.trees.get(&self.ds, snap)
    }
}

/// One restore point exported over NFS through the server (`arca mount
/// --nfs`): shown as `/<SOURCE>/<RESTORE-POINT-ID>` (and `latest`) to the
/// clients of its allow list only.
#[derive(Clone)]
pub struct NfsExport {
    /// The source's name (as the catalog has it).
    pub source: String,
    pub snap: SnapshotId,
    pub time_ns: i64,
    /// The datastore the restore point is in.
    pub ds: Arc<Datastore>,
    pub allow: Vec<Cidr>,
}

/// The active NFS exports of a node: replaced whole when the catalog's
/// list changes ([`ExportsNamespace::set`]); a client sees and reads only
/// the exports whose allow list holds its address, and loses access at
/// its next request once an export is gone (unmounted, expired).
pub struct ExportsNamespace {
    trees: Arc<Trees>,
    exports: std::sync::RwLock<Vec<NfsExport>>,
}

impl ExportsNamespace {
    pub fn new(trees: Arc<Trees>) -> ExportsNamespace {
        ExportsNamespace {
            trees,
            exports: Default::default(),
        }
    }

    /// Serve exactly `exports` from now on.
    pub fn set(&self, exports: Vec<NfsExport>) {
        *self.exports.write().unwrap_or_else(|e| e.into_inner()) = exports;
    }

    fn visible(&self, client: IpAddr) -> Vec<NfsExport> {
        self.exports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| allowed(&e.allow, client))
            .cloned()
            .collect()
    }
}

impl Namespace for ExportsNamespace {
    fn admits(&self, client: IpAddr) -> bool {
        !self.visible(client).is_empty()
    }

    fn sources(&self, client: IpAddr) -> Vec<String> {
        let mut s: Vec<String> = self
            .visible(client)
            .iter()
            .map(|e| dir_name(&e.source))
            .collect();
        s.sort();
        s.dedup();
        s
    }

    fn points(&self, source: &str, client: IpAddr) -> Vec<Point> {
        let mut p: Vec<Point> = self
            .visible(client)
            .iter()
            .filter(|e| dir_name(&e.source) == source)
            .map(|e| Point {
                id: e.snap,
                time_ns: e.time_ns,
            })
            .collect();
        p.sort_by_key(|p| (p.time_ns, p.id));
        p.dedup();
        p
    }

    fn tree(&self, snap: &SnapshotId) -> Result<Arc<dyn FileTree>, TreeError> {
        let ds = self
            .exports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|e| e.snap == *snap)
            .map(|e| e.ds.clone())
            .ok_or_else(|| {
                TreeError::NotFound(format!("restore point {} is not exported", snap.short()))
            })?;
        self.trees.get(&ds, snap)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn source_directory_names_are_one_component() {
        assert_eq!(dir_name("web01"), "web01");
        assert_eq!(dir_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(dir_name(".."), "%..");
        assert_eq!(dir_name(""), "%");
    }
}
