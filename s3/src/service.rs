//! The HTTP side of the gateway: key lookup (`S3Auth`), the read-only
//! rule (`S3Access`) and one log record per request.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::service::S3Service;
use s3s::{s3_error, S3Result};

use crate::gateway::{backend_error, blocking, Inner};

/// The operations a key may call; everything else is `AccessDenied`.
const READ_OPS: &[&str] = &[
    "ListBuckets",
    "ListObjects",
    "ListObjectsV2",
    "HeadBucket",
    "HeadObject",
    "GetObject",
    "GetBucketLocation",
];

/// Looks up keys in the backend, on every request.
pub(crate) struct Auth(pub(crate) Arc<Inner>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let backend = self.0.backend.clone();
        let ak = access_key.to_string();
        let key = blocking(move || backend.key(&ak))
            .await?
            .map_err(backend_error)?;
        match key {
            Some(k) => {
                if let Ok(mut users) = self.0.users.lock() {
                    if users.len() > 10_000 {
                        users.clear();
                    }
                    users.insert(access_key.to_string(), k.user);
                }
                Ok(SecretKey::from(k.secret))
            }
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key is unknown or revoked"
            )),
        }
    }
}

/// What the request log record says, filled in as the request goes.
#[derive(Default)]
struct RequestLog {
    op: String,
    key_id: String,
    user: String,
    bucket: String,
    key: String,
}

type LogSlot = Arc<Mutex<RequestLog>>;

/// The read-only rule; also notes the operation for the log.
pub(crate) struct Access(pub(crate) Arc<Inner>);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_string();
        let key_id = cx.credentials().map(|c| c.access_key.clone());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (String::new(), String::new()),
            S3Path::Bucket { bucket } => (bucket.to_string(), String::new()),
            S3Path::Object { bucket, key } => (bucket.to_string(), key.to_string()),
        };
        if let Some(slot) = cx.extensions_mut().get::<LogSlot>() {
            if let Ok(mut l) = slot.lock() {
                l.op.clone_from(&op);
                l.bucket = bucket;
                l.key = key;
                if let Some(k) = &key_id {
                    l.key_id.clone_from(k);
                    if let Ok(users) = self.0.users.lock() {
                        l.user = users.get(k).cloned().unwrap_or_default();
                    }
                }
            }
        }
        if key_id.is_none() {
            return Err(s3_error!(AccessDenied, "a signed request is needed"));
        }
        if !READ_OPS.contains(&op.as_str()) {
            return Err(s3_error!(
                AccessDenied,
                "restore points are read-only: {op} is not allowed"
            ));
        }
        Ok(())
    }
}

/// The s3s service with one log record per request.
#[derive(Clone)]
pub(crate) struct Logged {
    pub(crate) s3: S3Service,
    pub(crate) requests: Arc<AtomicU64>,
    pub(crate) peer: Option<SocketAddr>,
}

impl Logged {
    /// This service for one connection from `peer`, and its request
    /// counter.
    pub(crate) fn for_connection(&self, peer: SocketAddr) -> (Logged, Arc<AtomicU64>) {
        let requests = Arc::new(AtomicU64::new(0));
        (
            Logged {
                s3: self.s3.clone(),
                requests: requests.clone(),
                peer: Some(peer),
            },
            requests,
        )
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Logged {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let slot = LogSlot::default();
        req.extensions_mut().insert(slot.clone());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let s3 = self.s3.clone();
        let peer = self.peer;
        Box::pin(async move {
            let r = hyper::service::Service::call(&s3, req).await;
            let l = slot.lock().map(|l| {
                (
                    l.op.clone(),
                    l.key_id.clone(),
                    l.user.clone(),
                    l.bucket.clone(),
                    l.key.clone(),
                )
            });
            let (op, key_id, user, bucket, key) = l.unwrap_or_default();
            let peer = peer.map(|p| p.to_string()).unwrap_or_default();
            match &r {
                Ok(resp) => {
                    let bytes = resp
                        .headers()
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    tracing::info!(
                        %peer, %method, %path, %op, %key_id, %user, %bucket, %key,
                        status = resp.status().as_u16(), bytes, "s3: request"
                    );
                }
                Err(e) => tracing::warn!(
                    %peer, %method, %path, %op, %key_id, %user, %bucket, %key,
                    error = ?e, "s3: request failed"
                ),
            }
            r
        })
    }
}
