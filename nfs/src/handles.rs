//! File ids and NFS file handles that stay valid across restarts.
//!
//! nfsserve names every file by a 64-bit file id and, by default, makes
//! its handle from the id and the server's start time, so every handle
//! goes stale when the server restarts. Here:
//!
//! - A file id is derived from what it names ([`Node`]: a source, a
//!   source's `latest`, or a path in a restore point) by hashing, with
//!   linear probing on the (rare) collision, and every id handed out is
//!   appended to a log in the state directory (`handles.log`) before the
//!   reply leaves. A restarted server reads the log back, so an id a
//!   client holds resolves without the client looking it up again.
//! - A handle is the id and a MAC of it (keyed BLAKE3, the key kept in
//!   `handle.key` in the state directory): a forged or damaged handle is
//!   `NFS3ERR_BADHANDLE`, a well-formed one whose id this server never
//!   handed out `NFS3ERR_STALE`.
//!
//! Log record: `id u64 LE | len u32 LE | node (len bytes) | check u64 LE`
//! (the first 8 bytes of BLAKE3 of the rest). Loading stops at the first
//! torn or damaged record and the log is cut there.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use arca_frontends::tree::TreePath;
use arca_repo::SnapshotId;

/// The id of the root directory.
pub const ROOT_ID: u64 = 1;
/// Ids below this are reserved (0 is not an id; 1 is the root).
const FIRST_ID: u64 = 16;
/// Length of a handle: id and MAC.
pub const HANDLE_LEN: usize = 16;
/// Longest node record accepted from the log (a source name and a path).
const MAX_NODE: usize = 64 * 1024;

/// What a file id names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// `/`.
    Root,
    /// `/<SOURCE>`, by its directory name.
    Source(String),
    /// `/<SOURCE>/latest`: the newest restore point of the source at the
    /// time of each request.
    Latest(String),
    /// A path in a restore point (the empty path: `/<SOURCE>/<ID>`).
    Tree {
        source: String,
        snap: SnapshotId,
        path: TreePath,
    },
}

impl Node {
    /// The record bytes of the node.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let put_str = |out: &mut Vec<u8>, s: &[u8]| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        };
        match self {
            Node::Root => out.push(0),
            Node::Source(s) => {
                out.push(1);
                put_str(&mut out, s.as_bytes());
            }
            Node::Latest(s) => {
                out.push(2);
                put_str(&mut out, s.as_bytes());
            }
            Node::Tree { source, snap, path } => {
                out.push(3);
                put_str(&mut out, source.as_bytes());
                out.extend_from_slice(snap.as_bytes());
                let joined = path.components().join(&b'/');
                put_str(&mut out, &joined);
            }
        }
        out
    }

    /// Parse record bytes (untrusted: from the log on disk). None when
    /// they are not exactly one node.
    pub fn decode(b: &[u8]) -> Option<Node> {
        let (&kind, mut rest) = b.split_first()?;
        fn take_str(rest: &mut &[u8]) -> Option<Vec<u8>> {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let s = rest.get(4..4usize.checked_add(len)?)?.to_vec();
            *rest = &rest[4 + len..];
            Some(s)
        }
        let node = match kind {
            0 => Node::Root,
            1 => Node::Source(String::from_utf8(take_str(&mut rest)?).ok()?),
            2 => Node::Latest(String::from_utf8(take_str(&mut rest)?).ok()?),
            3 => {
                let source = String::from_utf8(take_str(&mut rest)?).ok()?;
                let snap = SnapshotId(rest.get(..32)?.try_into().ok()?);
                rest = &rest[32..];
                let path = TreePath::parse_bytes(&take_str(&mut rest)?).ok()?;
                Node::Tree { source, snap, path }
            }
            _ => return None,
        };
        rest.is_empty().then_some(node)
    }

    /// The id this node gets when nothing else has it.
    fn preferred_id(&self) -> u64 {
        if *self == Node::Root {
            return ROOT_ID;
        }
        let h = blake3::hash(&self.encode());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        (u64::from_le_bytes(b) >> 1).max(FIRST_ID)
    }
}

struct Inner {
    by_id: HashMap<u64, Arc<Node>>,
    by_node: HashMap<Arc<Node>, u64>,
    log: Option<BufWriter<File>>,
    dirty: bool,
}

/// The ids handed out, kept in memory and in the state directory's log.
pub struct HandleTable {
    key: [u8; 32],
    inner: Mutex<Inner>,
}

/// One record of the log (without the check).
fn record(id: u64, node: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(node.len() + 20);
    r.extend_from_slice(&id.to_le_bytes());
    r.extend_from_slice(&(node.len() as u32).to_le_bytes());
    r.extend_from_slice(node);
    let check = blake3::hash(&r);
    r.extend_from_slice(&check.as_bytes()[..8]);
    r
}

