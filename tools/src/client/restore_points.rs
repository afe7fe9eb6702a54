//! `arca snapshots` and `arca ls` through the server: the restore points
//! its catalog lists and their trees, printed as the local commands print
//! a datastore's (`crate::listing`); `--json` prints the API's JSON.

use anyhow::{anyhow, Result};
use arca_model::api::{RestorePoint, TreePage, TREE_MAX_LIMIT};

use super::Api;
use crate::listing::{self, SnapshotFilter};
use crate::Cli;

/// Restore points per request.
const PAGE: usize = 1000;

/// `s` for a query string or a path segment: unreserved characters as
/// they are, every other byte as `%XX`.
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The restore points `f` selects (of `project`, by name or id, when
/// given), newest first (all pages).
pub(super) fn list(
    api: &Api,
    f: &SnapshotFilter,
    project: Option<&str>,
    max: Option<usize>,
) -> Result<Vec<RestorePoint>> {
    let mut all = Vec::new();
    loop {
        let limit = max.map_or(PAGE, |m| m.min(PAGE));
        let mut q = format!("limit={limit}&offset={}", all.len());
        if let Some(s) = &f.source {
            q += &format!("&source={}", enc(s));
        }
        if let Some(p) = project {
            q += &format!("&project={}", enc(p));
        }
        if let Some(k) = f.kind {
            q += &format!("&kind={k}");
        }
        if let Some(t) = f.since {
            q += &format!("&since={t}");
        }
        let page: Vec<RestorePoint> =
            api.get(&format!("/restore-points?{q}"), "a list of restore points")?;
        let n = page.len();
        all.extend(page);
        if n < limit || max.is_some_and(|m| all.len() >= m) {
            return Ok(all);
        }
    }
}

/// `arca snapshots --server [--project P]`: oldest first, as the local
/// listing.
pub fn snapshots(cli: &Cli, f: &SnapshotFilter, project: Option<&str>) -> Result<u8> {
    let api = Api::new(cli)?;
    let mut all = list(&api, f, project, None)?;
    all.reverse();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(0);
    }
    let rows: Vec<listing::SnapshotRow> = all
        .iter()
        .map(|rp| listing::SnapshotRow {
            id: rp.id.to_hex(),
            time: rp.time,
            kind: rp.kind.to_string(),
            bytes_total: u64::try_from(rp.bytes_total).unwrap_or(0),
            bytes_added: u64::try_from(rp.bytes_added).unwrap_or(0),
            source: rp.source_name.clone(),
        })
        .collect();
    println!("{}", listing::snapshot_table(&rows, Vec::new()));
    println!("{} snapshots", all.len());
    Ok(0)
}

/// `arca ls --server`: every page of the restore point's tree below
/// `path`. `latest` is the newest restore point (of `source` if given).
pub fn ls(cli: &Cli, req: &listing::LsRequest) -> Result<u8> {
    let (path, recursive, source) = (req.path, req.recursive, req.source);
    let api = Api::new(cli)?;
    let id = if req.snapshot == "latest" {
        let f = SnapshotFilter {
            source: source.map(str::to_string),
            kind: None,
            since: None,
        };
        let newest = list(&api, &f, None, Some(1))?;
        let rp = newest.first().ok_or_else(|| match source {
            Some(s) => anyhow!("no restore points of source {s:?}"),
            None => anyhow!("no restore points"),
        })?;
        rp.id.to_hex()
    } else {
        req.snapshot.to_string()
    };
    let mut all: Option<TreePage> = None;
    let mut offset = 0;
    loop {
        let q = format!(
            "path={}&recursive={recursive}&limit={TREE_MAX_LIMIT}&offset={offset}",
            enc(path)
        );
        let page: TreePage = api.get(
            &format!("/restore-points/{}/tree?{q}", enc(&id)),
            "a page of a restore point's tree",
        )?;
        let next = page.next_offset;
        match &mut all {
            Some(a) => a.entries.extend(page.entries),
            None => all = Some(page),
        }
        match next {
            Some(n) if n > offset => offset = n,
            _ => break,
        }
    }
    let Some(mut all) = all else {
        return Ok(0);
    };
    all.next_offset = None;
    listing::print_tree(cli.json, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(enc("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
        assert_eq!(enc("dir-1_x.y~"), "dir-1_x.y~");
    }
}
