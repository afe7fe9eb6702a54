//! The server's side of the node protocol over gRPC (tonic):
//! [`NodeService`]. The node's side is arca-node's `Remote`; the messages
//! are in `proto/proto/node.proto`; docs/node-protocol.md explains the calls.
//!
//! Every call carries the node's token (`authorization: Bearer …`). The
//! token names the node, so a node can only lease, report on and finish
//! its own tasks, and only register datastores under its own name. The
//! service calls [`Local`], the same code the embedded node runs, so the
//! task rules are enforced identically for both.
//!
//! The catalog is synchronous: each call runs whole (token check, reads,
//! writes) on tokio's blocking pool ([`arca_catalog::blocking`]), never on
//! the async workers that also serve the REST API. `WatchQueries` checks
//! the token there too, then waits for a query on the async side (a poll
//! whose node went away is dropped with its connection).

use std::sync::Arc;
use std::time::Duration;

use arca_catalog::{
    self as catalog, Catalog, DatastoreId, ExportId, Node, NodeState, TaskEffects, TaskId,
    TokenKind,
};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use arca_node::Coordinator;
use arca_proto::{convert, pb, Finished, LEASE_SECS};

use crate::queries::{Queries, Refused};
use crate::{Local, Notifier};

/// Seconds between a node's heartbeats.
pub const HEARTBEAT_SECS: i64 = 5;
/// Silence after which a node counts as offline and its tasks are
/// requeued or failed.
pub const NODE_TIMEOUT_SECS: i64 = 30;
/// Longest log line a node may send; longer ones are cut.
const MAX_LOG: usize = 16 * 1024;

pub use arca_proto::SERVICE_PATH;

/// The server's side of the node protocol.
#[derive(Clone)]
pub struct NodeService {
    catalog: Arc<Catalog>,
    notifier: Arc<Notifier>,
    /// Woken when a node registers or finishes (the scheduler re-runs).
    changed: Arc<tokio::sync::Notify>,
    /// Silence after which the server marks a node offline.
    node_timeout: i64,
    /// Queries for remote nodes (browsing their datastores).
    queries: Arc<Queries>,
    /// Opens hypervisors' keys for leases of libvirt backups.
    credentials: Option<Arc<arca_web::s3_secrets::SecretBox>>,
}

impl NodeService {
    pub fn new(
        catalog: Arc<Catalog>,
        notifier: Arc<Notifier>,
        changed: Arc<tokio::sync::Notify>,
    ) -> NodeService {
        NodeService {
            catalog,
            notifier,
            changed,
            node_timeout: NODE_TIMEOUT_SECS,
            queries: Arc::new(Queries::new()),
            credentials: None,
        }
    }

    /// Open hypervisors' keys with `b` for the leases of their backups.
    pub fn with_credentials(mut self, b: Arc<arca_web::s3_secrets::SecretBox>) -> NodeService {
        self.credentials = Some(b);
        self
    }

    /// Hand out the queries of this broker (the one the REST API asks).
    pub fn with_queries(mut self, queries: Arc<Queries>) -> NodeService {
        self.queries = queries;
        self
    }

    /// Seconds of silence after which a node is offline (the scheduler
    /// must use the same); heartbeats come three times as often.
    pub fn with_node_timeout(mut self, secs: i64) -> NodeService {
        self.node_timeout = secs.max(3);
        self
    }

    /// The tonic server, a tower service to route at [`SERVICE_PATH`].
    pub fn into_server(self) -> pb::node_server::NodeServer<NodeService> {
        pb::node_server::NodeServer::new(self)
            .max_decoding_message_size(4 << 20)
            .max_encoding_message_size(4 << 20)
    }

