//! Pack files: append-only files of blobs ending in a (sealed) header.
//!
//! ```text
//! pack    := blob* header trailer
//! header  := nonce(12) || AES-256-GCM(PackHeader protobuf) || tag(16)   (encrypted)
//!          | PackHeader protobuf                                       (unencrypted)
//! trailer := salt(32) | header_len u32 LE | version u16 LE | flags u16 LE | magic "arcaPACK"
//! ```
//! The salt feeds HKDF for the sealing key of every blob in the pack and of
//! the header (associated data `"arca pack header v1"`). The pack id is the
//! BLAKE3 hash of all bytes of the file.

use std::io::Write;

use prost::Message;

use crate::blob::BlobKind;
use crate::crypto::{MasterKeys, SealKey, SALT_LEN};
use crate::error::{Error, Result};
use crate::format::{self, PackEntry, PackHeader};
use crate::id::{ChunkId, PackId};
use crate::index::{Location, PackInfo};

pub const MAGIC: [u8; 8] = *b"arcaPACK";
pub const VERSION: u16 = 1;
pub const TRAILER_LEN: usize = SALT_LEN + 4 + 2 + 2 + 8;
const FLAG_ENCRYPTED: u16 = 1;
const HEADER_AAD: &[u8] = b"arca pack header v1";
/// A pack header larger than this is treated as corrupt.
pub const MAX_HEADER: usize = 64 * 1024 * 1024;

/// One pack header entry: (id, kind, offset, length, plaintext length).
pub type HeaderEntry = (ChunkId, BlobKind, u64, u32, u32);

/// Name of a pack object in the backend.
pub fn object_name(id: &PackId) -> String {
    let h = id.to_hex();
    format!("packs/{}/{}", &h[..2], h)
}

/// Parse a pack object name back into its id.
pub fn id_from_name(name: &str) -> Option<PackId> {
    let hex = name.rsplit('/').next()?;
    PackId::from_hex(hex).ok()
}

/// Streams sealed blobs into a pack, hashing as it goes.
pub struct PackBuilder<W: Write> {
    salt: [u8; SALT_LEN],
    key: Option<SealKey>,
    out: W,
    hasher: blake3::Hasher,
    len: u64,
    entries: Vec<(ChunkId, Location)>,
}

impl<W: Write> PackBuilder<W> {
    pub fn new(salt: [u8; SALT_LEN], key: Option<SealKey>, out: W) -> Self {
        PackBuilder {
            salt,
            key,
            out,
            hasher: blake3::Hasher::new(),
            len: 0,
            entries: Vec::new(),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.out.write_all(b)?;
        self.hasher.update(b);
        self.len += b.len() as u64;
        Ok(())
    }

    /// Append an encoded blob (sealed with this pack's salt).
    pub fn add(
        &mut self,
        id: &ChunkId,
        kind: BlobKind,
        blob: &[u8],
        raw_length: u32,
    ) -> std::io::Result<()> {
        self.entries.push((
            *id,
            Location {
                pack: PackId::default(),
                offset: self.len,
                length: blob.len() as u32,
                raw_length,
                kind,
            },
        ));
        self.put(blob)
    }

    /// Write the sealed header and trailer. Returns the pack id, the sink,
    /// and the index entries of its blobs.
    #[allow(clippy::type_complexity)]
    pub fn finish(mut self) -> std::io::Result<(PackId, W, PackInfo, Vec<(ChunkId, Location)>)> {
        let header = PackHeader {
            version: format::STRUCT_VERSION,
            entries: self
                .entries
                .iter()
                .map(|(id, l)| PackEntry {
                    id: id.0.to_vec(),
                    kind: l.kind as u32,
                    offset: l.offset,
                    length: l.length,
                    raw_length: l.raw_length,
                })
                .collect(),
        }
        .encode_to_vec();
        let mut tail = Vec::with_capacity(header.len() + 64 + TRAILER_LEN);
        match &self.key {
            Some(k) => k.seal_into(HEADER_AAD, &header, &mut tail),
            None => tail.extend_from_slice(&header),
        }
        let header_len = tail.len() as u32;
        tail.extend_from_slice(&self.salt);
        tail.extend_from_slice(&header_len.to_le_bytes());
        tail.extend_from_slice(&VERSION.to_le_bytes());
        let flags = if self.key.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        };
        tail.extend_from_slice(&flags.to_le_bytes());
        tail.extend_from_slice(&MAGIC);
        self.put(&tail)?;
        let id = PackId(*self.hasher.finalize().as_bytes());
        let mut blobs = self.entries;
        for (_, l) in &mut blobs {
            l.pack = id;
        }
        let info = PackInfo {
            size: self.len,
            blobs: blobs.len() as u32,
        };
        Ok((id, self.out, info, blobs))
    }
}

/// The fixed-size end of a pack.
#[derive(Debug, Clone, Copy)]
pub struct Trailer {
    pub salt: [u8; SALT_LEN],
    pub header_len: u32,
    pub encrypted: bool,
}

