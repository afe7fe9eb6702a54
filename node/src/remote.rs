//! The node's side of the node protocol over gRPC (tonic): [`Remote`], the
//! [`Coordinator`] of an `arca node`, and the client it uses. The server's
//! side is arca-server's `NodeService`; docs/node-protocol.md explains the
//! calls. Every call carries the node's token (`authorization: Bearer …`).

use std::time::Duration;

use arca_catalog::{ExportId, LogLevel, NodeId, TaskId, TaskState};
use arca_proto::{convert, pb, ExportSpec, Finished, Leased};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Response, Status};

use crate::coordinator::Coordinator;

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
    Ok(pb::node_client::NodeClient::with_interceptor(
        channel(url, ca_pem, Some(Duration::from_secs(30)))?,
        auth(token)?,
    ))
}

/// The token as the interceptor that adds it to every call.
pub fn auth(token: &str) -> Result<Auth, String> {
    let auth: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| "the token has characters a header cannot carry".to_string())?;
    Ok(Auth(auth))
}

/// A lazily connected channel to `url` (http:// or https://); `ca_pem`
/// trusts a self-signed server certificate, else the system's roots.
/// `timeout` bounds each call (None: an upload stream may take hours).
pub fn channel(
    url: &str,
    ca_pem: Option<&[u8]>,
    timeout: Option<Duration>,
) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let mut ep = Endpoint::from_shared(url.trim_end_matches('/').to_string())
        .map_err(|e| format!("server URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if let Some(t) = timeout {
        ep = ep.timeout(t);
    }
    if url.starts_with("https://") {
        let tls = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        ep = ep.tls_config(tls).map_err(|e| format!("TLS: {e}"))?;
    } else if !url.starts_with("http://") {
        return Err(format!("server URL {url:?}: use http:// or https://"));
    }
    Ok(ep.connect_lazy())
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
    node_id: NodeId,
    /// The attempts of the tasks this node leased.
    held: crate::leases::Held,
}

impl Remote {
    pub fn new(rt: tokio::runtime::Handle, client: Client, node_id: NodeId) -> Remote {
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

    /// Tell the server this node stops (after its tasks were reported),
    /// so it goes offline at once; gives up after `timeout`.
    pub fn leave(&self, timeout: Duration) -> Result<(), Status> {
        let mut c = self.client.clone();
        self.rt
            // The timer is made inside the runtime, not on this thread.
            .block_on(async { tokio::time::timeout(timeout, c.leave(pb::LeaveRequest {})).await })
            .map_err(|_| Status::deadline_exceeded("the server did not answer"))?
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

impl Coordinator for Remote {
    fn node_id(&self) -> NodeId {
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
            .map(convert::export_from_pb)
            .collect::<Result<_, String>>()?;
        Ok((r.generation, specs))
    }

    fn export_state(&self, id: ExportId, r: Result<String, String>) -> Result<(), String> {
        let (ok, address, error) = match r {
            Ok(a) => (true, a, String::new()),
            Err(e) => (false, String::new(), e),
        };
        let mut c = self.client.clone();
        self.rt
            .block_on(c.export_state(pb::ExportStateRequest {
                export_id: id.get(),
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
                let id = TaskId(t.id);
                self.held.hold(id, t.attempt);
                match convert::leased_from_pb(t, self.node_id) {
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

    fn progress(&self, task_id: TaskId, done: i64, total: i64) -> Result<bool, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| crate::leases::not_held(task_id))?;
        let mut c = self.client.clone();
        self.rt
            .block_on(c.progress(pb::ProgressRequest {
                task_id: task_id.get(),
                bytes_done: done,
                bytes_total: total,
                attempt: lease.attempt,
            }))
            .map(|r| r.into_inner().cancel)
            .map_err(status_msg)
    }

    fn log(&self, task_id: TaskId, level: LogLevel, message: &str) {
        let attempt = self
            .held
            .lease(self.node_id, task_id)
            .map_or(0, |l| l.attempt);
        let mut c = self.client.clone();
        let r = self.rt.block_on(c.log(pb::LogRequest {
            task_id: task_id.get(),
            level: convert::log_level_to_pb(level) as i32,
            message: message.to_string(),
            attempt,
        }));
        if let Err(e) = r {
            // Kept here at least: the server refused or could not be reached.
            tracing::warn!(task = task_id.get(), level = %level, message, error = %status_msg(e), "task log not recorded by the server");
        }
    }

    fn finish(&self, task_id: TaskId, f: Finished) -> Result<TaskState, String> {
        let lease = self
            .held
            .lease(self.node_id, task_id)
            .ok_or_else(|| crate::leases::not_held(task_id))?;
        self.held.release(task_id);
        let req = convert::finished_to_pb(task_id, lease.attempt, f);
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
                    return convert::task_state_from_pb(r.into_inner().state)
                        .map_err(|e| format!("the server answered: {e}"));
                }
                Err(s) if s.code() == tonic::Code::Unavailable => last = status_msg(s),
                Err(s) => return Err(status_msg(s)),
            }
        }
        Err(last)
    }
}
