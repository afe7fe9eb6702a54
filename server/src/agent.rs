//! The server's side of the agent protocol (`proto/agent.proto`,
//! docs/vm-ingest.md "Agent"): [`AgentService`], gRPC service
//! `arca.agent.v1.Ingest` on the API's port, beside the node service.
//!
//! The service authenticates the agent and keeps the catalog: an API
//! token of a user who may back up the source (operator or admin on its
//! project, the rule of `POST /sources/{id}/backup`), a backup task that
//! runs while the session is open and ends with the restore point (so it
//! is listed like any backup) or with the reason it failed. The data goes
//! through arca-node's [`IngestSessions`] into a datastore of the
//! server's embedded node, in this process. A remote node serving agents
//! would mount the same sessions and ask the server for the token check
//! and the task (a later step).
//!
//! Every call checks the token again, and a session answers only the
//! user who opened it. Refusals are one `arca::agent` log record each.
//! The catalog is synchronous: calls run on tokio's blocking pool.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arca_catalog::{
    self as catalog, AuditResult, Catalog, Lease, LogLevel, NewTask, NodeId, RestorePoint, Source,
    SourceKind, TaskEffects, TaskId, UserId,
};
use arca_model::task::TaskSpec;
use arca_model::task_result::{BackupResult, TaskResult};
use arca_node::ingest_sessions::{
    CommitInfo, DiskSpec, DiskTable, IngestError, IngestSessions, Session, Upload,
};
use arca_node::{DatastoreRef, Runner, Stop};
use arca_proto::agent_pb as pb;
use arca_proto::LEASE_SECS;
use arca_repo::ChunkId;
use arca_web::auth::{Action, Principal};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

/// An agent silent this long has gone away: its session is aborted and
/// its task failed.
pub const IDLE_SECS: u64 = 120;
/// How often open sessions' task leases are renewed and idle ones ended.
const KEEP_EVERY: Duration = Duration::from_secs(2);

/// What the service keeps with a session.
pub struct Meta {
    task_id: TaskId,
    lease: Lease,
    user_id: UserId,
    user: String,
    source: Source,
    datastore_id: catalog::DatastoreId,
    remote: String,
    hostname: String,
}

type Sess = Session<Meta>;

/// The server's side of the agent protocol.
#[derive(Clone)]
pub struct AgentService {
    catalog: Arc<Catalog>,
    runner: Arc<Runner>,
    /// The embedded node: the owner of the datastores agents write to.
    node_id: NodeId,
    sessions: Arc<IngestSessions<Meta>>,
}

fn remote<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// A refusal, logged once with who asked and why.
fn refused(call: &str, remote: &str, who: &str, s: Status) -> Status {
    tracing::warn!(
        target: "arca::agent",
        call,
        remote,
        user = who,
        code = ?s.code(),
        reason = s.message(),
        "agent call refused"
    );
    s
}