pub fn parse_trailer(b: &[u8]) -> Result<Trailer> {
    if b.len() != TRAILER_LEN {
        return Err(Error::Corrupt("pack trailer has the wrong size".into()));
    }
    if b[TRAILER_LEN - 8..] != MAGIC {
        return Err(Error::Corrupt(
            "pack magic missing (truncated pack?)".into(),
        ));
    }
    let version = u16::from_le_bytes([b[36], b[37]]);
    if version > VERSION {
        return Err(Error::UnsupportedVersion {
            what: "pack",
            found: version.into(),
            supported: VERSION.into(),
        });
    }
    if version != VERSION {
        return Err(Error::Corrupt(format!("unknown pack version {version}")));
    }
    let flags = u16::from_le_bytes([b[38], b[39]]);
    if flags & !FLAG_ENCRYPTED != 0 {
        return Err(Error::Corrupt(format!("unknown pack flags {flags:#x}")));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&b[..SALT_LEN]);
    Ok(Trailer {
        salt,
        header_len: u32::from_le_bytes([b[32], b[33], b[34], b[35]]),
        encrypted: flags & FLAG_ENCRYPTED != 0,
    })
}

/// Decode and validate a pack header. `data_len` is the size of the blob
/// region (pack size minus header and trailer); every entry must lie in it.
pub fn decode_header(
    bytes: &[u8],
    trailer: &Trailer,
    keys: &MasterKeys,
    data_len: u64,
) -> Result<Vec<HeaderEntry>> {
    if bytes.len() > MAX_HEADER {
        return Err(Error::Corrupt("pack header too large".into()));
    }
    let plain = match (trailer.encrypted, keys.subkey(&trailer.salt)) {
        (true, Some(k)) => k.open(HEADER_AAD, bytes)?,
        (false, None) => bytes.to_vec(),
        _ => {
            return Err(Error::Corrupt(
                "pack encryption does not match the datastore".into(),
            ))
        }
    };
    let h: PackHeader = format::decode("pack header", &plain)?;
    let mut out = Vec::with_capacity(h.entries.len());
    for e in h.entries {
        let end = e.offset.checked_add(e.length as u64);
        if end.is_none_or(|end| end > data_len) {
            return Err(Error::Corrupt("pack header entry outside the pack".into()));
        }
        out.push((
            ChunkId::from_slice(&e.id)?,
            BlobKind::from_u8(u8::try_from(e.kind).unwrap_or(0))?,
            e.offset,
            e.length,
            e.raw_length,
        ));
    }
    Ok(out)
}

/// Parse a whole pack held in memory: trailer, then header.
pub fn parse_pack(bytes: &[u8], keys: &MasterKeys) -> Result<(Trailer, Vec<HeaderEntry>)> {
    if bytes.len() < TRAILER_LEN {
        return Err(Error::Corrupt("pack shorter than its trailer".into()));
    }
    let t = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..])?;
    let hl = t.header_len as usize;
    let data_len = bytes
        .len()
        .checked_sub(TRAILER_LEN + hl)
        .ok_or_else(|| Error::Corrupt("pack header longer than the pack".into()))?;
    let entries = decode_header(&bytes[data_len..data_len + hl], &t, keys, data_len as u64)?;
    Ok((t, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_roundtrip(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..20), encrypted: bool) {
            let keys = MasterKeys::generate(encrypted);
            let salt = [5u8; SALT_LEN];
            let key = keys.subkey(&salt);
            let mut pb = PackBuilder::new(salt, key.clone(), Vec::new());
            for c in &chunks {
                let id = keys.chunk_id(c);
                pb.add(&id, BlobKind::Data, &blob::encode(&id, BlobKind::Data, c, 3, key.as_ref()), c.len() as u32).unwrap();
            }
            let (pid, bytes, info, blobs) = pb.finish().unwrap();
            prop_assert_eq!(pid, PackId(*blake3::hash(&bytes).as_bytes()));
            prop_assert_eq!(info.blobs as usize, chunks.len());
            let (_, entries) = parse_pack(&bytes, &keys).unwrap();
            prop_assert_eq!(entries.len(), chunks.len());
            for ((id, _, off, len, _), c) in entries.iter().zip(&chunks) {
                let b = &bytes[*off as usize..(*off + *len as u64) as usize];
                let (_, plain) = blob::decode(id, b, key.as_ref()).unwrap();
                prop_assert_eq!(&plain, c);
            }
            prop_assert_eq!(blobs.len(), chunks.len());
        }

        #[test]
        fn truncated_pack_is_an_error(cut in 1usize..200) {
            let keys = MasterKeys::generate(true);
            let salt = [5u8; SALT_LEN];
            let mut pb = PackBuilder::new(salt, keys.subkey(&salt), Vec::new());
            let id = keys.chunk_id(b"x");
            pb.add(&id, BlobKind::Data, b"0123456789", 10).unwrap();
            let (_, bytes, _, _) = pb.finish().unwrap();
            let cut = cut.min(bytes.len());
            prop_assert!(parse_pack(&bytes[..bytes.len() - cut], &keys).is_err());
        }
    }
}
