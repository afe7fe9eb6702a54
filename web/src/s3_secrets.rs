//! Secrets at rest: sealed with AES-256-GCM under a key kept in a file of
//! the server's data directory (`s3-keys.key` for S3 secret keys,
//! `credentials.key` for hypervisors' SSH keys; 32 random bytes, mode
//! 0600, made on first use). The catalog holds only the sealed form
//! (nonce ‖ ciphertext ‖ tag, bound to its owner as associated data), so
//! a copy of the catalog alone does not give the secrets away. The S3
//! gateway needs the secrets themselves to check SigV4 signatures, which
//! is why they are sealed rather than hashed.
//!
//! **Rotation** ([`SecretBox::rotate`]): a new key is written beside the
//! old one (`<file>.new`), every secret is resealed under it in one
//! catalog transaction, then the new file replaces the old one (a
//! rename). A crash before the transaction commits leaves the catalog
//! under the old key and a stale `.new`; a crash after it, the catalog
//! under the new key and the old file in place. At start
//! [`SecretBox::finish_rotation`] tells the two apart with one sealed
//! secret of the catalog and completes or discards the rotation.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The key that seals secrets of one kind.
pub struct SecretBox {
    key: RwLock<LessSafeKey>,
    /// The key file (None: a key given in memory, which cannot rotate).
    path: Option<PathBuf>,
}

/// Why a rotation did not happen (or did not finish).
#[derive(Debug)]
pub enum RotateError {
    /// The key is not kept in a file.
    NotAFile,
    /// A secret did not reseal (it does not open with the current key):
    /// nothing changed.
    Reseal(String),
    /// Writing the new key file failed: nothing changed.
    Io(String),
    /// The secrets are resealed and the server uses the new key, but the
    /// new key file could not replace the old one; the next start does.
    NotInstalled(String),
}

impl std::fmt::Display for RotateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RotateError::NotAFile => {
                f.write_str("this key is not kept in a file: it cannot rotate")
            }
            RotateError::Reseal(e) => write!(f, "nothing rotated: {e}"),
            RotateError::Io(e) => write!(f, "nothing rotated: {e}"),
            RotateError::NotInstalled(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RotateError {}

/// Reseals one secret from the old key to the new one (given to the
/// caller's transaction by [`SecretBox::rotate`]).
pub struct Resealer<'a> {
    old: &'a LessSafeKey,
    new: &'a LessSafeKey,
}

impl Resealer<'_> {
    /// `sealed` (under the old key, bound to `aad`) sealed under the new.
    pub fn reseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        let plain = open_with(self.old, aad, sealed)?;
        seal_with(self.new, aad, &plain)
    }
}

fn key_of(bytes: &[u8]) -> Option<LessSafeKey> {
    if bytes.len() != 32 {
        return None;
    }
    let k = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
    Some(LessSafeKey::new(k))
}

fn seal_with(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| "sealing failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
    if sealed.len() < NONCE_LEN {
        return Err("sealed secret too short".into());
    }
    let (n, ct) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| "bad nonce".to_string())?;
    let mut buf = ct.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| "the secret does not open with this server's key file".to_string())?;
    Ok(plain.to_vec())
}

/// 32 random bytes in a new file `path` (0600), synced.
fn write_new_key(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?
    };
    f.write_all(&k)?;
    f.sync_all()?;
    Ok(k.to_vec())
}

