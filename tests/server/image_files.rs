//! File access to image restore points through the server: `arca ls`,
//! `arca find --images` and `arca restore --path` of a partitioned ext4
//! image ([`crate::common::ext4`]) and of an NTFS one
//! ([`crate::common::ntfs`]), on the server's own node and on a
//! remote node (which reads its datastore itself: tree and find queries,
//! and the restore task).

use serde_json::{json, Value};

use crate::common::ext4::{assert_diff_r_clean, assert_same_bytes, ext4_disk, Ext4Disk};
use crate::common::ntfs::ntfs_disk;
use crate::helpers::*;

fn paths(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

/// A server and node "far", the disk backed up as "here" (the server's
/// node) and "there" (far); their restore point ids.
fn two_image_restore_points() -> (FarNode, Ext4Disk, [String; 2]) {
    let far = FarNode::start();
    let dir = far.dir.path().to_path_buf();
    let root = dir.to_str().unwrap().to_string();
    far.ok(&["node", "set", "far", "--restore-root", &root]);
    let d = ext4_disk(&dir);
    far.ok(&["source", "add", "image", "here", d.disk.to_str().unwrap()]);
    let (s, v) = call(
        &far.url,
        &far.admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "there", "kind": "image", "path": d.disk, "node": "far"})),
    );
    assert_eq!(s, 201, "{v}");
    far.ok(&["backup", "now", "here", "--wait"]);
    far.ok(&["backup", "now", "there", "--wait"]);
    let id = |source: &str| {
        restore_points(&far.url, &far.admin, source)[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ids = [id("here"), id("there")];
    (far, d, ids)
}

#[test]
fn image_restore_points_list_find_and_restore_their_disk_file() {
    let (far, d, ids) = two_image_restore_points();
    let dir = far.dir.path().to_path_buf();
    let size = std::fs::metadata(&d.disk).unwrap().len();
    for (i, id) in ids.iter().enumerate() {
        let human = far.ok(&["ls", &id[..12]]).0;
        assert!(
            human
                .lines()
                .any(|l| l.ends_with(" disk.img") && l.contains(&size.to_string())),
            "{human}"
        );
        let page: Value = serde_json::from_str(&far.ok(&["--json", "ls", id]).0).unwrap();
        assert!(
            paths(&page, "entries").contains(&"disk.img".to_string()),
            "{page}"
        );
        let (code, _, err) = far.arca(&["ls", id, "nope"]);
        assert_ne!(code, Some(0), "{err}");

        // restore --path: the disk file, byte for byte, on the node.
        let out = dir.join(format!("out{i}"));
        let o = out.to_str().unwrap();
        far.ok(&["restore", id, "--to", o, "--path", "disk.img", "--wait"]);
        assert_same_bytes(&d.disk, &out.join("disk.img"));
        // `..` refused, a missing path a failed task; exit code 1.
        let bad = dir.join(format!("bad{i}"));
        let b = bad.to_str().unwrap();
        let (code, out, err) =
            far.arca(&["restore", id, "--to", b, "--path", "part1/../x", "--wait"]);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!((out.clone() + &err).contains("'..'"), "{out}{err}");
        let (code, out, err) = far.arca(&["restore", id, "--to", b, "--path", "nope/x", "--wait"]);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!((out.clone() + &err).contains("no path"), "{out}{err}");
        assert!(!bad.join("x").exists());
    }

    // find: the images are skipped unless asked; asked, both are searched
    // (the remote one by its node).
    let r: Value = serde_json::from_str(&far.ok(&["--json", "find", "*.img"]).0).unwrap();
    assert_eq!(r["matches"], json!([]), "{r}");
    assert_eq!(r["skipped"].as_array().unwrap().len(), 2, "{r}");
    assert!(
        r["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("--images"),
        "{r}"
    );
    let r: Value =
        serde_json::from_str(&far.ok(&["--json", "find", "disk.img", "--images"]).0).unwrap();
    let mut got: Vec<(String, String)> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["restore_point"].as_str().unwrap().to_string(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<_> = ids
        .iter()
        .map(|id| (id.clone(), "disk.img".to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want, "{r}");
    assert_eq!(r["skipped"], json!([]), "{r}");
}

#[test]
fn files_come_out_of_an_ext4_partition_through_the_server() {
    let (far, d, ids) = two_image_restore_points();
    let dir = far.dir.path().to_path_buf();
    for (i, id) in ids.iter().enumerate() {
        let page: Value =
            serde_json::from_str(&far.ok(&["--json", "ls", id, "part1/etc"]).0).unwrap();
        let mut names = paths(&page, "entries");
        names.sort();
        assert_eq!(
            names,
            ["part1/etc/app.conf", "part1/etc/hostname"],
            "{page}"
        );
        let all = far.ok(&["ls", id, "part1/home", "-r"]).0;
        assert!(all.contains(" part1/home/user/link -> notes.txt"), "{all}");

        let out = dir.join(format!("home{i}"));
        let o = out.to_str().unwrap();
        far.ok(&["restore", id, "--to", o, "--path", "/part1/home", "--wait"]);
        assert_diff_r_clean(&d.tree.join("home"), &out);
        crate::common::assert_same_tree(&d.tree.join("home"), &out);
    }
    let r: Value =
        serde_json::from_str(&far.ok(&["--json", "find", "hostname", "--images"]).0).unwrap();
    let got: Vec<_> = paths(&r, "matches");
    assert_eq!(got, ["part1/etc/hostname", "part1/etc/hostname"], "{r}");
}

/// An NTFS partition ([`crate::common::ntfs`]) through the server: listed
/// without NTFS' system files, found, and a directory restored as it was.
#[test]
fn files_come_out_of_an_ntfs_partition_through_the_server() {
    let far = FarNode::start();
    let dir = far.dir.path().to_path_buf();
    let d = ntfs_disk(&dir);
    far.ok(&["source", "add", "image", "win", d.disk.to_str().unwrap()]);
    far.ok(&["backup", "now", "win", "--wait"]);
    let id = restore_points(&far.url, &far.admin, "win")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let page: Value = serde_json::from_str(&far.ok(&["--json", "ls", &id, "part1"]).0).unwrap();
    let mut names = paths(&page, "entries");
    names.sort();
    assert_eq!(names, ["part1/Users", "part1/Windows"], "{page}");
    let all = far.ok(&["ls", &id, "part1/Users", "-r"]).0;
    assert!(all.contains(" part1/Users/ann/ñandú/café.txt"), "{all}");

    let out = dir.join("users");
    let o = out.to_str().unwrap();
    far.ok(&[
        "restore",
        &id,
        "--to",
        o,
        "--path",
        "/part1/Users",
        "--wait",
    ]);
    assert_diff_r_clean(&d.tree.join("Users"), &out);
    crate::common::assert_same_tree(&d.tree.join("Users"), &out);
    let one = dir.join("one");
    let o = one.to_str().unwrap();
    far.ok(&[
        "restore",
        &id,
        "--to",
        o,
        "--path",
        "part1/Windows/hosts.link",
        "--wait",
    ]);
    assert_same_bytes(&d.tree.join("Windows/hosts"), &one.join("hosts.link"));

    let r: Value =
        serde_json::from_str(&far.ok(&["--json", "find", "big.bin", "--images"]).0).unwrap();
    assert_eq!(paths(&r, "matches"), ["part1/Users/ann/big.bin"], "{r}");
}
