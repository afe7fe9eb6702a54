//! The datastore's `config` and `keyfile` (both JSON, see docs/formats.md).

use serde::{Deserialize, Serialize};

use crate::crypto::{self, MasterKeys};
use crate::error::{Error, Result};

/// The newest on-disk format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    None,
    Repokey,
}

impl std::str::FromStr for Encryption {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Encryption::None),
            "repokey" => Ok(Encryption::Repokey),
            _ => Err(Error::InvalidInput(format!(
                "unknown encryption {s:?} (use none or repokey)"
            ))),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub format_version: u32,
    /// Random datastore id (hex), also bound into the keyfile.
    pub id: String,
    pub encryption: Encryption,
    pub chunker: ChunkerParams,
    /// Fixed chunk size of image snapshots; a power of two.
    pub image_chunk_size: u32,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// zstd level for blobs.
    pub compression_level: i32,
    /// Frame size of the data blobs of image backups: blob version 2 with
    /// frames of this many bytes (a power of two, 4 KiB to 1 MiB, at most
    /// `image_chunk_size`), or 0 for whole blobs (version 1). Configs
    /// written before the field existed read as 0, so their datastores
    /// stay readable by the arca versions that wrote them.
    #[serde(default)]
    pub image_frame_size: u32,
    /// zstd level of the frames of image data blobs (blob version 2); when
    /// absent (configs written before the field existed) they use
    /// `compression_level`, as before. Only what is written changes: every
    /// level decodes the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_compression_level: Option<i32>,
}

/// The frame size of new datastores (docs/decisions.md, "image layout").
pub const DEFAULT_IMAGE_FRAME_SIZE: u32 = 64 * 1024;

/// The zstd level of image frames in new datastores (docs/decisions.md,
/// "Image chunk layout"): the level of everything else. Level 9 stores
/// 3.7 % less for 4× the compression CPU; backups of images would take
/// about twice as long.
pub const DEFAULT_IMAGE_COMPRESSION_LEVEL: i32 = 3;

impl Config {
    pub fn new(encryption: Encryption) -> Self {
        Config {
            format_version: FORMAT_VERSION,
            id: hex::encode(crypto::random_bytes::<16>()),
            encryption,
            chunker: ChunkerParams::default(),
            image_chunk_size: 1024 * 1024,
            pack_size: 32 * 1024 * 1024,
            compression_level: 3,
            image_frame_size: DEFAULT_IMAGE_FRAME_SIZE,
            image_compression_level: Some(DEFAULT_IMAGE_COMPRESSION_LEVEL),
        }
    }

    /// The zstd level of framed image blobs.
    pub fn image_level(&self) -> i32 {
        self.image_compression_level
            .unwrap_or(self.compression_level)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // Read the version first so that a newer format gets a clear error
        // even when the rest of its fields no longer parse.
        #[derive(Deserialize)]
        struct Probe {
            format_version: u32,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("config: {e}")))?;
        if probe.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "datastore",
                found: probe.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let c: Config =
            serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        let ch = &self.chunker;
        // The bounds of fastcdc's v2020 chunker.
        let ok = (64..=1024 * 1024).contains(&ch.min_size)
            && (256..=4 * 1024 * 1024).contains(&ch.avg_size)
            && (1024..=16 * 1024 * 1024).contains(&ch.max_size)
            && ch.min_size <= ch.avg_size
            && ch.avg_size <= ch.max_size
            && self.image_chunk_size.is_power_of_two()
            && (4096..=64 * 1024 * 1024).contains(&self.image_chunk_size)
            && (1024 * 1024..=1024 * 1024 * 1024).contains(&self.pack_size)
            && (-7..=22).contains(&self.compression_level)
            && (-7..=22).contains(&self.image_level())
            && (self.image_frame_size == 0
                || (crate::frame::valid_frame_size(self.image_frame_size)
                    && self.image_frame_size <= self.image_chunk_size));
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "invalid datastore parameters in config: {self:?}"
            )))
        }
    }
}

/// Argon2id parameters, stored so that they can be raised later.
#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    pub salt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    /// Present when the key material is wrapped by a passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// `nonce || AES-256-GCM(kek, enc_key || id_key)` in hex (repokey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_key: Option<String>,
    /// The id key in hex (only when the datastore is not encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_key: Option<String>,
}

