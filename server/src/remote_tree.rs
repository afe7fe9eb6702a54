//! The file tree of a restore point held by a remote node, read through
//! that node: a [`FileTree`] whose operations are file queries
//! (docs/node-protocol.md: stat, list, read, read a link) sent through the
//! broker ([`crate::queries`]) and answered by the node from the tree it
//! keeps open. Downloads and the S3 gateway read it as they read the
//! server's own restore points.
//!
//! - Errors are the tree's: the node's answer keeps the kind (not found,
//!   not a directory...); a node that is offline, not answering or too
//!   slow is [`TreeError::Unavailable`] (HTTP 503, S3
//!   `ServiceUnavailable`), within the broker's limits (5 s to take a
//!   query, 30 s to answer it): never a hang.
//! - A directory is listed a page ([`LIST_PAGE`] entries) per query; the
//!   entries of the last few directories listed are remembered, so that
//!   an archive opening each file it lists asks only for the bytes.
//! - A file is read in pieces of [`PIECE`] bytes. A reader that goes
//!   forward (a download, an archive, S3) has the next [`AHEAD`] pieces
//!   asked for before it needs them, so a large file streams at the
//!   node's pace rather than one round trip per piece; a reader that
//!   jumps (ranges) has nothing read ahead. Read-ahead queries take at
//!   most half of a node's open queries ([`Queries::send`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arca_catalog::NodeId;
use arca_frontends::tree::{Attr, Entry, FileReader, FileTree, Kind, Result, TreeError, TreePath};
use arca_model::RestorePointId;
use arca_node::files::attr_from_query;
use arca_proto::query::{
    Answer, FileRef, ListQuery, Query, QueryErrorCode, ReadQuery, LIST_MAX_LIMIT, READ_MAX_LENGTH,
};

use crate::queries::{AskError, Asked, Queries};

/// Bytes of a file one read query asks for.
pub const PIECE: u64 = READ_MAX_LENGTH as u64;
/// Pieces asked for ahead of a reader that goes forward.
pub const AHEAD: u64 = 4;
/// Entries of a directory one list query asks for.
pub const LIST_PAGE: u32 = 1000;

/// A restore point's tree on a remote node.
pub struct RemoteTree {
    queries: Arc<Queries>,
    node: NodeId,
    /// The node's name, for messages.
    name: String,
    /// The catalog's name of the datastore.
    datastore: String,
    rp: RestorePointId,
    /// The last path stat'ed (a restore point never changes): opening a
    /// file just stat'ed asks nothing more.
    last_stat: Mutex<Option<(TreePath, Attr)>>,
    /// What the last directories listed hold (at most [`LISTED_DIRS`],
    /// newest first): an archive opens each file it lists, and needs no
    /// stat query for it.
    listed: Mutex<VecDeque<(TreePath, Listed)>>,
}

/// The entries listed of one directory, by name.
type Listed = HashMap<Vec<u8>, Attr>;

/// Directories whose listed entries a tree remembers.
const LISTED_DIRS: usize = 4;
/// Entries remembered of one directory.
const LISTED_MAX: usize = 10_000;

impl RemoteTree {
    /// The tree of `rp` in `datastore` (the catalog's name) on `node`.
    pub fn new(
        queries: Arc<Queries>,
        node: NodeId,
        name: &str,
        datastore: &str,
        rp: RestorePointId,
    ) -> RemoteTree {
        RemoteTree {
            queries,
            node,
            name: name.to_string(),
            datastore: datastore.to_string(),
            rp,
            last_stat: Mutex::new(None),
            listed: Mutex::new(VecDeque::new()),
        }
    }

    /// Remember the entries of `dir` just listed.
    fn remember(&self, dir: &TreePath, entries: &[(Vec<u8>, Attr)]) {
        let mut l = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = match l.iter().position(|(d, _)| d == dir) {
            Some(i) => l.remove(i).map(|(_, m)| m).unwrap_or_default(),
            None => HashMap::new(),
        };
        if map.len() + entries.len() > LISTED_MAX {
            map.clear();
        }
        map.extend(entries.iter().cloned());
        l.push_front((dir.clone(), map));
        l.truncate(LISTED_DIRS);
    }