/// `<path>.new`: where a rotation writes the next key.
fn next_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Replace `to` with `from` and make the rename durable.
fn install(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl SecretBox {
    /// The key in `path`, made (0600) when the file does not exist.
    pub fn open_or_create(path: &Path) -> std::io::Result<SecretBox> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new_key(path)?,
            Err(e) => return Err(e),
        };
        let key = key_of(&bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} must hold exactly 32 bytes", path.display()),
            )
        })?;
        Ok(SecretBox {
            key: RwLock::new(key),
            path: Some(path.to_path_buf()),
        })
    }

    /// A box with this 32-byte key.
    pub fn from_key(key: &[u8]) -> Option<SecretBox> {
        Some(SecretBox {
            key: RwLock::new(key_of(key)?),
            path: None,
        })
    }

    /// Seal `plain`, bound to `aad` (its owner: the access key id, the
    /// hypervisor's project and name).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
        seal_with(
            &self.key.read().unwrap_or_else(|e| e.into_inner()),
            aad,
            plain,
        )
    }

    /// Open what [`SecretBox::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        open_with(
            &self.key.read().unwrap_or_else(|e| e.into_inner()),
            aad,
            sealed,
        )
    }

    /// Rotate the key: a new key file beside the old one, `reseal` (one
    /// catalog transaction: all of this key's secrets, each through
    /// [`Resealer::reseal`]; it returns how many) and, once it
    /// committed, the new file in place of the old. Sealing and opening
    /// wait meanwhile, so no secret is sealed under the old key after
    /// the transaction read them. Returns what `reseal` returned.
    pub fn rotate(
        &self,
        reseal: impl FnOnce(&Resealer<'_>) -> Result<usize, String>,
    ) -> Result<usize, RotateError> {
        let path = self.path.as_ref().ok_or(RotateError::NotAFile)?;
        let mut key = self.key.write().unwrap_or_else(|e| e.into_inner());
        let next = next_path(path);
        // A `.new` while the server runs is left by a rotation whose
        // transaction failed or whose rename failed; in both cases the
        // key in memory is the one the catalog uses.
        match std::fs::remove_file(&next) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RotateError::Io(format!("{}: {e}", next.display()))),
        }
        let bytes = write_new_key(&next)
            .map_err(|e| RotateError::Io(format!("{}: {e}", next.display())))?;
        let new = key_of(&bytes).ok_or_else(|| RotateError::Io("a new key of 32 bytes".into()))?;
        let n = match reseal(&Resealer {
            old: &key,
            new: &new,
        }) {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&next);
                return Err(RotateError::Reseal(e));
            }
        };
        // Committed: the catalog's secrets are sealed under the new key.
        *key = new;
        install(&next, path).map_err(|e| {
            RotateError::NotInstalled(format!(
                "the secrets are resealed and in use under the new key, but {} could not replace {}: {e}; the server finishes this when it starts",
                next.display(),
                path.display()
            ))
        })?;
        Ok(n)
    }

    /// At start: finish or discard a rotation a crash interrupted.
    /// `sample` is one sealed secret of the catalog with its aad (None:
    /// the catalog holds none, and either key does). Returns what was
    /// done, for the log.
    pub fn finish_rotation(
        &self,
        sample: Option<(Vec<u8>, Vec<u8>)>,
    ) -> std::io::Result<Option<String>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let next = next_path(path);
        let bytes = match std::fs::read(&next) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let new = key_of(&bytes);
        let under_new = match (&new, &sample) {
            (Some(k), Some((aad, sealed))) => {
                open_with(k, aad, sealed).is_ok() && self.open(aad, sealed).is_err()
            }
            _ => false,
        };
        if let (true, Some(k)) = (under_new, new) {
            install(&next, path)?;
            *self.key.write().unwrap_or_else(|e| e.into_inner()) = k;
            return Ok(Some(format!(
                "finished the rotation of {} that was interrupted after the secrets were resealed",
                path.display()
            )));
        }
        std::fs::remove_file(&next)?;
        Ok(Some(format!(
            "discarded {}, left by a rotation that did not commit (the secrets are under the current key)",
            next.display()
        )))
    }
}

