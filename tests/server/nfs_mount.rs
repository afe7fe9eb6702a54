//! NFS exports through the server (`arca mount RP --nfs [--allow CIDR]`):
//! a file restore point and image restore points (on the server's node
//! and on a remote node) read with libnfs's nfs-ls, nfs-cat and nfs-cp
//! through the address the server shows; allow lists, unmount, TTLs,
//! refusals and project scope.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::common::ext4::ext4_disk;
use crate::common::{self, run_tool, tool};
use crate::helpers::*;

/// `nfs-ls -R` of an export's address: (path, mode string, size), sorted.
fn ls_r(address: &str) -> Vec<(String, String, u64)> {
    let out = tool("nfs-ls", &["-R", address]);
    let mut v: Vec<(String, String, u64)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // MODE NLINK UID GID SIZE NAME [-> TARGET]
            (f[5].to_string(), f[0].to_string(), f[4].parse().unwrap())
        })
        .collect();
    v.sort();
    v
}

/// The libnfs URL of `file` inside the export at `address`.
fn file_url(address: &str, file: &str) -> String {
    let (path, opts) = address.split_once('?').unwrap();
    format!("{path}/{file}?{opts}")
}

fn cat(address: &str, file: &str) -> Vec<u8> {
    tool("nfs-cat", &[&file_url(address, file)]).stdout
}

/// nfs-cp of `file` into `to`; its bytes.
fn cp(address: &str, file: &str, to: &Path) -> Vec<u8> {
    tool("nfs-cp", &[&file_url(address, file), to.to_str().unwrap()]);
    std::fs::read(to).unwrap()
}

/// Whether nfs-ls can read the export at `address`.
fn readable(address: &str) -> bool {
    run_tool("nfs-ls", &[address]).status.success()
}

/// `arca --json mount ...` as the admin: the export.
fn mount(far: &FarNode, args: &[&str]) -> Value {
    let out = far.ok(&[&["--json", "mount"], args].concat()).0;
    serde_json::from_str(&out).unwrap()
}

