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
}

impl Query {
    /// The kind: an answer must be of the same kind.
    pub fn kind(&self) -> QueryKind {
        match self {
            Query::Tree(_) => QueryKind::Tree,
            Query::Find(_) => QueryKind::Find,
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
}

impl std::fmt::Display for QueryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryKind::Tree => "tree",
            QueryKind::Find => "find",
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

/// A node's answer to a query that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To [`Query::Tree`].
    Tree(api::TreePage),
    /// To [`Query::Find`].
    Find(api::SearchResult),
}

impl Answer {
    /// The kind of query this answers.
    pub fn kind(&self) -> QueryKind {
        match self {
            Answer::Tree(_) => QueryKind::Tree,
            Answer::Find(_) => QueryKind::Find,
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
