//! Restores stay in their target: a symbolic link, whether the restore
//! point makes it or it was in the target before, is never followed out of
//! it; a target that holds data is written only with `--overwrite`.

use std::fs;
use std::path::Path;

use arca_repo::format::{node_kind, Manifest, Node, Tree, STRUCT_VERSION};
use arca_repo::{BlobKind, Datastore, OpenOptions};

use crate::common::{Env, PASS};

/// Write a tree snapshot whose root holds `nodes` (built with the id of
/// a tree holding one file `evil` with the bytes `evil`); returns its id.
fn craft(env: &Env, nodes: impl Fn(Vec<u8>) -> Vec<Node>) -> String {
    let ds = Datastore::open(
        &env.ds,
        &OpenOptions {
            passphrase: Some(PASS.as_bytes().to_vec()),
            ..Default::default()
        },
    )
    .unwrap();
    let s = ds.begin_session().unwrap();
    let data = s.store(BlobKind::Data, b"evil").unwrap();
    let inner = Tree {
        version: STRUCT_VERSION,
        nodes: vec![Node {
            name: b"evil".to_vec(),
            kind: node_kind::FILE,
            mode: 0o644,
            size: 4,
            nlink: 1,
            content: vec![data.as_bytes().to_vec()],
            ..Default::default()
        }],
    };
    let inner = s
        .store(BlobKind::Tree, &prost::Message::encode_to_vec(&inner))
        .unwrap();
    let root = Tree {
        version: STRUCT_VERSION,
        nodes: nodes(inner.as_bytes().to_vec()),
    };
    let root = s
        .store(BlobKind::Tree, &prost::Message::encode_to_vec(&root))
        .unwrap();
    let id = s
        .commit(Manifest {
            source_kind: "files".into(),
            source: "crafted".into(),
            time_ns: 1_700_000_000_000_000_000,
            tree: root.as_bytes().to_vec(),
            ..Default::default()
        })
        .unwrap();
    id.to_hex()
}

fn link(name: &str, to: &Path) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        kind: node_kind::SYMLINK,
        mode: 0o777,
        link_target: to.as_os_str().as_encoded_bytes().to_vec(),
        ..Default::default()
    }
}

fn dir(name: &str, subtree: Vec<u8>) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        kind: node_kind::DIR,
        mode: 0o755,
        subtree,
        ..Default::default()
    }
}

fn is_empty(d: &Path) -> bool {
    fs::read_dir(d).unwrap().next().is_none()
}

/// A restore point with a link `x -> OUTSIDE` and a directory `x` holding
/// `evil` (in either order) writes nothing outside the target.
#[test]
fn a_link_in_the_restore_point_is_never_followed() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();

    // The link first, then the directory: the directory replaces the link.
    let id = craft(&env, |sub| vec![link("x", &outside), dir("x", sub)]);
    let target = env.path("t1");
    let o = env.run(&["restore", &id, target.to_str().unwrap()]);
    assert!(is_empty(&outside), "wrote outside the target: {o:?}");
    assert!(o.status.success(), "{o:?}");
    let x = fs::symlink_metadata(target.join("x")).unwrap();
    assert!(x.is_dir(), "x must be a real directory now");
    assert_eq!(fs::read(target.join("x/evil")).unwrap(), b"evil");

    // The directory first, then the link: refused, still nothing outside.
    let id = craft(&env, |sub| vec![dir("x", sub), link("x", &outside)]);
    let target = env.path("t2");
    let o = env.run(&["restore", &id, target.to_str().unwrap()]);
    assert!(is_empty(&outside), "wrote outside the target: {o:?}");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in the way"),
        "{o:?}"
    );
}

/// A link already in the target where the restore point has a directory:
/// with --overwrite the link is replaced, never followed.
#[test]
fn a_link_in_the_target_is_never_followed() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let src = env.path("src");
    fs::create_dir_all(src.join("x")).unwrap();
    fs::write(src.join("x/evil"), b"evil").unwrap();
    env.backup_files(&src, "tree");

    let target = env.path("target");
    fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("x")).unwrap();
    // Not empty: refused without --overwrite, and nothing changes.
    let o = env.run(&["restore", "latest", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is not empty") && err.contains("--overwrite"),
        "{err}"
    );
    assert!(fs::symlink_metadata(target.join("x")).unwrap().is_symlink());

    env.ok(&["restore", "latest", target.to_str().unwrap(), "--overwrite"]);
    assert!(is_empty(&outside), "wrote outside the target");
    assert!(fs::symlink_metadata(target.join("x")).unwrap().is_dir());
    assert_eq!(fs::read(target.join("x/evil")).unwrap(), b"evil");

    // A link leading out of the target in place of a file is replaced too
    // (the file is created anew, not written through the link).
    let victim = outside.join("victim");
    fs::write(&victim, b"untouched").unwrap();
    fs::remove_file(target.join("x/evil")).unwrap();
    std::os::unix::fs::symlink(&victim, target.join("x/evil")).unwrap();
    env.ok(&["restore", "latest", target.to_str().unwrap(), "--overwrite"]);
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
    assert!(fs::symlink_metadata(target.join("x/evil"))
        .unwrap()
        .is_file());
}

/// Data in the target stays unless --overwrite: trees and images.
#[test]
fn a_target_with_data_needs_overwrite() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"new a").unwrap();
    env.backup_files(&src, "tree");

    let target = env.path("target");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("a"), b"old a").unwrap();
    fs::write(target.join("keep"), b"keep").unwrap();
    let o = env.run(&["restore", "latest", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--overwrite"),
        "{o:?}"
    );
    assert_eq!(fs::read(target.join("a")).unwrap(), b"old a");
    env.ok(&["restore", "latest", target.to_str().unwrap(), "--overwrite"]);
    assert_eq!(fs::read(target.join("a")).unwrap(), b"new a");
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"keep");
    // An empty directory, or a new one, needs nothing.
    let empty = env.path("empty");
    fs::create_dir(&empty).unwrap();
    env.ok(&["restore", "latest", empty.to_str().unwrap()]);
    env.ok(&[
        "restore",
        "latest",
        env.path("new/deeper").to_str().unwrap(),
    ]);

    let img = env.path("disk.raw");
    fs::write(&img, crate::common::random_bytes(300_000, 3)).unwrap();
    env.ok(&["backup", "image", img.to_str().unwrap(), "--source", "vm"]);
    let out = env.path("out.raw");
    fs::write(&out, b"precious").unwrap();
    let o = env.run(&["restore", "vm/latest", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("holds 8 bytes") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    env.ok(&["restore", "vm/latest", out.to_str().unwrap(), "--overwrite"]);
    assert_eq!(fs::read(&out).unwrap(), fs::read(&img).unwrap());
    // A link as the image target is refused whatever the flags.
    let link = env.path("link.raw");
    std::os::unix::fs::symlink(env.path("elsewhere.raw"), &link).unwrap();
    let o = env.run(&[
        "restore",
        "vm/latest",
        link.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("symbolic link"),
        "{o:?}"
    );
    assert!(!env.path("elsewhere.raw").exists());
}