    /// What a listing said of `path`, if it was listed lately.
    fn listed(&self, path: &TreePath) -> Option<Attr> {
        let name = path.name()?;
        let dir = path.parent();
        let l = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        l.iter()
            .find(|(d, _)| *d == dir)
            .and_then(|(_, m)| m.get(name).cloned())
    }

    fn file(&self, path: &TreePath) -> FileRef {
        FileRef {
            restore_point: self.rp,
            datastore: self.datastore.clone(),
            path: path_bytes(path),
        }
    }

    /// Send `q` (ahead: as read-ahead).
    fn send(&self, q: Query, ahead: bool) -> Result<Asked> {
        self.queries
            .send(self.node, &self.name, q, ahead)
            .map_err(|e| self.error(e))
    }

    fn ask(&self, q: Query) -> Result<Answer> {
        self.send(q, false)?.wait().map_err(|e| self.error(e))
    }

    /// Why a query got no answer, as the tree's error.
    fn error(&self, e: AskError) -> TreeError {
        match e {
            AskError::Unavailable(m) | AskError::Timeout(m) => TreeError::Unavailable(m),
            AskError::Failed(e) => match e.code {
                QueryErrorCode::Invalid => TreeError::Invalid(e.message),
                QueryErrorCode::NotFound => TreeError::NotFound(e.message),
                QueryErrorCode::NotADirectory => TreeError::NotADirectory(e.message),
                QueryErrorCode::IsADirectory => TreeError::IsADirectory(e.message),
                QueryErrorCode::WrongKind | QueryErrorCode::Conflict => {
                    TreeError::WrongKind(e.message)
                }
                QueryErrorCode::Internal => {
                    TreeError::Io(format!("node {:?}: {}", self.name, e.message))
                }
            },
        }
    }

    /// An answer of another kind than the query's (the broker refuses
    /// those, so this is a bug).
    fn wrong(&self, a: &Answer) -> TreeError {
        TreeError::Io(format!(
            "node {:?} answered with a {} answer",
            self.name,
            a.kind()
        ))
    }

    fn attr(&self, a: &arca_proto::query::FileAttr) -> Result<Attr> {
        attr_from_query(a)
            .ok_or_else(|| TreeError::Io(format!("node {:?} answered an unknown kind", self.name)))
    }
}

/// A path as the protocol carries it: '/'-separated raw bytes.
fn path_bytes(p: &TreePath) -> Vec<u8> {
    p.components().join(&b'/')
}

impl FileTree for RemoteTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        if let Some((p, a)) = &*self.last_stat.lock().unwrap_or_else(|e| e.into_inner()) {
            if p == path {
                return Ok(a.clone());
            }
        }
        if let Some(a) = self.listed(path) {
            return Ok(a);
        }
        let attr = match self.ask(Query::Stat(self.file(path)))? {
            Answer::Stat(a) => self.attr(&a)?,
            a => return Err(self.wrong(&a)),
        };
        *self.last_stat.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((path.clone(), attr.clone()));
        Ok(attr)
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let mut at = start;
        loop {
            let q = Query::List(ListQuery {
                dir: self.file(path),
                start: at,
                limit: LIST_PAGE.min(LIST_MAX_LIMIT),
            });
            let page = match self.ask(q)? {
                Answer::List(p) => p,
                a => return Err(self.wrong(&a)),
            };
            if page.entries.len() > LIST_PAGE as usize {
                return Err(TreeError::Io(format!(
                    "node {:?} answered {} entries for a page of {LIST_PAGE}",
                    self.name,
                    page.entries.len()
                )));
            }
            let n = page.entries.len() as u64;
            let entries = page
                .entries
                .into_iter()
                .map(|e| Ok((e.name, self.attr(&e.attr)?)))
                .collect::<Result<Vec<_>>>()?;
            self.remember(path, &entries);
            for (name, attr) in entries {
                if !f(Entry { name, attr }) {
                    return Ok(());
                }
            }
            if page.end {
                return Ok(());
            }
            if n == 0 {
                return Err(TreeError::Io(format!(
                    "node {:?} answered an empty page that is not the last",
                    self.name
                )));
            }
            at += n;
        }
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        let attr = self.stat(path)?;
        match attr.kind {
            Kind::File => {}
            Kind::Dir => return Err(TreeError::IsADirectory(format!("{path} is a directory"))),
            _ => {
                return Err(TreeError::WrongKind(format!(
                    "{path} is not a regular file"
                )))
            }
        }
        Ok(Arc::new(RemoteFile {
            tree: RemoteTree::new(
                self.queries.clone(),
                self.node,
                &self.name,
                &self.datastore,
                self.rp,
            ),
            file: self.file(path),
            size: attr.size,
            state: Mutex::new(ReadState::default()),
        }))
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        match self.ask(Query::ReadLink(self.file(path)))? {
            Answer::ReadLink(t) => Ok(t),
            a => Err(self.wrong(&a)),
        }
    }
}

