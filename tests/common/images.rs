//! The disk images of `tests/images/mkimages.sh` (ext4 and FAT12/16/32
//! inside MBR and GPT partition tables, made with the real tools), built
//! once per version of the script and kept in the temporary directory.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::Digest as _;

/// The directory the script filled: `mbr.img`, `gpt.img`, `src/` (what
/// the ext4 file systems hold), `src-fat/` (what the FAT ones hold).
pub fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = super::source_dir().join("tests/images/mkimages.sh");
        let text = std::fs::read(&script).unwrap();
        let hash: String = sha2::Sha256::digest(&text)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = std::env::temp_dir().join(format!("arca-test-images-{hash}"));
        if dir.join("DONE").exists() {
            return dir;
        }
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        let out = std::process::Command::new("sh")
            .arg(&script)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mkimages.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(tmp.join("DONE"), b"").unwrap();
        // Another test process may have won the race: use its copy.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

/// `s` with every byte but the unreserved ones percent-encoded (a query
/// value or a path segment).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Write `disk`: an MBR (sfdisk) with one partition of MBR type
/// `mbr_type` (hex, e.g. "83", "7") from 1 MiB on, `size` bytes long,
/// holding the bytes of the file system image `part` (removed after).
pub fn one_partition_disk(part: &Path, disk: &Path, size: u64, mbr_type: &str) {
    const MIB: u64 = 1 << 20;
    let f = std::fs::File::create(disk).unwrap();
    f.set_len(MIB + size + MIB).unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", disk.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sfdisk (the README's test command installs it)");
    let script = format!(
        "label: dos\nstart={}, size={}, type={mbr_type}\n",
        MIB / 512,
        size / 512
    );
    std::io::Write::write_all(sfdisk.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(sfdisk.stdin.take());
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    let fs_bytes = std::fs::read(part).unwrap();
    f.write_all_at(&fs_bytes, MIB).unwrap();
    f.sync_all().unwrap();
    std::fs::remove_file(part).unwrap();
}
