//! S3 secret keys at rest: sealed with AES-256-GCM under a key kept in a
//! file of the server's data directory (`s3-keys.key`, 32 random bytes,
//! mode 0600, made on first use). The catalog holds only the sealed form
//! (nonce ‖ ciphertext ‖ tag, the access key id as associated data), so a
//! copy of the catalog alone does not give the secrets away. The S3
//! gateway needs the secrets themselves to check SigV4 signatures, which
//! is why they are sealed rather than hashed.

use std::io::Write as _;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The key that seals S3 secrets.
pub struct SecretBox {
    key: LessSafeKey,
}

impl SecretBox {
    /// The key in `path`, made (0600) when the file does not exist.
    pub fn open_or_create(path: &Path) -> std::io::Result<SecretBox> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
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
                k.to_vec()
            }
            Err(e) => return Err(e),
        };
        Self::from_key(&bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} must hold exactly 32 bytes", path.display()),
            )
        })
    }

    /// A box with this 32-byte key.
    pub fn from_key(key: &[u8]) -> Option<SecretBox> {
        let k = UnboundKey::new(&AES_256_GCM, key).ok()?;
        Some(SecretBox {
            key: LessSafeKey::new(k),
        })
    }

    /// Seal `plain`, bound to `aad` (the access key id).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Open what [`SecretBox::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN {
            return Err("sealed secret too short".into());
        }
        let (n, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| "bad nonce".to_string())?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| "the secret does not open with this server's key file".to_string())?;
        Ok(plain.to_vec())
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
}
