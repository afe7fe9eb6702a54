#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arca_ingest::files::{self, FilesOptions};
use arca_repo::{Datastore, Encryption, OpenOptions};

use super::*;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

/// A datastore with three backups of a changing tree, newest first.
fn three_backups() -> (tempfile::TempDir, Arc<Datastore>, Vec<Snapshot>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (rel, body) in [
        ("top.conf", "t"),
        ("a/x.conf", "x"),
        ("a/b/y.conf", "y"),
        ("a/b/notes.txt", "n"),
        ("c/z.txt", "z"),
        ("docs/Readme.MD", "r"),
        ("docs/a/x.conf", "same name, other place"),
    ] {
        write(&src, rel, body);
    }
    let ds_path = dir.path().join("ds");
    Datastore::init(&ds_path, Encryption::None, None, |_| {}).unwrap();
    let ds = Datastore::open(&ds_path, &OpenOptions::default()).unwrap();
    let mut snaps = Vec::new();
    let mut backup = |ds: &Arc<Datastore>| {
        let parent = snaps.last().cloned();
        let opts = FilesOptions {
            source: "src".into(),
            parent,
            tags: Vec::new(),
        };
        let out = files::backup(ds, &src, &opts, &Default::default()).unwrap();
        snaps.push(ds.load_snapshot(&out.snapshot).unwrap());
    };
    backup(&ds);
    // Second: one file gone, one added; a/b and docs unchanged.
    fs::remove_file(src.join("a/x.conf")).unwrap();
    write(&src, "c/new.conf", "new");
    backup(&ds);
    // Third: nothing changed.
    backup(&ds);
    snaps.reverse();
    (dir, ds, snaps)
}

/// (restore point index, path) of every match, a fresh search per
/// restore point or one search for all.
fn matches(ds: &Datastore, snaps: &[Snapshot], p: &Pattern, shared: bool) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut one = Search::new(p);
    for (i, snap) in snaps.iter().enumerate() {
        let mut fresh = Search::new(p);
        let s = if shared { &mut one } else { &mut fresh };
        let done = s
            .snapshot(ds, snap, &mut |e| {
                out.push((i, e.path.clone()));
                true
            })
            .unwrap();
        assert!(done);
    }
    out
}

fn paths(m: &[(usize, String)], i: usize) -> Vec<&str> {
    m.iter()
        .filter(|(j, _)| *j == i)
        .map(|(_, p)| p.as_str())
        .collect()
}

#[test]
fn name_patterns_find_entries_anywhere_in_each_restore_point() {
    let (_d, ds, snaps) = three_backups();
    let p = Pattern::new("*.conf", false).unwrap();
    let m = matches(&ds, &snaps, &p, true);
    let newest = ["a/b/y.conf", "c/new.conf", "docs/a/x.conf", "top.conf"];
    assert_eq!(paths(&m, 0), newest);
    assert_eq!(paths(&m, 1), newest);
    assert_eq!(
        paths(&m, 2),
        ["a/b/y.conf", "a/x.conf", "docs/a/x.conf", "top.conf"]
    );
    // Directories match too, and names only: "a" is not "a/x.conf".
    let p = Pattern::new("a", false).unwrap();
    assert_eq!(paths(&matches(&ds, &snaps, &p, true), 2), ["a", "docs/a"]);
}

#[test]
fn path_patterns_match_whole_paths_and_case_is_ignored_on_request() {
    let (_d, ds, snaps) = three_backups();
    let p = Pattern::new("a/*.conf", false).unwrap();
    let m = matches(&ds, &snaps, &p, true);
    assert!(paths(&m, 0).is_empty(), "{m:?}");
    assert_eq!(paths(&m, 2), ["a/x.conf"], "not docs/a/x.conf");
    let p = Pattern::new("/**/x.conf", false).unwrap();
    assert_eq!(paths(&matches(&ds, &snaps, &p, true), 0), ["docs/a/x.conf"]);
    let p = Pattern::new("readme.md", false).unwrap();
    assert!(matches(&ds, &snaps, &p, true).is_empty());
    let p = Pattern::new("readme.md", true).unwrap();
    assert_eq!(
        paths(&matches(&ds, &snaps, &p, true), 1),
        ["docs/Readme.MD"]
    );
}

/// The remembered subtrees give the same matches, in the same order, as
/// a fresh walk of every restore point, and spare reading them again.
#[test]
fn a_shared_search_finds_what_fresh_walks_find_reading_less() {
    let (_d, ds, snaps) = three_backups();
    for (text, ic) in [
        ("*.conf", false),
        ("*", false),
        ("*.TXT", true),
        ("a/**", false),
        ("docs/*/*", false),
        ("nothing-like-this", false),
    ] {
        let p = Pattern::new(text, ic).unwrap();
        assert_eq!(
            matches(&ds, &snaps, &p, true),
            matches(&ds, &snaps, &p, false),
            "{text}"
        );
    }
    // Trees: root, a, a/b, c, docs, docs/a in each. The second backup
    // changed root, a and c; the third changed nothing.
    let p = Pattern::new("*.conf", false).unwrap();
    let mut s = Search::new(&p);
    let mut n = 0;
    for snap in &snaps {
        s.snapshot(&ds, snap, &mut |_| {
            n += 1;
            true
        })
        .unwrap();
    }
    assert_eq!(n, 12);
    let st = s.stats();
    assert_eq!(st.trees_read, 6 + 3, "{st:?}");
    assert!(st.trees_remembered >= 3, "{st:?}");
}

#[test]
fn the_limit_stops_the_search_and_says_so() {
    let (_d, ds, snaps) = three_backups();
    let p = Pattern::new("*.conf", false).unwrap();
    let (r, _) = search(&ds, &snaps, &p, 5, None);
    assert!(r.truncated);
    assert_eq!(r.matches.len(), 5);
    assert_eq!(r.searched, 2);
    assert_eq!(r.matches[0].restore_point, snaps[0].id.into());
    assert_eq!(r.matches[4].restore_point, snaps[1].id.into());
    assert_eq!(r.matches[4].path, "a/b/y.conf");
    assert_eq!(r.matches[0].source, "src");
    assert_eq!(r.matches[0].kind, api::TreeEntryKind::File);
    assert_eq!(r.matches[0].size, 1);
    let (r, _) = search(&ds, &snaps, &p, 12, None);
    assert!(!r.truncated, "exactly the limit is not cut");
    assert_eq!(r.matches.len(), 12);
    assert_eq!(r.searched, 3);
    assert!(r.skipped.is_empty());
}
