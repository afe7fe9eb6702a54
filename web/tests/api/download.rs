//! `GET /api/v1/restore-points/{id}/files`: files with ranges and
//! conditional requests, directories as zip and tar, bad paths, against
//! an in-memory [`MemTree`] (what [`super::browse::Fake`] opens).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use arca_catalog::SourceKind;
use arca_frontends::tree::{
    Attr, Entry, FileReader, FileTree, Kind, Result as TreeResult, TreeError, TreePath,
};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt;

use super::{browse, setup, T};

const MTIME: i64 = 1_700_000_000;

enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    Fifo,
}

/// A small tree: `dir/` (`a`, `b`, `c`, `link` → `a`, `sub/deep`), `big`
/// (3 MiB, more than one piece), `empty`, `ü x.txt`, `fifo`.
pub(crate) struct MemTree(BTreeMap<Vec<u8>, Node>);

/// The bytes of `big`.
pub(crate) fn big() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 17u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

impl MemTree {
    pub(crate) fn sample() -> MemTree {
        let mut m = BTreeMap::new();
        let mut add = |p: &str, n: Node| m.insert(p.as_bytes().to_vec(), n);
        add("", Node::Dir);
        add("dir", Node::Dir);
        add("dir/a", Node::File(b"abc".to_vec()));
        add("dir/b", Node::File(b"bb".to_vec()));
        add("dir/c", Node::File(b"c".to_vec()));
        add("dir/link", Node::Link(b"a".to_vec()));
        add("dir/sub", Node::Dir);
        add("dir/sub/deep", Node::File(b"deep".to_vec()));
        add("big", Node::File(big()));
        add("empty", Node::File(Vec::new()));
        add("ü x.txt", Node::File(b"hello".to_vec()));
        add("fifo", Node::Fifo);
        MemTree(m)
    }

    fn key(p: &TreePath) -> Vec<u8> {
        p.components().join(&b'/')
    }

    fn attr(&self, n: &Node) -> Attr {
        let mut a = Attr::synthetic_file(0, MTIME * 1_000_000_000);
        a.mode = 0o640;
        match n {
            Node::Dir => {
                a.kind = Kind::Dir;
                a.mode = 0o750;
            }
            Node::File(d) => a.size = d.len() as u64,
            Node::Fifo => a.kind = Kind::Fifo,
            Node::Link(t) => {
                a.kind = Kind::Symlink;
                a.size = t.len() as u64;
            }
        }
        a
    }
}

struct Bytes(Vec<u8>);

impl FileReader for Bytes {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> TreeResult<usize> {
        let d = self.0.get(offset as usize..).unwrap_or_default();
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }
}

