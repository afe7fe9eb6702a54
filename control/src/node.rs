//! The node protocol over gRPC (tonic): the server's [`NodeService`] and
//! the node's [`Remote`] coordinator. The messages are in
//! `control/proto/node.proto`; docs/node-protocol.md explains the calls.
//!
//! Every call carries the node's token (`authorization: Bearer …`). The
//! token names the node, so a node can only lease, report on and finish
//! its own tasks, and only register datastores under its own name. The
//! service calls [`Local`], the same code the embedded node runs, so the
//! task rules are enforced identically for both.

use std::sync::Arc;
use std::time::Duration;

use arca_catalog::{self as catalog, Catalog, Node, TaskEffects, TaskState};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Response, Status};

use crate::exports::ExportSpec;
use crate::runner::{Coordinator, DatastoreRef, Finished, Leased, Local};
use crate::{Notifier, LEASE_SECS};

#[allow(clippy::all, clippy::unwrap_used, missing_docs)]
pub mod pb {
    tonic::include_proto!("arca.node.v1");
}

/// Seconds between a node's heartbeats.
pub const HEARTBEAT_SECS: i64 = 5;
/// Silence after which a node counts as offline and its tasks are
/// requeued or failed.
pub const NODE_TIMEOUT_SECS: i64 = 30;
/// Longest log line a node may send; longer ones are cut.
const MAX_LOG: usize = 16 * 1024;

/// The gRPC service path prefix, for routing it beside the REST API.
pub const SERVICE_PATH: &str = "/arca.node.v1.Node/";