fn ingest_status(e: IngestError) -> Status {
    match e {
        IngestError::NotFound(m) => Status::not_found(m),
        IngestError::Invalid(m) => Status::invalid_argument(m),
        IngestError::State(m) => Status::failed_precondition(m),
        IngestError::Store(e) => Status::internal(format!("the datastore: {e}")),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn chunk_id(b: &[u8]) -> Result<ChunkId, Status> {
    arca_proto::agent::id(b)
        .map(ChunkId)
        .map_err(Status::invalid_argument)
}

fn table(b: &[u8]) -> Result<Vec<ChunkId>, Status> {
    Ok(arca_proto::agent::ids(b)
        .map_err(Status::invalid_argument)?
        .into_iter()
        .map(ChunkId)
        .collect())
}

mod backup;
mod schedule;

impl AgentService {
    pub fn new(catalog: Arc<Catalog>, runner: Arc<Runner>, node_id: NodeId) -> AgentService {
        AgentService {
            catalog,
            runner,
            node_id,
            sessions: Arc::new(IngestSessions::default()),
        }
    }

    /// The tonic server, a tower service to route at
    /// [`arca_proto::AGENT_SERVICE_PATH`]. A message holds at most one
    /// chunk of the largest chunk size, compressed, or a disk's table.
    pub fn into_server(self) -> pb::ingest_server::IngestServer<AgentService> {
        pb::ingest_server::IngestServer::new(self)
            .max_decoding_message_size(arca_node::agent::MAX_MESSAGE)
            .max_encoding_message_size(arca_node::agent::MAX_MESSAGE)
    }

    /// The user the request's token belongs to.
    fn principal(&self, md: &tonic::metadata::MetadataMap) -> Result<Principal, Status> {
        let secret = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("authorization: Bearer <API token> is missing")
            })?;
        let token = self
            .catalog
            .live_token(&Sha256::digest(secret.as_bytes()))
            .map_err(internal)?
            .map_err(Status::unauthenticated)?;
        let user_id = token.user_id.ok_or_else(|| {
            Status::permission_denied("a node token cannot back up; use an API token of a user")
        })?;
        let user = self.catalog.user(user_id).map_err(internal)?;
        if user.disabled {
            return Err(Status::unauthenticated("user disabled"));
        }
        let _ = self.catalog.touch_token(token.id);
        Ok(Principal::new(user, token))
    }

    /// The open session `id`, if the caller opened it.
    fn session(&self, p: &Principal, id: &str) -> Result<Arc<Sess>, Status> {
        let s = self.sessions.get(id).map_err(ingest_status)?;
        if s.meta.user_id != p.user.id {
            // As if it did not exist: a session id is not a credential.
            return Err(Status::not_found(format!("no open agent session {id:?}")));
        }
        Ok(s)
    }

    /// The source an agent names: one image or libvirt source of that name
    /// the caller can see, which the caller may back up.
    fn source(&self, p: &Principal, name: &str) -> Result<Source, Status> {
        let all = self.catalog.sources_named(name).map_err(internal)?;
        let src = one_to_manage(p, all, |s| s.project_id, "source", name)?;
        if !matches!(src.kind, SourceKind::Image | SourceKind::Libvirt) {
            return Err(Status::failed_precondition(format!(
                "source {name:?} is a {} source; an agent backs up image and libvirt sources",
                src.kind
            )));
        }
        Ok(src)
    }

    /// The datastore a backup of `src` goes to (its policy's, or the
    /// first), as placed on the embedded node; agents write to the
    /// server's own datastores for now.
    fn datastore(&self, src: &Source) -> Result<catalog::Datastore, Status> {
        let all = self.catalog.datastores().map_err(internal)?;
        let want = match src.policy_id {
            Some(pid) => self.catalog.policy(pid).map_err(internal)?.datastore_id,
            None => all
                .first()
                .map(|d| d.id)
                .ok_or_else(|| Status::failed_precondition("no datastore"))?,
        };
        let id = arca_control::place(&all, want, self.node_id);
        let d = all
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| Status::failed_precondition("the policy's datastore is gone"))?;
        if d.node_id != self.node_id {
            return Err(Status::failed_precondition(format!(
                "datastore {} belongs to a remote node; agents send to the server's own datastores (docs/vm-ingest.md)",
                d.name
            )));
        }
        Ok(d)
    }

    /// End a session's task: the outcome, and for a commit its effects.
    fn finish(
        &self,
        s: &Sess,
        outcome: Result<TaskResult, String>,
        cancelled: bool,
        fx: &TaskEffects,
    ) {
        let m = &s.meta;
        if let Err(e) = &outcome {
            let _ = self.catalog.add_task_log(m.task_id, LogLevel::Error, e);
        }
        let r = self.catalog.finish_task_leased(
            m.task_id,
            Some(&m.lease),
            outcome.map(|r| r.to_json()),
            cancelled,
            None,
            fx,
        );
        if let Err(e) = r {
            tracing::warn!(target: "arca::agent", task = m.task_id.get(), error = %e, "recording the end of an agent backup");
        }
    }

    /// Abort session `s` and fail its task with `why`.
    fn fail(&self, s: &Sess, why: String, cancelled: bool) {
        // Whoever ends the session first records why (the keeper, then
        // the upload it stopped, end it one after the other).
        let first = s.end();
        self.sessions.remove(&s.id);
        s.abort();
        if !first {
            return;
        }
        tracing::warn!(
            target: "arca::agent",
            session = %s.id,
            task = s.meta.task_id.get(),
            source = %s.meta.source.name,
            user = %s.meta.user,
            remote = %s.meta.remote,
            bytes_received = s.bytes_received.load(Ordering::Relaxed),
            reason = %why,
            "agent backup ended without a restore point"
        );
        self.finish(s, Err(why), cancelled, &TaskEffects::default());
    }

    /// Renew the leases of open sessions' tasks, and end the sessions of
    /// agents that went away or whose task was cancelled; until `stop`.
    pub async fn keep(self, stop: Stop) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(KEEP_EVERY) => {}
                _ = stop.stopped() => return,
            }
            let me = self.clone();
            let _ = arca_catalog::blocking(move || {
                me.keep_once();
                Ok::<_, Status>(())
            })
            .await;
        }
    }

    fn keep_once(&self) {
        for s in self.sessions.all() {
            if s.idle() > Duration::from_secs(IDLE_SECS) {
                self.fail(
                    &s,
                    format!("the agent went away (no call for {IDLE_SECS} s)"),
                    false,
                );
                continue;
            }
            let total: u64 = s.disks.iter().map(|d| d.size).sum();
            let done = s.bytes_received.load(Ordering::Relaxed);
            match self.catalog.task_progress_leased(
                s.meta.task_id,
                &s.meta.lease,
                done as i64,
                total as i64,
                LEASE_SECS,
            ) {
                Ok(true) => self.fail(&s, "cancelled".into(), true),
                Ok(false) => {}
                Err(e) => self.fail(&s, format!("the task's lease ended: {e}"), false),
            }
        }
    }
}