impl FileTree for MemTree {
    fn stat(&self, path: &TreePath) -> TreeResult<Attr> {
        let k = Self::key(path);
        match self.0.get(&k) {
            Some(n) => Ok(self.attr(n)),
            None => Err(TreeError::NotFound(format!("{path}: no such file"))),
        }
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> TreeResult<()> {
        let k = Self::key(path);
        let prefix = if k.is_empty() {
            Vec::new()
        } else {
            [k.as_slice(), b"/"].concat()
        };
        let children = self.0.iter().filter(|(p, _)| {
            !p.is_empty() && p.starts_with(&prefix) && !p[prefix.len()..].contains(&b'/')
        });
        for (p, n) in children.skip(start as usize) {
            let e = Entry {
                name: p[prefix.len()..].to_vec(),
                attr: self.attr(n),
            };
            if !f(e) {
                break;
            }
        }
        Ok(())
    }

    fn open(&self, path: &TreePath) -> TreeResult<Arc<dyn FileReader>> {
        match self.0.get(&Self::key(path)) {
            Some(Node::File(d)) => Ok(Arc::new(Bytes(d.clone()))),
            Some(Node::Dir) => Err(TreeError::IsADirectory(format!("{path}"))),
            Some(_) => Err(TreeError::WrongKind(format!("{path}"))),
            None => Err(TreeError::NotFound(format!("{path}"))),
        }
    }

    fn read_link(&self, path: &TreePath) -> TreeResult<Vec<u8>> {
        match self.0.get(&Self::key(path)) {
            Some(Node::Link(t)) => Ok(t.clone()),
            _ => Err(TreeError::WrongKind(format!("{path} is not a symlink"))),
        }
    }
}

/// A request with headers; the answer's status, headers and body.
async fn get(
    t: &T,
    method: Method,
    uri: &str,
    token: &str,
    hs: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in hs {
        req = req.header(k, *v);
    }
    let resp = arca_web::app(t.state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

fn files_uri(rp: &str, q: &str) -> String {
    format!("/api/v1/restore-points/{rp}/files?{q}")
}

fn h(hs: &HeaderMap, name: header::HeaderName) -> &str {
    hs.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn a_file_is_downloaded_whole_and_by_ranges() {
    let t = setup();
    let rp = browse::add(&t.state.catalog, "dd", SourceKind::Files);
    let uri = files_uri(&rp, "path=big");
    let (s, hs, body) = get(&t, Method::GET, &uri, &t.admin, &[]).await;
    let data = big();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(h(&hs, header::CONTENT_LENGTH), data.len().to_string());
    assert_eq!(h(&hs, header::CONTENT_TYPE), "application/octet-stream");
    assert_eq!(h(&hs, header::ACCEPT_RANGES), "bytes");
    assert_eq!(
        h(&hs, header::LAST_MODIFIED),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert_eq!(
        h(&hs, header::CONTENT_DISPOSITION),
        "attachment; filename=\"big\"; filename*=UTF-8''big"
    );
    let etag = h(&hs, header::ETAG).to_string();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");

    let n = data.len() as u64;
    for (range, a, b) in [
        ("bytes=0-0", 0, 0),
        (&format!("bytes={}-{}", n - 1, n - 1)[..], n - 1, n - 1),
        ("bytes=-10", n - 10, n - 1),
        ("bytes=1048570-", 1_048_570, n - 1),
        ("bytes=5-1048580", 5, 1_048_580),
    ] {
        let (s, hs, body) = get(&t, Method::GET, &uri, &t.admin, &[(header::RANGE, range)]).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(h(&hs, header::CONTENT_RANGE), format!("bytes {a}-{b}/{n}"));
        assert_eq!(h(&hs, header::CONTENT_LENGTH), (b - a + 1).to_string());
        assert_eq!(body, &data[a as usize..=b as usize], "{range}");
    }
    // Outside the file: 416 with the size.
    let r = format!("bytes={n}-");
    let (s, hs, _) = get(&t, Method::GET, &uri, &t.admin, &[(header::RANGE, &r)]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h(&hs, header::CONTENT_RANGE), format!("bytes */{n}"));
    // Several ranges: the whole file.
    let (s, _, body) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::RANGE, "bytes=0-1,5-6")],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::OK, data.len()));
    // If-Range: the same tag gives the range, another the whole file.
    let (s, _, body) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::RANGE, "bytes=2-3"), (header::IF_RANGE, &etag)],
    )
    .await;
    assert_eq!(
        (s, body),
        (StatusCode::PARTIAL_CONTENT, data[2..4].to_vec())
    );
    let (s, _, body) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[
            (header::RANGE, "bytes=2-3"),
            (header::IF_RANGE, "\"other\""),
        ],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::OK, data.len()));
    // Conditional requests.
    let (s, hs, body) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::IF_NONE_MATCH, &etag)],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(h(&hs, header::ETAG), etag);
    let date = "Tue, 14 Nov 2023 22:13:20 GMT";
    let (s, _, _) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::IF_MODIFIED_SINCE, date)],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, _, _) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::IF_MATCH, "\"nope\"")],
    )
    .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let (s, _, body) = get(
        &t,
        Method::GET,
        &uri,
        &t.admin,
        &[(header::IF_MATCH, &etag)],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::OK, data.len()));
    // HEAD: the headers alone.
    let (s, hs, body) = get(&t, Method::HEAD, &uri, &t.admin, &[]).await;
    assert_eq!((s, body.len()), (StatusCode::OK, 0));
    assert_eq!(h(&hs, header::CONTENT_LENGTH), data.len().to_string());
    // Another restore point, same path: another tag.
    let rp2 = browse::add(&t.state.catalog, "cc", SourceKind::Files);
    let (_, hs, _) = get(
        &t,
        Method::HEAD,
        &files_uri(&rp2, "path=big"),
        &t.admin,
        &[],
    )
    .await;
    assert_ne!(h(&hs, header::ETAG), etag);
}