/// The server's side of the node protocol.
#[derive(Clone)]
pub struct NodeService {
    catalog: Arc<Catalog>,
    notifier: Arc<Notifier>,
    /// Woken when a node registers or finishes (the scheduler re-runs).
    changed: Arc<tokio::sync::Notify>,
    /// Silence after which the server marks a node offline.
    node_timeout: i64,
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
        }
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
            .filter(|_| token.kind == "node")
            .ok_or_else(|| {
                Status::permission_denied("not a node token (POST /api/v1/nodes makes one)")
            })?;
        let _ = self.catalog.touch_token(token.id);
        self.catalog.node(node_id).map_err(internal)
    }

    fn local(&self, node: &Node) -> Local {
        Local::new(self.catalog.clone(), node.id).with_notifier(self.notifier.clone())
    }

    /// The task, if it was leased to this node (running or not: the logs
    /// and the late result of a task whose lease just expired still
    /// belong to it).
    fn leased_task(&self, node: &Node, task_id: i64) -> Result<catalog::Task, Status> {
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

fn json_or_invalid(s: &str, what: &str) -> Result<Value, Status> {
    serde_json::from_str(s).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

fn to_pb_ds(d: &DatastoreRef) -> pb::RegisteredDatastore {
    pb::RegisteredDatastore {
        id: d.id,
        name: d.name.clone(),
        path: d.path.clone(),
    }
}

#[tonic::async_trait]
impl pb::node_server::Node for NodeService {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
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
                id: rec.id,
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
            let d = crate::confine::normalize(&r.data_dir)
                .map_err(|e| Status::invalid_argument(format!("data_dir: {e}")))?;
            c.set_node_data_dir(node.id, &d).map_err(internal)?;
        }
        let node = c
            .register_node(node.id, r.max_tasks, &r.version)
            .map_err(internal)?;
        tracing::info!(
            target: "arca::node",
            node = %node.name,
            node_id = node.id,
            version = %r.version,
            requeued = requeued.len(),
            "node registered (online)"
        );
        self.changed.notify_one();
        Ok(Response::new(pb::RegisterReply {
            node_id: node.id,
            node_name: node.name,
            datastores: out,
            heartbeat_seconds: (self.node_timeout / 3).clamp(1, HEARTBEAT_SECS),
            lease_seconds: LEASE_SECS,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let node = self.node(&req)?;
        if node.state != "online" {
            return Err(Status::failed_precondition(
                "this node was marked offline; register again",
            ));
        }
        self.catalog.heartbeat(node.id).map_err(internal)?;
        Ok(Response::new(pb::HeartbeatReply {}))
    }

    async fn watch_exports(
        &self,
        req: Request<pb::WatchExportsRequest>,
    ) -> Result<Response<pb::WatchExportsReply>, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let local = self.local(&node);
        let wait = Duration::from_secs(r.wait_seconds.clamp(0, 25) as u64);
        let (generation, specs) = tokio::task::spawn_blocking(move || local.exports(r.seen, wait))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::internal)?;
        Ok(Response::new(pb::WatchExportsReply {
            generation,
            exports: specs
                .into_iter()
                .map(|e| pb::ExportSpec {
                    id: e.id,
                    restore_point: e.restore_point,
                    datastore: Some(pb::RegisteredDatastore {
                        id: e.datastore.id,
                        name: e.datastore.name,
                        path: e.datastore.path,
                    }),
                    protocol: e.protocol,
                    writable: e.writable,
                    name: e.name,
                    state: e.state,
                    on_stop: e.on_stop,
                    secret: e.secret,
                })
                .collect(),
        }))
    }

    async fn export_state(
        &self,
        req: Request<pb::ExportStateRequest>,
    ) -> Result<Response<pb::ExportStateReply>, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let e = self
            .catalog
            .export(r.export_id)
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
        Ok(Response::new(pb::ExportStateReply {}))
    }

    async fn lease(
        &self,
        req: Request<pb::LeaseRequest>,
    ) -> Result<Response<pb::LeaseReply>, Status> {
        let node = self.node(&req)?;
        if node.state != "online" {
            return Err(Status::failed_precondition(
                "this node was marked offline; register again",
            ));
        }
        let Some(l) = self.local(&node).lease().map_err(Status::internal)? else {
            return Ok(Response::new(pb::LeaseReply { task: None }));
        };
        let t = &l.task;
        let task = pb::TaskSpec {
            id: t.id,
            kind: t.kind.clone(),
            params_json: t.params.to_string(),
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            policy_id: t.policy_id,
            project_id: t.project_id,
            source: l.source.as_ref().map(|s| pb::Source {
                id: s.id,
                kind: s.kind.clone(),
                name: s.name.clone(),
                path: s.path.clone(),
                tags: s.tags.clone(),
                project_id: s.project_id,
            }),
            retention_json: l
                .retention
                .as_ref()
                .map(|r| serde_json::to_string(r).unwrap_or_default()),
            datastore: l.datastore.as_ref().map(to_pb_ds),
        };
        Ok(Response::new(pb::LeaseReply { task: Some(task) }))
    }

    async fn progress(
        &self,
        req: Request<pb::ProgressRequest>,
    ) -> Result<Response<pb::ProgressReply>, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        let cancel = self
            .catalog
            .task_progress_leased(
                r.task_id,
                &lease,
                r.bytes_done.max(0),
                r.bytes_total.max(0),
                LEASE_SECS,
            )
            .map_err(refused)?;
        Ok(Response::new(pb::ProgressReply { cancel }))
    }

    async fn log(&self, req: Request<pb::LogRequest>) -> Result<Response<pb::LogReply>, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        if !["debug", "info", "warn", "error"].contains(&r.level.as_str()) {
            return Err(Status::invalid_argument(
                "level must be debug, info, warn or error",
            ));
        }
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
            .add_task_log_leased(r.task_id, &lease, &r.level, &msg)
            .map_err(refused)?;
        Ok(Response::new(pb::LogReply {}))
    }

    async fn finish(
        &self,
        req: Request<pb::FinishRequest>,
    ) -> Result<Response<pb::FinishReply>, Status> {
        let node = self.node(&req)?;
        let r = req.into_inner();
        let lease = lease_of(&node, r.attempt)?;
        let task = self.leased_task(&node, r.task_id)?;
        let own: Vec<i64> = self
            .catalog
            .datastores()
            .map_err(internal)?
            .into_iter()
            .filter(|d| d.node_id == node.id)
            .map(|d| d.id)
            .collect();
        let mine = |id: i64| {
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
            mine(rp.datastore_id)?;
            if rp.id.len() != 64 || !rp.id.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Status::invalid_argument("restore point id: 64 hex digits"));
            }
            fx.restore_point = Some(catalog::RestorePoint {
                id: rp.id,
                datastore_id: rp.datastore_id,
                source_id: rp.source_id,
                source_name: rp.source_name,
                project_id: rp.project_id,
                kind: rp.kind,
                time: rp.time,
                bytes_total: rp.bytes_total,
                bytes_added: rp.bytes_added,
                files: rp.files,
                hostname: rp.hostname,
                task_id: Some(task.id),
                created_at: catalog::now(),
                ..Default::default()
            });
        }
        fx.removed_restore_points = r.removed_restore_points;
        if let Some(v) = r.verify {
            fx.verify = Some(catalog::VerifyEffects {
                checked: v.checked,
                damaged: v.damaged.into_iter().map(|d| (d.id, d.damage)).collect(),
            });
        }
        if let (Some(ds), Some(used)) = (r.datastore_id, r.datastore_bytes_used) {
            mine(ds)?;
            fx.datastore_bytes_used = Some((ds, used.max(0)));
        }
        let outcome = if r.ok {
            Ok(if r.result_json.is_empty() {
                Value::Null
            } else {
                json_or_invalid(&r.result_json, "result_json")?
            })
        } else {
            Err(r.error)
        };
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
        Ok(Response::new(pb::FinishReply {
            state: state.as_str().to_string(),
        }))
    }
}

