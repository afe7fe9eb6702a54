//! A qcow2 image source through the server (issue 17): the backup task's
//! own counters say what was read, the dirty extents of the bitmap the
//! previous backup started, not the disk; its mode says incremental and
//! from which bitmap; the restore point's disk downloads equal to the
//! image (converted to raw by qemu-img).

use std::process::Command;

use serde_json::json;

use crate::helpers::*;

const M: u64 = 1 << 20;

fn qemu(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_qcow2_source_backs_up_only_dirty_extents_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let img = dir.path().join("vm.qcow2");
    let p = img.to_str().unwrap();
    qemu("qemu-img", &["create", "-q", "-f", "qcow2", p, "64M"]);
    qemu("qemu-io", &["-f", "qcow2", "-c", "write -P 0x11 0 8M", p]);
    let (srv, lines) = Server::start(&data);
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let (s, v) = call(
        &url,
        &token,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": "vm", "kind": "image", "path": img})),
    );
    assert_eq!(s, 201, "{v}");
    let src = v["id"].as_i64().unwrap();
    let backup = || {
        let (s, v) = call(
            &url,
            &token,
            "POST",
            &format!("/api/v1/sources/{src}/backup"),
            None,
        );
        assert_eq!(s, 202, "{v}");
        let t = wait_task(&url, &token, v["id"].as_i64().unwrap(), 120);
        assert_eq!(t["state"], "succeeded", "{t}");
        t["result"].clone()
    };
    // The server's datastore has 1 MiB image blocks: 8 allocated ones.
    let r1 = backup();
    assert_eq!(r1["bytes_read"], 8 * M, "{r1}");
    assert_eq!(r1["mode"], "full (no parent snapshot)", "{r1}");

    // Two dirty blocks: 1 MiB at 32 MiB and 64 KiB inside the block at 4 MiB.
    qemu(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x22 32M 1M",
            "-c",
            "write -P 0x33 4M 64k",
            p,
        ],
    );
    let r2 = backup();
    // The whole block at 32 MiB; of the block at 4 MiB only its changed
    // 64 KiB (the rest comes from the parent's chunk).
    assert_eq!(r2["bytes_read"], M + 64 * 1024, "{r2}");
    let mode = r2["mode"].as_str().unwrap();
    assert!(
        mode.starts_with("incremental (2 of 64 blocks changed since")
            && mode.contains("from dirty bitmap arca-"),
        "{r2}"
    );
    let rp = restore_points(&url, &token, "vm")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = dir.path().join("vm.raw");
    qemu(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            p,
            raw.to_str().unwrap(),
        ],
    );
    let want = std::fs::read(&raw).unwrap();
    let got = agent()
        .get(format!(
            "{url}/api/v1/restore-points/{rp}/files?path=disk.img"
        ))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_body()
        .with_config()
        .limit(128 * M)
        .read_to_vec()
        .unwrap();
    assert!(
        got == want,
        "the restore point's disk differs from the image"
    );
}
