//! Aligned tables for human output: a header row, columns padded to the
//! widest cell (by characters shown), "-" for a value that is absent.
//! `--json` never goes through here: it prints the API's values.

/// A table being filled, printed with [`Table::render`].
pub(crate) struct Table {
    header: Vec<String>,
    /// Columns aligned to the right (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

/// What an absent value shows as.
pub(crate) const ABSENT: &str = "-";

/// `v` as text, or [`ABSENT`].
pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| ABSENT.to_string(), |v| v.to_string())
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            right: vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    /// Align these columns (by index) to the right.
    pub(crate) fn right(mut self, cols: &[usize]) -> Table {
        for &c in cols {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Add a row; missing cells and empty ones show as [`ABSENT`], cells
    /// beyond the header are dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells
            .into_iter()
            .take(self.header.len())
            .map(|c| if c.is_empty() { ABSENT.to_string() } else { c })
            .collect();
        cells.resize(self.header.len(), ABSENT.to_string());
        self.rows.push(cells);
    }

    /// The header and the rows, columns two spaces apart, without
    /// trailing blanks.
    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(c));
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                let pad = " ".repeat(widths[i].saturating_sub(width(c)));
                if self.right[i] {
                    out.push_str(&pad);
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    out.push_str(&pad);
                }
            }
            out.trim_end().to_string()
        };
        let mut lines = vec![line(self.header.iter().map(String::as_str).collect())];
        for r in &self.rows {
            lines.push(line(r.iter().map(String::as_str).collect()));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_characters_and_absent_is_a_dash() {
        let mut t = Table::new(&["ID", "NAME", "BYTES"]).right(&[0, 2]);
        t.row(vec!["7".into(), "données".into(), "1.0 KiB".into()]);
        t.row(vec!["12".into(), String::new()]);
        t.row(vec![opt(Some(3)), opt(None::<u8>), "5 B".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME       BYTES\n 7  données  1.0 KiB\n12  -              -\n 3  -            5 B"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["ID", "NAME"]).render(), "ID  NAME");
    }
}