/// Adds the node token to every call.
#[derive(Clone)]
pub struct Auth(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub type Client = pb::node_client::NodeClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Auth>,
>;

/// Connect (lazily) to a server at `url` (http:// or https://). `ca_pem`
/// trusts a self-signed server certificate; without it the system's roots
/// are used.
pub fn client(url: &str, token: &str, ca_pem: Option<&[u8]>) -> Result<Client, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let mut ep = Endpoint::from_shared(url.trim_end_matches('/').to_string())
        .map_err(|e| format!("server URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if url.starts_with("https://") {
        let tls = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        ep = ep.tls_config(tls).map_err(|e| format!("TLS: {e}"))?;
    } else if !url.starts_with("http://") {
        return Err(format!("server URL {url:?}: use http:// or https://"));
    }
    let auth: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| "the token has characters a header cannot carry".to_string())?;
    Ok(pb::node_client::NodeClient::with_interceptor(
        ep.connect_lazy(),
        Auth(auth),
    ))
}

/// A status as one line for a person.
pub fn status_msg(s: Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}

/// A node's view of a remote server: [`Coordinator`] over gRPC. Calls
/// block the calling (non-async) thread on the given runtime.
pub struct Remote {
    rt: tokio::runtime::Handle,
    client: Client,
    node_id: i64,
    /// The attempts of the tasks this node leased.
    held: crate::leases::Held,
}

impl Remote {
    pub fn new(rt: tokio::runtime::Handle, client: Client, node_id: i64) -> Remote {
        Remote {
            rt,
            client,
            node_id,
            held: Default::default(),
        }
    }

    pub fn heartbeat(&self) -> Result<(), Status> {
        let mut c = self.client.clone();
        self.rt
            .block_on(c.heartbeat(pb::HeartbeatRequest {}))
            .map(|_| ())
    }
}

/// Register with the server (blocking on `rt`). `data_dir`: the node's
/// data directory, absolute.
pub fn register(
    rt: &tokio::runtime::Handle,
    client: &Client,
    max_tasks: i64,
    datastores: Vec<pb::DatastoreInfo>,
    data_dir: &str,
) -> Result<pb::RegisterReply, Status> {
    let mut c = client.clone();
    rt.block_on(c.register(pb::RegisterRequest {
        version: env!("CARGO_PKG_VERSION").to_string(),
        max_tasks,
        datastores,
        data_dir: data_dir.to_string(),
    }))
    .map(Response::into_inner)
}

fn from_pb_task(t: pb::TaskSpec, node_id: i64) -> Result<Leased, String> {
    let params = serde_json::from_str(&t.params_json).map_err(|e| format!("task params: {e}"))?;
    let retention = match &t.retention_json {
        Some(j) => Some(serde_json::from_str(j).map_err(|e| format!("task retention: {e}"))?),
        None => None,
    };
    let now = catalog::now();
    let task = catalog::Task {
        id: t.id,
        kind: t.kind,
        state: TaskState::Running,
        project_id: t.project_id,
        source_id: t.source.as_ref().map(|s| s.id),
        policy_id: t.policy_id,
        datastore_id: t.datastore.as_ref().map(|d| d.id),
        node_id: Some(node_id),
        params,
        priority: 0,
        slot: None,
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        not_before: now,
        lease_until: Some(now + LEASE_SECS),
        cancel_requested: false,
        bytes_done: 0,
        bytes_total: 0,
        progress: None,
        result: None,
        error: None,
        created_by: String::new(),
        created_at: now,
        started_at: Some(now),
        finished_at: None,
    };
    Ok(Leased {
        source: t.source.map(|s| catalog::Source {
            id: s.id,
            name: s.name,
            kind: s.kind,
            path: s.path,
            node_id,
            project_id: s.project_id,
            tags: s.tags,
            settings: Value::Null,
            policy_id: t.policy_id,
            assigned_by: String::new(),
            created_at: 0,
        }),
        retention,
        datastore: t.datastore.map(|d| DatastoreRef {
            id: d.id,
            name: d.name,
            path: d.path,
        }),
        task,
    })
}

impl Coordinator for Remote {
    fn node_id(&self) -> i64 {
        self.node_id
    }

