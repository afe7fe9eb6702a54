//! The HTTP header logic of downloads: entity tags, dates, conditional
//! requests (RFC 9110 §13), a single byte range (RFC 9110 §14), the
//! content type by extension and `Content-Disposition` (RFC 6266, with the
//! RFC 5987 `filename*` for any name).

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// The strong entity tag of `path` in restore point `rp` (quoted): a
/// restore point never changes, so its id and the path name the bytes.
pub(super) fn etag(rp: &str, path: &str) -> String {
    let mut h = Sha256::new();
    h.update(rp.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    let d = h.finalize();
    format!("\"{}\"", hex::encode(&d[..16]))
}

/// An HTTP date (IMF-fixdate) of `secs` since the epoch; None before it.
pub(super) fn http_date(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok()?;
    Some(httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_secs(secs),
    ))
}

fn parse_date(v: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(v.trim()).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a list of entity tags (`If-Match`, `If-None-Match`) names
/// `etag` (or is `*`). `weak`: compare weakly (a `W/` tag matches).
fn tag_listed(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        match t.strip_prefix("W/") {
            Some(w) => weak && w == etag,
            None => t == etag,
        }
    })
}

/// What the conditional headers decide.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Conditional {
    /// Answer as usual.
    Go,
    /// 304.
    NotModified,
    /// 412.
    Failed,
}

/// Evaluate `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` in the order of RFC 9110 §13.2.2 for a file with
/// strong tag `etag` modified at `mtime` (seconds).
pub(super) fn conditional(h: &HeaderMap, etag: &str, mtime: i64) -> Conditional {
    if let Some(m) = header_str(h, header::IF_MATCH) {
        if !tag_listed(m, etag, false) {
            return Conditional::Failed;
        }
    } else if let Some(d) = header_str(h, header::IF_UNMODIFIED_SINCE).and_then(parse_date) {
        if mtime > d {
            return Conditional::Failed;
        }
    }
    if let Some(m) = header_str(h, header::IF_NONE_MATCH) {
        if tag_listed(m, etag, true) {
            return Conditional::NotModified;
        }
    } else if let Some(d) = header_str(h, header::IF_MODIFIED_SINCE).and_then(parse_date) {
        if mtime <= d {
            return Conditional::NotModified;
        }
    }
    Conditional::Go
}

/// The part of a file to send.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Range {
    /// 200, all of it.
    Whole,
    /// 206, bytes `a..=b`.
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// The range a request asks for in a file of `size` bytes: one
/// `bytes=a-b`, `a-` or `-n` range. Several ranges, another unit, a
/// malformed header, or an `If-Range` that does not match (`etag`,
/// `mtime`) get the whole file.
pub(super) fn range(h: &HeaderMap, etag: &str, mtime: i64, size: u64) -> Range {
    let Some(spec) = header_str(h, header::RANGE) else {
        return Range::Whole;
    };
    if let Some(v) = header_str(h, header::IF_RANGE) {
        let v = v.trim();
        let matches = if v.starts_with('"') {
            v == etag
        } else if v.starts_with("W/") {
            false
        } else {
            parse_date(v) == Some(mtime)
        };
        if !matches {
            return Range::Whole;
        }
    }
    parse_range(spec, size)
}

/// [`range`] of the `Range` header's value alone.
pub(super) fn parse_range(spec: &str, size: u64) -> Range {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if set.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return Range::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        // -n: the last n bytes.
        (true, false) => match num(b) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if size == 0 => Range::Unsatisfiable,
            Some(n) => Range::Part(size - n.min(size), size - 1),
            None => Range::Whole,
        },
        // a-: from a to the end.
        (false, true) => match num(a) {
            Some(a) if a < size => Range::Part(a, size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a < size {
                    Range::Part(a, b.min(size - 1))
                } else {
                    Range::Unsatisfiable
                }
            }
            _ => Range::Whole,
        },
        (true, true) => Range::Whole,
    }
}

/// The content type of a file by its name's extension
/// (`application/octet-stream` when unknown).
pub(super) fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "conf" | "cfg" | "ini" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "zst" => "application/zstd",
        "xz" => "application/x-xz",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