fn keyfile_aad(datastore_id: &str) -> Vec<u8> {
    format!("arca keyfile v1 {datastore_id}").into_bytes()
}

fn derive_kek(passphrase: &[u8], p: &KdfParams) -> Result<[u8; 32]> {
    if p.algorithm != "argon2id" {
        return Err(Error::Corrupt(format!(
            "keyfile: unknown kdf {}",
            p.algorithm
        )));
    }
    let salt = hex::decode(&p.salt).map_err(|_| Error::Corrupt("keyfile: salt".into()))?;
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32))
        .map_err(|e| Error::Corrupt(format!("keyfile: argon2 parameters: {e}")))?;
    let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = [0u8; 32];
    a2.hash_password_into(passphrase, &salt, &mut kek)
        .map_err(|e| Error::Corrupt(format!("keyfile: argon2: {e}")))?;
    Ok(kek)
}

impl KeyFile {
    /// Wrap fresh key material. `passphrase` is required iff encrypted.
    pub fn create(
        keys: &MasterKeys,
        passphrase: Option<&[u8]>,
        datastore_id: &str,
    ) -> Result<Self> {
        match (keys.enc_key, passphrase) {
            (None, _) => Ok(KeyFile {
                version: 1,
                kdf: None,
                wrapped_key: None,
                id_key: Some(hex::encode(keys.id_key)),
            }),
            (Some(_), None) => Err(Error::PassphraseRequired),
            (Some(enc), Some(pass)) => {
                let kdf = KdfParams {
                    algorithm: "argon2id".into(),
                    m_cost_kib: 64 * 1024,
                    t_cost: 2,
                    p_cost: 2,
                    salt: hex::encode(crypto::random_bytes::<16>()),
                };
                let kek = derive_kek(pass, &kdf)?;
                let mut plain = Vec::with_capacity(64);
                plain.extend_from_slice(&enc);
                plain.extend_from_slice(&keys.id_key);
                let mut wrapped = Vec::new();
                crypto::kek_cipher(&kek).seal_into(
                    &keyfile_aad(datastore_id),
                    &plain,
                    &mut wrapped,
                );
                Ok(KeyFile {
                    version: 1,
                    kdf: Some(kdf),
                    wrapped_key: Some(hex::encode(wrapped)),
                    id_key: None,
                })
            }
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let k: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("keyfile: {e}")))?;
        if k.version > 1 {
            return Err(Error::UnsupportedVersion {
                what: "keyfile",
                found: k.version,
                supported: 1,
            });
        }
        Ok(k)
    }

    /// Recover the master keys. A wrong passphrase fails authentication.
    pub fn unwrap_keys(&self, passphrase: Option<&[u8]>, datastore_id: &str) -> Result<MasterKeys> {
        match (&self.kdf, &self.wrapped_key, &self.id_key) {
            (None, None, Some(id_hex)) => {
                let mut id_key = [0u8; 32];
                hex::decode_to_slice(id_hex, &mut id_key)
                    .map_err(|_| Error::Corrupt("keyfile: id_key".into()))?;
                Ok(MasterKeys {
                    enc_key: None,
                    id_key,
                })
            }
            (Some(kdf), Some(wrapped), None) => {
                let pass = passphrase.ok_or(Error::PassphraseRequired)?;
                let kek = derive_kek(pass, kdf)?;
                let wrapped = hex::decode(wrapped)
                    .map_err(|_| Error::Corrupt("keyfile: wrapped_key".into()))?;
                let plain = crypto::kek_cipher(&kek)
                    .open(&keyfile_aad(datastore_id), &wrapped)
                    .map_err(|_| Error::WrongPassphrase)?;
                if plain.len() != 64 {
                    return Err(Error::Corrupt("keyfile: wrapped key length".into()));
                }
                let mut enc = [0u8; 32];
                let mut id_key = [0u8; 32];
                enc.copy_from_slice(&plain[..32]);
                id_key.copy_from_slice(&plain[32..]);
                Ok(MasterKeys {
                    enc_key: Some(enc),
                    id_key,
                })
            }
            _ => Err(Error::Corrupt("keyfile: inconsistent fields".into())),
        }
    }
}
