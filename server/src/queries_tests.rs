//! The query broker: answers reach the asker, wrong answers are refused,
//! and an absent, slow or departed node ends the wait with the reason.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use arca_model::api;
use arca_proto::query::{QueryErrorCode, TreeQuery};

use super::*;

const N: NodeId = NodeId(7);
const OTHER: NodeId = NodeId(8);

fn query(path: &str) -> Query {
    Query::Tree(TreeQuery {
        restore_point: "ab".repeat(32).parse().unwrap(),
        datastore: "far/default".into(),
        path: path.into(),
        recursive: false,
        offset: 0,
        limit: 10,
    })
}

fn page(path: &str) -> Answer {
    Answer::Tree(api::TreePage {
        path: path.into(),
        entries: Vec::new(),
        next_offset: None,
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Ask `q` of node N on another thread.
fn ask(b: &Arc<Queries>, q: Query) -> thread::JoinHandle<(Result<Answer, AskError>, Duration)> {
    let b = b.clone();
    thread::spawn(move || {
        let t = Instant::now();
        (b.ask(N, "far", q), t.elapsed())
    })
}

/// The node's poll: the queries it takes within `wait`.
fn poll(rt: &tokio::runtime::Runtime, b: &Queries, wait: Duration) -> Vec<(u64, Query)> {
    rt.block_on(b.watch(N, wait))
}

#[test]
fn a_polling_node_answers_and_only_it_may() {
    let b = Arc::new(Queries::new());
    let rt = rt();
    // Nothing queued: the poll waits its time, then comes back empty.
    assert!(poll(&rt, &b, Duration::from_millis(50)).is_empty());
    let asker = ask(&b, query("dir"));
    let taken = poll(&rt, &b, Duration::from_secs(10));
    assert_eq!(taken.len(), 1);
    let (id, q) = taken.into_iter().next().unwrap();
    assert_eq!(q, query("dir"));
    // Another node's answer, an unknown id: refused, the query stays open.
    assert!(matches!(
        b.answer(OTHER, id, Ok(page("dir"))),
        Err(Refused::Denied(_))
    ));
    assert!(matches!(
        b.answer(N, id + 100, Ok(page("dir"))),
        Err(Refused::NotFound(_))
    ));
    // An answer of another kind (a search result to a tree query).
    match b.answer(N, id, Ok(Answer::Find(api::SearchResult::default()))) {
        Err(Refused::Invalid(m)) => assert!(m.contains("a find answer to tree query"), "{m}"),
        r => panic!("{r:?}"),
    }
    b.answer(N, id, Ok(page("dir"))).unwrap();
    let (r, _) = asker.join().unwrap();
    assert_eq!(r.unwrap(), page("dir"));
    // Answered once: a second answer finds nothing open.
    assert!(matches!(
        b.answer(N, id, Ok(page("dir"))),
        Err(Refused::NotFound(_))
    ));

    // An error answer reaches the asker as it is.
    let asker = ask(&b, query("nope"));
    let (id, _) = poll(&rt, &b, Duration::from_secs(10)).remove(0);
    let e = QueryError::new(QueryErrorCode::NotFound, "no path \"nope\"");
    b.answer(N, id, Err(e.clone())).unwrap();
    assert_eq!(asker.join().unwrap().0, Err(AskError::Failed(e)));
}

/// A poll that waits is woken by a new query at once.
#[test]
fn a_waiting_poll_is_woken_by_a_query() {
    let b = Arc::new(Queries::new());
    let rt = rt();
    let poller = {
        let b = b.clone();
        thread::spawn(move || {
            let t = Instant::now();
            let got = rt.block_on(b.watch(N, Duration::from_secs(20)));
            (got, t.elapsed())
        })
    };
    // Let the poll start (the broker sees it polling), then ask.
    let end = Instant::now() + Duration::from_secs(10);
    while b.lock().nodes.get(&N).map_or(0, |q| q.watchers) == 0 {
        assert!(Instant::now() < end);
        thread::sleep(Duration::from_millis(5));
    }
    let asker = ask(&b, query("x"));
    let (got, waited) = poller.join().unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    b.answer(N, got[0].0, Ok(page("x"))).unwrap();
    assert!(asker.join().unwrap().0.is_ok());
}

/// A node that never polled is refused at once; one that polled but does
/// not take the query within the pickup time is refused then; one that
/// took it and says nothing is a timeout.
#[test]
fn absent_and_silent_nodes_end_the_wait() {
    let b = Arc::new(Queries::with_limits(
        Duration::from_millis(300),
        Duration::from_millis(900),
        4,
    ));
    let (r, took) = ask(&b, query("a")).join().unwrap();
    match r {
        Err(AskError::Unavailable(m)) => assert!(m.contains("\"far\" is not answering"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(took < Duration::from_millis(100), "{took:?}");

    let rt = rt();
    assert!(poll(&rt, &b, Duration::from_millis(1)).is_empty());
    // Polled just now, but polls no more.
    let (r, took) = ask(&b, query("a")).join().unwrap();
    match r {
        Err(AskError::Unavailable(m)) => assert!(m.contains("did not take the query"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(b.lock().open.is_empty());

    // Taken, never answered, while the node polls on (alive, slow): 504.
    assert!(poll(&rt, &b, Duration::from_millis(1)).is_empty());
    let asker = ask(&b, query("b"));
    let (id, _) = poll(&rt, &b, Duration::from_secs(10)).remove(0);
    let poller = {
        let b = b.clone();
        thread::spawn(move || {
            let rt = self::rt();
            let end = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < end {
                assert!(rt
                    .block_on(b.watch(N, Duration::from_millis(50)))
                    .is_empty());
            }
        })
    };
    let (r, took) = asker.join().unwrap();
    poller.join().unwrap();
    match r {
        Err(AskError::Timeout(m)) => assert!(m.contains("did not answer within"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // Taken, and then the node polls no more (killed right after it
    // took the query): 503 once the pickup time has passed, not a wait
    // for the timeout.
    let asker = ask(&b, query("c"));
    let (gone, _) = poll(&rt, &b, Duration::from_secs(10)).remove(0);
    let (r, took) = asker.join().unwrap();
    match r {
        Err(AskError::Unavailable(m)) => assert!(m.contains("went offline"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!(b.lock().open.is_empty());
    assert!(matches!(
        b.answer(N, gone, Ok(page("c"))),
        Err(Refused::NotFound(_))
    ));
    // The late answer is refused: nobody waits for it.
    assert!(matches!(
        b.answer(N, id, Ok(page("b"))),
        Err(Refused::NotFound(_))
    ));
}

/// A node that leaves (or registers again) ends its open queries at once.
#[test]
fn a_departing_node_ends_its_queries_at_once() {
    let b = Arc::new(Queries::with_limits(
        Duration::from_secs(5),
        Duration::from_secs(30),
        4,
    ));
    let rt = rt();
    // Taking queries before the question (else the asker may be refused
    // before the poll below starts).
    b.node_registered(N);
    let asker = ask(&b, query("a"));
    let taken = poll(&rt, &b, Duration::from_secs(10));
    assert_eq!(taken.len(), 1);
    b.node_gone(N);
    let (r, took) = asker.join().unwrap();
    match r {
        Err(AskError::Unavailable(m)) => assert!(m.contains("went offline"), "{m}"),
        r => panic!("{r:?}"),
    }
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Gone: not taking queries until it polls again.
    let (r, took) = ask(&b, query("a")).join().unwrap();
    assert!(matches!(r, Err(AskError::Unavailable(_))), "{r:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Registered again: its first poll is coming, so a query waits for it.
    b.node_registered(N);
    let asker = ask(&b, query("c"));
    let (id, _) = poll(&rt, &b, Duration::from_secs(10)).remove(0);
    b.answer(N, id, Ok(page("c"))).unwrap();
    assert_eq!(asker.join().unwrap().0.unwrap(), page("c"));
}

/// At most `max_open` queries per node; other nodes are not affected.
#[test]
fn open_queries_per_node_are_bounded() {
    let b = Arc::new(Queries::with_limits(
        Duration::from_secs(5),
        Duration::from_secs(30),
        2,
    ));
    let rt = rt();
    assert!(poll(&rt, &b, Duration::from_millis(1)).is_empty());
    let askers = [ask(&b, query("1")), ask(&b, query("2"))];
    let end = Instant::now() + Duration::from_secs(10);
    while b.lock().open.len() < 2 {
        assert!(Instant::now() < end);
        thread::sleep(Duration::from_millis(5));
    }
    match b.ask(N, "far", query("3")) {
        Err(AskError::Unavailable(m)) => assert!(m.contains("2 queries open"), "{m}"),
        r => panic!("{r:?}"),
    }
    // Another node is refused for its own reason (it never polled).
    match b.ask(OTHER, "other", query("3")) {
        Err(AskError::Unavailable(m)) => assert!(m.contains("\"other\" is not answering"), "{m}"),
        r => panic!("{r:?}"),
    }
    let mut taken = poll(&rt, &b, Duration::from_secs(10));
    if taken.len() < 2 {
        taken.extend(poll(&rt, &b, Duration::from_secs(10)));
    }
    assert_eq!(taken.len(), 2);
    for (id, q) in taken {
        let Query::Tree(t) = q else { panic!("{q:?}") };
        b.answer(N, id, Ok(page(&t.path))).unwrap();
    }
    let mut paths: Vec<String> = askers
        .into_iter()
        .map(|a| match a.join().unwrap().0.unwrap() {
            Answer::Tree(p) => p.path,
            a => panic!("{a:?}"),
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["1", "2"]);
}

/// Queries sent without waiting: several in flight from one thread, each
/// answer to its own `Asked`; one dropped unanswered is given up, and the
/// node's late answer to it is taken quietly. Read-ahead fills at most
/// half of the node's open queries.
#[test]
fn sent_queries_are_waited_for_later_or_given_up() {
    let b = Arc::new(Queries::with_limits(
        Duration::from_secs(5),
        Duration::from_secs(10),
        6,
    ));
    let rt = rt();
    assert!(poll(&rt, &b, Duration::from_millis(10)).is_empty());
    let first = b.send(N, "far", query("a"), false).unwrap();
    let second = b.send(N, "far", query("b"), true).unwrap();
    let third = b.send(N, "far", query("c"), true).unwrap();
    // Three open with a limit of 6: no more ahead of need...
    match b.send(N, "far", query("d"), true) {
        Err(AskError::Unavailable(m)) => assert!(m.contains("3 queries open"), "{m}"),
        r => panic!("{:?}", r.map(|_| ())),
    }
    // ... but one that is needed still goes.
    let fourth = b.send(N, "far", query("e"), false).unwrap();
    let taken = poll(&rt, &b, Duration::from_secs(1));
    assert_eq!(taken.len(), 4);
    // Answered out of order: each asker gets its own.
    for (id, q) in taken.iter().rev() {
        let Query::Tree(t) = q else { panic!("{q:?}") };
        if t.path != "c" {
            b.answer(N, *id, Ok(page(&t.path))).unwrap();
        }
    }
    assert_eq!(first.wait().unwrap(), page("a"));
    assert_eq!(fourth.wait().unwrap(), page("e"));
    assert_eq!(second.wait().unwrap(), page("b"));
    // Given up: forgotten at once, and its late answer is not an error.
    drop(third);
    assert!(b.lock().open.is_empty());
    let (id, _) = taken
        .iter()
        .find(|(_, q)| matches!(q, Query::Tree(t) if t.path == "c"))
        .unwrap();
    b.answer(N, *id, Ok(page("c"))).unwrap();
    // Only once.
    assert!(matches!(
        b.answer(N, *id, Ok(page("c"))),
        Err(Refused::NotFound(_))
    ));
}
