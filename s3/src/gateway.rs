//! The S3 operations (s3s's `S3` trait) over a [`Backend`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use arca_frontends::tree::{Attr, FileReader, FileTree, Kind, TreeError, TreePath};
use bytes::Bytes;
use s3s::dto::{
    Bucket, CommonPrefix, ETag, ETagCondition, EncodingType, GetBucketLocationInput,
    GetBucketLocationOutput, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput,
    HeadObjectInput, HeadObjectOutput, ListBucketsInput, ListBucketsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, Object, ObjectStorageClass,
    StreamingBlob, Timestamp,
};
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};

use crate::list::{self, Item, ListError, RootEntry};
use crate::names::Cursor;
use crate::service::Logged;
use crate::{Backend, BackendError};

/// Bytes read from a file per step of a download.
const READ_SIZE: usize = 1 << 20;

/// Most keys in one listing page (S3's limit).
const MAX_KEYS: i32 = 1000;

/// The S3 gateway over a [`Backend`].
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) backend: Arc<dyn Backend>,
    /// The user of each key seen (for logs).
    pub(crate) users: Mutex<HashMap<String, String>>,
}

impl Gateway {
    /// A gateway over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                backend,
                users: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The HTTP service: SigV4, the read-only rule, these operations,
    /// one log record per request.
    pub(crate) fn service(&self) -> Logged {
        let mut b = S3ServiceBuilder::new(self.clone());
        b.set_auth(crate::service::Auth(self.inner.clone()));
        b.set_access(crate::service::Access(self.inner.clone()));
        Logged {
            s3: b.build(),
            requests: Arc::new(AtomicU64::new(0)),
            peer: None,
        }
    }
}

/// Run a blocking backend or tree call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> S3Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| s3_error!(InternalError, "a worker failed: {e}"))
}

pub(crate) fn backend_error(e: BackendError) -> S3Error {
    match e {
        BackendError::NoSuchBucket => s3_error!(NoSuchBucket, "no such bucket"),
        BackendError::Denied(m) => S3Error::with_message(S3ErrorCode::AccessDenied, m),
        BackendError::NotFound(m) => S3Error::with_message(S3ErrorCode::NoSuchKey, m),
        BackendError::Unavailable(m) => S3Error::with_message(S3ErrorCode::ServiceUnavailable, m),
        BackendError::Internal(m) => S3Error::with_message(S3ErrorCode::InternalError, m),
    }
}

fn tree_error(e: TreeError) -> S3Error {
    match e {
        TreeError::Invalid(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        TreeError::NotFound(m)
        | TreeError::NotADirectory(m)
        | TreeError::IsADirectory(m)
        | TreeError::WrongKind(m) => S3Error::with_message(S3ErrorCode::NoSuchKey, m),
        TreeError::Io(m) => S3Error::with_message(S3ErrorCode::InternalError, m),
        TreeError::Unavailable(m) => S3Error::with_message(S3ErrorCode::ServiceUnavailable, m),
    }
}

fn access_key<T>(req: &S3Request<T>) -> S3Result<String> {
    req.credentials
        .as_ref()
        .map(|c| c.access_key.clone())
        .ok_or_else(|| s3_error!(AccessDenied, "a signed request is needed"))
}

/// The ETag of `path` in restore point `id`: a hash of both (a restore
/// point never changes, so neither does the file). 40 hex digits, so
/// that no client takes it for the MD5 of the content (32 digits), which
/// the gateway does not know without reading the whole file.
fn etag(id: &str, path: &str) -> ETag {
    let mut h = blake3::Hasher::new();
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(path.as_bytes());
    ETag::Strong(hex::encode(&h.finalize().as_bytes()[..20]))
}

fn timestamp(ns: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64))
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// A Content-Type from the file name's extension.
fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "md" | "conf" | "cfg" | "ini" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A key resolved to a file of a restore point.
struct Resolved {
    tree: Arc<dyn FileTree>,
    path: TreePath,
    attr: Attr,
    etag: ETag,
    last_modified: Timestamp,
}

/// The conditional request headers of a GetObject or HeadObject.
struct Conditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

