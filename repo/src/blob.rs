//! Blob encoding: one stored chunk.
//!
//! ```text
//! offset len  field
//! 0      2    magic "aB"
//! 2      1    version (1)
//! 3      1    flags: bit0 zstd-compressed, bit1 AES-256-GCM encrypted
//! 4      1    kind (BlobKind)
//! 5      3    reserved, zero
//! 8      4    plaintext length, u32 little endian
//! 12     ..   payload: (compressed) bytes, or nonce(12) || ciphertext || tag(16)
//! ```
//! When encrypted, the associated data is `chunk id (32) || header (12)`, so
//! a blob cannot be moved under another id or have its header altered.
//!
//! This is blob version 1, a chunk compressed and sealed whole. Version 2
//! (framed, for random reads inside large image blocks) is in
//! [`crate::frame`]; [`decode`] and [`reseal`] read both.

use std::cell::RefCell;

use crate::crypto::SealKey;
use crate::error::{Error, Result};
use crate::id::ChunkId;

pub const MAGIC: [u8; 2] = *b"aB";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 12;
pub const FLAG_COMPRESSED: u8 = 1;
pub const FLAG_ENCRYPTED: u8 = 2;
/// No blob holds more than this many plaintext bytes; decoders refuse more.
pub const MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

/// What a blob holds. Stored in the blob header and in pack headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlobKind {
    Data = 1,
    Tree = 2,
    Catalog = 3,
    ImageTable = 4,
    Manifest = 5,
}

impl BlobKind {
    pub fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            1 => BlobKind::Data,
            2 => BlobKind::Tree,
            3 => BlobKind::Catalog,
            4 => BlobKind::ImageTable,
            5 => BlobKind::Manifest,
            _ => return Err(Error::Corrupt(format!("unknown blob kind {v}"))),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
            BlobKind::Catalog => "catalog",
            BlobKind::ImageTable => "image-table",
            BlobKind::Manifest => "manifest",
        }
    }
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// The level-1 context of the compressibility sample test.
    static PROBE: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// Output buffer of [`encode`]'s compression, reused from chunk to chunk.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// [`SCRATCH`] keeps at most this much capacity between blobs (a chunk of
/// the default chunker is at most 4 MiB); a larger tree or catalog blob
/// does not pin its buffer for the thread's lifetime.
const SCRATCH_KEEP: usize = 8 * 1024 * 1024;

/// Decompress with this thread's reused context (creating a zstd context
/// per blob costs more than decompressing a small one).
pub(crate) fn decompress(payload: &[u8], len: usize) -> Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let dec = match &mut *d {
            Some(dec) => dec,
            empty => empty.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| Error::Corrupt(format!("zstd context: {e}")))?,
            ),
        };
        dec.decompress(payload, len)
            .map_err(|e| Error::Corrupt(format!("zstd: {e}")))
    })
}

/// Compress `data` into `out` (replacing its contents) with this thread's
/// reused context; true when the result is worth keeping (smaller than the
/// input by more than 1/64).
fn compress_into(level: i32, data: &[u8], out: &mut Vec<u8>) -> bool {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            match zstd::bulk::Compressor::new(level) {
                Ok(comp) => *c = Some((level, comp)),
                Err(_) => return false,
            }
        }
        let Some((_, comp)) = c.as_mut() else {
            return false;
        };
        // Only keep the compressed form when it is smaller: zstd stops
        // with an error once the output would not fit in `bound`.
        let bound = data.len().saturating_sub(data.len() / 64);
        out.clear();
        out.reserve(bound);
        matches!(comp.compress_to_buffer(data, out), Ok(n) if n < bound)
    })
}

fn compress(level: i32, data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress_into(level, data, &mut out).then_some(out)
}

/// Quick test whether compressing is worth it: compress a sample at the
/// fastest level and keep going only if it shrinks by at least 3%. The
/// level-1 context is kept per thread (creating one per chunk cost more
/// than the sample's compression).
fn looks_compressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 32 * 1024;
    if data.len() <= 4 * SAMPLE {
        return true;
    }
    let mid = data.len() / 2;
    let sample = &data[mid..mid + SAMPLE];
    PROBE.with(|p| {
        let mut p = p.borrow_mut();
        if p.is_none() {
            match zstd::bulk::Compressor::new(1) {
                Ok(comp) => *p = Some(comp),
                Err(_) => return true,
            }
        }
        let Some(comp) = p.as_mut() else {
            return true;
        };
        match comp.compress(sample) {
            Ok(c) => c.len() < SAMPLE - SAMPLE / 32,
            Err(_) => true,
        }
    })
}

