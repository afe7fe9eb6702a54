//! A small partitioned disk image with an NTFS file system, made with the
//! real tools (mkntfs, then ntfs-3g over FUSE to fill it, sfdisk): the
//! NTFS image restore point of the file-access tests, and the tree it was
//! made from to compare with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{random_bytes, text_bytes, tool};

const MIB: u64 = 1 << 20;
/// The partition: 16 MiB from 1 MiB on (sector 2048).
const PART_START: u64 = MIB;
const PART_SIZE: u64 = 16 * MIB;

/// The image and the tree its first partition's file system holds.
pub struct NtfsDisk {
    /// An MBR disk: one NTFS partition (`part1`, type 7).
    pub disk: PathBuf,
    /// What `part1` holds (besides NTFS' hidden system files): `Users/`
    /// (a 3 MiB file, a name with spaces and a quote, a Unicode name),
    /// `Windows/` (two hard links to one file).
    pub tree: PathBuf,
}

/// Make the disk under `dir`.
pub fn ntfs_disk(dir: &Path) -> NtfsDisk {
    let tree = dir.join("winfs");
    let file = |rel: &str, data: &[u8]| {
        let p = tree.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    };
    file("Users/ann/notes.txt", &text_bytes(50_000, 7));
    file("Users/ann/big.bin", &random_bytes(3 * MIB as usize, 8));
    file("Users/ann/Ann's \"list\" 1.txt", b"milk\neggs\n");
    file("Users/ann/ñandú/café.txt", b"caf\xc3\xa9\n");
    file("Windows/hosts", b"127.0.0.1 localhost\n");
    fs::hard_link(tree.join("Windows/hosts"), tree.join("Windows/hosts.link")).unwrap();
    // Whole seconds (NTFS keeps 100 ns; the source's would do too).
    let mut t = 1_700_000_000;
    super::walk(&tree, &mut |p, _| {
        t += 3600;
        let ft = filetime::FileTime::from_unix_time(t, 0);
        filetime::set_file_times(p, ft, ft).unwrap();
    });

    let part = dir.join("part.ntfs");
    fs::File::create(&part).unwrap().set_len(PART_SIZE).unwrap();
    tool(
        "mkntfs",
        &["-F", "-Q", "-q", "-L", "WIN", part.to_str().unwrap()],
    );
    let mnt = dir.join("ntfs-mnt");
    fs::create_dir_all(&mnt).unwrap();
    // In the foreground, waited for: ntfs-3g writes its last changes when
    // the FUSE connection closes.
    let mut ntfs3g = Command::new("ntfs-3g")
        .args(["-o", "no_detach"])
        .arg(&part)
        .arg(&mnt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ntfs-3g (the README's test command installs it)");
    let mut tries = 0;
    let mounted = || {
        Command::new("mountpoint")
            .arg("-q")
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success())
    };
    while !mounted() {
        tries += 1;
        assert!(
            tries < 200 && ntfs3g.try_wait().unwrap().is_none(),
            "ntfs-3g cannot mount {} (FUSE needed)",
            part.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", tree.display()))
        .arg(&mnt)
        .status();
    tool("fusermount", &["-u", mnt.to_str().unwrap()]);
    assert!(ntfs3g.wait().unwrap().success(), "ntfs-3g failed");
    assert!(copied.unwrap().success(), "cp -a into the NTFS failed");

    let disk = dir.join("win.raw");
    super::images::one_partition_disk(&part, &disk, PART_SIZE, "7");
    NtfsDisk { disk, tree }
}
