//! Finding files across restore points:
//! `GET /api/v1/restore-points/search` (and `arca find --json`, which
//! prints the same [`SearchResult`] for a local datastore).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TreeEntryKind;
use crate::RestorePointId;

/// Largest `limit` of a search.
pub const SEARCH_MAX_LIMIT: u32 = 10_000;
/// `limit` of a search when the query gives none.
pub const SEARCH_DEFAULT_LIMIT: u32 = 1000;

/// Query of `GET /api/v1/restore-points/search`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A glob: without '/', matched against each entry's name
    /// ("*.conf"); with '/', against its whole path relative to the
    /// restore point's root ("etc/*.conf", "home/**/*.pdf").
    #[serde(default)]
    pub pattern: Option<String>,
    /// Only the restore points of this source (its name).
    #[serde(default)]
    pub source: Option<String>,
    /// Only restore points taken at or after this time.
    #[serde(default)]
    pub since: Option<i64>,
    /// Only restore points taken at or before this time.
    #[serde(default)]
    pub until: Option<i64>,
    /// At most this many matches, 1..=10000 (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Compare names in lower case.
    #[serde(default)]
    pub ignore_case: bool,
    /// Search inside image restore points too: the file systems of their
    /// partitions (it reads every image's file-system metadata); without
    /// it, images are listed in `skipped`.
    #[serde(default)]
    pub images: bool,
}

/// Why an image restore point was not searched (`skipped`) when the
/// search was not asked to read images.
pub const IMAGES_NOT_SEARCHED: &str = "an image restore point: the file systems inside images are searched only when asked (arca find --images; API: images=true), since that reads every image's file-system metadata";

/// One entry that matches, in one restore point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchMatch {
    pub restore_point: RestorePointId,
    /// When the restore point was taken.
    pub time: i64,
    /// The restore point's source (its name).
    pub source: String,
    /// Relative to the restore point's root, '/'-separated, no leading '/'.
    pub path: String,
    pub kind: TreeEntryKind,
    /// Bytes (files; 0 or the target's length for the others).
    pub size: u64,
    /// Modification time.
    pub mtime: i64,
}

/// A restore point that was not searched, and why (an image, a
/// datastore of a remote node, a snapshot the datastore no longer holds
/// or cannot read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchSkipped {
    pub restore_point: RestorePointId,
    pub reason: String,
}

/// The answer of a search: the matches, newest restore point first and
/// depth first in name order within one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    /// True when `limit` cut the list: there are more matches.
    pub truncated: bool,
    /// How many restore points were searched (to the end, or until the
    /// limit was reached).
    pub searched: u64,
    pub skipped: Vec<SearchSkipped>,
}
