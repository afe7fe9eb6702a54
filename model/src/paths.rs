//! Paths inside a restore point, as restores take them (`--path`):
//! relative to the source's root. A path someone copies from the machine
//! that was backed up (`/srv/docs/report.txt` of the source `/srv/docs`)
//! names the same entry, so it is taken too.

/// `path` relative to the source root `root` (the path the source was
/// read from). A relative path is returned as it is; an absolute path
/// under `root` (or `root` itself, which is the whole tree) loses the
/// root's part. Any other absolute path is an error that says paths are
/// relative to the source root, and shows that root when it is known.
pub fn relative_to_root(path: &str, root: Option<&str>) -> Result<String, String> {
    if !path.starts_with('/') {
        return Ok(path.to_string());
    }
    let hint = "paths are relative to the source root";
    let Some(root) = root.filter(|r| r.starts_with('/')) else {
        return Err(format!(
            "{path:?} is absolute: {hint} (e.g. \"{}\")",
            path.trim_start_matches('/')
        ));
    };
    let mut want = root.split('/').filter(|c| !c.is_empty());
    let mut have = path.split('/').filter(|c| !c.is_empty());
    loop {
        match (want.next(), have.next()) {
            (None, first) => {
                let rest: Vec<&str> = first.into_iter().chain(have).collect();
                return Ok(rest.join("/"));
            }
            (Some(w), Some(h)) if w == h => continue,
            _ => {
                return Err(format!(
                    "{path:?} is not under the source root {root:?}: {hint} \
                     (e.g. \"report.txt\" for {}/report.txt)",
                    root.trim_end_matches('/')
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::relative_to_root;

    #[test]
    fn relative_paths_stay() {
        assert_eq!(
            relative_to_root("a/b.txt", Some("/srv")).unwrap(),
            "a/b.txt"
        );
        assert_eq!(relative_to_root("a", None).unwrap(), "a");
    }

    #[test]
    fn absolute_paths_under_the_root_become_relative() {
        let r = Some("/srv/docs");
        assert_eq!(relative_to_root("/srv/docs/a/b.txt", r).unwrap(), "a/b.txt");
        assert_eq!(relative_to_root("/srv//docs/a/", r).unwrap(), "a");
        assert_eq!(relative_to_root("/srv/docs", r).unwrap(), "");
        assert_eq!(
            relative_to_root("/srv/docs/x", Some("/srv/docs/")).unwrap(),
            "x"
        );
        assert_eq!(
            relative_to_root("/etc/passwd", Some("/")).unwrap(),
            "etc/passwd"
        );
    }

    #[test]
    fn other_absolute_paths_say_what_the_root_is() {
        let e = relative_to_root("/srv/docs2/a", Some("/srv/docs")).unwrap_err();
        assert!(e.contains("not under the source root \"/srv/docs\""), "{e}");
        assert!(e.contains("paths are relative to the source root"), "{e}");
        let e = relative_to_root("/srv", Some("/srv/docs")).unwrap_err();
        assert!(e.contains("not under the source root"), "{e}");
        // A source named other than its path: the root is not known.
        let e = relative_to_root("/a/b", Some("docs")).unwrap_err();
        assert_eq!(
            e,
            "\"/a/b\" is absolute: paths are relative to the source root (e.g. \"a/b\")"
        );
    }
}
