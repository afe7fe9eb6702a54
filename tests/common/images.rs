//! The disk images of `tests/images/mkimages.sh` (ext4 and FAT12/16/32
//! inside MBR and GPT partition tables, made with the real tools), built
//! once per version of the script and kept in the temporary directory.

use std::path::{Path, PathBuf};
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