    /// The node the request's token belongs to.
    fn node<T>(&self, req: &Request<T>) -> Result<Node, Status> {
        let secret = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("authorization: Bearer <node token> is missing")
            })?;
        let hash = Sha256::digest(secret.as_bytes());
        let token = self
            .catalog
            .live_token(&hash)
            .map_err(internal)?
            .map_err(Status::unauthenticated)?;
        let node_id = token
            .node_id
            .filter(|_| token.kind == TokenKind::Node)
            .ok_or_else(|| {
                Status::permission_denied("not a node token (POST /api/v1/nodes makes one)")
            })?;
        let _ = self.catalog.touch_token(token.id);
        self.catalog.node(node_id).map_err(internal)
    }

    /// Run `f` with the service on tokio's blocking pool: a call's token
    /// check and its catalog reads and writes, in one go, off the async
    /// workers.
    async fn blocking<T, F>(&self, f: F) -> Result<Response<T>, Status>
    where
        F: FnOnce(&NodeService) -> Result<T, Status> + Send + 'static,
        T: Send + 'static,
    {
        let s = self.clone();
        arca_catalog::blocking(move || f(&s))
            .await
            .map(Response::new)
    }

    fn local(&self, node: &Node) -> Local {
        Local::new(self.catalog.clone(), node.id)
            .with_notifier(self.notifier.clone())
            .with_credentials(self.credentials.clone())
    }

    /// The task, if it was leased to this node (running or not: the logs
    /// and the late result of a task whose lease just expired still
    /// belong to it).
    fn leased_task(&self, node: &Node, task_id: TaskId) -> Result<catalog::Task, Status> {
        let t = self.catalog.task(task_id).map_err(|e| match e {
            catalog::Error::NotFound(m) => Status::not_found(m),
            e => internal(e),
        })?;
        if t.node_id != Some(node.id) {
            return Err(Status::permission_denied(format!(
                "task {task_id} is not leased to node {}",
                node.name
            )));
        }
        Ok(t)
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// A refused report as the node sees it: another node's task or effects
/// beyond the task are PERMISSION_DENIED; a lease that ended is
/// FAILED_PRECONDITION.
fn refused(e: catalog::Error) -> Status {
    match e {
        catalog::Error::Denied(m) => Status::permission_denied(m),
        catalog::Error::State(m) => Status::failed_precondition(m),
        catalog::Error::NotFound(m) => Status::not_found(format!("{m} not found")),
        catalog::Error::Invalid(m) => Status::invalid_argument(m),
        e => internal(e),
    }
}

/// The lease a call claims: this node and the attempt it names.
fn lease_of(node: &Node, attempt: i64) -> Result<catalog::Lease, Status> {
    if attempt < 1 {
        return Err(Status::invalid_argument(
            "the call names no attempt of the task: this node is older than the server; upgrade it",
        ));
    }
    Ok(catalog::Lease {
        node_id: node.id,
        attempt,
    })
}

/// The calls, each run whole (token check, catalog reads and writes) on
/// tokio's blocking pool by the [`pb::node_server::Node`] impl below.
impl NodeService {
    fn register_blocking(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<pb::RegisterReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        if !(1..=64).contains(&r.max_tasks) {
            return Err(Status::invalid_argument(
                "max_tasks must be between 1 and 64",
            ));
        }
        let c = &self.catalog;
        let mut out = Vec::new();
        for d in &r.datastores {
            if d.name.is_empty()
                || d.name.len() > 64
                || !d
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            {
                return Err(Status::invalid_argument(format!(
                    "datastore name {:?}: use 1-64 letters, digits, '-', '_' or '.'",
                    d.name
                )));
            }
            if !d.path.starts_with('/') {
                return Err(Status::invalid_argument(format!(
                    "datastore path {:?} is not absolute",
                    d.path
                )));
            }
            let name = format!("{}/{}", node.name, d.name);
            let rec = match c.datastore_by_name(&name).map_err(internal)? {
                Some(rec) if rec.node_id != node.id => {
                    return Err(Status::already_exists(format!(
                        "datastore {name} belongs to another node"
                    )))
                }
                Some(rec) if rec.path != d.path => {
                    return Err(Status::failed_precondition(format!(
                        "datastore {name} is registered at {}, not {}; move it back or remove it first",
                        rec.path, d.path
                    )))
                }
                Some(rec) => rec,
                None => c.add_datastore(&name, node.id, &d.path).map_err(internal)?,
            };
            out.push(pb::RegisteredDatastore {
                id: rec.id.get(),
                name: rec.name,
                path: rec.path,
            });
        }
        // A (re)starting node runs nothing yet: whatever the catalog says
        // it was running was interrupted.
        let requeued = c
            .expire_leases(
                catalog::now(),
                &[node.id],
                "the node restarted while the task ran",
            )
            .map_err(internal)?;
        if !r.data_dir.is_empty() {
            let d = arca_control::confine::normalize(&r.data_dir)
                .map_err(|e| Status::invalid_argument(format!("data_dir: {e}")))?;
            c.set_node_data_dir(node.id, &d).map_err(internal)?;
        }
        let node = c
            .register_node(node.id, r.max_tasks, &r.version)
            .map_err(internal)?;
        // What an earlier run of the node took will not be answered.
        self.queries.node_registered(node.id);
        tracing::info!(
            target: "arca::node",
            node = %node.name,
            node_id = node.id.get(),
            version = %r.version,
            requeued = requeued.len(),
            "node registered (online)"
        );
        self.changed.notify_one();
        Ok(pb::RegisterReply {
            node_id: node.id.get(),
            node_name: node.name,
            datastores: out,
            heartbeat_seconds: (self.node_timeout / 3).clamp(1, HEARTBEAT_SECS),
            lease_seconds: LEASE_SECS,
        })
    }

    fn heartbeat_blocking(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<pb::HeartbeatReply, Status> {
        let node = self.node(&req)?;
        if node.state != NodeState::Online {
            return Err(Status::failed_precondition(
                "this node was marked offline; register again",
            ));
        }
        self.catalog.heartbeat(node.id).map_err(internal)?;
        Ok(pb::HeartbeatReply {})
    }

    /// A node that stops cleanly: offline now, and whatever the catalog
    /// still says it runs (its shutdown reported its tasks) requeued.
    fn leave_blocking(&self, req: Request<pb::LeaveRequest>) -> Result<pb::LeaveReply, Status> {
        let node = self.node(&req)?;
        let was_online = self.catalog.mark_node_offline(node.id).map_err(internal)?;
        self.queries.node_gone(node.id);
        let requeued = self
            .catalog
            .expire_leases(
                catalog::now(),
                &[node.id],
                "the node stopped while the task ran",
            )
            .map_err(internal)?;
        tracing::info!(
            target: "arca::node",
            node = %node.name,
            node_id = node.id.get(),
            was_online,
            requeued = requeued.len(),
            "node left (offline)"
        );
        self.changed.notify_one();
        Ok(pb::LeaveReply {})
    }

    fn watch_exports_blocking(
        &self,
        req: Request<pb::WatchExportsRequest>,
    ) -> Result<pb::WatchExportsReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let local = self.local(&node);
        let wait = Duration::from_secs(r.wait_seconds.clamp(0, 25) as u64);
        // Waits up to `wait` for a change, on this blocking thread.
        let (generation, specs) = local.exports(r.seen, wait).map_err(Status::internal)?;
        Ok(pb::WatchExportsReply {
            generation,
            exports: specs.into_iter().map(convert::export_to_pb).collect(),
        })
    }

    fn export_state_blocking(
        &self,
        req: Request<pb::ExportStateRequest>,
    ) -> Result<pb::ExportStateReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let e = self
            .catalog
            .export(ExportId(r.export_id))
            .map_err(|e| Status::not_found(e.to_string()))?;
        if e.node_id != node.id {
            return Err(Status::permission_denied(format!(
                "export {} belongs to another node",
                e.id
            )));
        }
        let state = if r.ok { Ok(r.address) } else { Err(r.error) };
        self.local(&node)
            .export_state(e.id, state)
            .map_err(Status::internal)?;
        Ok(pb::ExportStateReply {})
    }

    /// An answer to a query: only from the node it was sent to, for a
    /// query still open, of the query's kind.
    fn answer_blocking(&self, req: Request<pb::AnswerRequest>) -> Result<pb::AnswerReply, Status> {
        let node = self.node(&req)?;
        let (id, reply) =
            convert::answer_from_pb(req.into_inner()).map_err(Status::invalid_argument)?;
        self.queries.answer(node.id, id, reply).map_err(|r| {
            let (status, msg) = match r {
                Refused::NotFound(m) => (Status::not_found(&m), m),
                Refused::Denied(m) => (Status::permission_denied(&m), m),
                Refused::Invalid(m) => (Status::invalid_argument(&m), m),
            };
            tracing::warn!(
                target: "arca::node",
                node = %node.name,
                node_id = node.id.get(),
                query = id,
                "answer refused: {msg}"
            );
            status
        })?;
        Ok(pb::AnswerReply {})
    }

    fn lease_blocking(&self, req: Request<pb::LeaseRequest>) -> Result<pb::LeaseReply, Status> {
        let node = self.node(&req)?;
        if node.state != NodeState::Online {
            return Err(Status::failed_precondition(
                "this node was marked offline; register again",
            ));
        }
        let Some(l) = self.local(&node).lease().map_err(Status::internal)? else {
            return Ok(pb::LeaseReply { task: None });
        };
        let task = convert::leased_to_pb(&l);
        Ok(pb::LeaseReply { task: Some(task) })
    }

    fn progress_blocking(
        &self,
        req: Request<pb::ProgressRequest>,
    ) -> Result<pb::ProgressReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        let cancel = self
            .catalog
            .task_progress_leased(
                TaskId(r.task_id),
                &lease,
                r.bytes_done.max(0),
                r.bytes_total.max(0),
                LEASE_SECS,
            )
            .map_err(refused)?;
        Ok(pb::ProgressReply { cancel })
    }

    fn log_blocking(&self, req: Request<pb::LogRequest>) -> Result<pb::LogReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        let level = convert::log_level_from_pb(r.level).map_err(Status::invalid_argument)?;
        let mut msg = r.message;
        if msg.len() > MAX_LOG {
            let mut cut = MAX_LOG;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push('…');
        }
        self.catalog
            .add_task_log_leased(TaskId(r.task_id), &lease, level, &msg)
            .map_err(refused)?;
        Ok(pb::LogReply {})
    }

    fn finish_blocking(&self, req: Request<pb::FinishRequest>) -> Result<pb::FinishReply, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        let task = self.leased_task(&node, TaskId(r.task_id))?;
        let own: Vec<DatastoreId> = self
            .catalog
            .datastores()
            .map_err(internal)?
            .into_iter()
            .filter(|d| d.node_id == node.id)
            .map(|d| d.id)
            .collect();
        let mine = |id: DatastoreId| {
            if own.contains(&id) {
                Ok(())
            } else {
                Err(Status::permission_denied(format!(
                    "datastore {id} is not node {}'s",
                    node.name
                )))
            }
        };
        let mut fx = TaskEffects::default();
        if let Some(rp) = r.restore_point {
            mine(DatastoreId(rp.datastore_id))?;
            fx.restore_point = Some(
                convert::restore_point_from_pb(rp, task.id).map_err(Status::invalid_argument)?,
            );
        }
        fx.removed_restore_points = convert::restore_point_ids_from_pb(&r.removed_restore_points)
            .map_err(Status::invalid_argument)?;
        if let Some(v) = r.verify {
            fx.verify = Some(convert::verify_from_pb(v).map_err(Status::invalid_argument)?);
        }
        if let (Some(ds), Some(used)) = (r.datastore_id, r.datastore_bytes_used) {
            let ds = DatastoreId(ds);
            mine(ds)?;
            fx.datastore_bytes_used = Some((ds, used.max(0)));
        }
        let outcome =
            convert::outcome_from_pb(r.ok, r.result, r.error).map_err(Status::invalid_argument)?;
        if let Ok(res) = &outcome {
            if res.kind() != task.kind {
                return Err(Status::invalid_argument(format!(
                    "the result of a {} task for {} task {}",
                    res.kind(),
                    task.kind,
                    task.id
                )));
            }
        }
        // The lease and the effects are checked again, with the task's
        // datastore and source, in the transaction that records them.
        let state = self
            .local(&node)
            .finish_leased(
                task.id,
                lease,
                Finished {
                    outcome,
                    cancelled: r.cancelled,
                    effects: fx,
                },
            )
            .map_err(refused)?;
        self.changed.notify_one();
        Ok(pb::FinishReply {
            state: convert::task_state_to_pb(state) as i32,
        })
    }
}

