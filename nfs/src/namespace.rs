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
use arca_repo::{Datastore, SnapshotId};

/// An address block (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `ADDR/PREFIX` or `ADDR` (a single address).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an address block (like 192.168.1.0/24 or ::1)");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The allow list used when none is given: loopback only.
pub fn default_allow() -> Vec<Cidr> {
    vec![
        Cidr::parse("127.0.0.1/32").unwrap_or(Cidr {
            addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            prefix: 32,
        }),
        Cidr {
            addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
    ]
}

/// Whether any block of `allow` holds `ip`.
pub fn allowed(allow: &[Cidr], ip: IpAddr) -> bool {
    allow.iter().any(|c| c.contains(ip))
}

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
    fn address_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()), "mapped");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::2".parse().unwrap()));
        assert!(!Cidr::parse("::/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::1/129",
            "x/8",
            "10.0.0.0/-1",
            "1.2.3.4/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        let d = default_allow();
        assert!(allowed(&d, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&d, "::1".parse().unwrap()));
        assert!(!allowed(&d, "127.0.0.2".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn source_directory_names_are_one_component() {
        assert_eq!(dir_name("web01"), "web01");
        assert_eq!(dir_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(dir_name(".."), "%..");
        assert_eq!(dir_name(""), "%");
    }
}