fn matches(c: &ETagCondition, etag: &ETag) -> bool {
    match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag.value(),
    }
}

impl Conditions {
    /// RFC 9110's order: If-Match, If-Unmodified-Since (412), then
    /// If-None-Match, If-Modified-Since (304).
    fn check(&self, r: &Resolved) -> S3Result<()> {
        let mtime = seconds(&r.last_modified);
        let precondition = match (&self.if_match, &self.if_unmodified_since) {
            (Some(c), _) => matches(c, &r.etag),
            (None, Some(t)) => mtime <= seconds(t),
            (None, None) => true,
        };
        if !precondition {
            return Err(s3_error!(PreconditionFailed, "the object does not match"));
        }
        let modified = match (&self.if_none_match, &self.if_modified_since) {
            (Some(c), _) => !matches(c, &r.etag),
            (None, Some(t)) => mtime > seconds(t),
            (None, None) => true,
        };
        if !modified {
            let mut e = s3_error!(NotModified);
            let mut h = http::HeaderMap::new();
            if let Ok(v) = r.etag.to_http_header() {
                h.insert(http::header::ETAG, v);
            }
            e.set_headers(h);
            return Err(e);
        }
        Ok(())
    }
}

impl Gateway {
    /// The file `key` of `bucket` names: `<id>/<path>` or
    /// `latest/<path>`. Directories and other non-files are `NoSuchKey`.
    async fn resolve(&self, access_key: String, bucket: String, key: String) -> S3Result<Resolved> {
        let (point, path) = key
            .split_once('/')
            .ok_or_else(|| s3_error!(NoSuchKey, "a key is <restore point id or latest>/<path>"))?;
        let path = TreePath::parse(path).map_err(tree_error)?;
        if path.is_root() {
            return Err(s3_error!(NoSuchKey, "a restore point is not an object"));
        }
        let point = point.to_string();
        let backend = self.inner.backend.clone();
        blocking(move || {
            let points = backend
                .points(&access_key, &bucket)
                .map_err(backend_error)?;
            let id = if point == "latest" {
                points.last()
            } else {
                points.iter().find(|p| p.id == point)
            }
            .map(|p| p.id.clone())
            .ok_or_else(|| s3_error!(NoSuchKey, "no restore point {point} in {bucket}"))?;
            let tree = backend
                .tree(&access_key, &bucket, &id)
                .map_err(backend_error)?;
            let attr = tree.stat(&path).map_err(tree_error)?;
            if attr.kind != Kind::File {
                return Err(s3_error!(NoSuchKey, "{path} is not a regular file"));
            }
            Ok(Resolved {
                etag: etag(&id, &path.to_string()),
                last_modified: timestamp(attr.mtime_ns),
                tree,
                path,
                attr,
            })
        })
        .await?
    }

