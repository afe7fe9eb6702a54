//! qcow2 images (issue 17): read through qemu-nbd, only allocated extents;
//! changed-block tracking from persistent dirty bitmaps, with the fallback
//! when the bitmap is gone; corrupt and locked images refused. Real
//! qemu-img, qemu-io and qemu-nbd.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

const K: u64 = 1024;
const M: u64 = 1024 * K;
/// The test datastore's image chunk size.
const BLOCK: u64 = 64 * K;

fn qemu(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Write with qemu-io: each command like "write -P 0x11 0 4M".
fn qemu_io(img: &Path, cmds: &[&str]) {
    let mut args = vec!["-f", "qcow2"];
    for c in cmds {
        args.extend(["-c", c]);
    }
    args.push(img.to_str().unwrap());
    qemu("qemu-io", &args);
}

fn bitmaps(img: &Path) -> Vec<String> {
    let info: serde_json::Value = serde_json::from_str(&qemu(
        "qemu-img",
        &["info", "--output=json", img.to_str().unwrap()],
    ))
    .unwrap();
    info["format-specific"]["data"]["bitmaps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| b["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Restore the latest restore point to a raw file and compare it with the
/// qcow2 image's content.
fn restores_identical(env: &Env, img: &Path, name: &str) {
    let out = env.path(name);
    env.ok(&["restore", "latest", out.to_str().unwrap()]);
    let o = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&out)
        .arg(img)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "qemu-img compare: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The newest restore point, as `arca snapshots --json` shows it.
fn latest(env: &Env) -> serde_json::Value {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

#[test]
fn qcow2_backups_read_allocated_then_only_dirty_extents() {
    let env = Env::new();
    let img = env.path("vm.qcow2");
    let p = img.to_str().unwrap();
    qemu("qemu-img", &["create", "-q", "-f", "qcow2", p, "256M"]);
    qemu_io(
        &img,
        &[
            "write -P 0x11 0 4M",
            "write -P 0x22 100M 8M",
            "write -P 0x33 255M 1M",
        ],
    );

    // First backup: full, reading only the 13 MiB allocated.
    let b1 = env.json(&["backup", "image", p, "--source", "vm"]);
    assert_eq!(b1["bytes_read"], 13 * M, "{b1}");
    assert_eq!(b1["bytes_total"], 256 * M, "{b1}");
    assert_eq!(b1["mode"], "full (no parent snapshot)", "{b1}");
    let disk = &latest(&env)["disks"][0];
    assert_eq!(disk["format"], "qcow2", "{disk}");
    let cbt1 = disk["cbt"].as_str().unwrap().to_string();
    assert!(cbt1.starts_with("arca-"), "{disk}");
    assert_eq!(bitmaps(&img), vec![cbt1.clone()]);
    restores_identical(&env, &img, "r1.raw");

    // Writes at known offsets: a new cluster, 4 KiB inside an existing
    // one, and zeros (a zero cluster: dirty, but not read).
    qemu_io(
        &img,
        &[
            "write -P 0x44 50M 64k",
            "write -P 0x55 102404k 4k",
            "write -z 2M 64k",
        ],
    );
    let b2 = env.json(&["backup", "image", p, "--source", "vm"]);
    let mode = b2["mode"].as_str().unwrap();
    assert!(
        mode.starts_with("incremental (3 of 4096 blocks changed since")
            && mode.ends_with(&format!("from dirty bitmap {cbt1})")),
        "{b2}"
    );
    // Two dirty blocks hold data; the zeroed one is a hole.
    assert_eq!(b2["bytes_read"], 2 * BLOCK, "{b2}");
    let disk = &latest(&env)["disks"][0];
    let cbt2 = disk["cbt"].as_str().unwrap().to_string();
    assert_ne!(cbt2, cbt1);
    assert_eq!(
        bitmaps(&img),
        vec![cbt2.clone()],
        "the parent's bitmap is removed once committed"
    );
    restores_identical(&env, &img, "r2.raw");

    // The bitmap is lost: a full read, deduplicated against the parent,
    // and the restore point says why.
    qemu("qemu-img", &["bitmap", "--remove", p, &cbt2]);
    qemu_io(&img, &["write -P 0x66 60M 64k"]);
    let b3 = env.json(&["backup", "image", p, "--source", "vm"]);
    let mode = b3["mode"].as_str().unwrap();
    assert!(
        mode.starts_with("full read, dedup against")
            && mode.contains(&format!("dirty bitmap {cbt2} of"))
            && mode.contains("is not in the image"),
        "{b3}"
    );
    // The zeroed cluster is no longer allocated; the two new ones are.
    assert_eq!(b3["bytes_read"], 13 * M + BLOCK, "{b3}");
    assert!(b3["bytes_added"].as_u64().unwrap() < M, "{b3}");
    restores_identical(&env, &img, "r3.raw");

    // And incremental again from the new bitmap: nothing changed, nothing read.
    let b4 = env.json(&["backup", "image", p, "--source", "vm"]);
    assert_eq!(b4["bytes_read"], 0, "{b4}");
    assert!(
        b4["mode"]
            .as_str()
            .unwrap()
            .starts_with("incremental (0 of 4096"),
        "{b4}"
    );
    restores_identical(&env, &img, "r4.raw");
}

#[test]
fn corrupt_or_busy_qcow2_images_fail_clearly_and_list_nothing() {
    let env = Env::new();
    let img = env.path("bad.qcow2");
    let p = img.to_str().unwrap();
    qemu("qemu-img", &["create", "-q", "-f", "qcow2", p, "16M"]);
    qemu_io(&img, &["write -P 0x11 0 1M"]);
    env.json(&["backup", "image", p, "--source", "bad"]);
    let good = bitmaps(&img);
    let before = env.snapshot_ids();

    // Marked corrupt (the incompatible feature bit 1 at byte 72).
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 72).unwrap();
    b[7] |= 2;
    f.write_all_at(&b, 72).unwrap();
    let o = env.run(&["backup", "image", p, "--source", "bad"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("corrupt"), "{err}");
    b[7] &= !2;
    f.write_all_at(&b, 72).unwrap();

    // An unsupported version: qemu-img's own words.
    f.write_all_at(&99u32.to_be_bytes(), 4).unwrap();
    let o = env.run(&["backup", "image", p, "--source", "bad"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("version 99"), "{err}");
    f.write_all_at(&3u32.to_be_bytes(), 4).unwrap();

    // Held by a writer (a running VM's qemu): refused with the way out.
    let mut writer = Command::new("qemu-nbd")
        .args(["-f", "qcow2", "--socket"])
        .arg(env.path("w.sock"))
        .arg(&img)
        .spawn()
        .unwrap();
    while !env.path("w.sock").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = env.run(&["backup", "image", p, "--source", "bad"]);
    writer.kill().unwrap();
    writer.wait().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("in use"), "{err}");

    // Nothing listed, the good bitmap kept and no new one left behind.
    assert_eq!(env.snapshot_ids(), before);
    assert_eq!(bitmaps(&img), good);
    // The killed writer left the bitmap marked in use: it may have missed
    // writes, so the next backup reads everything, and says why; the one
    // after is incremental again.
    let b = env.json(&["backup", "image", p, "--source", "bad"]);
    let mode = b["mode"].as_str().unwrap();
    assert!(
        mode.starts_with("full read, dedup against") && mode.contains("is inconsistent"),
        "{b}"
    );
    assert_eq!(b["bytes_read"], 1 << 20, "{b}");
    let b = env.json(&["backup", "image", p, "--source", "bad"]);
    assert!(
        b["mode"]
            .as_str()
            .unwrap()
            .starts_with("incremental (0 of 256"),
        "{b}"
    );
    assert_eq!(bitmaps(&img).len(), 1);
}