    fn exports(&self, seen: u64, wait: Duration) -> Result<(u64, Vec<ExportSpec>), String> {
        let mut c = self.client.clone();
        let r = self
            .rt
            .block_on(c.watch_exports(pb::WatchExportsRequest {
                seen,
                wait_seconds: wait.as_secs() as i64,
            }))
            .map_err(status_msg)?
            .into_inner();
        let specs = r
            .exports
            .into_iter()
            .map(|e| {
                let d = e.datastore.ok_or("an export without a datastore")?;
                Ok(ExportSpec {
                    id: e.id,
                    restore_point: e.restore_point,
                    datastore: DatastoreRef {
                        id: d.id,
                        name: d.name,
                        path: d.path,
                    },
                    protocol: e.protocol,
                    writable: e.writable,
                    name: e.name,
                    state: e.state,
                    on_stop: e.on_stop,
                    secret: e.secret,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok((r.generation, specs))
    }

    fn export_state(&self, id: i64, r: Result<String, String>) -> Result<(), String> {
        let (ok, address, error) = match r {
            Ok(a) => (true, a, String::new()),
            Err(e) => (false, String::new(), e),
        };
        let mut c = self.client.clone();
        self.rt
            .block_on(c.export_state(pb::ExportStateRequest {
                export_id: id,
                ok,
                address,
                error,
            }))
            .map(|_| ())
            .map_err(status_msg)
    }

    fn lease(&self) -> Result<Option<Leased>, String> {
        let mut c = self.client.clone();
        let reply = self
            .rt
            .block_on(c.lease(pb::LeaseRequest {}))
            .map_err(status_msg)?
            .into_inner();
        match reply.task {
            None => Ok(None),
            Some(t) => {
                let id = t.id;
                self.held.hold(id, t.attempt);
                match from_pb_task(t, self.node_id) {
                    Ok(l) => Ok(Some(l)),
                    Err(e) => {
                        // Tell the server rather than letting the lease run out.
                        let _ = self.finish(
                            id,
                            Finished {
                                outcome: Err(e.clone()),
                                cancelled: false,
                                effects: Default::default(),
                            },
                        );
                        Err(e)
                    }
                }
            }
        }
    }

    fn progress(&self, task_id: i64, done: i64, total: i64) -> Result<bool, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| crate::leases::not_held(task_id))?;
        let mut c = self.client.clone();
        self.rt
            .block_on(c.progress(pb::ProgressRequest {
                task_id,
                bytes_done: done,
                bytes_total: total,
                attempt: lease.attempt,
            }))
            .map(|r| r.into_inner().cancel)
            .map_err(status_msg)
    }

    fn log(&self, task_id: i64, level: &str, message: &str) {
        let attempt = self
            .held
            .lease(self.node_id, task_id)
            .map_or(0, |l| l.attempt);
        let mut c = self.client.clone();
        let r = self.rt.block_on(c.log(pb::LogRequest {
            task_id,
            level: level.to_string(),
            message: message.to_string(),
            attempt,
        }));
        if let Err(e) = r {
            // Kept here at least: the server refused or could not be reached.
            tracing::warn!(task = task_id, level, message, error = %status_msg(e), "task log not recorded by the server");
        }
    }

    fn finish(&self, task_id: i64, f: Finished) -> Result<TaskState, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| crate::leases::not_held(task_id))?;
        self.held.release(task_id);
        let (ok, result_json, error) = match f.outcome {
            Ok(v) => (true, v.to_string(), String::new()),
            Err(e) => (false, String::new(), e),
        };
        let fx = f.effects;
        let req = pb::FinishRequest {
            task_id,
            ok,
            result_json,
            error,
            cancelled: f.cancelled,
            restore_point: fx.restore_point.map(|rp| pb::RestorePoint {
                id: rp.id,
                datastore_id: rp.datastore_id,
                source_id: rp.source_id,
                source_name: rp.source_name,
                project_id: rp.project_id,
                kind: rp.kind,
                time: rp.time,
                bytes_total: rp.bytes_total,
                bytes_added: rp.bytes_added,
                files: rp.files,
                hostname: rp.hostname,
            }),
            removed_restore_points: fx.removed_restore_points,
            verify: fx.verify.map(|v| pb::VerifyEffects {
                checked: v.checked,
                damaged: v
                    .damaged
                    .into_iter()
                    .map(|(id, damage)| pb::DamagedRestorePoint { id, damage })
                    .collect(),
            }),
            datastore_id: fx.datastore_bytes_used.map(|(d, _)| d),
            datastore_bytes_used: fx.datastore_bytes_used.map(|(_, b)| b),
            attempt: lease.attempt,
        };
        // The result matters: retry a few times across short outages
        // before the lease runs out.
        let mut last = String::new();
        for attempt in 0..5 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            let mut c = self.client.clone();
            match self.rt.block_on(c.finish(req.clone())) {
                Ok(r) => {
                    let s = r.into_inner().state;
                    return TaskState::parse(&s)
                        .ok_or_else(|| format!("the server answered an unknown state {s:?}"));
                }
                Err(s) if s.code() == tonic::Code::Unavailable => last = status_msg(s),
                Err(s) => return Err(status_msg(s)),
            }
        }
        Err(last)
    }
}
