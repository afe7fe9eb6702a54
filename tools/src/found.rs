//! `arca find`: its arguments and its output, the same whether the
//! matches come from a local datastore (`commands::find`) or from a
//! server's `GET /api/v1/restore-points/search` (`client::find`):
//! a table of the matches, newest restore point first, or with `--json`
//! the API's [`SearchResult`]. What was skipped, and a list the limit
//! cut, are said on stderr.

use std::collections::HashSet;

use arca_model::api::{SearchResult, TreeEntryKind, SEARCH_MAX_LIMIT};

use crate::table::Table;
use crate::units::{human, local_time};

/// The arguments of `arca find`.
#[derive(clap::Args, Debug)]
pub struct FindArgs {
    /// A glob. Without '/' it is matched against each entry's name
    /// ("*.conf", "report-202?.pdf"); with '/' against the whole path
    /// relative to the snapshot's root ("etc/*.conf", "home/**/*.pdf":
    /// `*` stays within one directory, `**` spans any number). Quote it
    /// so that the shell leaves it alone.
    pub pattern: String,
    /// Only the snapshots of this source (its name).
    #[arg(long)]
    pub source: Option<String>,
    /// Only snapshots taken at or after this time (RFC 3339, YYYY-MM-DD
    /// or seconds since the epoch; UTC).
    #[arg(long, value_parser = crate::listing::parse_since)]
    pub since: Option<i64>,
    /// Only snapshots taken at or before this time (same forms).
    #[arg(long, value_parser = crate::listing::parse_since)]
    pub until: Option<i64>,
    /// Stop after this many matches (1 to 10000); the output says when
    /// there were more.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=i64::from(SEARCH_MAX_LIMIT)))]
    pub limit: u32,
    /// Ignore case: "*.jpg" also finds "IMG_0001.JPG".
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
    /// Search inside image restore points too: the files of the file
    /// systems on their partitions. Off by default: it reads every
    /// image's file-system metadata (without it, images are listed as
    /// skipped).
    #[arg(long)]
    pub images: bool,
}

/// Skipped restore points named one by one on stderr; the rest counted.
const SKIPPED_SHOWN: usize = 10;

/// Print `r`: the table and a summary line (or the JSON), then the
/// notes on stderr.
pub fn print(json: bool, r: &SearchResult, limit: u32) -> anyhow::Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!("{}", table(r));
        let holding: HashSet<_> = r.matches.iter().map(|m| m.restore_point).collect();
        println!(
            "{} {} in {} of {} restore point{} searched",
            r.matches.len(),
            if r.matches.len() == 1 {
                "match"
            } else {
                "matches"
            },
            holding.len(),
            r.searched,
            if r.searched == 1 { "" } else { "s" },
        );
    }
    for s in r.skipped.iter().take(SKIPPED_SHOWN) {
        eprintln!("skipped {}: {}", s.restore_point.short(), s.reason);
    }
    if r.skipped.len() > SKIPPED_SHOWN {
        eprintln!(
            "skipped {} more restore points (--json lists them all)",
            r.skipped.len() - SKIPPED_SHOWN
        );
    }
    if r.truncated {
        eprintln!(
            "stopped at {limit} matches (--limit): there are more; narrow the pattern, --source, --since or --until, or raise --limit"
        );
    }
    Ok(0)
}

/// RESTORE POINT, TIME, PATH, SIZE, MODIFIED; times local; a directory's
/// path ends with '/' and shows no size.
fn table(r: &SearchResult) -> String {
    let mut t = Table::new(&["RESTORE POINT", "TIME", "PATH", "SIZE", "MODIFIED"]).right(&[3]);
    for m in &r.matches {
        let dir = m.kind == TreeEntryKind::Dir;
        t.row(vec![
            m.restore_point.short(),
            local_time(m.time),
            if dir {
                format!("{}/", m.path)
            } else {
                m.path.clone()
            },
            if dir { String::new() } else { human(m.size) },
            local_time(m.mtime),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arca_model::api::SearchMatch;

    #[test]
    fn the_table_shows_short_ids_paths_and_sizes() {
        let rp = "ab".repeat(32).parse().unwrap();
        let m = |path: &str, kind, size| SearchMatch {
            restore_point: rp,
            time: 0,
            source: "s".into(),
            path: path.into(),
            kind,
            size,
            mtime: 0,
        };
        let r = SearchResult {
            matches: vec![
                m("etc", TreeEntryKind::Dir, 4096),
                m("etc/a.conf", TreeEntryKind::File, 2048),
            ],
            ..Default::default()
        };
        let out = table(&r);
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("RESTORE POINT"), "{out}");
        assert!(lines[1].starts_with("abababab "), "{out}");
        assert!(lines[1].contains(" etc/ "), "{out}");
        assert!(!lines[1].contains("4.0 KiB"), "{out}");
        assert!(lines[2].contains("etc/a.conf"), "{out}");
        assert!(lines[2].contains("2.0 KiB"), "{out}");
    }
}
