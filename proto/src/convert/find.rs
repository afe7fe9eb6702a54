//! The find query ([`FindQuery`]) and its answer (the REST API's
//! [`api::SearchResult`]) to and from `FindQuery` and `FindResult`. Both
//! are bounded: at most [`FIND_MAX_RESTORE_POINTS`] restore points asked
//! or skipped, [`api::SEARCH_MAX_LIMIT`] matches, and a pattern of at most
//! [`PATTERN_MAX_LEN`] bytes; more is an error, as is a bad id or kind.

use arca_model::api;
use arca_model::search::PATTERN_MAX_LEN;

use super::parse;
use super::query::{kind_from_pb, kind_to_pb};
use crate::pb;
use crate::query::{FindQuery, FIND_MAX_RESTORE_POINTS};

/// A find query as the server sends it.
pub(super) fn find_query_to_pb(q: &FindQuery) -> pb::FindQuery {
    pb::FindQuery {
        datastore: q.datastore.clone(),
        restore_points: q.restore_points.iter().map(|r| r.to_hex()).collect(),
        pattern: q.pattern.clone(),
        ignore_case: q.ignore_case,
        limit: q.limit,
        images: q.images,
    }
}

/// A find query as the node receives it.
pub(super) fn find_query_from_pb(q: pb::FindQuery) -> Result<FindQuery, String> {
    if q.restore_points.len() > FIND_MAX_RESTORE_POINTS {
        return Err(format!(
            "a search of {} restore points (at most {FIND_MAX_RESTORE_POINTS} a query)",
            q.restore_points.len()
        ));
    }
    if q.pattern.len() > PATTERN_MAX_LEN {
        return Err(format!(
            "a pattern of {} bytes (at most {PATTERN_MAX_LEN})",
            q.pattern.len()
        ));
    }
    Ok(FindQuery {
        datastore: q.datastore,
        restore_points: q
            .restore_points
            .iter()
            .map(|r| parse("restore point id", r))
            .collect::<Result<_, String>>()?,
        pattern: q.pattern,
        ignore_case: q.ignore_case,
        limit: q.limit,
        images: q.images,
    })
}

/// One match as a node sends it (also to measure an answer's size).
pub fn find_match_to_pb(m: &api::SearchMatch) -> pb::FindMatch {
    pb::FindMatch {
        restore_point: m.restore_point.to_hex(),
        time: m.time,
        source: m.source.clone(),
        path: m.path.clone(),
        kind: kind_to_pb(m.kind) as i32,
        size: m.size,
        mtime: m.mtime,
    }
}

/// A search's result as a node sends it.
pub fn find_result_to_pb(r: &api::SearchResult) -> pb::FindResult {
    pb::FindResult {
        matches: r.matches.iter().map(find_match_to_pb).collect(),
        truncated: r.truncated,
        searched: r.searched,
        skipped: r
            .skipped
            .iter()
            .map(|s| pb::FindSkipped {
                restore_point: s.restore_point.to_hex(),
                reason: s.reason.clone(),
            })
            .collect(),
    }
}

