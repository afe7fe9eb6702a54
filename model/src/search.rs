//! The patterns of `arca find` and `GET /api/v1/restore-points/search`:
//! a glob matched against each entry of a tree restore point.
//!
//! A pattern without '/' is matched against an entry's name ("*.conf",
//! "report-202?.pdf"); a pattern with '/' against its whole path relative
//! to the restore point's root ("etc/*.conf", "home/*/.ssh/**"), where
//! `*`, `?` and `[...]` never match a '/' and a whole component `**`
//! matches any number of directories. Leading and trailing '/' are
//! ignored ("/etc/hosts" is "etc/hosts"). A leading '.' needs no literal
//! '.': `*` matches ".bashrc". With `ignore_case`, the pattern and the
//! names are compared in lower case (Unicode). Names that are not UTF-8
//! are matched as shown, with U+FFFD.

use glob::{MatchOptions, Pattern as Glob};

/// Longest pattern accepted, in bytes.
pub const PATTERN_MAX_LEN: usize = 1024;

/// Why a pattern is refused; the message names the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPattern(pub String);

impl std::fmt::Display for BadPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadPattern {}

/// A checked pattern, ready to match.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    glob: Glob,
    whole_path: bool,
    ignore_case: bool,
}

impl Pattern {
    /// Check and compile `text`. Refused: an empty pattern (or only '/'),
    /// one over [`PATTERN_MAX_LEN`] bytes or with NUL, and globs that do
    /// not parse (an unclosed `[`, `**` inside a name).
    pub fn new(text: &str, ignore_case: bool) -> Result<Pattern, BadPattern> {
        if text.len() > PATTERN_MAX_LEN || text.contains('\0') {
            return Err(BadPattern(format!(
                "the pattern must be at most {PATTERN_MAX_LEN} bytes, without NUL"
            )));
        }
        let whole_path = text.contains('/');
        let body = text.trim_matches('/');
        if body.is_empty() {
            return Err(BadPattern(
                "the pattern is empty: give a name (\"*.conf\") or a path (\"etc/*.conf\")".into(),
            ));
        }
        let src = if ignore_case {
            body.to_lowercase()
        } else {
            body.to_string()
        };
        let glob = Glob::new(&src).map_err(|e| {
            BadPattern(format!(
                "pattern {text:?} is not a glob: {} (near character {})",
                e.msg,
                e.pos + 1
            ))
        })?;
        Ok(Pattern {
            text: text.to_string(),
            glob,
            whole_path,
            ignore_case,
        })
    }

    /// The pattern as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the pattern has a '/': it is matched against whole
    /// paths, not names.
    pub fn whole_path(&self) -> bool {
        self.whole_path
    }

    /// Whether case is ignored.
    pub fn ignore_case(&self) -> bool {
        self.ignore_case
    }

    /// Does the entry `name` of the directory `dir` (its path relative to
    /// the root, "" for the root itself) match?
    pub fn matches(&self, dir: &str, name: &str) -> bool {
        let opts = MatchOptions {
            case_sensitive: !self.ignore_case,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let joined;
        let subject = if self.whole_path && !dir.is_empty() {
            joined = format!("{dir}/{name}");
            joined.as_str()
        } else {
            name
        };
        if self.ignore_case {
            self.glob.matches_with(&subject.to_lowercase(), opts)
        } else {
            self.glob.matches_with(subject, opts)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s, false).unwrap()
    }

    #[test]
    fn a_pattern_without_slash_matches_names_anywhere() {
        let c = p("*.conf");
        assert!(!c.whole_path());
        assert!(c.matches("", "a.conf"));
        assert!(c.matches("etc/deep/er", "a.conf"));
        assert!(!c.matches("etc", "a.conf.bak"));
        assert!(
            !c.matches("x.conf", "file"),
            "the directory is not the name"
        );
        assert!(
            p("*").matches("", ".bashrc"),
            "a leading dot needs no literal dot"
        );
        assert!(p("report-202?.pdf").matches("d", "report-2024.pdf"));
        assert!(p("[ab]*").matches("", "beta"));
        assert!(!p("[ab]*").matches("", "gamma"));
    }

    #[test]
    fn a_pattern_with_slash_matches_whole_paths() {
        let c = p("etc/*.conf");
        assert!(c.whole_path());
        assert!(c.matches("etc", "a.conf"));
        assert!(!c.matches("", "a.conf"));
        assert!(!c.matches("etc/sub", "a.conf"), "* does not cross '/'");
        assert!(!c.matches("x/etc", "a.conf"), "anchored at the root");
        assert!(
            p("/etc/hosts").matches("etc", "hosts"),
            "leading '/' ignored"
        );
        assert!(p("etc/").matches("", "etc"), "trailing '/' ignored");
        let any = p("home/**/*.txt");
        assert!(any.matches("home/u/docs", "a.txt"));
        assert!(any.matches("home", "a.txt"), "** matches no directory too");
        assert!(!any.matches("srv", "a.txt"));
        assert!(p("**/hosts").matches("a/b/c", "hosts"));
    }

    #[test]
    fn case_is_ignored_on_request_only() {
        assert!(!p("*.JPG").matches("", "a.jpg"));
        let i = Pattern::new("*.JPG", true).unwrap();
        assert!(i.ignore_case());
        assert!(i.matches("", "a.jpg"));
        assert!(i.matches("", "B.Jpg"));
        assert!(Pattern::new("ÉTÉ*", true).unwrap().matches("", "été.txt"));
        assert!(Pattern::new("Docs/*", true).unwrap().matches("DOCS", "x"));
        assert_eq!(i.text(), "*.JPG");
    }

    #[test]
    fn bad_patterns_are_refused_with_the_problem() {
        for bad in ["", "/", "//", "a\0b", "[abc", "a**b/c"] {
            let e = Pattern::new(bad, false).unwrap_err();
            assert!(!e.0.is_empty(), "{bad:?}");
        }
        let e = Pattern::new("[abc", false).unwrap_err();
        assert!(e.0.contains("not a glob"), "{e}");
        assert!(Pattern::new(&"x".repeat(PATTERN_MAX_LEN + 1), false).is_err());
        assert!(Pattern::new(&"x".repeat(PATTERN_MAX_LEN), false).is_ok());
    }
}
