//! A small partitioned disk image with an ext4 file system, made with the
//! real tools (sfdisk, `mkfs.ext4 -d`): the image restore point of the
//! file-access tests, and the tree it was made from to compare with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{random_bytes, text_bytes, tool};

const MIB: u64 = 1 << 20;
/// The partition: 24 MiB from 1 MiB on (sector 2048).
const PART_START: u64 = MIB;
const PART_SIZE: u64 = 24 * MIB;

/// The image and the tree its first partition's file system holds.
pub struct Ext4Disk {
    /// An MBR disk: one Linux partition (`part1`), ext4.
    pub disk: PathBuf,
    /// What `part1` holds (besides ext4's `lost+found`): `etc/`, `home/`,
    /// `var/` (two hard links to one file).
    pub tree: PathBuf,
}

/// Make the disk under `dir`.
pub fn ext4_disk(dir: &Path) -> Ext4Disk {
    let tree = dir.join("rootfs");
    let file = |rel: &str, data: &[u8], mode: u32| {
        let p = tree.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        set_mode(&p, mode);
    };
    file("etc/hostname", b"vm1\n", 0o644);
    file("etc/app.conf", &text_bytes(5_000, 1), 0o640);
    file("home/user/notes.txt", &text_bytes(100_000, 2), 0o600);
    file(
        "home/user/big.bin",
        &random_bytes(3 * MIB as usize, 3),
        0o644,
    );
    file("home/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    fs::create_dir_all(tree.join("home/user/empty")).unwrap();
    set_mode(&tree.join("home/user/empty"), 0o700);
    std::os::unix::fs::symlink("notes.txt", tree.join("home/user/link")).unwrap();
    file("var/a", b"linked\n", 0o644);
    fs::hard_link(tree.join("var/a"), tree.join("var/b")).unwrap();
    // Whole seconds: what every file system keeps.
    let mut t = 1_700_000_000;
    super::walk(&tree, &mut |p, md| {
        if !md.file_type().is_symlink() {
            t += 3600;
            let ft = filetime::FileTime::from_unix_time(t, 0);
            filetime::set_file_times(p, ft, ft).unwrap();
        }
    });

    let part = dir.join("part.ext4");
    fs::File::create(&part).unwrap().set_len(PART_SIZE).unwrap();
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-d",
            tree.to_str().unwrap(),
            part.to_str().unwrap(),
        ],
    );
    let disk = dir.join("disk.raw");
    super::images::one_partition_disk(&part, &disk, PART_SIZE, "83");
    Ext4Disk { disk, tree }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `cmp a b` must say they are the same bytes.
pub fn assert_same_bytes(a: &Path, b: &Path) {
    let s = Command::new("cmp").arg(a).arg(b).status().unwrap();
    assert!(
        s.success(),
        "cmp {} {}: they differ",
        a.display(),
        b.display()
    );
}

/// `diff -r a b` must find no difference.
pub fn assert_diff_r_clean(a: &Path, b: &Path) {
    let o = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "diff -r {} {}: {}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&o.stdout)
    );
}
