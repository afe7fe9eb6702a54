//! The node's side of server → node queries (docs/node-protocol.md,
//! `WatchQueries` and `Answer`): [`run`] long-polls the server for
//! queries, runs each on the blocking pool ([`execute`]) and answers it.
//! A query reads only this node's own datastores, found by their catalog
//! name; the path on disk is the node's, never the server's.

use std::sync::Arc;
use std::time::Duration;

use arca_model::api;
use arca_model::search::Pattern;
use arca_proto::query::{Answer, FindQuery, Query, QueryError, QueryErrorCode, Reply, TreeQuery};
use arca_proto::{convert, pb, DatastoreRef};
use prost::Message;

use crate::browse::TreeError;
use crate::remote::{status_msg, Client};
use crate::{Runner, Stop};

/// Seconds the server may hold a poll (it holds at most 25).
const WAIT_SECS: i64 = 25;
/// Pause after a failed poll before the next one.
const RETRY: Duration = Duration::from_secs(2);
/// Largest answer sent: the server takes messages up to 4 MiB. A larger
/// tree page is cut short (its `next_offset` says where to go on).
pub const MAX_ANSWER_BYTES: usize = 3 << 20;

/// Poll for queries and answer them until `stop`. Each query runs on its
/// own task, so a slow one holds up neither the poll nor the others; a
/// query still running at the stop is dropped with the runtime (the
/// server's request then fails, it does not hang the node).
pub async fn run(client: Client, mine: Arc<Vec<DatastoreRef>>, runner: Arc<Runner>, stop: Stop) {
    loop {
        let mut c = client.clone();
        let poll = c.watch_queries(pb::WatchQueriesRequest {
            wait_seconds: WAIT_SECS,
        });
        let r = tokio::select! {
            _ = stop.stopped() => return,
            r = poll => r,
        };
        match r {
            Ok(reply) => {
                for q in reply.into_inner().queries {
                    tokio::spawn(handle(client.clone(), mine.clone(), runner.clone(), q));
                }
            }
            Err(s) => {
                tracing::warn!(error = %status_msg(s), "fetching queries");
                tokio::select! {
                    _ = stop.stopped() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

/// Run one query and send its answer.
async fn handle(client: Client, mine: Arc<Vec<DatastoreRef>>, runner: Arc<Runner>, q: pb::Query) {
    let (id, q) = convert::query_from_pb(q);
    let reply = match q {
        Ok(q) => tokio::task::spawn_blocking(move || execute(&runner, &mine, q))
            .await
            .unwrap_or_else(|e| {
                Err(QueryError::new(
                    QueryErrorCode::Internal,
                    format!("the query failed: {e}"),
                ))
            }),
        Err(e) => Err(QueryError::new(QueryErrorCode::Invalid, e)),
    };
    let mut c = client;
    if let Err(s) = c.answer(convert::answer_to_pb(id, &reply)).await {
        tracing::warn!(query = id, error = %status_msg(s), "answering a query");
    }
}

/// Run a query on this node's datastores `mine` (blocking: it reads the
/// datastore).
pub fn execute(runner: &Runner, mine: &[DatastoreRef], q: Query) -> Reply {
    match q {
        Query::Tree(t) => tree(runner, mine, &t).map(Answer::Tree),
        Query::Find(f) => find(runner, mine, &f).map(Answer::Find),
        Query::Stat(f) => crate::files::stat(runner, mine, &f).map(Answer::Stat),
        Query::List(l) => crate::files::list(runner, mine, &l).map(Answer::List),
        Query::Read(r) => {
            crate::files::read(runner, mine, runner.open_files(), &r).map(Answer::Read)
        }
        Query::ReadLink(f) => crate::files::read_link(runner, mine, &f).map(Answer::ReadLink),
    }
}

/// This node's datastore called `name` in the catalog.
pub(crate) fn own<'a>(
    mine: &'a [DatastoreRef],
    name: &str,
) -> Result<&'a DatastoreRef, QueryError> {
    mine.iter().find(|d| d.name == name).ok_or_else(|| {
        QueryError::new(
            QueryErrorCode::NotFound,
            format!("datastore {name:?} is not one of this node's"),
        )
    })
}

/// A search of restore points in one of this node's datastores, as the
/// server's embedded node searches its own
/// ([`crate::find::search_restore_points`]), cut to fit
/// [`MAX_ANSWER_BYTES`].
fn find(
    runner: &Runner,
    mine: &[DatastoreRef],
    q: &FindQuery,
) -> Result<api::SearchResult, QueryError> {
    if !(1..=api::SEARCH_MAX_LIMIT).contains(&q.limit) {
        return Err(QueryError::new(
            QueryErrorCode::Invalid,
            format!("limit must be 1..={}", api::SEARCH_MAX_LIMIT),
        ));
    }
    let pattern = Pattern::new(&q.pattern, q.ignore_case)
        .map_err(|e| QueryError::new(QueryErrorCode::Invalid, e.0))?;
    let d = own(mine, &q.datastore)?;
    let ds = runner
        .datastore(d)
        .map_err(|m| QueryError::new(QueryErrorCode::Internal, m))?;
    let images = q.images.then(|| runner.trees().as_ref());
    let mut r = crate::find::search_restore_points(
        &ds,
        &d.name,
        &q.restore_points,
        &pattern,
        q.limit,
        images,
    );
    fit_matches(&mut r, MAX_ANSWER_BYTES);
    Ok(r)
}

/// Cut the matches of `r` to at most about `max` bytes on the wire (with
/// its skipped list), keeping at least one; cut short, it is `truncated`.
fn fit_matches(r: &mut api::SearchResult, max: usize) {
    let mut size: usize = 32 + r.skipped.iter().map(|s| s.reason.len() + 80).sum::<usize>();
    let keep = r
        .matches
        .iter()
        .position(|m| {
            size += convert::find_match_to_pb(m).encoded_len() + 4;
            size > max
        })
        .map(|n| n.max(1));
    if let Some(n) = keep.filter(|&n| n < r.matches.len()) {
        r.matches.truncate(n);
        r.truncated = true;
    }
}

/// A page of a tree restore point, as `arca ls` lists it, cut to fit
/// [`MAX_ANSWER_BYTES`].
fn tree(
    runner: &Runner,
    mine: &[DatastoreRef],
    q: &TreeQuery,
) -> Result<api::TreePage, QueryError> {
    if !(1..=api::TREE_MAX_LIMIT).contains(&q.limit) {
        return Err(QueryError::new(
            QueryErrorCode::Invalid,
            format!("limit must be 1..={}", api::TREE_MAX_LIMIT),
        ));
    }
    let d = own(mine, &q.datastore)?;
    let internal = |m: String| QueryError::new(QueryErrorCode::Internal, m);
    let ds = runner.datastore(d).map_err(internal)?;
    let rp = q.restore_point;
    let snap = ds.load_snapshot(&rp.snapshot_id()).map_err(|e| match e {
        arca_repo::Error::NotFound(_) => QueryError::new(
            QueryErrorCode::NotFound,
            format!(
                "restore point {} is no longer in datastore {:?}",
                rp.short(),
                d.name
            ),
        ),
        e => internal(format!("restore point {}: {e}", rp.short())),
    })?;
    let mut page = crate::browse::tree(
        &ds,
        runner.trees(),
        &snap,
        &q.path,
        q.recursive,
        q.offset,
        q.limit,
    )
    .map_err(|e| match e {
        TreeError::Invalid(m) => QueryError::new(QueryErrorCode::Invalid, m),
        TreeError::NotFound(m) => QueryError::new(QueryErrorCode::NotFound, m),
        e @ TreeError::Image => QueryError::new(QueryErrorCode::Conflict, e.to_string()),
        TreeError::Datastore(e) => internal(e.to_string()),
        TreeError::Io(m) => internal(m),
    })?;
    fit(&mut page, q.offset, MAX_ANSWER_BYTES);
    Ok(page)
}

/// Cut `page` (listed from `offset`) to at most about `max` bytes on the
/// wire, keeping at least one entry; the rest is the next page.
fn fit(page: &mut api::TreePage, offset: u64, max: usize) {
    let mut size = page.path.len() + 16;
    let keep = page
        .entries
        .iter()
        .position(|e| {
            size += convert::tree_entry_to_pb(e).encoded_len() + 4;
            size > max
        })
        .map(|n| n.max(1));
    if let Some(n) = keep.filter(|&n| n < page.entries.len()) {
        page.entries.truncate(n);
        page.next_offset = Some(offset + n as u64);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn page(n: usize, next: Option<u64>) -> api::TreePage {
        api::TreePage {
            path: "d".into(),
            entries: (0..n)
                .map(|i| api::TreeEntry {
                    name: format!("{i:04}"),
                    path: format!("d/{i:04}"),
                    kind: api::TreeEntryKind::File,
                    size: 1,
                    mode: 0o644,
                    mtime: 0,
                    uid: 0,
                    gid: 0,
                    link_target: None,
                })
                .collect(),
            next_offset: next,
        }
    }

    /// A page over the limit is cut, and goes on where it was cut; one
    /// within it is left alone; an entry is always sent.
    #[test]
    fn large_pages_are_cut_and_go_on_where_cut() {
        let mut p = page(100, None);
        fit(&mut p, 40, 1000);
        let n = p.entries.len();
        assert!(n > 1 && n < 100, "{n}");
        assert_eq!(p.next_offset, Some(40 + n as u64));
        let sent = convert::tree_page_to_pb(&p).encoded_len();
        assert!(sent <= 1000, "{sent}");
        assert_eq!(p.entries.last().unwrap().name, format!("{:04}", n - 1));

        let mut p = page(3, Some(9));
        fit(&mut p, 6, 1000);
        assert_eq!((p.entries.len(), p.next_offset), (3, Some(9)));

        let mut p = page(3, None);
        fit(&mut p, 0, 1);
        assert_eq!((p.entries.len(), p.next_offset), (1, Some(1)));
    }

    /// Matches over the limit are cut, the result then truncated; a
    /// result within it is left alone.
    #[test]
    fn large_search_results_are_cut_and_truncated() {
        let m = |i: usize| api::SearchMatch {
            restore_point: "ab".repeat(32).parse().unwrap(),
            time: 1,
            source: "s".into(),
            path: format!("dir/{i:04}"),
            kind: api::TreeEntryKind::File,
            size: 1,
            mtime: 0,
        };
        let mut r = api::SearchResult {
            matches: (0..100).map(m).collect(),
            truncated: false,
            searched: 1,
            skipped: Vec::new(),
        };
        fit_matches(&mut r, 2000);
        let n = r.matches.len();
        assert!(n > 1 && n < 100, "{n}");
        assert!(r.truncated);
        assert!(convert::find_result_to_pb(&r).encoded_len() <= 2000);
        let mut r = api::SearchResult {
            matches: (0..3).map(m).collect(),
            ..Default::default()
        };
        fit_matches(&mut r, 2000);
        assert_eq!((r.matches.len(), r.truncated), (3, false));
    }

    /// A coordinator with nothing to lease (queries do not use it).
    struct NoCoordinator;

    impl crate::Coordinator for NoCoordinator {
        fn node_id(&self) -> arca_catalog::NodeId {
            arca_catalog::NodeId(1)
        }
        fn lease(&self) -> Result<Option<arca_proto::Leased>, String> {
            Ok(None)
        }
        fn progress(&self, _: arca_catalog::TaskId, _: i64, _: i64) -> Result<bool, String> {
            Ok(false)
        }
        fn log(&self, _: arca_catalog::TaskId, _: arca_catalog::LogLevel, _: &str) {}
        fn finish(
            &self,
            _: arca_catalog::TaskId,
            _: arca_proto::Finished,
        ) -> Result<arca_catalog::TaskState, String> {
            Err("no tasks here".into())
        }
        fn exports(
            &self,
            _: u64,
            _: Duration,
        ) -> Result<(u64, Vec<arca_proto::ExportSpec>), String> {
            Ok((0, Vec::new()))
        }
        fn export_state(
            &self,
            _: arca_catalog::ExportId,
            _: Result<String, String>,
        ) -> Result<(), String> {
            Ok(())
        }
    }

    /// Only the node's own datastores are read, by catalog name; a bad
    /// limit is refused before anything is opened.
    #[test]
    fn queries_read_only_this_nodes_datastores() {
        let runner = Runner::new(Arc::new(NoCoordinator), crate::Passphrases::new());
        let q = |datastore: &str, limit| {
            Query::Tree(TreeQuery {
                restore_point: "ab".repeat(32).parse().unwrap(),
                datastore: datastore.into(),
                path: String::new(),
                recursive: false,
                offset: 0,
                limit,
            })
        };
        let mine = [DatastoreRef {
            id: arca_catalog::DatastoreId(1),
            name: "n/default".into(),
            path: "/nonexistent/arca-test".into(),
        }];
        let e = execute(&runner, &mine, q("other/default", 10)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::NotFound);
        assert!(e.message.contains("not one of this node's"), "{e}");
        let e = execute(&runner, &mine, q("n/default", 0)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::Invalid);
        // Its own, but it cannot be opened: the reason, as an internal error.
        let e = execute(&runner, &mine, q("n/default", 10)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::Internal, "{e}");
        // A search: the same checks, and a bad pattern or limit refused.
        let f = |datastore: &str, pattern: &str, limit| {
            Query::Find(FindQuery {
                datastore: datastore.into(),
                restore_points: vec!["ab".repeat(32).parse().unwrap()],
                pattern: pattern.into(),
                ignore_case: false,
                limit,
                images: false,
            })
        };
        let e = execute(&runner, &mine, f("other/default", "*", 10)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::NotFound, "{e}");
        let e = execute(&runner, &mine, f("n/default", "*", 0)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::Invalid, "{e}");
        let e = execute(&runner, &mine, f("n/default", "", 10)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::Invalid, "{e}");
        let e = execute(&runner, &mine, f("n/default", "*", 10)).unwrap_err();
        assert_eq!(e.code, QueryErrorCode::Internal, "{e}");
    }
}
