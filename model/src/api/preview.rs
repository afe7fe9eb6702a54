//! `GET /api/v1/policies/{id}/preview`: what the policy's retention would
//! keep and remove now, per source, computed from the catalog with the
//! datastore's own rule engine (`arca_repo::prune::decide`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{DatastoreId, PolicyId, RestorePointId, SourceId};
use crate::task::Retention;

/// What a prune of every source of a policy would do now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionPreview {
    pub policy_id: PolicyId,
    /// The policy's keep rules (none set: everything is kept).
    pub retention: Retention,
    /// The sources the policy applies to (as the scheduler assigns them),
    /// by name.
    pub sources: Vec<SourcePreview>,
    /// When it was computed.
    pub time: i64,
}

/// One source's restore points in the datastore its backups go to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourcePreview {
    pub source_id: SourceId,
    pub source_name: String,
    /// The datastore retention works in (the policy's, or the one of the
    /// same name on the source's node).
    pub datastore_id: DatastoreId,
    /// How many restore points stay.
    pub kept: u64,
    /// How many a prune would remove.
    pub removed: u64,
    /// Newest first.
    pub restore_points: Vec<RetentionItem>,
}

/// One restore point: kept or removed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionItem {
    pub id: RestorePointId,
    /// When it was taken.
    pub time: i64,
    pub keep: bool,
    /// Why it stays: the rules that keep it (`last 1`, `hourly 2026-11-03
    /// 14:00`, `daily 2026-11-03`, `weekly 2026-W45`, `monthly 2026-11`,
    /// `yearly 2026`; periods in UTC), `protected`, `exported` (a live
    /// export serves it) or `keep all` (the policy has no keep rule).
    /// Empty when it goes.
    pub reasons: Vec<String>,
}
