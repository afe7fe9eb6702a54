//! Server → node queries, independent of the transport: what the server
//! asks the node that owns a datastore ([`Query`]) and what the node
//! answers ([`Answer`] or a [`QueryError`]). Nodes dial the server, so a
//! query travels as the reply of the node's long-polled `WatchQueries`
//! call, and its answer as an `Answer` call (docs/node-protocol.md).
//!
//! A new kind of query is one more variant in [`Query`] and in [`Answer`]
//! (and in the protocol's oneofs), and one more handler on the node.

use arca_model::{api, RestorePointId};

/// What a query asks (one variant per kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// A page of a tree restore point's entries.
    Tree(TreeQuery),
    /// A search of restore points in one datastore.
    Find(FindQuery),
    /// What a path of a restore point's file tree is.
    Stat(FileRef),
    /// A page of a directory of a restore point's file tree.
    List(ListQuery),
    /// Bytes of a file of a restore point's file tree.
    Read(ReadQuery),
    /// A symlink's target in a restore point's file tree.
    ReadLink(FileRef),
}

impl Query {
    /// The kind: an answer must be of the same kind.
    pub fn kind(&self) -> QueryKind {
        match self {
            Query::Tree(_) => QueryKind::Tree,
            Query::Find(_) => QueryKind::Find,
            Query::Stat(_) => QueryKind::Stat,
            Query::List(_) => QueryKind::List,
            Query::Read(_) => QueryKind::Read,
            Query::ReadLink(_) => QueryKind::ReadLink,
        }
    }
}

/// The kind of a query or of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// [`Query::Tree`], [`Answer::Tree`].
    Tree,
    /// [`Query::Find`], [`Answer::Find`].
    Find,
    /// [`Query::Stat`], [`Answer::Stat`].
    Stat,
    /// [`Query::List`], [`Answer::List`].
    List,
    /// [`Query::Read`], [`Answer::Read`].
    Read,
    /// [`Query::ReadLink`], [`Answer::ReadLink`].
    ReadLink,
}

impl std::fmt::Display for QueryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryKind::Tree => "tree",
            QueryKind::Find => "find",
            QueryKind::Stat => "stat",
            QueryKind::List => "list",
            QueryKind::Read => "read",
            QueryKind::ReadLink => "read-link",
        })
    }
}

/// `GET /api/v1/restore-points/{id}/tree` on a node's datastore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeQuery {
    pub restore_point: RestorePointId,
    /// The catalog's name of the datastore (`<node>/<name>`): the node
    /// reads only its own datastores, found by this name.
    pub datastore: String,
    /// Relative to the restore point's root.
    pub path: String,
    pub recursive: bool,
    pub offset: u64,
    pub limit: u32,
}

/// Most restore points in one [`FindQuery`], and most skipped restore
/// points in its answer: the server asks about more in several queries.
pub const FIND_MAX_RESTORE_POINTS: usize = 10_000;

/// `GET /api/v1/restore-points/search` over a node's datastore: the
/// matches of a pattern in some of its restore points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindQuery {
    /// The catalog's name of the datastore (`<node>/<name>`).
    pub datastore: String,
    /// Searched in this order (newest first); at most
    /// [`FIND_MAX_RESTORE_POINTS`].
    pub restore_points: Vec<RestorePointId>,
    /// The glob as written ([`arca_model::search::Pattern::text`]); the
    /// node compiles it.
    pub pattern: String,
    pub ignore_case: bool,
    /// Most matches answered (`1..=`[`api::SEARCH_MAX_LIMIT`]).
    pub limit: u32,
    /// Search the file systems inside image restore points too.
    pub images: bool,
}

/// A path of a restore point's file tree on a node: the file queries
/// ([`Query::Stat`], [`Query::List`], [`Query::Read`],
/// [`Query::ReadLink`]) read the tree the node keeps open for it
/// (`arca_frontends::tree::Trees`), as the server reads its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub restore_point: RestorePointId,
    /// The catalog's name of the datastore (`<node>/<name>`).
    pub datastore: String,
    /// '/'-separated, relative to the root; raw bytes (names need not be
    /// UTF-8). The node parses it with the tree's rules (no `..`).
    pub path: Vec<u8>,
}

/// Most entries in one [`ListQuery`]'s answer.
pub const LIST_MAX_LIMIT: u32 = 10_000;
/// Most bytes one [`ReadQuery`] asks for.
pub const READ_MAX_LENGTH: u32 = 1 << 20;

/// The entries of a directory from the `start`th on, at most `limit`
/// (`1..=`[`LIST_MAX_LIMIT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub dir: FileRef,
    pub start: u64,
    pub limit: u32,
}

/// Up to `length` bytes (`1..=`[`READ_MAX_LENGTH`]) of a file from
/// `offset`; fewer only at the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadQuery {
    pub file: FileRef,
    pub offset: u64,
    pub length: u32,
}

/// What a stat says: `arca_frontends::tree::Attr`, with the entry's kind
/// as the API names it (never [`api::TreeEntryKind::Other`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAttr {
    pub kind: api::TreeEntryKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime_ns: i64,
    pub atime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub rdev: u64,
}

/// One entry of a directory: its name (one component, raw bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub attr: FileAttr,
}

/// A page of a directory's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirPage {
    pub entries: Vec<DirEntry>,
    /// No entries after these.
    pub end: bool,
}

/// A node's answer to a query that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To [`Query::Tree`].
    Tree(api::TreePage),
    /// To [`Query::Find`].
    Find(api::SearchResult),
    /// To [`Query::Stat`].
    Stat(FileAttr),
    /// To [`Query::List`].
    List(DirPage),
    /// To [`Query::Read`]: the bytes read.
    Read(Vec<u8>),
    /// To [`Query::ReadLink`]: the target.
    ReadLink(Vec<u8>),
}

impl Answer {
    /// The kind of query this answers.
    pub fn kind(&self) -> QueryKind {
        match self {
            Answer::Tree(_) => QueryKind::Tree,
            Answer::Find(_) => QueryKind::Find,
            Answer::Stat(_) => QueryKind::Stat,
            Answer::List(_) => QueryKind::List,
            Answer::Read(_) => QueryKind::Read,
            Answer::ReadLink(_) => QueryKind::ReadLink,
        }
    }
}

/// What a node answers: the answer, or why there is none.
pub type Reply = Result<Answer, QueryError>;

/// Why a query has no answer: the REST API's 400, 404, 409 or 500.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryErrorCode {
    /// A query the node refuses (a bad path, a bad limit).
    Invalid,
    /// No such restore point, path or datastore on the node.
    NotFound,
    /// It cannot be done to this restore point (an image).
    Conflict,
    /// Reading the datastore failed.
    Internal,
    /// File queries: a component before the last, or a listed path, is
    /// not a directory.
    NotADirectory,
    /// File queries: a path that must be a file is a directory.
    IsADirectory,
    /// File queries: the path is of another kind than the operation
    /// needs (reading a symlink's target of a file).
    WrongKind,
}

/// Why a query has no answer, with a message for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub code: QueryErrorCode,
    pub message: String,
}

impl QueryError {
    /// An error of `code` saying `message`.
    pub fn new(code: QueryErrorCode, message: impl Into<String>) -> QueryError {
        QueryError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}
