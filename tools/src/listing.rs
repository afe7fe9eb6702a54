//! The human output of `arca snapshots` and `arca ls`, the same whether
//! the rows come from a local datastore or from a server's API.

use arca_model::api::{TreeEntry, TreeEntryKind, TreePage};
use arca_model::SourceKind;

use crate::units::human;

/// What `arca snapshots` lists (the query of `GET /api/v1/restore-points`).
pub struct SnapshotFilter {
    pub source: Option<String>,
    pub kind: Option<SourceKind>,
    /// Seconds since the epoch.
    pub since: Option<i64>,
}

/// `--since`: RFC 3339, `YYYY-MM-DD` (midnight UTC) or seconds since the
/// epoch.
pub fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    Err(format!(
        "{s:?} is not a time: give RFC 3339 (2026-01-31T22:00:00Z), YYYY-MM-DD or seconds since the epoch"
    ))
}

/// One line of `arca snapshots`.
pub struct SnapshotRow {
    /// The full id (hex); the first 8 digits are shown.
    pub id: String,
    /// When it was taken, seconds since the epoch (UTC).
    pub time: i64,
    pub kind: String,
    pub bytes_total: u64,
    pub bytes_added: u64,
    pub source: String,
}

/// The table of `arca snapshots` (oldest first), times local; `extra`
/// rows (snapshots that cannot be read) go last as they are.
pub fn snapshot_table(rows: &[SnapshotRow], extra: Vec<Vec<String>>) -> String {
    let mut t =
        crate::table::Table::new(&["ID", "TIME", "KIND", "SIZE", "ADDED", "SOURCE"]).right(&[3, 4]);
    for r in rows {
        t.row(vec![
            r.id[..r.id.len().min(8)].to_string(),
            crate::units::local_time(r.time),
            r.kind.to_string(),
            human(r.bytes_total),
            human(r.bytes_added),
            r.source.to_string(),
        ]);
    }
    for r in extra {
        t.row(r);
    }
    t.render()
}

/// What `arca ls` lists, locally or through a server.
pub struct LsRequest<'a> {
    /// A snapshot id, a unique prefix of one, or `latest`.
    pub snapshot: &'a str,
    /// A directory or file in it ("": its root).
    pub path: &'a str,
    pub recursive: bool,
    /// With `latest`: the latest of this source.
    pub source: Option<&'a str>,
}

/// The end of `arca ls`: the page as JSON, or its lines.
pub fn print_tree(json: bool, page: &TreePage) -> anyhow::Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(page)?);
    } else {
        tree_lines(&page.entries);
    }
    Ok(0)
}

/// The lines of `arca ls`: kind, mode, size, modification time, path (and
/// a symlink's target).
pub fn tree_lines(entries: &[TreeEntry]) {
    for e in entries {
        let kind = match e.kind {
            TreeEntryKind::Other => 'u',
            k => k.as_str().chars().next().unwrap_or('?'),
        };
        let mtime = chrono::DateTime::from_timestamp(e.mtime, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let target = match &e.link_target {
            Some(t) => format!(" -> {t}"),
            None => String::new(),
        };
        println!(
            "{} {:>6o} {:>12} {} {}{}",
            kind, e.mode, e.size, mtime, e.path, target
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_times_and_seconds() {
        assert_eq!(parse_since("86400"), Ok(86_400));
        assert_eq!(parse_since("1970-01-02"), Ok(86_400));
        assert_eq!(parse_since("1970-01-02T01:00:00+01:00"), Ok(86_400));
        assert!(parse_since("yesterday").is_err());
    }
}