#[tonic::async_trait]
impl pb::node_server::Node for NodeService {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        self.blocking(move |s| s.register_blocking(req)).await
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        self.blocking(move |s| s.heartbeat_blocking(req)).await
    }

    async fn leave(
        &self,
        req: Request<pb::LeaveRequest>,
    ) -> Result<Response<pb::LeaveReply>, Status> {
        self.blocking(move |s| s.leave_blocking(req)).await
    }

    async fn watch_exports(
        &self,
        req: Request<pb::WatchExportsRequest>,
    ) -> Result<Response<pb::WatchExportsReply>, Status> {
        self.blocking(move |s| s.watch_exports_blocking(req)).await
    }

    async fn export_state(
        &self,
        req: Request<pb::ExportStateRequest>,
    ) -> Result<Response<pb::ExportStateReply>, Status> {
        self.blocking(move |s| s.export_state_blocking(req)).await
    }

    async fn watch_queries(
        &self,
        req: Request<pb::WatchQueriesRequest>,
    ) -> Result<Response<pb::WatchQueriesReply>, Status> {
        let wait = Duration::from_secs(req.get_ref().wait_seconds.clamp(0, 25) as u64);
        let node = self.blocking(move |s| s.node(&req)).await?.into_inner();
        let queries = self.queries.watch(node.id, wait).await;
        Ok(Response::new(pb::WatchQueriesReply {
            queries: queries
                .iter()
                .map(|(id, q)| convert::query_to_pb(*id, q))
                .collect(),
        }))
    }

    async fn answer(
        &self,
        req: Request<pb::AnswerRequest>,
    ) -> Result<Response<pb::AnswerReply>, Status> {
        self.blocking(move |s| s.answer_blocking(req)).await
    }

    async fn lease(
        &self,
        req: Request<pb::LeaseRequest>,
    ) -> Result<Response<pb::LeaseReply>, Status> {
        self.blocking(move |s| s.lease_blocking(req)).await
    }

    async fn progress(
        &self,
        req: Request<pb::ProgressRequest>,
    ) -> Result<Response<pb::ProgressReply>, Status> {
        self.blocking(move |s| s.progress_blocking(req)).await
    }

    async fn log(&self, req: Request<pb::LogRequest>) -> Result<Response<pb::LogReply>, Status> {
        self.blocking(move |s| s.log_blocking(req)).await
    }

    async fn finish(
        &self,
        req: Request<pb::FinishRequest>,
    ) -> Result<Response<pb::FinishReply>, Status> {
        self.blocking(move |s| s.finish_blocking(req)).await
    }
}