/// A file of a remote tree, read in pieces with read-ahead.
struct RemoteFile {
    tree: RemoteTree,
    file: FileRef,
    size: u64,
    state: Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    /// Pieces asked for ahead, in order: (piece number, query).
    ahead: VecDeque<(u64, Asked)>,
    /// The last piece received (a reader's next read often starts in it).
    last: Option<(u64, Arc<Vec<u8>>)>,
    /// Where the previous read ended: a read starting there goes forward.
    next: Option<u64>,
}

impl RemoteFile {
    /// The bytes of piece `i` (all of them but at the end of the file).
    fn piece(&self, i: u64, forward: bool) -> Result<Arc<Vec<u8>>> {
        let asked = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((n, data)) = &st.last {
                if *n == i {
                    return Ok(data.clone());
                }
            }
            // Pieces before this one are no longer wanted (dropping a
            // query gives it up).
            while st.ahead.front().is_some_and(|(n, _)| *n < i) {
                st.ahead.pop_front();
            }
            let asked = match st.ahead.front() {
                Some((n, _)) if *n == i => st.ahead.pop_front().map(|(_, a)| a),
                _ => {
                    st.ahead.clear();
                    None
                }
            };
            let asked = match asked {
                Some(a) => a,
                None => self.tree.send(Query::Read(self.read_query(i)), false)?,
            };
            if forward {
                // Keep AHEAD pieces asked for beyond this one.
                let pieces = self.size.div_ceil(PIECE);
                let mut n = st.ahead.back().map_or(i + 1, |(n, _)| n + 1);
                while n <= i + AHEAD && n < pieces {
                    match self.tree.send(Query::Read(self.read_query(n)), true) {
                        Ok(a) => st.ahead.push_back((n, a)),
                        // The node is busy: read ahead later.
                        Err(_) => break,
                    }
                    n += 1;
                }
            } else {
                st.ahead.clear();
            }
            asked
        };
        let data = match asked.wait().map_err(|e| self.tree.error(e))? {
            Answer::Read(d) => d,
            a => return Err(self.tree.wrong(&a)),
        };
        let want = PIECE.min(self.size - i * PIECE) as usize;
        if data.len() != want {
            return Err(TreeError::Io(format!(
                "node {:?} read {} bytes of {} at offset {} of {} ({} bytes long)",
                self.tree.name,
                data.len(),
                want,
                i * PIECE,
                String::from_utf8_lossy(&self.file.path),
                self.size
            )));
        }
        let data = Arc::new(data);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.last = Some((i, data.clone()));
        Ok(data)
    }

    fn read_query(&self, i: u64) -> ReadQuery {
        ReadQuery {
            file: self.file.clone(),
            offset: i * PIECE,
            length: PIECE.min(self.size - i * PIECE) as u32,
        }
    }
}

impl FileReader for RemoteFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        let forward = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            // A reader going on where it stopped, or starting at the
            // beginning with a large buffer.
            st.next == Some(offset) || (offset == 0 && want as u64 >= PIECE / 2)
        };
        let mut done = 0;
        while done < want {
            let at = offset + done as u64;
            let i = at / PIECE;
            let data = self.piece(i, forward)?;
            let from = (at - i * PIECE) as usize;
            let n = (data.len() - from).min(want - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        self.state.lock().unwrap_or_else(|e| e.into_inner()).next = Some(offset + done as u64);
        Ok(done)
    }
}

#[cfg(test)]
mod tests;
