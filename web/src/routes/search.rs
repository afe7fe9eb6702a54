//! `GET /api/v1/restore-points/search`: which restore points hold an
//! entry matching a pattern, and where (`arca find` through a server).
//!
//! The restore points searched are those `GET /api/v1/restore-points`
//! lists for the caller (the projects it may read, `source`, `since`,
//! `until`), newest first. They are searched a datastore at a time
//! through [`crate::browse::Browse::find`] (one call per datastore, so
//! that one datastore's unchanged trees are read once), and the matches
//! of all datastores are put back in newest-first order. A restore point
//! that cannot be searched is listed in `skipped` with the reason; it
//! never fails the whole search.

use std::collections::HashMap;

use arca_catalog::{self as catalog, DatastoreId};
use arca_model::api;
use arca_model::search::Pattern;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Restore points read from the catalog per query.
const PAGE: i64 = 10_000;

pub async fn search(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::SearchQuery>, QueryRejection>,
) -> ApiResult<Json<api::SearchResult>> {
    let Query(q) = q?;
    let text = q.pattern.as_deref().unwrap_or_default();
    let pattern = Pattern::new(text, q.ignore_case).map_err(|e| ApiError::bad_request(e.0))?;
    let limit = q.limit.unwrap_or(api::SEARCH_DEFAULT_LIMIT);
    if !(1..=api::SEARCH_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            api::SEARCH_MAX_LIMIT
        )));
    }
    if let (Some(a), Some(b)) = (q.since, q.until) {
        if a > b {
            return Err(ApiError::bad_request("since is after until"));
        }
    }
    s.call(move |s| {
        let b = s
            .browse
            .clone()
            .ok_or_else(|| ApiError::conflict("this server cannot browse restore points"))?;
        let mut f = catalog::RestorePointFilter {
            source: q.source,
            project_ids: p.projects(Action::Read),
            kind: None,
            since: q.since,
            until: q.until,
            limit: PAGE,
            offset: 0,
        };
        let mut rps = Vec::new();
        loop {
            let page = s.catalog.restore_points(&f)?;
            let n = page.len() as i64;
            rps.extend(page);
            if n < PAGE {
                break;
            }
            f.offset += PAGE;
        }
        Ok(Json(search_all(
            s,
            b.as_ref(),
            &rps,
            &pattern,
            limit,
            q.images,
        )))
    })
    .await
}

/// Search `rps` (newest first) a datastore at a time and merge.
fn search_all(
    s: &AppState,
    b: &dyn crate::browse::Browse,
    rps: &[catalog::RestorePoint],
    pattern: &Pattern,
    limit: u32,
    images: bool,
) -> api::SearchResult {
    let mut out = api::SearchResult::default();
    let skip = |out: &mut api::SearchResult, rp: &catalog::RestorePoint, reason: String| {
        out.skipped.push(api::SearchSkipped {
            restore_point: rp.id,
            reason,
        })
    };
    // Datastores in the order of their newest restore point.
    let mut groups: Vec<(DatastoreId, Vec<&catalog::RestorePoint>)> = Vec::new();
    for rp in rps {
        if rp.kind.has_disks() && !images {
            skip(&mut out, rp, arca_model::api::IMAGES_NOT_SEARCHED.into());
            continue;
        }
        match groups.iter_mut().find(|(d, _)| *d == rp.datastore_id) {
            Some((_, g)) => g.push(rp),
            None => groups.push((rp.datastore_id, vec![rp])),
        }
    }
    for (ds, group) in groups {
        let found = s
            .catalog
            .datastore(ds)
            .map_err(|e| e.to_string())
            .and_then(|d| {
                let ids: Vec<_> = group.iter().map(|rp| rp.id).collect();
                b.find(&d, &ids, pattern, limit, images)
                    .map_err(|e| e.to_string())
            });
        match found {
            Ok(r) => {
                out.matches.extend(r.matches);
                out.truncated |= r.truncated;
                out.searched += r.searched;
                out.skipped.extend(r.skipped);
            }
            Err(e) => group.iter().for_each(|rp| skip(&mut out, rp, e.clone())),
        }
    }
    // Newest first, as the catalog lists them, and within one restore
    // point in the order found (the sort is stable); time and source as
    // the catalog has them.
    let at: HashMap<_, _> = rps.iter().enumerate().map(|(i, rp)| (rp.id, i)).collect();
    out.matches.retain(|m| at.contains_key(&m.restore_point));
    out.matches
        .sort_by_key(|m| at.get(&m.restore_point).copied());
    if out.matches.len() > limit as usize {
        out.matches.truncate(limit as usize);
        out.truncated = true;
    }
    for m in &mut out.matches {
        if let Some(rp) = at.get(&m.restore_point).and_then(|&i| rps.get(i)) {
            m.time = rp.time;
            m.source.clone_from(&rp.source_name);
        }
    }
    out
}