#[tokio::test]
async fn small_empty_and_unicode_files() {
    let t = setup();
    let rp = browse::add(&t.state.catalog, "dd", SourceKind::Files);
    let (s, hs, body) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "path=/dir/a"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!((s, body), (StatusCode::OK, b"abc".to_vec()));
    assert_eq!(h(&hs, header::CONTENT_LENGTH), "3");
    let (s, hs, body) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "path=empty"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!((s, body.len()), (StatusCode::OK, 0));
    assert_eq!(h(&hs, header::CONTENT_LENGTH), "0");
    let (s, _, _) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "path=empty"),
        &t.admin,
        &[(header::RANGE, "bytes=0-")],
    )
    .await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    let (s, hs, body) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "path=%C3%BC%20x.txt"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!((s, body), (StatusCode::OK, b"hello".to_vec()));
    assert_eq!(h(&hs, header::CONTENT_TYPE), "text/plain; charset=utf-8");
    assert_eq!(
        h(&hs, header::CONTENT_DISPOSITION),
        "attachment; filename=\"_ x.txt\"; filename*=UTF-8''%C3%BC%20x.txt"
    );
}

#[tokio::test]
async fn bad_paths_and_kinds_are_refused() {
    let t = setup();
    let rp = browse::add(&t.state.catalog, "dd", SourceKind::Files);
    let long = format!("path={}", "a/".repeat(2100));
    for (q, want) in [
        ("path=../etc/passwd", StatusCode::BAD_REQUEST),
        ("path=dir/%2e%2e/%2E%2E/x", StatusCode::BAD_REQUEST),
        ("path=dir%2F..%2Fa", StatusCode::BAD_REQUEST),
        ("path=a%00b", StatusCode::BAD_REQUEST),
        (&long[..], StatusCode::BAD_REQUEST),
        ("path=dir&format=rar", StatusCode::BAD_REQUEST),
        ("path=dir&bogus=1", StatusCode::BAD_REQUEST),
        ("path=nope", StatusCode::NOT_FOUND),
        ("path=dir/a/x", StatusCode::NOT_FOUND),
        ("path=dir", StatusCode::CONFLICT),
        ("", StatusCode::CONFLICT),
        ("path=dir/link", StatusCode::CONFLICT),
        ("path=fifo", StatusCode::CONFLICT),
    ] {
        let (s, _, body) = get(&t, Method::GET, &files_uri(&rp, q), &t.admin, &[]).await;
        assert_eq!(s, want, "{q}: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["message"].is_string(), "{q}");
    }
    let (s, _, _) = get(
        &t,
        Method::GET,
        &files_uri(&"0".repeat(64), "path=dir/a"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The names in an archive (directories end in '/').
#[tokio::test]
async fn a_directory_is_a_zip_or_a_tar() {
    let t = setup();
    let rp = browse::add(&t.state.catalog, "dd", SourceKind::Files);
    let short = &rp[..8];

    let (s, hs, body) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "path=dir&format=tar"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h(&hs, header::CONTENT_TYPE), "application/x-tar");
    let top = format!("tree-{short}-dir");
    assert!(
        h(&hs, header::CONTENT_DISPOSITION).contains(&format!("filename*=UTF-8''{top}.tar")),
        "{hs:?}"
    );
    let mut ar = tar::Archive::new(&body[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let hd = e.header().clone();
        assert_eq!(hd.mtime().unwrap(), MTIME as u64, "{path}");
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let kind = hd.entry_type();
        let what = if kind.is_dir() {
            format!("{path} dir {:o}", hd.mode().unwrap())
        } else if kind.is_symlink() {
            format!(
                "{path} -> {}",
                hd.link_name().unwrap().unwrap().to_string_lossy()
            )
        } else {
            format!(
                "{path} {:o} {}",
                hd.mode().unwrap(),
                String::from_utf8_lossy(&data)
            )
        };
        seen.push(what);
    }
    let want: Vec<String> = [
        "{t} dir 750",
        "{t}/a 640 abc",
        "{t}/b 640 bb",
        "{t}/c 640 c",
        "{t}/link -> a",
        "{t}/sub dir 750",
        "{t}/sub/deep 640 deep",
    ]
    .iter()
    .map(|s| s.replace("{t}", &top))
    .collect();
    assert_eq!(seen, want);

    // The whole restore point as a zip: every file, the big one too.
    let (s, hs, body) = get(
        &t,
        Method::GET,
        &files_uri(&rp, "format=zip"),
        &t.admin,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h(&hs, header::CONTENT_TYPE), "application/zip");
    let top = format!("tree-{short}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.zip");
    std::fs::write(&file, &body).unwrap();
    std::fs::write(dir.path().join("big"), big()).unwrap();
    // Python's zipfile as the reader: names, modes, CRCs (testzip) and
    // the big file's bytes.
    let script = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
big = open(sys.argv[2], 'rb').read()
for i in z.infolist():
    data = z.read(i)
    if i.filename.endswith('/big'):
        assert data == big, 'big differs'
    print(i.filename, oct(i.external_attr >> 16), data[:8].decode('utf-8', 'replace'))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .arg(dir.path().join("big"))
        .output()
        .expect("python3");
    let listing = String::from_utf8_lossy(&out.stdout).replace(&top, "T");
    assert!(
        out.status.success(),
        "{listing} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "T/ 0o40750 ",
        "T/empty 0o100640 ",
        "T/ü x.txt 0o100640 hello",
        "T/dir/ 0o40750 ",
        "T/dir/a 0o100640 abc",
        "T/dir/link 0o120640 a",
        "T/dir/sub/ 0o40750 ",
        "T/dir/sub/deep 0o100640 deep",
    ] {
        assert!(
            listing.lines().any(|l| l == line),
            "{line:?} not in {listing}"
        );
    }
    assert!(!listing.contains("fifo"), "{listing}");
    // unzip agrees when it is there.
    if let Ok(o) = std::process::Command::new("unzip")
        .arg("-t")
        .arg(&file)
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

/// Whoever may read the restore point may download from it; another
/// project's restore point is not found.
#[tokio::test]
async fn readers_download_others_do_not_see() {
    let t = setup();
    let rp = browse::add(&t.state.catalog, "dd", SourceKind::Files);
    let restore_only = super::token_for(
        &t.state.catalog,
        "ro",
        &[arca_catalog::RoleBinding {
            role: arca_catalog::Role::RestoreOnly,
            project_id: Some(arca_catalog::ProjectId(1)),
        }],
    );
    let other = super::token_for(
        &t.state.catalog,
        "other",
        &[arca_catalog::RoleBinding {
            role: arca_catalog::Role::Admin,
            project_id: Some(arca_catalog::ProjectId(2)),
        }],
    );
    let uri = files_uri(&rp, "path=dir/a");
    let (s, _, body) = get(&t, Method::GET, &uri, &restore_only, &[]).await;
    assert_eq!((s, body), (StatusCode::OK, b"abc".to_vec()));
    let (s, _, _) = get(&t, Method::GET, &uri, &other, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
