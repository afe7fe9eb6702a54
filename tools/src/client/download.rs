//! `arca download RP PATH`: a file of a restore point (or a directory as
//! an archive) through `GET /api/v1/restore-points/{id}/files`, with a
//! progress bar (its total from `Content-Length`) and `--continue`, which
//! asks for the rest of a partial file with `Range` (a restore point never
//! changes, so the bytes already there are the same).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::restore_points::enc;
use super::Api;
use crate::Cli;

/// What `arca download` was asked for.
pub struct DownloadArgs<'a> {
    pub restore_point: &'a str,
    pub path: &'a str,
    pub output: Option<&'a Path>,
    pub format: Option<&'a str>,
    pub resume: bool,
}

pub fn download(cli: &Cli, a: &DownloadArgs) -> Result<u8> {
    let api = Api::new(cli)?;
    let stdout = a.output == Some(Path::new("-"));
    if a.resume && (stdout || a.format.is_some()) {
        bail!("--continue resumes a file written to -o FILE, not stdout or an archive");
    }
    let mut q = format!("path={}", enc(a.path));
    if let Some(f) = a.format {
        q.push_str(&format!("&format={}", enc(f)));
    }
    let url = format!("/restore-points/{}/files?{q}", enc(a.restore_point));
    // What is there already (--continue).
    let have = match (a.resume, a.output) {
        (true, Some(p)) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        (true, None) => bail!("--continue needs -o FILE"),
        _ => 0,
    };
    let headers: Vec<(&str, String)> = if have > 0 {
        vec![("range", format!("bytes={have}-"))]
    } else {
        Vec::new()
    };
    let resp = api.get_raw(&url, &headers, &[416])?;
    let status = resp.status().as_u16();
    if status == 416 {
        // The file is whole already.
        eprintln!("already complete: {have} bytes");
        return Ok(0);
    }
    let len: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let append = status == 206;
    let name = resp
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .and_then(file_name);
    let progress = Arc::new(arca_ingest::Progress::default());
    if append {
        progress.bytes.store(have, Ordering::Relaxed);
    }
    if let Some(n) = len {
        let base = if append { have } else { 0 };
        progress.total.store(base + n, Ordering::Relaxed);
    }
    let mut body = resp.into_body().into_reader();
    if stdout {
        let out = std::io::stdout();
        let mut out = out.lock();
        copy(&mut body, &mut out, &progress)?;
        out.flush()?;
        return Ok(0);
    }
    let target: PathBuf = match (a.output, name) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(n)) => PathBuf::from(n),
        (None, None) => bail!("the server named no file: give -o FILE"),
    };
    let mut f = if append {
        std::fs::OpenOptions::new().append(true).open(&target)
    } else {
        std::fs::File::create(&target)
    }
    .with_context(|| format!("opening {}", target.display()))?;
    let n = {
        let _bar = crate::progress::Bar::start(&progress, "download");
        copy(&mut body, &mut f, &progress)?
    };
    f.sync_all()
        .with_context(|| format!("writing {}", target.display()))?;
    if let Some(want) = len {
        if n != want {
            bail!(
                "the download ended after {n} of {want} bytes: run again with --continue to resume"
            );
        }
    }
    eprintln!(
        "{} ({} bytes{})",
        target.display(),
        progress.bytes.load(Ordering::Relaxed),
        if append { ", resumed" } else { "" }
    );
    Ok(0)
}

/// Copy `r` to `w`, counting into `p`; the bytes copied.
fn copy(r: &mut dyn Read, w: &mut dyn Write, p: &arca_ingest::Progress) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "the download broke off after {n} bytes (run again with --continue to resume a file)"
                )))
            }
        };
        w.write_all(&buf[..k]).context("writing the download")?;
        n += k as u64;
        p.add(k as u64);
    }
    Ok(n)
}

/// The file name of a `Content-Disposition` (its `filename*=UTF-8''…`,
/// else its `filename="…"`), reduced to a plain name: no directories.
fn file_name(v: &str) -> Option<String> {
    let parts = || v.split(';').map(str::trim);
    let raw = parts()
        .find_map(|p| p.strip_prefix("filename*=UTF-8''").and_then(percent_decode))
        .or_else(|| {
            parts().find_map(|p| {
                p.strip_prefix("filename=")
                    .map(|s| s.trim_matches('"').to_string())
            })
        })?;
    let name = raw
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string();
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_content_disposition_without_directories() {
        assert_eq!(
            file_name("attachment; filename=\"_ x.txt\"; filename*=UTF-8''%C3%BC%20x.txt")
                .as_deref(),
            Some("ü x.txt")
        );
        assert_eq!(
            file_name("attachment; filename=\"a.zip\"").as_deref(),
            Some("a.zip")
        );
        assert_eq!(
            file_name("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            file_name("attachment; filename*=UTF-8''..").as_deref(),
            None
        );
        assert_eq!(file_name("attachment").as_deref(), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}
