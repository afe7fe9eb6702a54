//! Re-backups of a tree that did not change, or changed in one place:
//! directories the parent holds unchanged keep the parent's tree ids
//! (reused without being written again), the others get new trees, and
//! every snapshot restores to its source, also after GC.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use arca_repo::{ChunkId, Datastore, Encryption, Snapshot};

/// The subtree id of the directory at `path` (names from the root) in `s`.
fn subtree(ds: &Datastore, s: &Snapshot, path: &[&str]) -> Vec<u8> {
    let mut id = s.manifest.tree.clone();
    for name in path {
        let t = ds.read_tree(&ChunkId::from_slice(&id).unwrap()).unwrap();
        let n = t
            .nodes
            .iter()
            .find(|n| n.name == name.as_bytes())
            .unwrap_or_else(|| panic!("{name} not in the tree"));
        id = n.subtree.clone();
    }
    id
}

fn latest(ds: &Datastore) -> Snapshot {
    ds.resolve_snapshot("latest", Some("src")).unwrap()
}

fn write_source(src: &Path) {
    fs::create_dir_all(src.join("a/deep")).unwrap();
    fs::create_dir_all(src.join("b")).unwrap();
    fs::write(src.join("top.txt"), b"top\n").unwrap();
    fs::write(src.join("a/x.bin"), common::random_bytes(200 << 10, 7)).unwrap();
    fs::write(src.join("a/deep/y.txt"), b"deep\n").unwrap();
    fs::write(src.join("b/z.txt"), b"version 1\n").unwrap();
    std::os::unix::fs::symlink("../top.txt", src.join("b/link")).unwrap();
}

#[test]
fn unchanged_directories_keep_the_parents_trees() {
    let dir = tempfile::tempdir().unwrap();
    let (src, store) = (dir.path().join("src"), dir.path().join("ds"));
    write_source(&src);
    common::init(&store, Encryption::Repokey);
    let ds = common::open(&store).unwrap();
    let mut sources = BTreeMap::new();

    common::backup(&ds, &src, "first").unwrap();
    let first = latest(&ds);
    let frozen = dir.path().join("first");
    common::copy_dir(&src, &frozen);
    sources.insert("first".to_string(), frozen);

    // Nothing changed: the same root tree, nothing new stored but the
    // catalog, and the same count of blobs submitted or reused.
    let out = common::backup(&ds, &src, "same").unwrap();
    let same = latest(&ds);
    assert_eq!(same.manifest.tree, first.manifest.tree);
    assert_eq!(out.bytes_read, 0);
    let stats = |s: &Snapshot| s.manifest.stats.clone().unwrap();
    assert_eq!(stats(&same).chunks_new, 0, "{:?}", stats(&same));
    let frozen = dir.path().join("same");
    common::copy_dir(&src, &frozen);
    sources.insert("same".to_string(), frozen);

    // One file of b changes: b and the root get new trees, a and a/deep
    // keep theirs.
    fs::write(src.join("b/z.txt"), b"version 2\n").unwrap();
    common::backup(&ds, &src, "b-changed").unwrap();
    let changed = latest(&ds);
    assert_ne!(changed.manifest.tree, same.manifest.tree);
    assert_ne!(subtree(&ds, &changed, &["b"]), subtree(&ds, &same, &["b"]));
    assert_eq!(subtree(&ds, &changed, &["a"]), subtree(&ds, &same, &["a"]));
    assert_eq!(
        subtree(&ds, &changed, &["a", "deep"]),
        subtree(&ds, &same, &["a", "deep"])
    );
    let frozen = dir.path().join("b-changed");
    common::copy_dir(&src, &frozen);
    sources.insert("b-changed".to_string(), frozen);

    // Only a's own mode changes: a's tree (its entries) stays, the root's
    // tree (which holds a's node) does not.
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o700)).unwrap();
    common::backup(&ds, &src, "a-mode").unwrap();
    let moded = latest(&ds);
    assert_ne!(moded.manifest.tree, changed.manifest.tree);
    assert_eq!(subtree(&ds, &moded, &["a"]), subtree(&ds, &changed, &["a"]));
    assert_eq!(subtree(&ds, &moded, &["b"]), subtree(&ds, &changed, &["b"]));
    let frozen = dir.path().join("a-mode");
    common::copy_dir(&src, &frozen);
    sources.insert("a-mode".to_string(), frozen);

    // An entry removed deep down: every directory above it changes.
    fs::remove_file(src.join("a/deep/y.txt")).unwrap();
    common::backup(&ds, &src, "y-removed").unwrap();
    let removed = latest(&ds);
    assert_ne!(
        subtree(&ds, &removed, &["a", "deep"]),
        subtree(&ds, &moded, &["a", "deep"])
    );
    assert_ne!(subtree(&ds, &removed, &["a"]), subtree(&ds, &moded, &["a"]));
    assert_eq!(subtree(&ds, &removed, &["b"]), subtree(&ds, &moded, &["b"]));
    sources.insert("y-removed".to_string(), src.clone());

    // Reused trees are whole in the datastore: GC keeps them, verify finds
    // nothing wrong, and every snapshot restores to its source.
    common::gc_now(&ds).unwrap();
    common::require_clean(&common::verify_all(&ds).unwrap()).unwrap();
    let scratch = dir.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let tags = common::restore_all(&ds, &sources, &scratch).unwrap();
    assert_eq!(tags.len(), 5);
}