fn rp_of(far: &FarNode, source: &str, i: usize) -> String {
    restore_points(&far.url, &far.admin, source)[i]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The NFS port of an export's address.
fn nfs_port(address: &str) -> String {
    address
        .split("nfsport=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn restore_points_are_exported_over_nfs_through_the_server() {
    let far = FarNode::start();
    let dir = far.dir.path().to_path_buf();
    let root = dir.to_str().unwrap().to_string();
    far.ok(&["node", "set", "far", "--restore-root", &root]);

    // A file source on the server's node, an image on each node.
    let tree = dir.join("docs");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big = common::random_bytes(3 << 20, 41);
    std::fs::write(tree.join("a.txt"), b"over nfs\n").unwrap();
    std::fs::set_permissions(tree.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(tree.join("sub/big.bin"), &big).unwrap();
    std::fs::set_permissions(
        tree.join("sub/big.bin"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    far.ok(&["source", "add", "files", "docs", tree.to_str().unwrap()]);
    far.ok(&["backup", "now", "docs", "--wait"]);
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
    let docs = rp_of(&far, "docs", 0);

    // The file restore point: the address names the source and the
    // restore point; the default allow list is this client's address.
    let e = mount(&far, &["--nfs", &docs[..12], "--ttl", "10m"]);
    assert_eq!(e["protocol"], "nfs", "{e}");
    assert_eq!(e["allow"], json!(["127.0.0.1/32"]), "{e}");
    assert!(e.get("secret").is_none(), "{e}");
    let addr = e["address"].as_str().unwrap().to_string();
    let port = nfs_port(&addr);
    assert_eq!(
        addr,
        format!("nfs://127.0.0.1/docs/{docs}?version=3&nfsport={port}&mountport={port}")
    );
    let commands: Vec<&str> = e["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(commands[0], format!("nfs-ls -R '{addr}'"), "{e}");
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("mount -t nfs") && c.contains(&format!("port={port},"))),
        "{e}"
    );
    assert_eq!(
        ls_r(&addr),
        [
            ("a.txt".to_string(), "-rw-r-----".to_string(), 9),
            ("sub".to_string(), "drwxr-xr-x".to_string(), 0),
            (
                "sub/big.bin".to_string(),
                "-rw----r--".to_string(),
                big.len() as u64
            ),
        ]
    );
    assert_eq!(cat(&addr, "a.txt"), b"over nfs\n");
    assert!(cp(&addr, "sub/big.bin", &dir.join("big.copy")) == big);
    // The CLI says where and to whom.
    let (out, _) = far.ok(&["mounts"]);
    assert!(out.contains(&addr) && out.contains("nfs"), "{out}");

    // An image restore point: its file tree (disk, partition, files).
    let here = rp_of(&far, "here", 0);
    let e_here = mount(&far, &["--nfs", &here]);
    let here_addr = e_here["address"].as_str().unwrap().to_string();
    assert_eq!(nfs_port(&here_addr), port, "one NFS server per node");
    let l = ls_r(&here_addr);
    let size = std::fs::metadata(&d.disk).unwrap().len();
    assert!(
        l.iter().any(|(p, _, s)| p == "disk.img" && *s == size),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|(p, m, s)| p == "part1/etc/hostname" && m == "-rw-r--r--" && *s == 4),
        "{l:?}"
    );
    assert_eq!(cat(&here_addr, "part1/etc/hostname"), b"vm1\n");
    assert!(
        cp(&here_addr, "part1/home/user/big.bin", &dir.join("img.copy"))
            == std::fs::read(d.tree.join("home/user/big.bin")).unwrap()
    );

    // The remote node serves its own restore point on its own listener.
    let there = rp_of(&far, "there", 0);
    let e_there = mount(&far, &["--nfs", &there]);
    let there_addr = e_there["address"].as_str().unwrap().to_string();
    assert_ne!(nfs_port(&there_addr), port, "{there_addr}");
    assert!(
        there_addr.starts_with(&format!("nfs://127.0.0.1/there/{there}?")),
        "{there_addr}"
    );
    assert_eq!(
        cat(&there_addr, "part1/etc/app.conf"),
        std::fs::read(d.tree.join("etc/app.conf")).unwrap()
    );

    // An allow list without this host: nfs-ls is refused, and the other
    // exports of the same server do not show that restore point.
    far.ok(&["backup", "now", "docs", "--wait"]);
    let docs2 = (0..2)
        .map(|i| rp_of(&far, "docs", i))
        .find(|id| *id != docs)
        .unwrap();
    let fenced = mount(&far, &["--nfs", &docs2, "--allow", "10.9.9.0/24"]);
    assert_eq!(fenced["allow"], json!(["10.9.9.0/24"]), "{fenced}");
    let fenced_addr = fenced["address"].as_str().unwrap().to_string();
    assert!(!readable(&fenced_addr), "{fenced_addr} was readable");
    let source_dir = addr.replace(&format!("/{docs}?"), "?");
    let listed = String::from_utf8(tool("nfs-ls", &[&source_dir]).stdout).unwrap();
    assert!(
        listed.contains(&docs) && !listed.contains(&docs2),
        "{listed}"
    );

    // A restore-only user of another project sees none of it.
    far.ok(&["project", "add", "other"]);
    let pw = dir.join("bob.pw");
    std::fs::write(&pw, "bob-password-123\n").unwrap();
    far.ok(&[
        "user",
        "add",
        "bob",
        "--role",
        "restore-only@other",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let (st, v) = call(
        &far.url,
        "",
        "POST",
        "/api/v1/auth/login",
        Some(json!({"username": "bob", "password": "bob-password-123"})),
    );
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_string();
    let (st, v) = call(
        &far.url,
        &bob,
        "GET",
        &format!("/api/v1/exports/{}", e["id"]),
        None,
    );
    assert_eq!(st, 404, "{v}");
    let (st, v) = call(&far.url, &bob, "GET", "/api/v1/exports", None);
    assert_eq!((st, v), (200, json!([])));
    let (st, v) = call(
        &far.url,
        &bob,
        "POST",
        "/api/v1/exports",
        Some(json!({"restore_point": docs, "protocol": "nfs"})),
    );
    assert_eq!(st, 422, "{v}");

    // Unmount: the path is gone as soon as the node hears of it.
    far.ok(&["unmount", &e["id"].to_string()]);
    wait_for("the unmounted export to stop answering", 30, || {
        !readable(&addr)
    });
    assert!(readable(&here_addr), "the other exports stay");

    // A TTL ends the export.
    let short = mount(&far, &["--nfs", &docs, "--ttl", "2s"]);
    let short_addr = short["address"].as_str().unwrap().to_string();
    let sid = short["id"].as_i64().unwrap();
    wait_for("the export to expire", 30, || {
        call(
            &far.url,
            &far.admin,
            "GET",
            &format!("/api/v1/exports/{sid}"),
            None,
        )
        .1["state"]
            == "expired"
    });
    wait_for("the expired export to stop answering", 30, || {
        !readable(&short_addr)
    });

    // The human form says where and to whom.
    let (out, _) = far.ok(&["mount", "--nfs", &docs, "--allow", "10.1.0.0/16"]);
    assert!(
        out.contains(&format!(
            "nfs://127.0.0.1/docs/{docs}?version=3&nfsport={port}"
        )) && out.contains("NFSv3 clients allowed: 10.1.0.0/16")
            && out.contains("nfs-ls -R"),
        "{out}"
    );

    // Refusals: clear errors, no 500.
    for (body, says) in [
        (
            json!({"restore_point": docs, "protocol": "nfs", "writable": true}),
            "read-only",
        ),
        (
            json!({"restore_point": docs, "protocol": "nfs", "allow": ["10.0.0.0/8", "10.1.2.3/40"]}),
            "10.1.2.3/40",
        ),
        (
            json!({"restore_point": here, "protocol": "nbd", "allow": ["10.0.0.0/8"]}),
            "NFS",
        ),
        (json!({"restore_point": docs, "protocol": "nbd"}), "nfs"),
    ] {
        let (s, v) = call(&far.url, &far.admin, "POST", "/api/v1/exports", Some(body));
        assert_eq!(s, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{v}");
    }
    // The CLI refuses contradictions before asking (usage errors).
    for args in [
        vec!["mount", &docs, "--allow", "10.0.0.0/8"],
        vec!["mount", &docs, "--nfs", "--writable"],
        vec!["mount", &docs, "--nfs", "--iscsi"],
    ] {
        let (code, out, err) = far.arca(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    }
    let (code, out, err) = far.arca(&["mount", &docs, "--nfs", "--allow", "nope"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("nope") && err.contains("422"), "{err}");
}
