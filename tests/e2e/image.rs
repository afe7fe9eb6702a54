//! Image backup → restore is byte-identical and sparse; incrementals store
//! only changed blocks; changed extents limit what is read.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::process::Command;

use crate::common::*;

const BLOCK: u64 = 64 * 1024;
const SIZE: u64 = 64 << 20; // 1024 blocks of 64 KiB

fn make_image(path: &std::path::Path) {
    let f = fs::File::create(path).unwrap();
    f.set_len(SIZE).unwrap();
    // Data in 3/4 of the image, the rest zero (holes).
    for i in 0..(SIZE / BLOCK) {
        if i % 4 != 3 {
            let data = if i % 2 == 0 {
                random_bytes(BLOCK as usize, i)
            } else {
                text_bytes(BLOCK as usize, i)
            };
            f.write_all_at(&data, i * BLOCK).unwrap();
        }
    }
}

fn cmp(a: &std::path::Path, b: &std::path::Path) {
    let s = Command::new("cmp").arg(a).arg(b).status().unwrap();
    assert!(s.success(), "cmp {} {} differ", a.display(), b.display());
}

#[test]
fn image_roundtrip_and_incrementals() {
    let env = Env::new();
    let img = env.path("disk.raw");
    make_image(&img);
    let b1 = env.json(&["backup", "image", img.to_str().unwrap(), "--source", "vm1"]);
    assert_eq!(b1["bytes_read"], SIZE);
    let out = env.path("restored.raw");
    env.ok(&["restore", "latest", out.to_str().unwrap()]);
    cmp(&img, &out);
    let md = fs::metadata(&out).unwrap();
    assert_eq!(md.len(), SIZE);
    assert!(
        md.blocks() * 512 <= SIZE * 3 / 4 + BLOCK,
        "holes not preserved: {} blocks",
        md.blocks()
    );
    // `ls` shows the image's file tree; the disks are in `snapshots`.
    let ls = env.json(&["ls", "latest"]);
    assert_eq!(ls["entries"][0]["path"], "disk.img", "{ls}");
    assert_eq!(ls["entries"][0]["size"], SIZE, "{ls}");
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["disks"][0]["holes"], SIZE / BLOCK / 4);

    // Unchanged: < 1 % added.
    let b2 = env.json(&["backup", "image", img.to_str().unwrap(), "--source", "vm1"]);
    assert!(b2["bytes_added"].as_u64().unwrap() * 100 < SIZE, "{b2}");
    assert_eq!(b2["bytes_read"], 0, "an untouched image is not read: {b2}");

    // 2 % of blocks changed: about 2 % added.
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    let mut extents = String::new();
    for k in 0..20u64 {
        let block = k * 51 + 7;
        f.write_all_at(&random_bytes(4096, 1000 + k), block * BLOCK + 100)
            .unwrap();
        extents.push_str(&format!("{} 4096\n", block * BLOCK + 100));
    }
    drop(f);
    let b3 = env.json(&["backup", "image", img.to_str().unwrap(), "--source", "vm1"]);
    let added = b3["bytes_added"].as_u64().unwrap();
    assert!(
        added > SIZE / 100 && added < SIZE * 4 / 100,
        "2% change added {added} bytes"
    );
    let out3 = env.path("r3.raw");
    env.ok(&[
        "restore",
        b3["snapshot"].as_str().unwrap(),
        out3.to_str().unwrap(),
    ]);
    cmp(&img, &out3);

    // Same change again, told by changed extents: only those blocks are read.
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    for k in 0..20u64 {
        let block = k * 51 + 7;
        f.write_all_at(&random_bytes(4096, 2000 + k), block * BLOCK + 100)
            .unwrap();
    }
    drop(f);
    let ext = env.path("extents.txt");
    fs::write(&ext, format!("# offset length\n{extents}")).unwrap();
    let b4 = env.json(&[
        "backup",
        "image",
        img.to_str().unwrap(),
        "--source",
        "vm1",
        "--changed-extents",
        ext.to_str().unwrap(),
    ]);
    // Only the changed ranges are read; the rest of each of their blocks
    // comes from the parent's chunk.
    assert_eq!(b4["bytes_read"], 20 * 4096, "{b4}");
    assert!(
        b4["mode"].as_str().unwrap().starts_with("incremental"),
        "{b4}"
    );
    let out4 = env.path("r4.raw");
    env.ok(&["restore", "vm1/latest", out4.to_str().unwrap()]);
    cmp(&img, &out4);
    // The first restore point still restores to the original bytes.
    let orig = env.path("orig.raw");
    make_image(&orig);
    let out1 = env.path("r1.raw");
    env.ok(&[
        "restore",
        b1["snapshot"].as_str().unwrap(),
        out1.to_str().unwrap(),
    ]);
    cmp(&orig, &out1);

    // A malformed extents file is refused.
    fs::write(&ext, "12 abc\n").unwrap();
    let o = env.run(&[
        "backup",
        "image",
        img.to_str().unwrap(),
        "--changed-extents",
        ext.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("OFFSET LENGTH"));
}