/// The compressed form of `data` when compressing it is worth it (the rule
/// of docs/formats.md §7: a sample test for more than 128 KiB, then keep
/// the result only if it saves more than 1/64).
pub(crate) fn compress_if_worth(level: i32, data: &[u8]) -> Option<Vec<u8>> {
    if looks_compressible(data) {
        compress(level, data)
    } else {
        None
    }
}

/// Encode a blob of version 1. `key` is `None` for unencrypted datastores.
pub fn encode(
    id: &ChunkId,
    kind: BlobKind,
    plaintext: &[u8],
    level: i32,
    key: Option<&SealKey>,
) -> Vec<u8> {
    assert!(
        plaintext.len() <= MAX_PLAINTEXT,
        "chunk larger than MAX_PLAINTEXT"
    );
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let compressed =
            looks_compressible(plaintext) && compress_into(level, plaintext, &mut scratch);
        let payload = if compressed { &scratch[..] } else { plaintext };
        let out = encode_payload(id, kind, plaintext.len(), compressed, payload, key);
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        out
    })
}

/// The blob of version 1 around `payload` (`plaintext` compressed when
/// `compressed`) of a plaintext of `plain_len` bytes.
fn encode_payload(
    id: &ChunkId,
    kind: BlobKind,
    plain_len: usize,
    compressed: bool,
    payload: &[u8],
    key: Option<&SealKey>,
) -> Vec<u8> {
    let mut flags = 0;
    if compressed {
        flags |= FLAG_COMPRESSED;
    }
    if key.is_some() {
        flags |= FLAG_ENCRYPTED;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 28);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.push(kind as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(plain_len as u32).to_le_bytes());
    match key {
        Some(key) => {
            let mut aad = [0u8; 32 + HEADER_LEN];
            aad[..32].copy_from_slice(id.as_bytes());
            aad[32..].copy_from_slice(&out[..HEADER_LEN]);
            key.seal_into(&aad, payload, &mut out);
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The parsed fixed header of a blob.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// 1 (whole) or 2 (framed, [`crate::frame`]).
    pub version: u8,
    /// Version 2: frames hold `1 << frame_shift` bytes. 0 in version 1.
    pub frame_shift: u8,
    pub flags: u8,
    pub kind: BlobKind,
    pub plaintext_len: u32,
}

/// Parse the fixed 12-byte header of a blob of either version.
pub fn parse_header(bytes: &[u8]) -> Result<Header> {
    use crate::frame;
    if bytes.len() < HEADER_LEN {
        return Err(Error::Corrupt("blob shorter than its header".into()));
    }
    if bytes[..2] != MAGIC {
        return Err(Error::Corrupt("blob magic mismatch".into()));
    }
    let version = bytes[2];
    if version > frame::VERSION {
        return Err(Error::UnsupportedVersion {
            what: "blob",
            found: version.into(),
            supported: frame::VERSION.into(),
        });
    }
    let flags = bytes[3];
    let frame_shift = match version {
        VERSION => {
            if bytes[5..8] != [0, 0, 0] {
                return Err(Error::Corrupt(
                    "reserved blob header bytes are not zero".into(),
                ));
            }
            if flags & !(FLAG_COMPRESSED | FLAG_ENCRYPTED) != 0 {
                return Err(Error::Corrupt(format!("unknown blob flags {flags:#x}")));
            }
            0
        }
        frame::VERSION => {
            if bytes[6..8] != [0, 0] {
                return Err(Error::Corrupt(
                    "reserved blob header bytes are not zero".into(),
                ));
            }
            // Compression is recorded per frame.
            if flags & !FLAG_ENCRYPTED != 0 {
                return Err(Error::Corrupt(format!("unknown blob flags {flags:#x}")));
            }
            if !(frame::MIN_SHIFT..=frame::MAX_SHIFT).contains(&bytes[5]) {
                return Err(Error::Corrupt(format!("blob frame shift {}", bytes[5])));
            }
            bytes[5]
        }
        v => return Err(Error::Corrupt(format!("unknown blob version {v}"))),
    };
    let kind = BlobKind::from_u8(bytes[4])?;
    let plaintext_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if plaintext_len as usize > MAX_PLAINTEXT {
        return Err(Error::Corrupt(format!("blob claims {plaintext_len} bytes")));
    }
    Ok(Header {
        version,
        frame_shift,
        flags,
        kind,
        plaintext_len,
    })
}

/// Decode a blob: check the header, authenticate and decrypt, decompress.
/// Does not recompute the chunk id; [`crate::Datastore`] does that. The
/// macs of unencrypted frames (version 2) are not checked: see
/// [`decode_with_mac`].
pub fn decode(id: &ChunkId, bytes: &[u8], key: Option<&SealKey>) -> Result<(BlobKind, Vec<u8>)> {
    decode_with_mac(id, bytes, key, None)
}

/// [`decode`], also checking the mac of every unencrypted frame of a
/// version 2 blob when `mac` is given.
pub fn decode_with_mac(
    id: &ChunkId,
    bytes: &[u8],
    key: Option<&SealKey>,
    mac: Option<&crate::frame::MacKey>,
) -> Result<(BlobKind, Vec<u8>)> {
    let h = parse_header(bytes)?;
    if h.version == crate::frame::VERSION {
        return crate::frame::decode(id, bytes, key, mac);
    }
    let body = &bytes[HEADER_LEN..];
    let encrypted = h.flags & FLAG_ENCRYPTED != 0;
    let payload: std::borrow::Cow<[u8]> = match (encrypted, key) {
        (true, Some(key)) => {
            let mut aad = [0u8; 32 + HEADER_LEN];
            aad[..32].copy_from_slice(id.as_bytes());
            aad[32..].copy_from_slice(&bytes[..HEADER_LEN]);
            key.open(&aad, body)?.into()
        }
        (false, None) => body.into(),
        (true, None) => {
            return Err(Error::Corrupt(
                "blob is encrypted but the datastore is not".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(Error::Corrupt(
                "blob is not encrypted in an encrypted datastore".into(),
            ))
        }
    };
    let plain = if h.flags & FLAG_COMPRESSED != 0 {
        let v = decompress(&payload, h.plaintext_len as usize)?;
        if v.len() != h.plaintext_len as usize {
            return Err(Error::Corrupt("decompressed length mismatch".into()));
        }
        v
    } else {
        if payload.len() != h.plaintext_len as usize {
            return Err(Error::Corrupt("stored length mismatch".into()));
        }
        payload.into_owned()
    };
    Ok((h.kind, plain))
}

/// Re-seal a blob under another key without decompressing (used by repack).
pub fn reseal(
    id: &ChunkId,
    bytes: &[u8],
    from: Option<&SealKey>,
    to: Option<&SealKey>,
) -> Result<Vec<u8>> {
    let h = parse_header(bytes)?;
    if h.version == crate::frame::VERSION {
        return crate::frame::reseal(id, bytes, from, to);
    }
    match (from, to) {
        (Some(from), Some(to)) if h.flags & FLAG_ENCRYPTED != 0 => {
            let mut aad = [0u8; 32 + HEADER_LEN];
            aad[..32].copy_from_slice(id.as_bytes());
            aad[32..].copy_from_slice(&bytes[..HEADER_LEN]);
            let payload = from.open(&aad, &bytes[HEADER_LEN..])?;
            let mut out = bytes[..HEADER_LEN].to_vec();
            to.seal_into(&aad, &payload, &mut out);
            Ok(out)
        }
        (None, None) if h.flags & FLAG_ENCRYPTED == 0 => Ok(bytes.to_vec()),
        _ => Err(Error::Corrupt(
            "blob encryption does not match the datastore".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKeys;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(data in proptest::collection::vec(any::<u8>(), 0..20_000), encrypted: bool, rep: bool) {
            let keys = MasterKeys::generate(encrypted);
            let data = if rep { data.repeat(4) } else { data };
            let id = keys.chunk_id(&data);
            let key = keys.subkey(&[7; 32]);
            let b = encode(&id, BlobKind::Data, &data, 3, key.as_ref());
            let (kind, out) = decode(&id, &b, key.as_ref()).unwrap();
            prop_assert_eq!(kind, BlobKind::Data);
            prop_assert_eq!(out, data);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let keys = MasterKeys::generate(true);
            let key = keys.subkey(&[1; 32]);
            let _ = decode(&ChunkId::default(), &data, key.as_ref());
            let _ = decode(&ChunkId::default(), &data, None);
        }
    }

    #[test]
    fn swapped_id_fails_authentication() {
        let keys = MasterKeys::generate(true);
        let key = keys.subkey(&[3; 32]);
        let a = keys.chunk_id(b"a");
        let blob = encode(&a, BlobKind::Data, b"a", 3, key.as_ref());
        assert!(decode(&keys.chunk_id(b"b"), &blob, key.as_ref()).is_err());
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode(&a, &flipped, key.as_ref()).is_err());
    }

    #[test]
    fn newer_version_and_reserved_bytes_are_named() {
        let keys = MasterKeys::generate(false);
        let id = keys.chunk_id(b"x");
        let blob = encode(&id, BlobKind::Data, b"x", 3, None);
        let mut newer = blob.clone();
        newer[2] = crate::frame::VERSION + 1;
        let e = decode(&id, &newer, None).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedVersion { what: "blob", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("newer than this arca supports"));
        let mut reserved = blob;
        reserved[6] = 1;
        assert!(matches!(
            decode(&id, &reserved, None),
            Err(Error::Corrupt(_))
        ));
    }
}