/// A new access key id (`AKIA` and 16 characters of A–Z, 2–7) and
/// secret (40 characters of A–Z, a–z, 0–9, `+`, `/`).
pub fn new_key_pair() -> Result<(String, String), String> {
    const ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut r = [0u8; 56];
    getrandom::fill(&mut r).map_err(|e| e.to_string())?;
    let id: String = "AKIA"
        .chars()
        .chain(r[..16].iter().map(|b| ID[(*b % 32) as usize] as char))
        .collect();
    let secret: String = r[16..]
        .iter()
        .map(|b| SECRET[(*b % 64) as usize] as char)
        .collect();
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_seal_and_open_with_the_same_key_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s3-keys.key");
        let b = SecretBox::open_or_create(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = b.seal(b"AKIA1", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        // The same file again opens it; another aad or key does not.
        let again = SecretBox::open_or_create(&p).unwrap();
        assert_eq!(again.open(b"AKIA1", &sealed).unwrap(), b"secret");
        assert!(again.open(b"AKIA2", &sealed).is_err());
        let other = SecretBox::from_key(&[7u8; 32]).unwrap();
        assert!(other.open(b"AKIA1", &sealed).is_err());
        assert!(b.open(b"AKIA1", &sealed[..5]).is_err());
        std::fs::write(&p, b"short").unwrap();
        assert!(SecretBox::open_or_create(&p).is_err());
        let (id, secret) = new_key_pair().unwrap();
        assert_eq!((id.len(), secret.len()), (20, 40));
        assert!(id.starts_with("AKIA"));
    }

    /// A "catalog" of sealed secrets (aad, sealed).
    fn catalog(b: &SecretBox, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let aad = format!("owner{i}").into_bytes();
                let sealed = b.seal(&aad, format!("secret{i}").as_bytes()).unwrap();
                (aad, sealed)
            })
            .collect()
    }

    fn all_open(b: &SecretBox, cat: &[(Vec<u8>, Vec<u8>)]) -> bool {
        cat.iter()
            .enumerate()
            .all(|(i, (aad, s))| b.open(aad, s).ok() == Some(format!("secret{i}").into_bytes()))
    }

    #[test]
    fn a_rotation_reseals_every_secret_under_a_new_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials.key");
        let b = SecretBox::open_or_create(&p).unwrap();
        let before = std::fs::read(&p).unwrap();
        let mut cat = catalog(&b, 3);
        let n = b
            .rotate(|r| {
                let next: Result<Vec<_>, String> = cat
                    .iter()
                    .map(|(aad, s)| Ok((aad.clone(), r.reseal(aad, s)?)))
                    .collect();
                cat = next?;
                Ok(cat.len())
            })
            .unwrap();
        assert_eq!(n, 3);
        let after = std::fs::read(&p).unwrap();
        assert_eq!(after.len(), 32);
        assert_ne!(before, after);
        assert!(!next_path(&p).exists());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // In memory and from the file: the resealed secrets open, under
        // the new key only.
        assert!(all_open(&b, &cat));
        assert!(all_open(&SecretBox::open_or_create(&p).unwrap(), &cat));
        let old = SecretBox::from_key(&before).unwrap();
        assert!(!cat.iter().any(|(aad, s)| old.open(aad, s).is_ok()));
        // A key given in memory cannot rotate.
        assert!(matches!(old.rotate(|_| Ok(0)), Err(RotateError::NotAFile)));
    }

    #[test]
    fn a_failed_reseal_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s3-keys.key");
        let b = SecretBox::open_or_create(&p).unwrap();
        let before = std::fs::read(&p).unwrap();
        let cat = catalog(&b, 2);
        // A secret sealed under another key does not reseal.
        let stranger = SecretBox::from_key(&[9u8; 32]).unwrap();
        let bad = stranger.seal(b"x", b"y").unwrap();
        let e = b
            .rotate(|r| {
                r.reseal(&cat[0].0, &cat[0].1)?;
                r.reseal(b"x", &bad)?;
                Ok(2)
            })
            .unwrap_err();
        assert!(matches!(e, RotateError::Reseal(_)), "{e}");
        assert!(e.to_string().starts_with("nothing rotated"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert!(!next_path(&p).exists());
        assert!(all_open(&b, &cat));
    }

    #[test]
    fn an_interrupted_rotation_is_finished_or_discarded_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials.key");
        let b = SecretBox::open_or_create(&p).unwrap();
        let before = std::fs::read(&p).unwrap();
        // Nothing to do.
        assert_eq!(b.finish_rotation(None).unwrap(), None);

        // Crashed after the transaction: the catalog is under `.new`.
        let next = next_path(&p);
        let new_bytes = write_new_key(&next).unwrap();
        let new = SecretBox::from_key(&new_bytes).unwrap();
        let cat = catalog(&new, 2);
        let b = SecretBox::open_or_create(&p).unwrap();
        let said = b.finish_rotation(Some(cat[0].clone())).unwrap().unwrap();
        assert!(said.starts_with("finished"), "{said}");
        assert_eq!(std::fs::read(&p).unwrap(), new_bytes);
        assert!(!next.exists());
        assert!(all_open(&b, &cat));

        // Crashed before it committed: the catalog is under the current
        // key; `.new` goes.
        let cat = catalog(&b, 2);
        write_new_key(&next).unwrap();
        let said = b.finish_rotation(Some(cat[1].clone())).unwrap().unwrap();
        assert!(said.starts_with("discarded"), "{said}");
        assert_eq!(std::fs::read(&p).unwrap(), new_bytes);
        assert!(!next.exists());
        assert!(all_open(&b, &cat));
        // No secret at all: the current key stays.
        write_new_key(&next).unwrap();
        assert!(b
            .finish_rotation(None)
            .unwrap()
            .unwrap()
            .starts_with("discarded"));
        assert_ne!(std::fs::read(&p).unwrap(), before);
        assert!(!next.exists());
    }
}
