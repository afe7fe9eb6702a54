//! A node's data directory: its datastores and their passphrases.
//!
//! ```text
//! <data-dir>/datastores/<name>/              a datastore (`default` made on first start)
//! <data-dir>/datastores/<name>.passphrase    its passphrase (0600): back it up
//! ```

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arca_proto::pb;
use arca_repo::{Datastore, Encryption};

use crate::Passphrases;

/// Write a new file only its owner may read (0600); fails if it exists.
pub fn write_secret(path: &Path, content: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// This host's name ("local" if it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// 40 random letters and digits (about 230 bits): a datastore passphrase.
pub fn random_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 40];
    // The OS RNG failing is not recoverable.
    getrandom::fill(&mut b).expect("operating system random number generator failed");
    b.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The datastore `<data_dir>/datastores/<name>`, made on first use with a
/// random passphrase in `<data_dir>/datastores/<name>.passphrase` (0600).
/// Returns its absolute path and passphrase.
pub fn local_datastore(data_dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir.join("datastores"))
        .with_context(|| format!("create {}", data_dir.display()))?;
    let ds_dir = data_dir.join("datastores").join(name);
    let pass_file = data_dir.join(format!("datastores/{name}.passphrase"));
    let pass = match std::fs::read_to_string(&pass_file) {
        Ok(p) => p.trim().to_string(),
        Err(_) if !ds_dir.join("config").exists() => {
            let p = random_secret();
            write_secret(&pass_file, &p)?;
            p
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "datastore {} exists but its passphrase file {} cannot be read",
                    ds_dir.display(),
                    pass_file.display()
                )
            })
        }
    };
    if !ds_dir.join("config").exists() {
        Datastore::init(&ds_dir, Encryption::Repokey, Some(pass.as_bytes()), |_| {})
            .with_context(|| format!("creating datastore {}", ds_dir.display()))?;
    }
    Ok((std::fs::canonicalize(&ds_dir)?, pass))
}

/// The datastores under `<data_dir>/datastores/`, `default` made if missing.
pub fn datastores(data_dir: &Path) -> Result<(Vec<pb::DatastoreInfo>, Passphrases)> {
    local_datastore(data_dir, "default")?;
    let mut infos = Vec::new();
    let mut pass = Passphrases::new();
    let dir = data_dir.join("datastores");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("config").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let (path, p) = local_datastore(data_dir, &name)?;
        let path = path.display().to_string();
        pass.insert(path.clone(), p);
        infos.push(pb::DatastoreInfo { name, path });
    }
    Ok((infos, pass))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_datastore_is_made_once_with_a_private_passphrase() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (path, pass) = local_datastore(dir.path(), "default").unwrap();
        assert_eq!(pass.len(), 40);
        let f = dir.path().join("datastores/default.passphrase");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            local_datastore(dir.path(), "default").unwrap(),
            (path, pass)
        );
        let (infos, pass) = datastores(dir.path()).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].name, "default");
        assert!(pass.contains_key(&infos[0].path));
        assert_ne!(random_secret(), random_secret());
    }
}