/// `Content-Disposition: attachment` naming `name`: an ASCII fallback
/// `filename` (other characters, quotes, backslashes and controls as `_`)
/// and the exact name as `filename*=UTF-8''…` (RFC 5987 percent-encoding).
pub(super) fn disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut enc = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b);
        if keep {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{enc}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-0", 10), Range::Part(0, 0));
        assert_eq!(parse_range("bytes=9-9", 10), Range::Part(9, 9));
        assert_eq!(parse_range("bytes=5-100", 10), Range::Part(5, 9));
        assert_eq!(parse_range("bytes=3-", 10), Range::Part(3, 9));
        assert_eq!(parse_range("bytes=-4", 10), Range::Part(6, 9));
        assert_eq!(parse_range("bytes=-40", 10), Range::Part(0, 9));
        assert_eq!(parse_range("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Range::Unsatisfiable);
        // Malformed, several ranges, other units: the whole file.
        assert_eq!(parse_range("bytes=5-3", 10), Range::Whole);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Range::Whole);
        assert_eq!(parse_range("items=0-1", 10), Range::Whole);
        assert_eq!(parse_range("bytes=a-b", 10), Range::Whole);
        assert_eq!(parse_range("bytes=+1-2", 10), Range::Whole);
        assert_eq!(parse_range("bytes=-", 10), Range::Whole);
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 10),
            Range::Whole
        );
    }

    #[test]
    fn if_range_needs_the_same_tag_or_date() {
        let tag = etag("rp", "a/b");
        let date = http_date(1_700_000_000).unwrap();
        let r = |ir: &str| {
            range(
                &h(&[(header::RANGE, "bytes=1-2"), (header::IF_RANGE, ir)]),
                &tag,
                1_700_000_000,
                10,
            )
        };
        assert_eq!(r(&tag), Range::Part(1, 2));
        assert_eq!(r(&date), Range::Part(1, 2));
        assert_eq!(r("\"other\""), Range::Whole);
        assert_eq!(r(&format!("W/{tag}")), Range::Whole);
        assert_eq!(r(&http_date(1_700_000_001).unwrap()), Range::Whole);
    }

    #[test]
    fn conditions() {
        let tag = etag("rp", "a");
        let t = 1_700_000_000;
        let c = |pairs: &[(header::HeaderName, &str)]| conditional(&h(pairs), &tag, t);
        assert_eq!(c(&[]), Conditional::Go);
        assert_eq!(
            c(&[(header::IF_NONE_MATCH, &tag)]),
            Conditional::NotModified
        );
        assert_eq!(
            c(&[(header::IF_NONE_MATCH, &format!("\"x\", W/{tag}"))]),
            Conditional::NotModified
        );
        assert_eq!(c(&[(header::IF_NONE_MATCH, "\"x\"")]), Conditional::Go);
        let same = http_date(t).unwrap();
        let before = http_date(t - 1).unwrap();
        assert_eq!(
            c(&[(header::IF_MODIFIED_SINCE, &same)]),
            Conditional::NotModified
        );
        assert_eq!(c(&[(header::IF_MODIFIED_SINCE, &before)]), Conditional::Go);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            c(&[
                (header::IF_NONE_MATCH, "\"x\""),
                (header::IF_MODIFIED_SINCE, &same)
            ]),
            Conditional::Go
        );
        assert_eq!(c(&[(header::IF_MATCH, "\"x\"")]), Conditional::Failed);
        assert_eq!(c(&[(header::IF_MATCH, &tag)]), Conditional::Go);
        assert_eq!(c(&[(header::IF_MATCH, "*")]), Conditional::Go);
        assert_eq!(
            c(&[(header::IF_MATCH, &format!("W/{tag}"))]),
            Conditional::Failed
        );
        assert_eq!(
            c(&[(header::IF_UNMODIFIED_SINCE, &before)]),
            Conditional::Failed
        );
        assert_eq!(
            c(&[(header::IF_MODIFIED_SINCE, "garbage")]),
            Conditional::Go
        );
    }

    #[test]
    fn dispositions_are_safe_for_any_name() {
        assert_eq!(
            disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        let d = disposition("ü\"\\\r\n;x.pdf");
        assert_eq!(
            d,
            "attachment; filename=\"_____;x.pdf\"; filename*=UTF-8''%C3%BC%22%5C%0D%0A%3Bx.pdf"
        );
        assert!(HeaderValue::from_str(&d).is_ok());
        assert_eq!(content_type("X.PDF"), "application/pdf");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
