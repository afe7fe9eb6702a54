//! The node protocol (arca-proto): arbitrary bytes as each message the
//! server receives from a node (the first byte picks the call), decoded
//! with prost and converted as the server converts it (`Finish`'s result,
//! restore point and verify effects, `Log`'s level, `Answer`'s reply: a
//! tree page, a search result, a file's attributes, a directory page,
//! read bytes or a link target), and as the `TaskSpec` and `Query` (tree,
//! find or a file query) a node receives from the server. A message that does not
//! decode or convert is an error, never a panic; what converts also
//! converts back, within its bounds.
#![no_main]

use arca_model::{NodeId, TaskId};
use arca_proto::query::{Answer, Query, FIND_MAX_RESTORE_POINTS};
use arca_proto::{convert, pb};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|input: &[u8]| {
    let Some((&call, data)) = input.split_first() else {
        return;
    };
    match call % 13 {
        0 => {
            let _ = pb::RegisterRequest::decode(data);
        }
        1 => {
            let _ = pb::HeartbeatRequest::decode(data);
        }
        2 => {
            let _ = pb::LeaveRequest::decode(data);
        }
        3 => {
            let _ = pb::LeaseRequest::decode(data);
        }
        4 => {
            let _ = pb::ProgressRequest::decode(data);
        }
        5 => {
            if let Ok(r) = pb::LogRequest::decode(data) {
                if let Ok(level) = convert::log_level_from_pb(r.level) {
                    assert_eq!(convert::log_level_to_pb(level) as i32, r.level);
                }
            }
        }
        6 => {
            if let Ok(r) = pb::FinishRequest::decode(data) {
                let ok = r.ok;
                if let Ok(outcome) = convert::outcome_from_pb(r.ok, r.result, r.error) {
                    assert_eq!(outcome.is_ok(), ok);
                    if let Ok(res) = outcome {
                        // As the catalog stores it; and the same kind back.
                        let _ = res.to_json();
                        let back = convert::result_from_pb(convert::result_to_pb(&res));
                        assert!(back.is_ok_and(|b| b.kind() == res.kind()));
                    }
                }
                if let Some(rp) = r.restore_point {
                    let _ = convert::restore_point_from_pb(rp, TaskId(1));
                }
                if let Some(v) = r.verify {
                    let _ = convert::verify_from_pb(v);
                }
            }
        }
        7 => {
            let _ = pb::WatchExportsRequest::decode(data);
        }
        8 => {
            let _ = pb::ExportStateRequest::decode(data);
        }
        10 => {
            let _ = pb::WatchQueriesRequest::decode(data);
        }
        11 => {
            if let Ok(a) = pb::AnswerRequest::decode(data) {
                if let Ok((id, reply)) = convert::answer_from_pb(a) {
                    // A search answer that converts is within its bounds.
                    if let Ok(Answer::Find(r)) = &reply {
                        assert!(r.matches.len() <= arca_model::api::SEARCH_MAX_LIMIT as usize);
                        assert!(r.skipped.len() <= FIND_MAX_RESTORE_POINTS);
                    }
                    // So is a file answer: a page of names that are
                    // components, at most 1 MiB read.
                    if let Ok(Answer::List(p)) = &reply {
                        assert!(p.entries.len() <= arca_proto::query::LIST_MAX_LIMIT as usize);
                        for e in &p.entries {
                            assert!(!e.name.is_empty() && !e.name.contains(&b'/'));
                            assert!(e.name != b"." && e.name != b"..");
                        }
                    }
                    if let Ok(Answer::Read(d)) = &reply {
                        assert!(d.len() <= arca_proto::query::READ_MAX_LENGTH as usize);
                    }
                    let back = convert::answer_from_pb(convert::answer_to_pb(id, &reply));
                    assert!(back.is_ok_and(|b| b == (id, reply)));
                }
            }
        }
        12 => {
            if let Ok(q) = pb::Query::decode(data) {
                let id = q.id;
                let (got, r) = convert::query_from_pb(q);
                assert_eq!(got, id);
                if let Ok(q) = r {
                    if let Query::Find(f) = &q {
                        assert!(f.restore_points.len() <= FIND_MAX_RESTORE_POINTS);
                    }
                    let (_, back) = convert::query_from_pb(convert::query_to_pb(id, &q));
                    assert!(back.is_ok_and(|b| b == q));
                }
            }
        }
        _ => {
            if let Ok(t) = pb::TaskSpec::decode(data) {
                if let Ok(l) = convert::leased_from_pb(t, NodeId(1)) {
                    let back = convert::leased_from_pb(convert::leased_to_pb(&l), NodeId(1));
                    assert!(back.is_ok_and(|b| b.task.kind() == l.task.kind()));
                }
            }
        }
    }
});