    /// One page of a listing, shared by both versions of ListObjects.
    async fn page(&self, q: PageQuery) -> S3Result<Page> {
        let backend = self.inner.backend.clone();
        blocking(move || {
            let mut q = q;
            let cursor = q.cursor.take();
            let points = backend
                .points(&q.access_key, &q.bucket)
                .map_err(backend_error)?;
            let latest = points.last().map(|p| p.id.clone());
            let mut names: Vec<(String, String)> = points
                .iter()
                .map(|p| (p.id.clone(), p.id.clone()))
                .collect();
            names.sort();
            if let Some(l) = &latest {
                names.push(("latest".into(), l.clone()));
            }
            let roots: Vec<RootEntry> = names
                .into_iter()
                .map(|(name, id)| {
                    let backend = backend.clone();
                    let (ak, bucket) = (q.access_key.clone(), q.bucket.clone());
                    RootEntry {
                        name,
                        open: Box::new(move || backend.tree(&ak, &bucket, &id)),
                    }
                })
                .collect();
            let mut page = Page::default();
            if q.max_keys == 0 {
                return Ok(page);
            }
            let mut count = 0;
            let next = list::list(&roots, &q.prefix, q.delimit, cursor, &mut |item| {
                let key = match &item {
                    Item::Object { key, .. } | Item::Prefix(key) => key,
                };
                if q.start_after.as_deref().is_some_and(|s| key.as_str() <= s) {
                    return true;
                }
                if count >= q.max_keys {
                    return false;
                }
                count += 1;
                page.last = Some(key.clone());
                match item {
                    Item::Object { key, attr } => {
                        let (point, path) = key.split_once('/').unwrap_or_default();
                        let id = if point == "latest" {
                            latest.as_deref().unwrap_or_default()
                        } else {
                            point
                        };
                        let o = Object {
                            e_tag: Some(etag(id, path)),
                            last_modified: Some(timestamp(attr.mtime_ns)),
                            size: Some(attr.size as i64),
                            storage_class: Some(ObjectStorageClass::from_static(
                                ObjectStorageClass::STANDARD,
                            )),
                            key: Some(q.encode(&key)),
                            ..Default::default()
                        };
                        page.contents.push(o);
                    }
                    Item::Prefix(p) => page.prefixes.push(CommonPrefix {
                        prefix: Some(q.encode(&p)),
                    }),
                }
                true
            })
            .map_err(|e| match e {
                ListError::BadToken => {
                    s3_error!(InvalidArgument, "the continuation token is not valid here")
                }
                ListError::Tree(e) => tree_error(e),
                ListError::Backend(e) => backend_error(e),
            })?;
            page.next = next;
            Ok(page)
        })
        .await?
    }
}

/// What one listing page asks for.
struct PageQuery {
    access_key: String,
    bucket: String,
    prefix: String,
    delimit: bool,
    cursor: Option<Cursor>,
    start_after: Option<String>,
    max_keys: i32,
    url_encode: bool,
}

impl PageQuery {
    fn new<T>(
        req: &S3Request<T>,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<i32>,
        encoding: Option<&EncodingType>,
    ) -> S3Result<PageQuery> {
        let delimit = match delimiter {
            None | Some("") => false,
            Some("/") => true,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "this gateway only groups keys at '/'"
                ))
            }
        };
        Ok(PageQuery {
            access_key: access_key(req)?,
            bucket: bucket.to_string(),
            prefix: prefix.unwrap_or_default().to_string(),
            delimit,
            cursor: None,
            start_after: None,
            max_keys: max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS),
            url_encode: encoding.is_some_and(|e| e.as_str() == EncodingType::URL),
        })
    }

    /// A key as the response shows it (`encoding-type=url`: percent
    /// encoded).
    fn encode(&self, key: &str) -> String {
        if self.url_encode {
            url_encode(key)
        } else {
            key.to_string()
        }
    }
}

/// Percent-encode all but unreserved characters and '/'.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Default)]
struct Page {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    next: Option<Cursor>,
    /// The last key or prefix on the page.
    last: Option<String>,
}

