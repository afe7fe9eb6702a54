//! Bucket names made from source names, and the opaque continuation
//! tokens of listings.
//!
//! Bucket names: a source's bucket is its name made S3-valid: lower case,
//! every character outside `[a-z0-9.-]` replaced by `-`, runs of `-` and
//! `.` kept as they are, leading and trailing `-`/`.` removed, cut to 63
//! characters. A name that is then shorter than 3 characters, looks like
//! an IP address, or is the name of another source too, gets `-<source
//! id>` appended (the id cut so that the whole stays within 63): the
//! sources `Web`, `web` and `WEB!` are buckets `web-<id1>`, `web-<id2>`
//! and `web-<id3>`; a source `db` is `db-<id>`.

use std::collections::HashMap;

/// Longest bucket name S3 allows.
const MAX_BUCKET: usize = 63;

/// `name` as a bucket name, before collisions are resolved: `None` when
/// nothing valid is left (too short, or an IP address).
fn clean(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // ".." is not allowed in a bucket name.
    while out.contains("..") {
        out = out.replace("..", ".");
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let mut s = trimmed.to_string();
    s.truncate(MAX_BUCKET);
    s.trim_end_matches(['-', '.']).to_string()
}

fn usable(name: &str) -> bool {
    name.len() >= 3 && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// `base` with `-<suffix>` appended, within 63 characters (the base is
/// cut; `suffix` is at most 40 characters, always kept whole).
fn with_suffix(base: &str, suffix: &str) -> String {
    let room = MAX_BUCKET - suffix.len() - 1;
    let b: String = base.chars().take(room).collect();
    let b = b.trim_end_matches(['-', '.']);
    // A name with nothing valid in it: "src-<id>".
    let b = if b.is_empty() { "src" } else { b };
    format!("{b}-{suffix}")
}

/// The bucket name of every source, given as `(source id, source name)`,
/// in the same order. Names are unique among the given sources; for the
/// same sources in the same order they are the same.
pub fn bucket_names(sources: &[(String, String)]) -> Vec<String> {
    let cleaned: Vec<String> = sources.iter().map(|(_, n)| clean(n)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for c in &cleaned {
        *count.entry(c.as_str()).or_default() += 1;
    }
    let mut out: Vec<Option<String>> = vec![None; sources.len()];
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Names that are fine as they are first, then the others with their
    // id (and, should even that be taken, a counter).
    for (i, c) in cleaned.iter().enumerate() {
        if usable(c) && count.get(c.as_str()) == Some(&1) {
            taken.insert(c.clone());
            out[i] = Some(c.clone());
        }
    }
    for (i, ((id, _), c)) in sources.iter().zip(&cleaned).enumerate() {
        if out[i].is_some() {
            continue;
        }
        let id: String = clean(id).chars().take(30).collect();
        let id = if id.is_empty() { i.to_string() } else { id };
        let mut name = with_suffix(c, &id);
        let mut k = 1u64;
        while taken.contains(&name) {
            name = with_suffix(c, &format!("{id}-{k}"));
            k += 1;
        }
        taken.insert(name.clone());
        out[i] = Some(name);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// Where a listing stopped: the restore point it was in (its id or
/// `latest`), then the position of the next entry at each directory level
/// below the listed directory (one position when not recursing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The restore point's name in the bucket (empty: the bucket root's
    /// own list of restore points).
    pub point: String,
    /// Positions, outermost first.
    pub positions: Vec<u64>,
}

/// Most directory levels a token may name.
const MAX_LEVELS: usize = 1024;

impl Cursor {
    /// The opaque token clients send back: hex of `point/p0/p1/...`.
    pub fn encode(&self) -> String {
        let mut s = self.point.clone();
        for p in &self.positions {
            s.push('/');
            s.push_str(&p.to_string());
        }
        hex::encode(s.as_bytes())
    }

    /// Parse a token made by [`Cursor::encode`]; `None` for anything else.
    pub fn decode(token: &str) -> Option<Cursor> {
        if token.len() > 2 * (MAX_LEVELS * 21 + 128) {
            return None;
        }
        let bytes = hex::decode(token).ok()?;
        let s = String::from_utf8(bytes).ok()?;
        let mut parts = s.split('/');
        let point = parts.next()?.to_string();
        if point.len() > 128
            || !point
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let positions = parts
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()?;
        if positions.is_empty() || positions.len() > MAX_LEVELS {
            return None;
        }
        Some(Cursor { point, positions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[(&str, &str)]) -> Vec<String> {
        let v: Vec<(String, String)> = list
            .iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect();
        bucket_names(&v)
    }

    #[test]
    fn source_names_become_valid_unique_bucket_names() {
        assert_eq!(
            names(&[("1", "Web_Server"), ("2", "db"), ("3", "home.files")]),
            ["web-server", "db-2", "home.files"]
        );
        // Collisions all get their id.
        assert_eq!(
            names(&[("7", "Web"), ("8", "web"), ("9", "files")]),
            ["web-7", "web-8", "files"]
        );
        // Nothing valid left, an IP address, "..", a very long name.
        let long = "x".repeat(100);
        let got = names(&[
            ("a1", "!!!"),
            ("a2", "10.0.0.1"),
            ("a3", "a..b..c"),
            ("a4", &long),
        ]);
        assert_eq!(got[0], "src-a1");
        assert_eq!(got[1], "10.0.0.1-a2");
        assert_eq!(got[2], "a.b.c");
        assert_eq!(got[3].len(), 63);
        for n in &got {
            assert!(n.len() >= 3 && n.len() <= 63, "{n}");
            assert!(n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
            assert!(
                !n.starts_with(['-', '.']) && !n.ends_with(['-', '.']),
                "{n}"
            );
        }
        let long_id = "f".repeat(80);
        let n = &names(&[(&long_id, "ab")])[0];
        assert!(n.len() <= 63 && n.starts_with("ab-"), "{n}");
        // A suffixed name that another source has as its own name.
        assert_eq!(
            names(&[("0", "a-1"), ("1", "a"), ("2", "A")]),
            ["a-1", "a-1-1", "a-2"]
        );
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            point: "latest".into(),
            positions: vec![3, 0, 17],
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "zz",
            &hex::encode("latest"),
            &hex::encode("latest/x"),
            &hex::encode("../1"),
            &hex::encode("a/1/-2"),
            &hex::encode("a/99999999999999999999999"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
