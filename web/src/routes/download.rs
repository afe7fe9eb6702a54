//! `GET /api/v1/restore-points/{id}/files?path=P`: download a file of a
//! restore point (ranges, conditional requests, HEAD), or a directory as
//! a zip or tar archive ([`archive`]).
//!
//! Everything is read through the restore point's file tree
//! ([`crate::browse::Browse::file_tree`]) on the blocking pool and sent
//! through a bounded channel as the response body, so memory does not
//! depend on the size of the file or folder. A restore point never
//! changes: the `ETag` is a hash of its id and the path, strong.
//!
//! Only a single range is served (`bytes=a-b`, `a-`, `-n`); a request for
//! several ranges gets the whole file (200), as RFC 9110 allows.

mod archive;
mod headers;
mod zipstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arca_frontends::tree::{Attr, FileReader, FileTree, Kind, TreePath};
use arca_model::api;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{Action, Principal};
use crate::browse::tree_error;
use crate::error::{ApiError, ApiResult};
use crate::routes::restore_points::restore_point;
use crate::AppState;

use headers::{Conditional, Range};

/// Largest piece read from a file at once (and sent as one body frame).
const PIECE: usize = 1 << 20;
/// Pieces queued between the reading thread and the connection.
const QUEUE: usize = 4;

/// For the fuzz target: the download's header logic on arbitrary input.
/// `data` is `Range`, `If-Range`, `If-Match`, `If-None-Match`,
/// `If-Modified-Since`, `If-Unmodified-Since` values, one a line; the
/// answer must be a range inside a file of `size` bytes, and the
/// `Content-Disposition` of any name must be a valid header value.
pub fn fuzz_headers(data: &[u8], size: u64) {
    let names = [
        header::RANGE,
        header::IF_RANGE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ];
    let mut h = HeaderMap::new();
    for (name, line) in names.iter().zip(data.split(|&b| b == b'\n')) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            h.insert(name.clone(), v);
        }
    }
    let tag = headers::etag("rp", "path");
    let _ = headers::conditional(&h, &tag, 1_700_000_000);
    match headers::range(&h, &tag, 1_700_000_000, size) {
        Range::Part(a, b) => assert!(a <= b && b < size, "{a}-{b} of {size}"),
        Range::Unsatisfiable | Range::Whole => {}
    }
    let name = String::from_utf8_lossy(data);
    assert!(HeaderValue::from_str(&headers::disposition(&name)).is_ok());
    let _ = headers::content_type(&name);
}

/// What a download is about, for its log record.
#[derive(Clone)]
struct Audit {
    user: String,
    restore_point: String,
    path: String,
}

impl Audit {
    /// The one log record of a download: who, what, the status answered
    /// and the bytes of the body actually handed to the connection.
    fn log(&self, status: u16, bytes: u64, error: Option<&str>) {
        if let Some(error) = error {
            tracing::warn!(
                target: "arca::download",
                user = %self.user,
                restore_point = %self.restore_point,
                path = %self.path,
                status,
                bytes,
                error,
                "download failed"
            );
        } else {
            tracing::info!(
                target: "arca::download",
                user = %self.user,
                restore_point = %self.restore_point,
                path = %self.path,
                status,
                bytes,
                "download"
            );
        }
    }
}

/// What the blocking part of a request found.
struct Found {
    tree: Arc<dyn FileTree>,
    path: TreePath,
    attr: Attr,
    /// A file, opened (on the blocking pool: a remote node's tree asks
    /// its node).
    reader: Option<Arc<dyn FileReader>>,
    rp: arca_catalog::RestorePoint,
}

pub async fn files(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<api::FilesQuery>, QueryRejection>,
) -> Response {
    // As asked, until the restore point and path are known.
    let mut audit = Audit {
        user: p.name().to_string(),
        restore_point: id.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
        path: q
            .as_ref()
            .ok()
            .and_then(|q| q.0.path.clone())
            .unwrap_or_default(),
    };
    match prepare(&s, p, id, q).await {
        Ok((found, format)) => {
            audit.restore_point = found.rp.id.to_string();
            audit.path = found.path.to_string();
            answer(found, format, &method, &headers, audit)
        }
        Err(e) => {
            audit.log(e.status.as_u16(), 0, Some(&e.message));
            e.into_response()
        }
    }
}