/// Parse a log: the (id, node) pairs of its whole, valid records, and
/// the length of the valid prefix.
pub fn parse_log(mut b: &[u8]) -> (Vec<(u64, Node)>, usize) {
    let total = b.len();
    let mut out = Vec::new();
    while let Some(head) = b.get(..12) {
        let id = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default()) as usize;
        if len > MAX_NODE {
            break;
        }
        let Some(rec) = b.get(..12 + len + 8) else {
            break;
        };
        let check = blake3::hash(&rec[..12 + len]);
        if check.as_bytes()[..8] != rec[12 + len..] {
            break;
        }
        let Some(node) = Node::decode(&rec[12..12 + len]) else {
            break;
        };
        if id == 0 {
            break;
        }
        out.push((id, node));
        b = &b[12 + len + 8..];
    }
    (out, total - b.len())
}

impl HandleTable {
    /// A table kept in memory only (ids do not outlive the process).
    pub fn in_memory() -> std::io::Result<HandleTable> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self::with(key, Vec::new(), None))
    }

    /// The table of the state directory `dir` (created if missing): its
    /// key and the ids handed out before.
    pub fn open(dir: &Path) -> std::io::Result<HandleTable> {
        std::fs::create_dir_all(dir)?;
        let key_path = dir.join("handle.key");
        let key = match std::fs::read(&key_path) {
            Ok(k) if k.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&k);
                key
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is damaged (not 32 bytes): remove it (every NFS handle then goes stale)",
                    key_path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                let tmp = dir.join("handle.key.tmp");
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    f.write_all(&key)?;
                    f.sync_all()?;
                }
                std::fs::rename(&tmp, &key_path)?;
                key
            }
            Err(e) => return Err(e),
        };
        let log_path = dir.join("handles.log");
        let mut bytes = Vec::new();
        match File::open(&log_path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (records, valid) = parse_log(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                log = %log_path.display(),
                kept = valid,
                dropped = bytes.len() - valid,
                "nfs handle log has a torn or damaged tail; cutting it"
            );
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&log_path)?;
        f.set_len(valid as u64)?;
        let mut f = f;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0))?;
        Ok(Self::with(key, records, Some(BufWriter::new(f))))
    }

    fn with(key: [u8; 32], records: Vec<(u64, Node)>, log: Option<BufWriter<File>>) -> HandleTable {
        let mut inner = Inner {
            by_id: HashMap::new(),
            by_node: HashMap::new(),
            log,
            dirty: false,
        };
        let root = Arc::new(Node::Root);
        inner.by_id.insert(ROOT_ID, root.clone());
        inner.by_node.insert(root, ROOT_ID);
        for (id, node) in records {
            if inner.by_id.contains_key(&id) {
                continue;
            }
            let node = Arc::new(node);
            inner.by_node.entry(node.clone()).or_insert(id);
            inner.by_id.insert(id, node);
        }
        HandleTable {
            key,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of `node`, handed out now if it has none (call
    /// [`HandleTable::sync`] before the id leaves the server).
    pub fn id(&self, node: Node) -> u64 {
        let mut g = self.lock();
        if let Some(&id) = g.by_node.get(&node) {
            return id;
        }
        let mut id = node.preferred_id();
        while g.by_id.contains_key(&id) {
            id = if id == u64::MAX >> 1 {
                FIRST_ID
            } else {
                id + 1
            };
        }
        let rec = record(id, &node.encode());
        let node = Arc::new(node);
        g.by_id.insert(id, node.clone());
        g.by_node.insert(node, id);
        if let Some(log) = g.log.as_mut() {
            if let Err(e) = log.write_all(&rec) {
                tracing::error!(error = %e, "nfs handle log: write failed");
            }
        }
        g.dirty = true;
        id
    }

    /// Write the ids handed out since the last call to the log.
    pub fn sync(&self) {
        let mut g = self.lock();
        if !g.dirty {
            return;
        }
        g.dirty = false;
        if let Some(log) = g.log.as_mut() {
            if let Err(e) = log.flush() {
                tracing::error!(error = %e, "nfs handle log: write failed");
            }
        }
    }

    /// What `id` names, if this server handed it out.
    pub fn node(&self, id: u64) -> Option<Arc<Node>> {
        self.lock().by_id.get(&id).cloned()
    }

    fn mac(&self, id: u64) -> [u8; 8] {
        let h = blake3::keyed_hash(&self.key, &id.to_le_bytes());
        let mut m = [0u8; 8];
        m.copy_from_slice(&h.as_bytes()[..8]);
        m
    }

    /// The handle of `id`.
    pub fn handle(&self, id: u64) -> Vec<u8> {
        let mut h = Vec::with_capacity(HANDLE_LEN);
        h.extend_from_slice(&id.to_le_bytes());
        h.extend_from_slice(&self.mac(id));
        h
    }

    /// The id of a handle a client sent: `BadHandle` when it is not one
    /// this server (with this key) made, `Stale` when its id is unknown.
    pub fn resolve(&self, handle: &[u8]) -> Result<u64, HandleError> {
        let id = parse_handle(handle)?;
        let mac = handle.get(8..HANDLE_LEN).ok_or(HandleError::BadHandle)?;
        if mac != self.mac(id) {
            return Err(HandleError::BadHandle);
        }
        if !self.lock().by_id.contains_key(&id) {
            return Err(HandleError::Stale);
        }
        Ok(id)
    }
}

/// Why a handle does not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// Not a handle of this server: wrong length, MAC or id 0.
    BadHandle,
    /// A handle of this server whose id it no longer knows.
    Stale,
}

/// The id in a handle's bytes (untrusted), its MAC not checked.
pub fn parse_handle(handle: &[u8]) -> Result<u64, HandleError> {
    if handle.len() != HANDLE_LEN {
        return Err(HandleError::BadHandle);
    }
    let id = u64::from_le_bytes(handle[..8].try_into().map_err(|_| HandleError::BadHandle)?);
    if id == 0 {
        return Err(HandleError::BadHandle);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree(path: &str) -> Node {
        Node::Tree {
            source: "web01".into(),
            snap: SnapshotId([7; 32]),
            path: TreePath::parse(path).unwrap(),
        }
    }

    #[test]
    fn nodes_round_trip_through_their_records() {
        for n in [
            Node::Root,
            Node::Source("a b".into()),
            Node::Latest("x".into()),
            tree(""),
            tree("a/b/c.txt"),
        ] {
            assert_eq!(Node::decode(&n.encode()), Some(n.clone()));
        }
        let mut bad = tree("a").encode();
        bad.push(0);
        assert_eq!(Node::decode(&bad), None, "trailing bytes");
        assert_eq!(Node::decode(&[3, 255, 255, 255, 255]), None);
        assert_eq!(Node::decode(&[]), None);
    }

    #[test]
    fn ids_and_handles_survive_a_restart_and_forgeries_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, h) = {
            let t = HandleTable::open(dir.path()).unwrap();
            let a = t.id(tree("a/b"));
            let b = t.id(Node::Source("web01".into()));
            assert_ne!(a, b);
            assert_eq!(t.id(tree("a/b")), a, "the same node, the same id");
            t.sync();
            (a, b, t.handle(a))
        };
        let t = HandleTable::open(dir.path()).unwrap();
        assert_eq!(t.resolve(&h), Ok(a));
        assert_eq!(*t.node(a).unwrap(), tree("a/b"));
        assert_eq!(*t.node(b).unwrap(), Node::Source("web01".into()));
        assert_eq!(t.id(tree("a/b")), a);
        assert_eq!(t.resolve(&t.handle(ROOT_ID)), Ok(ROOT_ID));

        let mut forged = h.clone();
        forged[9] ^= 1;
        assert_eq!(t.resolve(&forged), Err(HandleError::BadHandle));
        assert_eq!(t.resolve(&h[..8]), Err(HandleError::BadHandle));
        assert_eq!(t.resolve(&[]), Err(HandleError::BadHandle));
        // Well formed (right MAC), never handed out: stale.
        assert_eq!(t.resolve(&t.handle(12345)), Err(HandleError::Stale));
        // Another server's key: not ours.
        let other = HandleTable::in_memory().unwrap();
        assert_eq!(t.resolve(&other.handle(a)), Err(HandleError::BadHandle));
    }

    #[test]
    fn a_torn_log_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let t = HandleTable::open(dir.path()).unwrap();
            let a = t.id(tree("a"));
            let b = t.id(tree("b"));
            t.sync();
            (a, b)
        };
        let log = dir.path().join("handles.log");
        let len = std::fs::metadata(&log).unwrap().len();
        let f = OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let t = HandleTable::open(dir.path()).unwrap();
        assert_eq!(*t.node(a).unwrap(), tree("a"));
        assert!(t.node(b).is_none(), "the torn record is gone");
        let c = t.id(tree("c"));
        t.sync();
        drop(t);
        let t = HandleTable::open(dir.path()).unwrap();
        assert_eq!(*t.node(c).unwrap(), tree("c"), "appended after the cut");
        assert_eq!(t.id(tree("b")), b, "b gets its preferred id again");
    }

    #[test]
    fn colliding_ids_probe_to_the_next_free_one() {
        let t = HandleTable::in_memory().unwrap();
        let a = t.id(tree("a"));
        // Pretend another node took a's preferred id first.
        let t2 = HandleTable::with([0; 32], vec![(a, tree("zzz"))], None);
        let a2 = t2.id(tree("a"));
        assert_eq!(a2, a + 1);
        assert_eq!(*t2.node(a).unwrap(), tree("zzz"));
    }
}
