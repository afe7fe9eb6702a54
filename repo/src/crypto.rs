//! Keys and sealing.
//!
//! A datastore has 64 bytes of master key material: `enc_key` (32 bytes,
//! only for encrypted datastores) and `id_key` (32 bytes, always). Blobs are
//! never sealed with `enc_key` itself: each backup session (and each gc
//! repack run, and each snapshot object) draws a random 32-byte salt,
//! recorded in the trailer of every pack it writes, and seals with
//! `HKDF-SHA256(ikm = enc_key, salt, info = "arca blob key v1")`. The ~2^32
//! random-nonce bound of AES-GCM thus applies per session: 4 PiB of 1 MiB
//! chunks, far beyond any one backup.

use hkdf::Hkdf;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::id::ChunkId;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
pub const SALT_LEN: usize = 32;

/// Fill a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG failing is not recoverable and not caused by input.
    getrandom::fill(&mut b).expect("operating system random number generator failed");
    b
}

/// The unwrapped key material of an open datastore.
#[derive(Clone)]
pub struct MasterKeys {
    /// `None` when the datastore is not encrypted.
    pub enc_key: Option<[u8; 32]>,
    pub id_key: [u8; 32],
}

impl MasterKeys {
    pub fn generate(encrypted: bool) -> Self {
        MasterKeys {
            enc_key: encrypted.then(random_bytes::<32>),
            id_key: random_bytes::<32>(),
        }
    }

    /// The content id of a plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// A keyed hasher for ids computed over several pieces.
    pub fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.id_key)
    }

    /// The sealing key for one pack or object salt; `None` if unencrypted.
    pub fn subkey(&self, salt: &[u8; SALT_LEN]) -> Option<SealKey> {
        self.enc_key.map(|k| SealKey::derive(&k, salt))
    }

    /// Seed of the content-defined chunker's gear table, derived from the
    /// id key so that chunk boundaries do not reveal content either.
    pub fn chunker_seed(&self) -> u64 {
        let h = blake3::keyed_hash(&self.id_key, b"arca chunker seed v1");
        u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }
}

/// An AES-256-GCM key derived for one pack or object.
///
/// The cipher is ring's AES-256-GCM (AES-NI/VAES and carry-less multiply
/// where the CPU has them); the bytes are plain AES-256-GCM, so any
/// implementation can open them.
#[derive(Clone)]
pub struct SealKey(LessSafeKey);

impl SealKey {
    pub fn derive(enc_key: &[u8; 32], salt: &[u8; SALT_LEN]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), enc_key);
        let mut okm = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(b"arca blob key v1", &mut okm)
            .expect("HKDF output length");
        Self::from_key(&okm)
    }

    fn from_key(key: &[u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256-GCM.
        SealKey(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("AES-256 key length"),
        ))
    }

    /// Encrypt a plaintext; appends `nonce || ciphertext || tag` to `out`.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let nonce = random_bytes::<NONCE_LEN>();
        out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[start..],
            )
            .expect("AES-GCM encryption of an in-memory buffer");
        out.extend_from_slice(tag.as_ref());
    }

    /// Decrypt `nonce || ciphertext || tag`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Corrupt(
                "sealed data shorter than nonce and tag".into(),
            ));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().unwrap_or([0; NONCE_LEN]);
        let mut buf = ct.to_vec();
        let n = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| Error::Corrupt("authentication failed (damaged or swapped data)".into()))?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// Wrap or unwrap key material with a key-encryption key.
pub(crate) fn kek_cipher(kek: &[u8; 32]) -> SealKey {
    SealKey::from_key(kek)
}
