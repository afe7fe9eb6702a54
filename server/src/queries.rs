//! The query broker: questions the server has for a remote node (browse
//! a restore point in the node's datastore), asked from the REST API's
//! blocking pool and answered by the node over gRPC.
//!
//! Nodes dial the server, never the reverse, so a query waits here until
//! its node's long-polled `WatchQueries` call takes it, and its answer
//! comes back in the node's `Answer` call:
//!
//! 1. [`Queries::ask`] registers the query for its node, wakes that
//!    node's [`Queries::watch`], and blocks the calling (blocking-pool)
//!    thread until the answer comes, or:
//!    - the node does not take the query within the pickup time (5 s;
//!      a live node polls all the time): 503, the node is not answering;
//!    - the node took it but did not answer within the timeout (30 s)
//!      while it kept polling (alive, slow): 504;
//!    - the node took it and then stopped polling for the pickup time
//!      (killed right after it took the query): 503;
//!    - the node leaves or registers again meanwhile: 503 at once.
//!
//!    A node whose poll is not running and has not run lately is refused
//!    at once (503), and so is a node with too many queries open (32).
//! 2. [`Queries::answer`] accepts an answer only from the node the query
//!    was sent to, only for an open query, and only of the query's kind.
//!
//! [`Queries::send`] splits `ask` in two, so that one thread can have
//! several queries in flight (the read-ahead of a remote file,
//! [`crate::remote_tree`]): it returns an [`Asked`] to
//! [`wait`](Asked::wait) on later; an `Asked` dropped unanswered is given
//! up (the node's late answer is then taken quietly). Read-ahead queries
//! may fill only half of a node's open queries, so they never crowd out
//! queries someone waits for.
//!
//! Nothing is persisted: a server restart drops open queries, whose
//! REST requests end with the server anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arca_catalog::NodeId;
use arca_proto::query::{Answer, Query, QueryError, QueryKind, Reply};

/// How long a node has to take a query before it counts as not answering.
pub const PICKUP: Duration = Duration::from_secs(5);
/// How often a taken query's wait checks that its node still polls.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);
/// How long a node has to answer a query.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Queries open at once for one node; more are refused (503).
pub const MAX_OPEN: usize = 32;

/// Why [`Queries::ask`] got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum AskError {
    /// The node cannot take the query: not polling, too many open
    /// queries, went offline (503).
    Unavailable(String),
    /// The node took the query but did not answer in time (504).
    Timeout(String),
    /// The node answered with an error.
    Failed(QueryError),
}

/// Why [`Queries::answer`] refused an answer (logged, and told to the
/// node as NOT_FOUND, PERMISSION_DENIED or INVALID_ARGUMENT).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No open query has this id (it timed out, or was never asked).
    NotFound(String),
    /// The query was sent to another node.
    Denied(String),
    /// An answer of another kind than the query's.
    Invalid(String),
}

/// The broker, shared by the REST API's browse and the node service.
pub struct Queries {
    state: Mutex<State>,
    pickup: Duration,
    timeout: Duration,
    max_open: usize,
}

#[derive(Default)]
struct State {
    next_id: u64,
    nodes: HashMap<NodeId, NodeQueue>,
    open: HashMap<u64, Open>,
    /// Queries taken by a node and then given up by their asker (a
    /// read-ahead no longer needed), oldest first: their answers are
    /// dropped without a complaint. At most [`CANCELLED_KEPT`].
    cancelled: VecDeque<(NodeId, u64)>,
}

/// Given-up queries remembered, to take their late answers quietly.
const CANCELLED_KEPT: usize = 1024;

#[derive(Default)]
struct NodeQueue {
    /// Queries not yet taken by the node, oldest first.
    queued: VecDeque<(u64, Query)>,
    /// Wakes the node's poll (a permit is kept when none waits).
    wake: Arc<tokio::sync::Notify>,
    /// Polls running now.
    watchers: usize,
    /// When the last poll ended.
    last_watch: Option<Instant>,
}

impl NodeQueue {
    /// A poll is running, or one ended within `pickup`.
    fn polling(&self, pickup: Duration) -> bool {
        self.watchers > 0 || self.last_watch.is_some_and(|t| t.elapsed() < pickup)
    }
}

/// A query asked and not yet answered.
struct Open {
    node: NodeId,
    kind: QueryKind,
    /// Taken by the node's poll.
    taken: bool,
    /// To the asking thread; dropped when the node leaves.
    tx: mpsc::SyncSender<Reply>,
}

impl Default for Queries {
    fn default() -> Self {
        Queries::new()
    }
}

impl Queries {
    /// A broker with the default pickup time, timeout and bound.
    pub fn new() -> Queries {
        Queries::with_limits(PICKUP, TIMEOUT, MAX_OPEN)
    }