/// Check the request, find the restore point the caller may read and
/// stat the path in its tree.
async fn prepare(
    s: &AppState,
    p: Principal,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<api::FilesQuery>, QueryRejection>,
) -> ApiResult<(Found, Option<api::ArchiveFormat>)> {
    let Path(id) = id?;
    let Query(q) = q?;
    let raw = q.path.unwrap_or_default();
    let path = TreePath::parse(&raw).map_err(|e| ApiError::from(tree_error(e)))?;
    let format = q.format;
    let found = s
        .call(move |s| {
            let rp = restore_point(s, &p, &id)?;
            p.require(Action::Read, Some(rp.project_id))?;
            let b = s
                .browse
                .clone()
                .ok_or_else(|| ApiError::conflict("this server cannot read restore points"))?;
            let ds = s.catalog.datastore(rp.datastore_id)?;
            let tree = b.file_tree(&ds, rp.id)?;
            let attr = tree.stat(&path).map_err(tree_error)?;
            let reader = match attr.kind {
                Kind::File => Some(tree.open(&path).map_err(tree_error)?),
                _ => None,
            };
            Ok(Found {
                tree,
                path,
                attr,
                reader,
                rp,
            })
        })
        .await?;
    Ok((found, format))
}

fn answer(
    found: Found,
    format: Option<api::ArchiveFormat>,
    method: &Method,
    headers: &HeaderMap,
    audit: Audit,
) -> Response {
    let refuse = |e: ApiError| {
        audit.log(e.status.as_u16(), 0, Some(&e.message));
        e.into_response()
    };
    match (found.attr.kind, format) {
        (Kind::Dir, Some(f)) => {
            let name = archive::file_name(&found.rp, &found.path, f);
            let mut r = Response::new(Body::empty());
            set(&mut r, header::CONTENT_TYPE, archive::content_type(f));
            set_disposition(&mut r, &name);
            if method == Method::HEAD {
                audit.log(200, 0, None);
                return r;
            }
            let (tx, body) = channel(audit.clone());
            let tree = found.tree.clone();
            let path = found.path.clone();
            let top = name
                .trim_end_matches(&format!(".{}", f.as_str())[..])
                .to_string();
            tokio::task::spawn_blocking(move || {
                let r = archive::write(f, tree.as_ref(), &path, &top, &tx.sender);
                tx.finish(200, r.err().map(|e| e.to_string()));
            });
            *r.body_mut() = body;
            r
        }
        (Kind::Dir, None) => refuse(ApiError::conflict(format!(
            "{} is a directory: choose an archive with format=zip or format=tar",
            display(&found.path)
        ))),
        (Kind::File, _) => file(found, method, headers, audit),
        (k, _) => refuse(ApiError::conflict(format!(
            "{} is a {}, not a file or directory",
            display(&found.path),
            kind_name(k)
        ))),
    }
}

