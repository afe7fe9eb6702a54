//! Browsing restore points: the web crate does not open datastores
//! itself; the server gives it a [`Browse`] that does (its embedded
//! node's), held in [`crate::AppState::browse`]. It lists one restore
//! point's tree (`GET /api/v1/restore-points/{id}/tree`) and finds
//! entries across restore points (`GET /api/v1/restore-points/search`).

use std::sync::Arc;

use arca_catalog as catalog;
use arca_frontends::tree::{FileTree, TreeError};
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};

/// Why a restore point's tree cannot be listed; each maps to one status.
#[derive(Debug)]
pub enum BrowseError {
    /// 400: a path that is not acceptable (`..`).
    Invalid(String),
    /// 404: no such path in the restore point.
    NotFound(String),
    /// 409: an image restore point...
    Conflict(String),
    /// 500: reading the datastore failed.
    Internal(String),
    /// 503: the node that owns the datastore is offline or not answering.
    Unavailable(String),
    /// 504: that node took the request but did not answer in time.
    Timeout(String),
}

impl std::fmt::Display for BrowseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrowseError::Invalid(m)
            | BrowseError::NotFound(m)
            | BrowseError::Conflict(m)
            | BrowseError::Internal(m)
            | BrowseError::Unavailable(m)
            | BrowseError::Timeout(m) => f.write_str(m),
        }
    }
}

impl From<BrowseError> for crate::ApiError {
    fn from(e: BrowseError) -> Self {
        match e {
            BrowseError::Invalid(m) => crate::ApiError::bad_request(m),
            BrowseError::NotFound(m) => crate::ApiError::not_found(m),
            BrowseError::Conflict(m) => crate::ApiError::conflict(m),
            BrowseError::Internal(m) => crate::ApiError::internal(m),
            BrowseError::Unavailable(m) => crate::ApiError::unavailable(m),
            BrowseError::Timeout(m) => crate::ApiError::gateway_timeout(m),
        }
    }
}

/// Lists the tree of a restore point in a datastore, and searches
/// restore points. Called on the blocking pool: it may read the
/// datastore.
pub trait Browse: Send + Sync {
    /// One page of the entries below `path` (relative to the restore
    /// point's root): one level, or everything below when `recursive`.
    fn tree(
        &self,
        datastore: &catalog::Datastore,
        rp: RestorePointId,
        path: &str,
        recursive: bool,
        offset: u64,
        limit: u32,
    ) -> Result<api::TreePage, BrowseError>;

    /// The entries matching `pattern` in the tree restore points
    /// `restore_points` of `datastore`, searched in the order given
    /// (newest first), at most `limit` (`truncated` when there are more),
    /// each match with the restore point's time and source as its
    /// snapshot records them. A restore point that cannot be searched
    /// (an image, one the datastore no longer holds, one whose trees
    /// cannot be read) is in `skipped` with the reason, and the others
    /// are searched all the same. An error is for the whole datastore (a
    /// remote node that is offline or not answering: 503, or answers too
    /// late: 504; one that cannot be opened: 500); the caller then lists
    /// its restore points as skipped with the error's message.
    fn find(
        &self,
        datastore: &catalog::Datastore,
        restore_points: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
        images: bool,
    ) -> Result<api::SearchResult, BrowseError>;

    /// The read-only file tree of restore point `rp` (files inside disk
    /// images too), for downloads, S3 and NFS. Opened trees are kept
    /// (see [`arca_frontends::tree::Trees`]), so calling this per request
    /// is cheap. A restore point the datastore no longer holds is
    /// `NotFound`. One on a remote node's datastore is read through that
    /// node (each operation a query): `Unavailable` at once when the node
    /// is offline, and the tree's operations fail with
    /// [`TreeError::Unavailable`] when it stops answering.
    fn file_tree(
        &self,
        datastore: &catalog::Datastore,
        rp: RestorePointId,
    ) -> Result<Arc<dyn FileTree>, BrowseError>;
}

/// The status a tree error answers with: 400 for a bad path, 404 for a
/// missing one, 409 for a path of the wrong kind, 500 for data that
/// cannot be read (damage: not the client's input), 503 for a remote
/// node that is offline or not answering.
pub fn tree_error(e: TreeError) -> BrowseError {
    match e {
        TreeError::Invalid(m) => BrowseError::Invalid(m),
        TreeError::NotFound(m) => BrowseError::NotFound(m),
        TreeError::NotADirectory(m) | TreeError::IsADirectory(m) | TreeError::WrongKind(m) => {
            BrowseError::Conflict(m)
        }
        TreeError::Io(m) => BrowseError::Internal(m),
        TreeError::Unavailable(m) => BrowseError::Unavailable(m),
    }
}
