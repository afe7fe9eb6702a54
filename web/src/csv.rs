//! CSV answers of the reports: RFC 4180 (CRLF line ends; a field with a
//! comma, quote, CR or LF quoted, its quotes doubled), UTF-8, a header
//! row. Text cells starting with `=`, `+`, `-`, `@`, tab or CR get a
//! leading `'` first, so that a spreadsheet opening the file does not run
//! a name from a backup as a formula (OWASP "CSV injection"). Numbers are
//! written as they are; an absent value is an empty cell.

use std::fmt::Display;

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A CSV document being written.
pub(crate) struct Csv {
    out: String,
}

impl Csv {
    /// A document with its header row.
    pub(crate) fn new(header: &[&str]) -> Csv {
        let mut c = Csv { out: String::new() };
        c.row(header.iter().map(|h| text(h)).collect());
        c
    }

    /// A row of cells made with [`text`], [`num`] or [`opt`].
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.out += &cells.join(",");
        self.out += "\r\n";
    }

    /// The answer: text/csv, as an attachment named `name`.
    pub(crate) fn response(self, name: &str) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            self.out,
        )
            .into_response()
    }
}

/// A text cell: defused against formulas, then quoted when needed.
pub(crate) fn text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A number (or another value that needs no quoting).
pub(crate) fn num(v: impl Display) -> String {
    v.to_string()
}

/// A number, or an empty cell.
pub(crate) fn opt<T: Display>(v: Option<T>) -> String {
    v.map(num).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_formula_prefixes() {
        assert_eq!(text("web"), "web");
        assert_eq!(text("a,b"), "\"a,b\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text("two\nlines"), "\"two\nlines\"");
        assert_eq!(text("=1+2"), "'=1+2");
        assert_eq!(text("+x"), "'+x");
        assert_eq!(text("-x"), "'-x");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(
            text("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(text("a=b"), "a=b");
        assert_eq!(opt(None::<i64>), "");
        assert_eq!(opt(Some(0.5)), "0.5");
        let mut c = Csv::new(&["a", "b"]);
        c.row(vec![text("x"), num(1)]);
        assert_eq!(c.out, "a,b\r\nx,1\r\n");
    }
}