    /// A broker with other limits (tests).
    pub fn with_limits(pickup: Duration, timeout: Duration, max_open: usize) -> Queries {
        Queries {
            state: Mutex::new(State::default()),
            pickup,
            timeout: timeout.max(pickup),
            max_open: max_open.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask node `node` (called `name`, for messages) and wait for its
    /// answer, blocking this thread (call it on the blocking pool). The
    /// answer is of the query's kind.
    pub fn ask(&self, node: NodeId, name: &str, q: Query) -> Result<Answer, AskError> {
        let start = Instant::now();
        let (id, rx) = self.register(node, name, q, self.max_open)?;
        self.wait_for(node, name, id, &rx, start)
    }

    /// Send a query to node `node` without waiting: [`Asked::wait`] waits
    /// for its answer, with the same limits as [`Queries::ask`] counted
    /// from now. `ahead`: a query nobody waits for yet (read-ahead),
    /// refused while the node has half its open queries or more.
    pub fn send(
        self: &Arc<Self>,
        node: NodeId,
        name: &str,
        q: Query,
        ahead: bool,
    ) -> Result<Asked, AskError> {
        let start = Instant::now();
        let limit = if ahead {
            self.max_open / 2
        } else {
            self.max_open
        };
        let (id, rx) = self.register(node, name, q, limit)?;
        Ok(Asked {
            queries: self.clone(),
            node,
            name: name.to_string(),
            id,
            rx,
            start,
            done: false,
        })
    }

    /// Queue `q` for `node` (at most `limit` open for it).
    fn register(
        &self,
        node: NodeId,
        name: &str,
        q: Query,
        limit: usize,
    ) -> Result<(u64, mpsc::Receiver<Reply>), AskError> {
        {
            let mut g = self.lock();
            let st = &mut *g;
            let queue = st.nodes.entry(node).or_default();
            if !queue.polling(self.pickup) {
                return Err(AskError::Unavailable(format!(
                    "node {name:?} is not answering: it is not connected to the server for queries (is it running, and the same version as the server?)"
                )));
            }
            let open = st.open.values().filter(|o| o.node == node).count();
            if open >= limit.max(1) {
                return Err(AskError::Unavailable(format!(
                    "node {name:?} has {open} queries open already; try again shortly"
                )));
            }
            st.next_id += 1;
            let id = st.next_id;
            let (tx, rx) = mpsc::sync_channel(1);
            st.open.insert(
                id,
                Open {
                    node,
                    kind: q.kind(),
                    taken: false,
                    tx,
                },
            );
            queue.queued.push_back((id, q));
            queue.wake.notify_one();
            Ok((id, rx))
        }
    }

    /// Wait for the answer to query `id` of `node`, sent at `start`.
    fn wait_for(
        &self,
        node: NodeId,
        name: &str,
        id: u64,
        rx: &mpsc::Receiver<Reply>,
        start: Instant,
    ) -> Result<Answer, AskError> {
        let gone = || {
            AskError::Unavailable(format!(
                "node {name:?} went offline or restarted before it answered"
            ))
        };
        match rx.recv_timeout(self.pickup.saturating_sub(start.elapsed())) {
            Ok(r) => return r.map_err(AskError::Failed),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(gone()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        {
            let mut g = self.lock();
            if !g.open.get(&id).is_some_and(|o| o.taken) {
                g.forget(node, id);
                drop(g);
                // Answered at the last moment?
                return match rx.try_recv() {
                    Ok(r) => r.map_err(AskError::Failed),
                    Err(_) => Err(AskError::Unavailable(format!(
                        "node {name:?} is not answering: it did not take the query within {} s",
                        self.pickup.as_secs()
                    ))),
                };
            }
        }
        // Taken: wait for the answer while the node lives. A live node
        // polls again as soon as it has taken its queries, so one that
        // stops polling for the pickup time died with the query (a
        // kill -9 right after the hand-out): 503, not a 30 s wait.
        loop {
            let left = self.timeout.saturating_sub(start.elapsed());
            match rx.recv_timeout(left.min(LIVENESS_CHECK)) {
                Ok(r) => return r.map_err(AskError::Failed),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(mpsc::RecvTimeoutError::Timeout) if left > LIVENESS_CHECK => {
                    let mut g = self.lock();
                    if !g.polling(node, self.pickup) {
                        g.forget(node, id);
                        drop(g);
                        return match rx.try_recv() {
                            Ok(r) => r.map_err(AskError::Failed),
                            Err(_) => Err(gone()),
                        };
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
        }
        self.lock().forget(node, id);
        match rx.try_recv() {
            Ok(r) => r.map_err(AskError::Failed),
            Err(_) => {
                tracing::warn!(
                    target: "arca::node",
                    node = %name,
                    node_id = node.get(),
                    query = id,
                    timeout_s = self.timeout.as_secs(),
                    "a node did not answer a query in time"
                );
                Err(AskError::Timeout(format!(
                    "node {name:?} did not answer within {} s",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    /// The queries for `node`, waiting up to `wait` for one (the node's
    /// long poll). Each query is handed out once. While this runs, and
    /// for the pickup time after, the node counts as taking queries.
    pub async fn watch(&self, node: NodeId, wait: Duration) -> Vec<(u64, Query)> {
        let wake = {
            let mut g = self.lock();
            let q = g.nodes.entry(node).or_default();
            q.watchers += 1;
            q.wake.clone()
        };
        // Counted down however this ends (the call may be dropped when
        // the node's connection closes).
        let _watching = Watching {
            queries: self,
            node,
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let taken = self.lock().take(node);
            if !taken.is_empty() {
                return taken;
            }
            if tokio::time::timeout_at(deadline, wake.notified())
                .await
                .is_err()
            {
                return Vec::new();
            }
        }
    }

    /// The answer from `node` to query `id`: handed to the asking thread.
    pub fn answer(&self, node: NodeId, id: u64, reply: Reply) -> Result<(), Refused> {
        let mut g = self.lock();
        if !g.open.contains_key(&id) {
            if let Some(i) = g.cancelled.iter().position(|&c| c == (node, id)) {
                // Given up by its asker: nobody waits for it.
                g.cancelled.remove(i);
                return Ok(());
            }
        }
        let Some(open) = g.open.get(&id) else {
            return Err(Refused::NotFound(format!(
                "no query {id} is waiting for an answer (it timed out, or was never asked)"
            )));
        };
        if open.node != node {
            return Err(Refused::Denied(format!(
                "query {id} was not sent to this node"
            )));
        }
        if let Ok(a) = &reply {
            if a.kind() != open.kind {
                return Err(Refused::Invalid(format!(
                    "a {} answer to {} query {id}",
                    a.kind(),
                    open.kind
                )));
            }
        }
        if let Some(o) = g.forget(node, id) {
            // The asker may have given up this instant: nothing to do then.
            let _ = o.tx.try_send(reply);
        }
        Ok(())
    }

    /// `node` left: its open queries end at once (their askers see it
    /// went offline), and it takes none until it polls again.
    pub fn node_gone(&self, node: NodeId) {
        self.reset(node, None);
    }

    /// `node` registered (again): what an earlier run of it took will not
    /// be answered, so those queries end at once; its first poll follows
    /// within moments, so it counts as taking queries from now (for the
    /// pickup time).
    pub fn node_registered(&self, node: NodeId) {
        self.reset(node, Some(Instant::now()));
    }

    /// The asker of query `id` gave up on it: it is forgotten, and when
    /// the node took it already, its answer will be taken quietly.
    fn cancel(&self, node: NodeId, id: u64) {
        let mut g = self.lock();
        if let Some(o) = g.forget(node, id) {
            if o.taken {
                if g.cancelled.len() >= CANCELLED_KEPT {
                    g.cancelled.pop_front();
                }
                g.cancelled.push_back((node, id));
            }
        }
    }

    fn reset(&self, node: NodeId, last_watch: Option<Instant>) {
        let mut g = self.lock();
        g.open.retain(|_, o| o.node != node);
        g.cancelled.retain(|(n, _)| *n != node);
        let q = g.nodes.entry(node).or_default();
        q.queued.clear();
        q.last_watch = last_watch;
    }
}

impl State {
    /// Drop query `id` of `node` (answered, or given up).
    /// Does `node` take queries: a poll of it running, or one that ended
    /// within `pickup`?
    fn polling(&self, node: NodeId, pickup: Duration) -> bool {
        self.nodes.get(&node).is_some_and(|q| q.polling(pickup))
    }

    fn forget(&mut self, node: NodeId, id: u64) -> Option<Open> {
        if let Some(q) = self.nodes.get_mut(&node) {
            q.queued.retain(|(i, _)| *i != id);
        }
        self.open.remove(&id)
    }

    /// The queued queries of `node`, marked taken.
    fn take(&mut self, node: NodeId) -> Vec<(u64, Query)> {
        let Some(q) = self.nodes.get_mut(&node) else {
            return Vec::new();
        };
        let taken: Vec<_> = q.queued.drain(..).collect();
        for (id, _) in &taken {
            if let Some(o) = self.open.get_mut(id) {
                o.taken = true;
            }
        }
        taken
    }
}

/// A query sent with [`Queries::send`], not yet waited for.
pub struct Asked {
    queries: Arc<Queries>,
    node: NodeId,
    name: String,
    id: u64,
    rx: mpsc::Receiver<Reply>,
    start: Instant,
    done: bool,
}

impl Asked {
    /// Wait for the answer (blocking: call it on the blocking pool), as
    /// [`Queries::ask`] does.
    pub fn wait(mut self) -> Result<Answer, AskError> {
        self.done = true;
        self.queries
            .wait_for(self.node, &self.name, self.id, &self.rx, self.start)
    }
}

impl Drop for Asked {
    /// Not waited for: given up.
    fn drop(&mut self) {
        if !self.done {
            self.queries.cancel(self.node, self.id);
        }
    }
}

/// A running poll of a node, counted in its queue.
struct Watching<'a> {
    queries: &'a Queries,
    node: NodeId,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut g = self.queries.lock();
        if let Some(q) = g.nodes.get_mut(&self.node) {
            q.watchers = q.watchers.saturating_sub(1);
            q.last_watch = Some(Instant::now());
        }
    }
}

#[cfg(test)]
#[path = "queries_tests.rs"]
mod tests;
