//! File access to an image restore point through its file tree (`arca
//! ls`, `arca find --images`, `arca restore --path`), on a real
//! partitioned disk: an MBR with one ext4 partition made by sfdisk and
//! `mkfs.ext4 -d` ([`crate::common::ext4`]).
//!
//! The first test reads the disk as a file (`disk.img`), the second the
//! files of the ext4 partition (`part1/...`), the third those of an NTFS
//! partition.

use std::fs;
use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::common::ext4::{assert_diff_r_clean, assert_same_bytes, ext4_disk};
use crate::common::ntfs::ntfs_disk;
use crate::common::*;

fn paths(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_image_lists_finds_and_restores_its_disk_file() {
    let env = Env::new();
    let d = ext4_disk(env.dir.path());
    env.json(&[
        "backup",
        "image",
        d.disk.to_str().unwrap(),
        "--source",
        "vm1",
    ]);
    let size = fs::metadata(&d.disk).unwrap().len();

    // ls: the tree's root, human and JSON.
    let human = env.ok(&["ls", "latest"]);
    let line = human.lines().find(|l| l.ends_with(" disk.img")).unwrap();
    assert!(line.starts_with("f    444 "), "{human}");
    assert!(line.contains(&size.to_string()), "{human}");
    let ls = env.json(&["ls", "latest"]);
    assert!(
        paths(&ls, "entries").contains(&"disk.img".to_string()),
        "{ls}"
    );
    let e = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "disk.img")
        .unwrap();
    assert_eq!(
        (e["kind"].as_str(), e["size"].as_u64()),
        (Some("file"), Some(size))
    );
    let one = env.json(&["ls", "latest", "disk.img"]);
    assert_eq!(paths(&one, "entries"), ["disk.img"], "{one}");
    let o = env.run(&["ls", "latest", "no/such"]);
    assert!(!o.status.success());

    // find: images only when asked.
    let r = env.json(&["find", "*.img"]);
    assert_eq!(r["matches"], serde_json::json!([]), "{r}");
    assert_eq!(r["searched"], 0, "{r}");
    assert!(
        r["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("--images"),
        "{r}"
    );
    let r = env.json(&["find", "*.img", "--images"]);
    assert!(
        paths(&r, "matches").contains(&"disk.img".to_string()),
        "{r}"
    );
    assert_eq!(r["searched"], 1, "{r}");
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");

    // restore --path disk.img: the disk, byte for byte, under its name.
    let out = env.path("out");
    let r = env.json(&[
        "restore",
        "latest",
        out.to_str().unwrap(),
        "--path",
        "disk.img",
    ]);
    assert_eq!(r["files"], 1, "{r}");
    assert_eq!(r["bytes"], size, "{r}");
    assert_same_bytes(&d.disk, &out.join("disk.img"));
    // Again into the same target: refused without --overwrite.
    let o = env.run(&[
        "restore",
        "latest",
        out.to_str().unwrap(),
        "--path",
        "disk.img",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    env.ok(&[
        "restore",
        "latest",
        out.to_str().unwrap(),
        "--path",
        "/disk.img",
        "--overwrite",
    ]);

    // `..` is refused, a missing path is a clear error; nothing is made.
    let bad = env.path("bad");
    let o = env.run(&[
        "restore",
        "latest",
        bad.to_str().unwrap(),
        "--path",
        "part1/../disk.img",
    ]);
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("'..'"), "{err}");
    let o = env.run(&[
        "restore",
        "latest",
        bad.to_str().unwrap(),
        "--path",
        "nope/x",
    ]);
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no path") && err.contains("nope/x"), "{err}");
    assert!(!bad.exists());
}

/// Needs the partitions and file systems of the image tree (helper
/// `img`): run after that merge (see the module documentation).
#[test]
fn files_come_out_of_an_ext4_partition_without_mounting() {
    let env = Env::new();
    let d = ext4_disk(env.dir.path());
    env.json(&[
        "backup",
        "image",
        d.disk.to_str().unwrap(),
        "--source",
        "vm1",
    ]);

    let root = paths(&env.json(&["ls", "latest"]), "entries");
    for p in ["disk.img", "part1.img", "part1"] {
        assert!(root.contains(&p.to_string()), "{root:?}");
    }
    let etc = env.json(&["ls", "latest", "part1/etc"]);
    let mut names = paths(&etc, "entries");
    names.sort();
    assert_eq!(names, ["part1/etc/app.conf", "part1/etc/hostname"], "{etc}");
    let all = env.ok(&["ls", "latest", "part1", "-r"]);
    assert!(all.contains(" part1/home/user/notes.txt"), "{all}");
    assert!(all.contains(" part1/home/user/link -> notes.txt"), "{all}");

    let r = env.json(&["find", "hostname", "--images"]);
    assert_eq!(paths(&r, "matches"), ["part1/etc/hostname"], "{r}");
    // A path pattern matches the tree's paths: the partition comes first.
    let r = env.json(&["find", "part1/home/**/*.txt", "--images"]);
    assert_eq!(paths(&r, "matches"), ["part1/home/user/notes.txt"], "{r}");

    // A directory: its contents, modes, times and links as in the source.
    for dir in ["etc", "home"] {
        let out = env.path(&format!("out-{dir}"));
        let p = format!("part1/{dir}");
        env.ok(&["restore", "latest", out.to_str().unwrap(), "--path", &p]);
        assert_diff_r_clean(&d.tree.join(dir), &out);
        assert_same_tree(&d.tree.join(dir), &out);
    }
    // A file, under its name.
    let one = env.path("one");
    env.ok(&[
        "restore",
        "latest",
        one.to_str().unwrap(),
        "--path",
        "part1/home/user/notes.txt",
    ]);
    assert_same_bytes(&d.tree.join("home/user/notes.txt"), &one.join("notes.txt"));
    let (a, b) = (
        fs::metadata(d.tree.join("home/user/notes.txt")).unwrap(),
        fs::metadata(one.join("notes.txt")).unwrap(),
    );
    assert_eq!((a.mode(), a.mtime()), (b.mode(), b.mtime()));
    // Hard links come out as copies.
    let var = env.path("var");
    env.ok(&[
        "restore",
        "latest",
        var.to_str().unwrap(),
        "--path",
        "part1/var",
    ]);
    assert_eq!(fs::read(var.join("a")).unwrap(), b"linked\n");
    assert_eq!(fs::read(var.join("b")).unwrap(), b"linked\n");
    assert_eq!(fs::metadata(var.join("a")).unwrap().nlink(), 1);
}

/// An NTFS partition ([`crate::common::ntfs`], filled through ntfs-3g):
/// its files listed, found and restored as they were, NTFS' system files
/// not shown.
#[test]
fn files_come_out_of_an_ntfs_partition_without_mounting() {
    let env = Env::new();
    let d = ntfs_disk(env.dir.path());
    env.json(&[
        "backup",
        "image",
        d.disk.to_str().unwrap(),
        "--source",
        "win",
    ]);

    let root = paths(&env.json(&["ls", "latest"]), "entries");
    for p in ["disk.img", "part1.img", "part1"] {
        assert!(root.contains(&p.to_string()), "{root:?}");
    }
    let top = env.json(&["ls", "latest", "part1"]);
    let mut names = paths(&top, "entries");
    names.sort();
    assert_eq!(names, ["part1/Users", "part1/Windows"], "{top}");
    let win = env.json(&["ls", "latest", "part1/Windows"]);
    let mut names = paths(&win, "entries");
    names.sort();
    assert_eq!(
        names,
        ["part1/Windows/hosts", "part1/Windows/hosts.link"],
        "{win}"
    );
    let all = env.ok(&["ls", "latest", "part1/Users", "-r"]);
    assert!(all.contains(" part1/Users/ann/big.bin"), "{all}");
    assert!(all.contains(&(3u64 << 20).to_string()), "{all}");

    let r = env.json(&["find", "café.txt", "--images"]);
    assert_eq!(
        paths(&r, "matches"),
        ["part1/Users/ann/ñandú/café.txt"],
        "{r}"
    );

    // A directory: contents, modes (made up: 0755, 0644) and times as in
    // the source.
    let out = env.path("out-users");
    env.ok(&[
        "restore",
        "latest",
        out.to_str().unwrap(),
        "--path",
        "part1/Users",
    ]);
    assert_diff_r_clean(&d.tree.join("Users"), &out);
    assert_same_tree(&d.tree.join("Users"), &out);
    // A file with an odd name, under its name.
    let one = env.path("one");
    let odd = "Users/ann/Ann's \"list\" 1.txt";
    env.ok(&[
        "restore",
        "latest",
        one.to_str().unwrap(),
        "--path",
        &format!("part1/{odd}"),
    ]);
    let restored = one.join("Ann's \"list\" 1.txt");
    assert_same_bytes(&d.tree.join(odd), &restored);
    let (a, b) = (
        fs::metadata(d.tree.join(odd)).unwrap(),
        fs::metadata(&restored).unwrap(),
    );
    assert_eq!((a.mode(), a.mtime()), (b.mode(), b.mtime()));
    // Hard links come out as copies.
    let w = env.path("win");
    env.ok(&[
        "restore",
        "latest",
        w.to_str().unwrap(),
        "--path",
        "part1/Windows",
    ]);
    for f in ["hosts", "hosts.link"] {
        assert_same_bytes(&d.tree.join("Windows/hosts"), &w.join(f));
    }
}
