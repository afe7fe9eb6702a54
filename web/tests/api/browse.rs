//! `GET /api/v1/restore-points/{id}/tree`: paging, bad input and the
//! restore points that cannot be browsed, against a [`Fake`] datastore.

use arca_catalog::{self as catalog, DatastoreId, ProjectId, RestorePoint, SourceKind};
use arca_model::search::Pattern;
use arca_model::{api, RestorePointId};
use arca_web::browse::{Browse, BrowseError};
use axum::http::{Method, StatusCode};

use super::{setup, AppState};

/// A restore point holding `dir/` with `a`, `b` and `c` in it (every
/// restore point, for `find`).
pub(crate) struct Fake;

fn entry(path: &str, kind: api::TreeEntryKind) -> api::TreeEntry {
    api::TreeEntry {
        name: path.rsplit('/').next().unwrap_or(path).to_string(),
        path: path.to_string(),
        kind,
        size: 3,
        mode: 0o644,
        mtime: 1_700_000_000,
        uid: 1000,
        gid: 1000,
        link_target: None,
    }
}

impl Browse for Fake {
    fn tree(
        &self,
        _: &catalog::Datastore,
        _: RestorePointId,
        path: &str,
        recursive: bool,
        offset: u64,
        limit: u32,
    ) -> Result<api::TreePage, BrowseError> {
        use api::TreeEntryKind::*;
        let files = ["dir/a", "dir/b", "dir/c"].map(|p| entry(p, File));
        let all: Vec<_> = match (path.trim_matches('/'), recursive) {
            ("", false) => vec![entry("dir", Dir)],
            ("", true) => std::iter::once(entry("dir", Dir)).chain(files).collect(),
            ("dir", _) => files.to_vec(),
            (p, _) => return Err(BrowseError::NotFound(format!("no path {p:?}"))),
        };
        let rest: Vec<_> = all.into_iter().skip(offset as usize).collect();
        let more = rest.len() > limit as usize;
        Ok(api::TreePage {
            path: path.trim_matches('/').to_string(),
            next_offset: more.then_some(offset + u64::from(limit)),
            entries: rest.into_iter().take(limit as usize).collect(),
        })
    }

    /// Every restore point holds the same four entries (images are
    /// skipped before this is called).
    fn find(
        &self,
        _: &catalog::Datastore,
        rps: &[RestorePointId],
        pattern: &Pattern,
        limit: u32,
        _images: bool,
    ) -> Result<api::SearchResult, BrowseError> {
        let mut out = api::SearchResult::default();
        for rp in rps {
            out.searched += 1;
            for (dir, name) in [("", "dir"), ("dir", "a"), ("dir", "b"), ("dir", "c")] {
                if !pattern.matches(dir, name) {
                    continue;
                }
                if out.matches.len() == limit as usize {
                    out.truncated = true;
                    return Ok(out);
                }
                let path = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                let e = entry(&path, api::TreeEntryKind::File);
                out.matches.push(api::SearchMatch {
                    restore_point: *rp,
                    time: 0,
                    source: String::new(),
                    path: e.path,
                    kind: e.kind,
                    size: e.size,
                    mtime: e.mtime,
                });
            }
        }
        Ok(out)
    }

    /// Every restore point's files are [`super::download::MemTree::sample`].
    fn file_tree(
        &self,
        _: &catalog::Datastore,
        rp: RestorePointId,
    ) -> Result<std::sync::Arc<dyn arca_frontends::tree::FileTree>, BrowseError> {
        let _ = rp;
        Ok(std::sync::Arc::new(super::download::MemTree::sample()))
    }
}

pub(crate) fn add(c: &catalog::Catalog, first: &str, kind: SourceKind) -> String {
    let id = format!("{first}{}", "e".repeat(62));
    c.add_restore_point(&RestorePoint {
        id: id.parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_name: "tree".into(),
        project_id: ProjectId(1),
        kind,
        time: 1,
        ..Default::default()
    })
    .unwrap();
    id
}

#[tokio::test]
async fn a_tree_is_listed_a_page_at_a_time() {
    let t = setup();
    let a = Some(t.admin.as_str());
    add(&t.state.catalog, "01", SourceKind::Files);
    // By unique prefix, the root one level.
    let (s, v) = t
        .call(Method::GET, "/api/v1/restore-points/01ee/tree", a, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["path"], "");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["kind"], "dir");
    assert_eq!(v["entries"][0]["mode"], 0o644);
    assert_eq!(v["entries"][0]["link_target"], serde_json::Value::Null);
    assert_eq!(v["next_offset"], serde_json::Value::Null);
    // Recursive, two at a time: each page, and where the next starts.
    let base = "/api/v1/restore-points/01ee/tree?path=/&recursive=true&limit=2";
    let mut last = serde_json::Value::Null;
    for (offset, want, next) in [
        (0, ["dir", "dir/a"], serde_json::json!(2)),
        (2, ["dir/b", "dir/c"], serde_json::Value::Null),
    ] {
        let (s, v) = t
            .call(Method::GET, &format!("{base}&offset={offset}"), a, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let paths: Vec<_> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].clone())
            .collect();
        assert_eq!(paths, want, "{v}");
        assert_eq!(v["next_offset"], next, "{v}");
        last = v;
    }
    // The answer is a TreePage.
    let page: api::TreePage = serde_json::from_value(last).unwrap();
    assert_eq!(page.entries[1].kind, api::TreeEntryKind::File);
}

#[tokio::test]
async fn bad_paths_and_limits_are_4xx_never_500() {
    let t = setup();
    let a = Some(t.admin.as_str());
    add(&t.state.catalog, "01", SourceKind::Files);
    let img = add(&t.state.catalog, "02", SourceKind::Image);
    let rp = "/api/v1/restore-points/01ee/tree";
    let cases = [
        (format!("{rp}?path=dir/../../etc"), StatusCode::BAD_REQUEST),
        (format!("{rp}?path=.."), StatusCode::BAD_REQUEST),
        (format!("{rp}?path=a%00b"), StatusCode::BAD_REQUEST),
        (format!("{rp}?limit=0"), StatusCode::BAD_REQUEST),
        (format!("{rp}?limit=10001"), StatusCode::BAD_REQUEST),
        (format!("{rp}?limit=-1"), StatusCode::BAD_REQUEST),
        (format!("{rp}?offset=x"), StatusCode::BAD_REQUEST),
        (format!("{rp}?recursive=maybe"), StatusCode::BAD_REQUEST),
        (format!("{rp}?what=1"), StatusCode::BAD_REQUEST),
        (format!("{rp}?path=nope"), StatusCode::NOT_FOUND),
        (format!("{rp}?path=dir/a/deeper"), StatusCode::NOT_FOUND),
        (
            format!("/api/v1/restore-points/{}/tree", "f".repeat(64)),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/restore-points/xyz/tree".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/restore-points/{img}/tree?path=a/../b"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, want) in cases {
        let (s, v) = t.call(Method::GET, &uri, a, None).await;
        assert_eq!(s, want, "{uri}: {v}");
    }
    // An image restore point is listed through its file tree (by the
    // Browse, here the Fake's entries).
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/api/v1/restore-points/{img}/tree"),
            a,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"][0]["path"], "dir", "{v}");
    // Without a datastore reader, browsing is refused, not a 500.
    let admin = t.admin.clone();
    let mut t = t;
    t.state = AppState::new(t.state.catalog.clone());
    let (s, v) = t.call(Method::GET, rp, Some(&admin), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}
