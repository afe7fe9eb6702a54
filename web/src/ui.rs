//! The web UI: static files (HTML, JavaScript modules, CSS) embedded in
//! the binary by `build.rs` from `web/ui/`, served at `/` (the page) and
//! `/ui/...` (everything it loads). The UI is a client of the REST API
//! only; nothing here reads the catalog.
//!
//! Each file is answered with a strong ETag (its SHA-256) and
//! `Cache-Control: no-cache`, so a browser revalidates and gets 304 until
//! the binary changes; gzip when the browser accepts it (compressed once,
//! on first use). [`security_headers`] adds a strict Content-Security-Policy
//! (scripts, styles and requests to this origin only, no inline script,
//! no framing) to every answer of the server, the API's included.
//!
//! `ARCA_UI_DIR=DIR` serves the files from `DIR` instead, read on each
//! request: for working on the UI without rebuilding the binary.

use std::sync::OnceLock;

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    etag: String,
    gzip: OnceLock<Vec<u8>>,
}

fn assets() -> &'static [Asset] {
    static ALL: OnceLock<Vec<Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        embedded::ASSETS
            .iter()
            .map(|&(path, bytes)| Asset {
                path,
                bytes,
                etag: etag_of(bytes),
                gzip: OnceLock::new(),
            })
            .collect()
    })
}

/// The embedded files and their sizes (raw, gzip), for the benchmark and
/// `arca server --help`-style reports.
pub fn asset_sizes() -> Vec<(&'static str, usize, usize)> {
    assets()
        .iter()
        .map(|a| (a.path, a.bytes.len(), gzipped(a).len()))
        .collect()
}

fn gzipped(a: &Asset) -> &[u8] {
    a.gzip.get_or_init(|| {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec does not fail.
        let _ = e.write_all(a.bytes);
        e.finish().unwrap_or_default()
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|e| {
                let mut parts = e.split(';');
                parts.next().is_some_and(|n| n.trim() == "gzip")
                    && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
            })
        })
    })
}

fn not_found(path: &str) -> Response {
    crate::ApiError::not_found(format!("no such file of the web UI: {path}")).into_response()
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    if let Some(dir) = std::env::var_os("ARCA_UI_DIR") {
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return not_found(path);
        }
        return match std::fs::read(std::path::Path::new(&dir).join(path)) {
            Ok(b) => respond(path, &etag_of(&b), headers, b, None),
            Err(_) => not_found(path),
        };
    }
    let Some(a) = assets().iter().find(|a| a.path == path) else {
        return not_found(path);
    };
    respond(path, &a.etag, headers, a.bytes, Some(&|| gzipped(a)))
}

/// The answer for a file: 304 when the browser has it, gzip when it
/// accepts it and `gzip` gives it.
fn respond<B: Into<axum::body::Body>>(
    path: &str,
    etag: &str,
    headers: &HeaderMap,
    bytes: B,
    gzip: Option<&dyn Fn() -> &'static [u8]>,
) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    if let Some(gz) = gzip.filter(|_| accepts_gzip(headers)) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (h, gz()).into_response();
    }
    (h, bytes.into()).into_response()
}

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`: a file the page loads.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// Headers for every answer: the CSP, no framing (clickjacking), no
/// content sniffing, no referrer to other sites.
pub async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_modules_are_embedded() {
        let names: Vec<_> = assets().iter().map(|a| a.path).collect();
        assert!(names.contains(&"index.html"), "{names:?}");
        assert!(names.contains(&"app.js"), "{names:?}");
        for a in assets() {
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
            assert!(gzipped(a).len() > 10);
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
