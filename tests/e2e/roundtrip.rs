//! Tree backup → restore is identical; incrementals add almost nothing.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::*;

fn make_tree(root: &std::path::Path) {
    fs::create_dir_all(root.join("dir/sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("text.txt"), text_bytes(300_000, 1)).unwrap();
    fs::write(root.join("dir/random.bin"), random_bytes(3_000_000, 2)).unwrap();
    fs::write(
        root.join("dir/sub/deeper/copy.bin"),
        random_bytes(3_000_000, 2),
    )
    .unwrap();
    fs::write(root.join("dir/small"), b"x").unwrap();
    // Sparse: 8 MiB with data only in the middle.
    let f = fs::File::create(root.join("sparse")).unwrap();
    f.set_len(8 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &random_bytes(10_000, 3), 4 << 20).unwrap();
    std::os::unix::fs::symlink("text.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    fs::hard_link(root.join("text.txt"), root.join("dir/hardlink")).unwrap();
    let long = "l".repeat(255);
    fs::write(root.join(&long), b"long name").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"non-utf8-\xff\xfe")), b"bytes").unwrap();
    fs::write(root.join("exec.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("exec.sh"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(root.join("dir/small"), fs::Permissions::from_mode(0o600)).unwrap();
    xattr::set(root.join("text.txt"), "user.arca.test", b"value").unwrap();
    filetime::set_file_mtime(
        root.join("dir/small"),
        filetime::FileTime::from_unix_time(1_000_000_000, 123),
    )
    .unwrap();
}

#[test]
fn tree_roundtrip_is_identical() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    // The backed-up directory's own metadata is restored onto TARGET.
    fs::set_permissions(&src, fs::Permissions::from_mode(0o715)).unwrap();
    filetime::set_file_mtime(&src, filetime::FileTime::from_unix_time(1_200_000_000, 7)).unwrap();
    let b = env.backup_files(&src, "tree");
    assert_eq!(b["files"], 10);
    assert!(b["bytes_added"].as_u64().unwrap() > 3_000_000);
    // The duplicate 3 MB file is stored once.
    assert!(b["bytes_added"].as_u64().unwrap() < 4_500_000, "{b}");
    let out = env.path("out");
    env.ok(&["restore", "latest", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    let (ms, mo) = (fs::metadata(&src).unwrap(), fs::metadata(&out).unwrap());
    assert_eq!(mo.permissions().mode() & 0o7777, 0o715);
    assert_eq!((mo.mtime(), mo.mtime_nsec()), (ms.mtime(), ms.mtime_nsec()));
    // The sparse file is restored sparse.
    let md = fs::metadata(out.join("sparse")).unwrap();
    assert_eq!(md.len(), 8 << 20);
    assert!(
        md.blocks() * 512 < 2 << 20,
        "sparse file restored with {} blocks",
        md.blocks()
    );

    // A second backup of unchanged data adds < 1 % of its size.
    let b2 = env.backup_files(&src, "tree");
    let total = b2["bytes_total"].as_u64().unwrap();
    assert!(b2["bytes_added"].as_u64().unwrap() * 100 < total, "{b2}");
    assert_eq!(b2["bytes_read"], 0, "unchanged files are not read: {b2}");
    assert!(b2["mode"].as_str().unwrap().starts_with("incremental"));

    // A changed file is read again; restore of the new snapshot matches.
    fs::write(src.join("dir/small"), b"changed").unwrap();
    let b3 = env.backup_files(&src, "tree");
    assert_eq!(b3["bytes_read"], 7);
    let out3 = env.path("out3");
    env.ok(&[
        "restore",
        b3["snapshot"].as_str().unwrap(),
        out3.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &out3);
    // The first snapshot is unchanged (by unique prefix).
    let first = &b["snapshot"].as_str().unwrap()[..10];
    let out1 = env.path("out1");
    env.ok(&["restore", first, out1.to_str().unwrap()]);
    assert_eq!(fs::read(out1.join("dir/small")).unwrap(), b"x");
}

#[test]
fn partial_restore_and_ls() {
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.backup_files(&src, "tree");
    let sub = env.path("sub");
    env.ok(&[
        "restore",
        "latest",
        sub.to_str().unwrap(),
        "--path",
        "dir/sub",
    ]);
    assert_same_tree(&src.join("dir/sub"), &sub);
    let one = env.path("one");
    env.ok(&[
        "--datastore",
        env.ds.to_str().unwrap(),
        "restore",
        "tree/latest",
        one.to_str().unwrap(),
        "--path",
        "dir/random.bin",
    ]);
    assert_eq!(
        fs::read(one.join("random.bin")).unwrap(),
        random_bytes(3_000_000, 2)
    );
    // Backed up under its path, a source takes --path as the original
    // absolute path too; another absolute path is refused with the root.
    let real = fs::canonicalize(&src).unwrap();
    env.json(&["backup", "files", real.to_str().unwrap()]);
    let abs = env.path("abs");
    let original = real.join("dir/sub");
    env.ok(&[
        "restore",
        "latest",
        abs.to_str().unwrap(),
        "--source",
        real.to_str().unwrap(),
        "--path",
        original.to_str().unwrap(),
    ]);
    assert_same_tree(&src.join("dir/sub"), &abs);
    let o = env.run(&[
        "restore",
        "latest",
        env.path("elsewhere").to_str().unwrap(),
        "--source",
        real.to_str().unwrap(),
        "--path",
        "/etc/hosts",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("paths are relative to the source root")
            && err.contains(&format!("{:?}", real.to_str().unwrap())),
        "{err}"
    );

    let ls = env.json(&["ls", "latest", "dir", "--recursive"]);
    let paths: Vec<_> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "dir/hardlink",
            "dir/random.bin",
            "dir/small",
            "dir/sub",
            "dir/sub/deeper",
            "dir/sub/deeper/copy.bin"
        ]
    );
    let all = env.json(&["ls", "latest", "--recursive"]);
    assert_eq!(all["entries"].as_array().unwrap().len(), 16);
    // One level: the root's entries only.
    let top = env.json(&["ls", "latest"]);
    let top = top["entries"].as_array().unwrap();
    assert!(top.iter().any(|e| e["path"] == "dir" && e["kind"] == "dir"));
    assert!(top
        .iter()
        .all(|e| !e["path"].as_str().unwrap().contains('/')));
    let o = env.run(&["ls", "latest", "no/such/path"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn unencrypted_datastore_roundtrip() {
    let env = Env::with_init(&["--encryption", "none"]);
    let src = env.path("src");
    make_tree(&src);
    let b = env.backup_files(&src, "plain");
    let out = env.path("out");
    env.ok(&[
        "restore",
        b["snapshot"].as_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &out);
    // Without a passphrase too.
    let o = env
        .cmd(&["snapshots"])
        .env_remove("ARCA_PASSPHRASE")
        .output()
        .unwrap();
    assert!(o.status.success());
}