/// The one of `named` (things called `name`) in the projects `p` can see,
/// which `p` may manage: NOT_FOUND for none, INVALID_ARGUMENT when the
/// name is in several of them, PERMISSION_DENIED without the role.
fn one_to_manage<T>(
    p: &Principal,
    named: Vec<T>,
    project: impl Fn(&T) -> catalog::ProjectId,
    what: &str,
    name: &str,
) -> Result<T, Status> {
    let mut seen: Vec<T> = named
        .into_iter()
        .filter(|x| !p.hides(project(x)) && p.can(Action::Read, Some(project(x))))
        .collect();
    let one = match seen.len() {
        0 => return Err(Status::not_found(format!("{what} {name:?} not found"))),
        1 => seen.remove(0),
        n => {
            return Err(Status::invalid_argument(format!(
                "{n} {what}s are named {name:?} in the projects you can see; use a token limited to one project"
            )))
        }
    };
    p.require(Action::Manage, Some(project(&one)))
        .map_err(|e| Status::permission_denied(e.message))?;
    Ok(one)
}

impl AgentService {
    /// Check the token on the blocking pool, then run `f` there with the
    /// caller; a refusal is logged.
    async fn call<T, R, F>(
        &self,
        name: &'static str,
        req: Request<R>,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(&AgentService, Principal, String, R) -> Result<T, Status> + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let me = self.clone();
        let remote = remote(&req);
        let (md, _, body) = req.into_parts();
        arca_catalog::blocking(move || {
            let p = me
                .principal(&md)
                .map_err(|s| refused(name, &remote, "", s))?;
            let who = p.name().to_string();
            f(&me, p, remote.clone(), body).map_err(|s| refused(name, &remote, &who, s))
        })
        .await
        .map(Response::new)
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for AgentService {
    async fn begin(
        &self,
        req: Request<pb::BeginRequest>,
    ) -> Result<Response<pb::BeginReply>, Status> {
        self.call("Begin", req, |me, p, remote, r| {
            me.begin_blocking(p, remote, r)
        })
        .await
    }

    async fn have(&self, req: Request<pb::HaveRequest>) -> Result<Response<pb::HaveReply>, Status> {
        self.call("Have", req, |me, p, _, r| {
            let s = me.session(&p, &r.session)?;
            let ids = r
                .ids
                .iter()
                .map(|b| chunk_id(b))
                .collect::<Result<Vec<_>, _>>()?;
            let missing = s.have(&ids).map_err(ingest_status)?;
            Ok(pb::HaveReply { missing })
        })
        .await
    }

    async fn put(
        &self,
        req: Request<Streaming<pb::PutRequest>>,
    ) -> Result<Response<pb::PutReply>, Status> {
        let rt = tokio::runtime::Handle::current();
        self.call("Put", req, move |me, p, _, mut stream| {
            let first = rt
                .block_on(stream.message())?
                .ok_or_else(|| Status::invalid_argument("an empty upload"))?;
            let s = me.session(&p, &first.session)?;
            let mut queue: std::collections::VecDeque<pb::Chunk> = first.chunks.into();
            let id = s.id.clone();
            let mut next = || -> Result<Option<Upload>, Status> {
                loop {
                    if let Some(c) = queue.pop_front() {
                        return Ok(Some(Upload {
                            id: chunk_id(&c.id)?,
                            length: c.length,
                            compressed: c.data,
                        }));
                    }
                    match rt.block_on(stream.message())? {
                        None => return Ok(None),
                        Some(m) if !m.session.is_empty() && m.session != id => {
                            return Err(Status::invalid_argument("one upload names two sessions"))
                        }
                        Some(m) => queue.extend(m.chunks),
                    }
                }
            };
            match s.put(&mut next) {
                Ok(chunks) => Ok(pb::PutReply {
                    chunks,
                    bytes: s.bytes_received.load(Ordering::Relaxed),
                }),
                Err(e) => {
                    // A chunk that does not fit, or the agent gone
                    // mid-upload: the session ends, nothing is listed.
                    me.fail(&s, format!("upload: {e}"), false);
                    Err(ingest_status(e))
                }
            }
        })
        .await
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        self.call("Commit", req, |me, p, _, r| me.commit_blocking(p, r))
            .await
    }

    async fn sync(&self, req: Request<pb::SyncRequest>) -> Result<Response<pb::SyncReply>, Status> {
        self.call("Sync", req, |me, p, remote, r| {
            me.sync_blocking(p, remote, r)
        })
        .await
    }

    async fn next(&self, req: Request<pb::NextRequest>) -> Result<Response<pb::NextReply>, Status> {
        self.call("Next", req, |me, p, _, r| me.next_blocking(p, r))
            .await
    }

    async fn abort(
        &self,
        req: Request<pb::AbortRequest>,
    ) -> Result<Response<pb::AbortReply>, Status> {
        self.call("Abort", req, |me, p, _, r| {
            let s = me.session(&p, &r.session)?;
            let why: String = r.reason.chars().take(1024).collect();
            me.fail(&s, format!("the agent gave up: {why}"), false);
            Ok(pb::AbortReply {})
        })
        .await
    }
}