#[test]
fn odd_sized_and_empty_images() {
    let env = Env::new();
    let img = env.path("odd.raw");
    fs::write(&img, random_bytes(100_000 + 17, 9)).unwrap();
    env.ok(&["backup", "image", img.to_str().unwrap(), "--source", "odd"]);
    let out = env.path("odd.out");
    env.ok(&["restore", "latest", out.to_str().unwrap()]);
    cmp(&img, &out);
    let empty = env.path("empty.raw");
    fs::write(&empty, b"").unwrap();
    env.ok(&[
        "backup",
        "image",
        empty.to_str().unwrap(),
        "--source",
        "empty",
    ]);
    let out = env.path("empty.out");
    env.ok(&["restore", "empty/latest", out.to_str().unwrap()]);
    assert_eq!(fs::metadata(&out).unwrap().len(), 0);
}

/// Restoring onto a block device writes in place, zeros included. Needs a
/// loop device (root and losetup); says so and returns where there is none.
#[test]
fn image_restore_to_block_device() {
    let env = Env::new();
    let img = env.path("disk.raw");
    make_image(&img);
    env.ok(&["backup", "image", img.to_str().unwrap(), "--source", "vm1"]);
    // The device starts full of non-zero bytes, so holes must be written.
    let backing = env.path("device.raw");
    fs::write(&backing, vec![0xA5u8; (SIZE + BLOCK) as usize]).unwrap();
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&backing)
        .output();
    let dev = match out {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap().trim().to_string(),
        other => {
            eprintln!("SKIPPED image_restore_to_block_device: no loop device ({other:?})");
            return;
        }
    };
    // The device holds data: only with --overwrite.
    let refused = env.run(&["restore", "latest", &dev]);
    let restored = env.run(&["restore", "latest", &dev, "--overwrite"]);
    let copy = env.path("copy.raw");
    let dd = Command::new("dd")
        .arg(format!("if={dev}"))
        .arg(format!("of={}", copy.display()))
        .arg(format!("bs={BLOCK}"))
        .arg(format!("count={}", SIZE / BLOCK))
        .status()
        .unwrap();
    let _ = Command::new("losetup").arg("-d").arg(&dev).status();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--overwrite"),
        "{refused:?}"
    );
    assert!(restored.status.success(), "{restored:?}");
    assert!(dd.success());
    cmp(&img, &copy);
    // Bytes past the disk's end are left alone.
    let tail = fs::read(&backing).unwrap();
    assert!(tail[SIZE as usize..].iter().all(|&b| b == 0xA5));

    // A device smaller than the disk is refused before anything is written.
    let small = env.path("small.raw");
    fs::write(&small, vec![0x5Au8; (SIZE / 2) as usize]).unwrap();
    let o = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&small)
        .output()
        .unwrap();
    let dev = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let r = env.run(&["restore", "latest", &dev, "--overwrite"]);
    let _ = Command::new("losetup").arg("-d").arg(&dev).status();
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("the disk needs"),
        "{r:?}"
    );
    assert!(fs::read(&small).unwrap().iter().all(|&b| b == 0x5A));
}

/// An image whose size, mtime, ctime and inode are those its parent
/// recorded is not read again (the output says so); `--full-read` reads
/// it; a write is noticed even when the writer puts the mtime back (ctime
/// moves), and every restore point restores to its own bytes.
#[test]
fn unchanged_image_is_not_read() {
    let env = Env::new();
    let img = env.path("disk.raw");
    make_image(&img);
    let path = img.to_str().unwrap();
    let b1 = env.json(&["backup", "image", path, "--source", "vm1"]);
    assert_eq!(b1["bytes_read"], SIZE);

    let b2 = env.json(&["backup", "image", path, "--source", "vm1"]);
    assert_eq!(b2["bytes_read"], 0, "{b2}");
    let mode = b2["mode"].as_str().unwrap();
    assert!(mode.starts_with("unchanged, not read"), "{mode}");
    assert!(
        mode.contains(&b1["snapshot"].as_str().unwrap()[..8]),
        "{mode}"
    );
    let human = env.ok(&["backup", "image", path, "--source", "vm1"]);
    assert!(human.contains("unchanged, not read"), "{human}");
    let out = env.path("r2.raw");
    env.ok(&[
        "restore",
        b2["snapshot"].as_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    cmp(&img, &out);

    let full = env.json(&["backup", "image", path, "--source", "vm1", "--full-read"]);
    assert_eq!(full["bytes_read"], SIZE, "{full}");
    assert!(
        full["mode"].as_str().unwrap().starts_with("full read"),
        "{full}"
    );

    // A write that puts the mtime back: ctime still moves.
    let before = fs::metadata(&img).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&random_bytes(4096, 77), 5 * BLOCK).unwrap();
    drop(f);
    let mtime = filetime::FileTime::from_last_modification_time(&before);
    filetime::set_file_mtime(&img, mtime).unwrap();
    let b3 = env.json(&["backup", "image", path, "--source", "vm1"]);
    assert_eq!(b3["bytes_read"], SIZE, "a changed image is read: {b3}");
    let out = env.path("r3.raw");
    env.ok(&[
        "restore",
        b3["snapshot"].as_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    cmp(&img, &out);
    let orig = env.path("orig.raw");
    make_image(&orig);
    let out = env.path("r1.raw");
    env.ok(&[
        "restore",
        b2["snapshot"].as_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    cmp(&orig, &out);
}