/// A search's result as the server receives it, or why it cannot be read.
pub fn find_result_from_pb(r: pb::FindResult) -> Result<api::SearchResult, String> {
    if r.matches.len() > api::SEARCH_MAX_LIMIT as usize {
        return Err(format!(
            "a search answer with {} matches (at most {})",
            r.matches.len(),
            api::SEARCH_MAX_LIMIT
        ));
    }
    if r.skipped.len() > FIND_MAX_RESTORE_POINTS {
        return Err(format!(
            "a search answer with {} restore points skipped (at most {FIND_MAX_RESTORE_POINTS})",
            r.skipped.len()
        ));
    }
    let matches = r
        .matches
        .into_iter()
        .map(|m| {
            Ok(api::SearchMatch {
                restore_point: parse("match restore point id", &m.restore_point)?,
                time: m.time,
                source: m.source,
                path: m.path,
                kind: kind_from_pb(m.kind)?,
                size: m.size,
                mtime: m.mtime,
            })
        })
        .collect::<Result<_, String>>()?;
    let skipped = r
        .skipped
        .into_iter()
        .map(|s| {
            Ok(api::SearchSkipped {
                restore_point: parse("skipped restore point id", &s.restore_point)?,
                reason: s.reason,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(api::SearchResult {
        matches,
        truncated: r.truncated,
        searched: r.searched,
        skipped,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arca_model::api::TreeEntryKind;
    use prost::Message;

    use super::*;
    use crate::convert::{answer_from_pb, answer_to_pb, query_from_pb, query_to_pb};
    use crate::query::{Answer, Query, QueryKind};

    fn rp(b: &str) -> arca_model::RestorePointId {
        b.repeat(32).parse().unwrap()
    }

    fn query() -> FindQuery {
        FindQuery {
            datastore: "far/default".into(),
            restore_points: vec![rp("ab"), rp("cd")],
            pattern: "etc/**/*.CONF".into(),
            ignore_case: true,
            limit: 10_000,
            images: true,
        }
    }

    fn result() -> api::SearchResult {
        api::SearchResult {
            matches: vec![
                api::SearchMatch {
                    restore_point: rp("ab"),
                    time: 1_700_000_000,
                    source: "web".into(),
                    path: "etc/a.conf".into(),
                    kind: TreeEntryKind::File,
                    size: 20_000,
                    mtime: -5,
                },
                api::SearchMatch {
                    restore_point: rp("cd"),
                    time: 0,
                    source: String::new(),
                    path: "etc/sub.conf".into(),
                    kind: TreeEntryKind::Dir,
                    size: 0,
                    mtime: i64::MAX,
                },
            ],
            truncated: true,
            searched: 2,
            skipped: vec![api::SearchSkipped {
                restore_point: rp("ef"),
                reason: "no longer in datastore \"far/default\"".into(),
            }],
        }
    }

    fn wire<M: Message + Default>(m: M) -> M {
        M::decode(m.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn find_queries_and_answers_round_trip() {
        let q = Query::Find(query());
        let (id, back) = query_from_pb(wire(query_to_pb(9, &q)));
        assert_eq!(id, 9);
        assert_eq!(back.unwrap(), q);
        assert_eq!(q.kind(), QueryKind::Find);
        assert_eq!(q.kind().to_string(), "find");
        for r in [result(), api::SearchResult::default()] {
            let a = Ok(Answer::Find(r));
            let (id, back) = answer_from_pb(wire(answer_to_pb(4, &a))).unwrap();
            assert_eq!(id, 4);
            assert_eq!(back, a);
            assert_eq!(back.unwrap().kind(), QueryKind::Find);
        }
    }

    /// Bad ids, unknown kinds and sizes over the bounds are errors naming
    /// what is wrong; a query that cannot be read keeps its id.
    #[test]
    fn malformed_or_oversized_find_messages_are_errors() {
        let mut q = find_query_to_pb(&query());
        q.restore_points[1] = "nope".into();
        let (id, r) = query_from_pb(pb::Query {
            id: 3,
            query: Some(pb::query::Query::Find(q)),
        });
        assert_eq!(id, 3);
        assert!(r.unwrap_err().contains("restore point id"));
        let mut q = find_query_to_pb(&query());
        q.restore_points = vec!["ab".repeat(32); FIND_MAX_RESTORE_POINTS + 1];
        assert!(find_query_from_pb(q).unwrap_err().contains("at most 10000"));
        let mut q = find_query_to_pb(&query());
        q.pattern = "a".repeat(PATTERN_MAX_LEN + 1);
        assert!(find_query_from_pb(q).unwrap_err().contains("bytes"));
        // Exactly at the bounds is fine.
        let mut q = find_query_to_pb(&query());
        q.restore_points = vec!["ab".repeat(32); FIND_MAX_RESTORE_POINTS];
        q.pattern = "a".repeat(PATTERN_MAX_LEN);
        assert_eq!(
            find_query_from_pb(q).unwrap().restore_points.len(),
            FIND_MAX_RESTORE_POINTS
        );

        let answer = |r: pb::FindResult| {
            answer_from_pb(pb::AnswerRequest {
                id: 1,
                answer: Some(pb::answer_request::Answer::Find(r)),
            })
        };
        let mut r = find_result_to_pb(&result());
        r.matches[0].kind = 0;
        assert!(answer(r).unwrap_err().contains("tree entry kind"));
        let mut r = find_result_to_pb(&result());
        r.matches[1].kind = 77;
        assert!(answer(r)
            .unwrap_err()
            .contains("unknown tree entry kind 77"));
        let mut r = find_result_to_pb(&result());
        r.matches[0].restore_point = "x".into();
        assert!(answer(r).unwrap_err().contains("match restore point id"));
        let mut r = find_result_to_pb(&result());
        r.skipped[0].restore_point = String::new();
        assert!(answer(r).unwrap_err().contains("skipped restore point id"));
        let mut r = find_result_to_pb(&result());
        let m = r.matches[0].clone();
        r.matches = vec![m; api::SEARCH_MAX_LIMIT as usize + 1];
        assert!(answer(r).unwrap_err().contains("matches (at most"));
        let mut r = find_result_to_pb(&result());
        let s = r.skipped[0].clone();
        r.skipped = vec![s; FIND_MAX_RESTORE_POINTS + 1];
        assert!(answer(r).unwrap_err().contains("skipped (at most"));
    }
}