/// A file: conditions, range, then the body.
fn file(found: Found, method: &Method, headers: &HeaderMap, audit: Audit) -> Response {
    let size = found.attr.size;
    let etag = headers::etag(&found.rp.id.to_string(), &found.path.to_string());
    let mtime = found.attr.mtime_ns.div_euclid(1_000_000_000);
    let mut r = Response::new(Body::empty());
    set(&mut r, header::ETAG, &etag);
    if let Some(d) = headers::http_date(mtime) {
        set(&mut r, header::LAST_MODIFIED, &d);
    }
    set(&mut r, header::ACCEPT_RANGES, "bytes");
    match headers::conditional(headers, &etag, mtime) {
        Conditional::NotModified => {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            audit.log(304, 0, None);
            return r;
        }
        Conditional::Failed => {
            let e = ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the file does not match If-Match / If-Unmodified-Since",
            );
            audit.log(412, 0, Some(&e.message));
            let mut e = e.into_response();
            e.headers_mut().extend(r.headers().clone());
            return e;
        }
        Conditional::Go => {}
    }
    let name = found
        .path
        .name()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_else(|| "file".to_string());
    set(&mut r, header::CONTENT_TYPE, headers::content_type(&name));
    set_disposition(&mut r, &name);
    let (start, len) = match headers::range(headers, &etag, mtime, size) {
        Range::Whole => (0, size),
        Range::Part(a, b) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(
                &mut r,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{b}/{size}"),
            );
            (a, b - a + 1)
        }
        Range::Unsatisfiable => {
            let e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range is outside the file ({size} bytes)"),
            );
            audit.log(416, 0, Some(&e.message));
            let mut e = e.into_response();
            set(&mut e, header::CONTENT_RANGE, &format!("bytes */{size}"));
            set(&mut e, header::ACCEPT_RANGES, "bytes");
            return e;
        }
    };
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    let status = r.status().as_u16();
    if method == Method::HEAD || len == 0 {
        audit.log(status, 0, None);
        return r;
    }
    let Some(reader) = found.reader else {
        let e = ApiError::internal(format!("{} was not opened", display(&found.path)));
        audit.log(e.status.as_u16(), 0, Some(&e.message));
        return e.into_response();
    };
    let (tx, body) = channel(audit);
    tokio::task::spawn_blocking(move || {
        let r = send_range(reader.as_ref(), start, len, &tx.sender);
        tx.finish(status, r.err());
    });
    // The length is set: the body must not change it.
    let headers = std::mem::take(r.headers_mut());
    let mut out = Response::new(body);
    *out.status_mut() = r.status();
    *out.headers_mut() = headers;
    out
}

/// Read `[start, start + len)` of `f` in pieces into the channel.
fn send_range(f: &dyn FileReader, start: u64, len: u64, tx: &Sender) -> Result<(), String> {
    let mut off = start;
    let end = start + len;
    while off < end {
        let n = ((end - off).min(PIECE as u64)) as usize;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            let k = f
                .read_at(off + got as u64, &mut buf[got..])
                .map_err(|e| e.to_string())?;
            if k == 0 {
                return Err(format!("the file ended at {} bytes", off + got as u64));
            }
            got += k;
        }
        tx.send(Bytes::from(buf))?;
        off += n as u64;
    }
    Ok(())
}

/// The sending half of a body: counts the bytes handed over.
pub(super) struct Sender {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    sent: Arc<AtomicU64>,
}

impl Sender {
    /// Queue a piece; waits while the queue is full. An error when the
    /// client went away.
    pub(super) fn send(&self, b: Bytes) -> Result<(), String> {
        let n = b.len() as u64;
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| "the client closed the connection".to_string())?;
        self.sent.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// The producer's end of a body: the sender and the download's record,
/// written once the producer is done.
struct Producer {
    sender: Sender,
    audit: Audit,
}

impl Producer {
    /// Log the download; on an error, end the body with it (the client
    /// sees the connection fail rather than a short file).
    fn finish(self, status: u16, error: Option<String>) {
        let bytes = self.sender.sent.load(Ordering::Relaxed);
        self.audit.log(status, bytes, error.as_deref());
        if let Some(e) = error {
            let _ = self.sender.tx.blocking_send(Err(std::io::Error::other(e)));
        }
    }
}

/// A bounded channel and the response body that drains it.
fn channel(audit: Audit) -> (Producer, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let sender = Sender {
        tx,
        sent: Arc::default(),
    };
    (Producer { sender, audit }, Body::from_stream(stream))
}

fn set(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn set_disposition(r: &mut Response, name: &str) {
    set(r, header::CONTENT_DISPOSITION, &headers::disposition(name));
}

fn display(p: &TreePath) -> String {
    format!("/{p}")
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        Kind::Fifo => "fifo",
        Kind::CharDevice => "character device",
        Kind::BlockDevice => "block device",
        Kind::Socket => "socket",
    }
}
