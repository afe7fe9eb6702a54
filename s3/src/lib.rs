//! A read-only S3 gateway over restore points: every source is a bucket,
//! every restore point a folder of it, read through the one file view of
//! restore points ([`arca_frontends::tree`]).
//!
//! - Buckets: one per source, named by [`names::bucket_names`].
//! - Keys: `<RESTORE-POINT-ID>/<path>` (the full id as the API shows it)
//!   and `latest/<path>` (the newest restore point of the source).
//! - Only regular files are objects. Directories are prefixes; symlinks,
//!   devices, fifos and sockets are neither listed nor readable
//!   (`NoSuchKey`): a symlink is not followed, so no key reads outside of
//!   what it names. Names that are not UTF-8 cannot be S3 keys and are
//!   left out of listings.
//! - Operations: ListBuckets, ListObjectsV2, ListObjects (v1), HeadBucket,
//!   HeadObject, GetObject (ranges, conditional requests),
//!   GetBucketLocation. Every other operation (writes, deletes, multipart
//!   uploads, ACLs, bucket settings) is `AccessDenied`.
//! - Authentication: AWS Signature V4 (s3s), with the keys of a
//!   [`Backend`]: the server's per-user keys, or one key pair for
//!   `arca serve s3`. The key is looked up on every request, so a revoked
//!   key or a disabled user is refused at once.

mod gateway;
mod list;
pub mod local;
pub mod names;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use arca_frontends::tree::FileTree;

pub use gateway::Gateway;

/// What the gateway says about a failed backend call.
#[derive(Debug)]
pub enum BackendError {
    /// The key may not see this bucket, or there is no such bucket.
    NoSuchBucket,
    /// The key is unknown, revoked, or its user disabled.
    Denied(String),
    /// A restore point or path is not there.
    NotFound(String),
    /// The data is on a remote node that is offline or not answering:
    /// `ServiceUnavailable` (503; clients retry it).
    Unavailable(String),
    /// Anything else (catalog, datastore).
    Internal(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::NoSuchBucket => f.write_str("no such bucket"),
            BackendError::Denied(m)
            | BackendError::NotFound(m)
            | BackendError::Unavailable(m)
            | BackendError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BackendError {}

/// An access key: its secret and the user it acts as.
#[derive(Clone)]
pub struct KeyInfo {
    pub secret: String,
    /// The user's name (for logs).
    pub user: String,
}

/// A bucket a key may read.
#[derive(Clone, Debug)]
pub struct BucketInfo {
    pub name: String,
    /// When the source was created (or its first restore point), in
    /// nanoseconds since the Unix epoch.
    pub created_ns: i64,
}

/// A restore point of a bucket.
#[derive(Clone, Debug)]
pub struct PointInfo {
    /// The full id, as the API shows it.
    pub id: String,
    /// When it was taken, in nanoseconds since the Unix epoch.
    pub time_ns: i64,
}

/// Where the gateway gets keys, buckets and trees. Calls block (catalog,
/// datastore): the gateway makes them off the async threads.
pub trait Backend: Send + Sync + 'static {
    /// The key `access_key`, if it exists, is not revoked and its user is
    /// enabled.
    fn key(&self, access_key: &str) -> Result<Option<KeyInfo>, BackendError>;

    /// The buckets `access_key` may read, in name order.
    fn buckets(&self, access_key: &str) -> Result<Vec<BucketInfo>, BackendError>;

    /// The restore points of `bucket`, oldest first; `NoSuchBucket` when
    /// the key may not read it.
    fn points(&self, access_key: &str, bucket: &str) -> Result<Vec<PointInfo>, BackendError>;

    /// The file tree of restore point `id` of `bucket`.
    fn tree(
        &self,
        access_key: &str,
        bucket: &str,
        id: &str,
    ) -> Result<Arc<dyn FileTree>, BackendError>;
}

/// Serve the gateway on `listener` until the task is dropped. One log
/// record per connection (peer, requests, errors) and per request.
pub async fn serve(listener: tokio::net::TcpListener, backend: Arc<dyn Backend>) {
    let gateway = Gateway::new(backend);
    let service = gateway.service();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "s3: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(connection(stream, peer, service));
    }
}

async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, service: service::Logged) {
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(stream);
    let (service, requests) = service.for_connection(peer);
    let r = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
    let n = requests.load(std::sync::atomic::Ordering::Relaxed);
    match r {
        Ok(()) => tracing::info!(%peer, requests = n, "s3: connection closed"),
        Err(e) => tracing::info!(%peer, requests = n, error = %e, "s3: connection ended"),
    }
}