/// The bytes `[start, end)` of a file, read ahead on a blocking thread.
struct Download {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl futures::Stream for Download {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

fn download(reader: Arc<dyn FileReader>, start: u64, end: u64) -> StreamingBlob {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut off = start;
        while off < end {
            let mut buf = vec![0u8; (end - off).min(READ_SIZE as u64) as usize];
            let r = match reader.read_at(off, &mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its size",
                )),
                Ok(n) => {
                    buf.truncate(n);
                    off += n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = r.is_err();
            if let Err(e) = &r {
                tracing::warn!(error = %e, offset = off, "s3: download failed");
            }
            if tx.blocking_send(r).is_err() || failed {
                break;
            }
        }
    });
    StreamingBlob::wrap(Download { rx })
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let ak = access_key(&req)?;
        let backend = self.inner.backend.clone();
        let buckets = blocking(move || backend.buckets(&ak))
            .await?
            .map_err(backend_error)?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ns)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let ak = access_key(&req)?;
        let backend = self.inner.backend.clone();
        let bucket = req.input.bucket;
        blocking(move || backend.points(&ak, &bucket))
            .await?
            .map_err(backend_error)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let ak = access_key(&req)?;
        let backend = self.inner.backend.clone();
        let bucket = req.input.bucket;
        blocking(move || backend.points(&ak, &bucket))
            .await?
            .map_err(backend_error)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = &req.input;
        let mut q = PageQuery::new(
            &req,
            &i.bucket,
            i.prefix.as_deref(),
            i.delimiter.as_deref(),
            i.max_keys,
            i.encoding_type.as_ref(),
        )?;
        match &i.continuation_token {
            Some(t) => {
                q.cursor = Some(Cursor::decode(t).ok_or_else(|| {
                    s3_error!(InvalidArgument, "the continuation token is not valid")
                })?)
            }
            None => q.start_after = i.start_after.clone(),
        }
        let (max_keys, url) = (q.max_keys, q.url_encode);
        let page = self.page(q).await?;
        let i = req.input;
        let enc = |s: Option<String>| s.map(|s| if url { url_encode(&s) } else { s });
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(i.prefix).unwrap_or_default()),
            delimiter: enc(i.delimiter),
            start_after: enc(i.start_after),
            max_keys: Some(max_keys),
            key_count: Some((page.contents.len() + page.prefixes.len()) as i32),
            continuation_token: i.continuation_token,
            is_truncated: Some(page.next.is_some()),
            next_continuation_token: page.next.map(|c| c.encode()),
            contents: Some(page.contents),
            common_prefixes: Some(page.prefixes),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let i = &req.input;
        let mut q = PageQuery::new(
            &req,
            &i.bucket,
            i.prefix.as_deref(),
            i.delimiter.as_deref(),
            i.max_keys,
            i.encoding_type.as_ref(),
        )?;
        q.start_after = i.marker.clone().filter(|m| !m.is_empty());
        let (max_keys, url) = (q.max_keys, q.url_encode);
        let page = self.page(q).await?;
        let i = req.input;
        let enc = |s: Option<String>| s.map(|s| if url { url_encode(&s) } else { s });
        let truncated = page.next.is_some();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(i.prefix).unwrap_or_default()),
            delimiter: enc(i.delimiter),
            marker: Some(enc(i.marker).unwrap_or_default()),
            max_keys: Some(max_keys),
            is_truncated: Some(truncated),
            next_marker: if truncated { enc(page.last) } else { None },
            contents: Some(page.contents),
            common_prefixes: Some(page.prefixes),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let ak = access_key(&req)?;
        let i = req.input;
        let r = self.resolve(ak, i.bucket, i.key).await?;
        Conditions {
            if_match: i.if_match,
            if_none_match: i.if_none_match,
            if_modified_since: i.if_modified_since,
            if_unmodified_since: i.if_unmodified_since,
        }
        .check(&r)?;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(r.attr.size as i64),
            content_type: Some(content_type(&r.path.to_string()).into()),
            e_tag: Some(r.etag),
            last_modified: Some(r.last_modified),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let ak = access_key(&req)?;
        let i = req.input;
        let r = self.resolve(ak, i.bucket, i.key).await?;
        Conditions {
            if_match: i.if_match,
            if_none_match: i.if_none_match,
            if_modified_since: i.if_modified_since,
            if_unmodified_since: i.if_unmodified_since,
        }
        .check(&r)?;
        let size = r.attr.size;
        let range = match i.range {
            Some(range) => match range.check(size)? {
                // A suffix range of an empty file is empty.
                x if x.is_empty() => return Err(s3_error!(InvalidRange)),
                x => Some(x),
            },
            None => None,
        };
        let (start, end) = range.as_ref().map_or((0, size), |x| (x.start, x.end));
        let (tree, path) = (r.tree.clone(), r.path.clone());
        let reader = blocking(move || tree.open(&path))
            .await?
            .map_err(tree_error)?;
        Ok(S3Response::new(GetObjectOutput {
            accept_ranges: Some("bytes".into()),
            body: Some(download(reader, start, end)),
            content_length: Some((end - start) as i64),
            content_range: range.map(|x| format!("bytes {}-{}/{size}", x.start, x.end - 1)),
            content_type: Some(content_type(&r.path.to_string()).into()),
            e_tag: Some(r.etag),
            last_modified: Some(r.last_modified),
            ..Default::default()
        }))
    }
}
