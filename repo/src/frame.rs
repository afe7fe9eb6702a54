//! Framed blobs (blob version 2): a chunk cut into frames that are
//! compressed and sealed one by one, so that a read of a few KiB inside a
//! large chunk fetches, authenticates and decompresses only the frames it
//! needs (`Datastore::read_blob_range`, the image reader of the frontends).
//!
//! ```text
//! offset  len  field
//! 0       2    magic "aB"
//! 2       1    version (2)
//! 3       1    flags: bit1 AES-256-GCM encrypted; every other bit 0
//! 4       1    kind (BlobKind)
//! 5       1    frame shift s: frames of 2^s plaintext bytes, 12 <= s <= 24
//! 6       2    reserved, zero
//! 8       4    plaintext length, u32 little endian
//! 12      4*n  frame table, n = ceil(plaintext length / 2^s): one u32 LE per
//!              frame, bit 31 = the frame is zstd-compressed, bits 0..31 = its
//!              stored length
//! 12+4n   ..   the frames, back to back, in order
//! ```
//! Frame `i` holds plaintext bytes `[i * 2^s, min((i + 1) * 2^s, len))`.
//! A stored frame is, with `bind = chunk id (32) || bytes 0..12+4n || i (u32 LE)`:
//! - encrypted: `nonce (12) || AES-256-GCM(payload, AAD = bind) || tag (16)`;
//! - not encrypted: `payload || mac (16)`, where mac is the first 16 bytes of
//!   `BLAKE3 keyed_hash(mac key, bind || payload)` and the mac key is
//!   `BLAKE3 derive_key("arca blob frame mac v2", id_key)`.
//!
//! The payload is the frame's plaintext, zstd-compressed when that saves
//! enough (the rule of version 1, applied to each frame). Every frame is
//! therefore authenticated on its own, under the chunk id, the header and
//! the whole table: a frame cannot be moved to another place, blob or
//! table. A whole read also checks the keyed hash of the chunk id.

use crate::blob::{self, BlobKind, Header, FLAG_ENCRYPTED, HEADER_LEN, MAGIC, MAX_PLAINTEXT};
use crate::crypto::{SealKey, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::id::ChunkId;

/// The blob version of framed blobs.
pub const VERSION: u8 = 2;
/// Smallest and largest frame shift a decoder accepts.
pub const MIN_SHIFT: u8 = 12;
pub const MAX_SHIFT: u8 = 24;
/// Bytes of the mac of an unencrypted frame.
pub const MAC_LEN: usize = 16;
const COMPRESSED: u32 = 1 << 31;
/// The derivation context of the frame mac key.
pub const MAC_CONTEXT: &str = "arca blob frame mac v2";

/// The key of the macs of unencrypted frames.
#[derive(Clone)]
pub struct MacKey(pub [u8; 32]);

impl MacKey {
    /// Derive it from the datastore's id key.
    pub fn derive(id_key: &[u8; 32]) -> Self {
        MacKey(blake3::derive_key(MAC_CONTEXT, id_key))
    }

    fn mac(&self, bind: &[u8], payload: &[u8]) -> [u8; MAC_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(bind);
        h.update(payload);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&h.finalize().as_bytes()[..MAC_LEN]);
        out
    }
}

/// Whether `size` is a frame size writers may use.
pub fn valid_frame_size(size: u32) -> bool {
    size.is_power_of_two() && (MIN_SHIFT..=20).contains(&(size.trailing_zeros() as u8))
}

fn bind(id: &ChunkId, head: &[u8], i: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + head.len() + 4);
    b.extend_from_slice(id.as_bytes());
    b.extend_from_slice(head);
    b.extend_from_slice(&i.to_le_bytes());
    b
}

/// Encode a framed blob with frames of `frame_size` bytes (a power of
/// two, see [`valid_frame_size`]). `seal` is `None` for unencrypted
/// datastores, whose frames carry a mac under `mac`.
pub fn encode(
    id: &ChunkId,
    kind: BlobKind,
    plaintext: &[u8],
    level: i32,
    seal: Option<&SealKey>,
    mac: &MacKey,
    frame_size: u32,
) -> Vec<u8> {
    assert!(
        plaintext.len() <= MAX_PLAINTEXT && valid_frame_size(frame_size),
        "chunk larger than MAX_PLAINTEXT or a bad frame size"
    );
    let payloads: Vec<(bool, std::borrow::Cow<[u8]>)> = plaintext
        .chunks(frame_size as usize)
        .map(|f| match blob::compress_if_worth(level, f) {
            Some(c) => (true, c.into()),
            None => (false, f.into()),
        })
        .collect();
    let overhead = if seal.is_some() {
        NONCE_LEN + TAG_LEN
    } else {
        MAC_LEN
    };
    let mut head = Vec::with_capacity(HEADER_LEN + 4 * payloads.len());
    head.extend_from_slice(&MAGIC);
    head.push(VERSION);
    head.push(if seal.is_some() { FLAG_ENCRYPTED } else { 0 });
    head.push(kind as u8);
    head.push(frame_size.trailing_zeros() as u8);
    head.extend_from_slice(&[0, 0]);
    head.extend_from_slice(&(plaintext.len() as u32).to_le_bytes());
    for (compressed, p) in &payloads {
        let len = (p.len() + overhead) as u32 | if *compressed { COMPRESSED } else { 0 };
        head.extend_from_slice(&len.to_le_bytes());
    }
    let body: usize = payloads.iter().map(|(_, p)| p.len() + overhead).sum();
    let mut out = Vec::with_capacity(head.len() + body);
    out.extend_from_slice(&head);
    for (i, (_, p)) in payloads.iter().enumerate() {
        let bind = bind(id, &head, i as u32);
        match seal {
            Some(key) => key.seal_into(&bind, p, &mut out),
            None => {
                out.extend_from_slice(p);
                out.extend_from_slice(&mac.mac(&bind, p));
            }
        }
    }
    out
}

/// The header and frame table of a framed blob: where each frame is and
/// how to open it.
#[derive(Clone, Debug)]
pub struct FrameTable {
    pub header: Header,
    /// Header and table bytes, bound into every frame.
    head: Vec<u8>,
    /// Stored length and compressed bit of each frame, as in the table.
    entries: Vec<u32>,
    /// Offset of each frame from the start of the blob, and the blob's end.
    starts: Vec<u64>,
}

/// How many header and table bytes a blob of `plaintext_len` bytes can have
/// at most: enough to read them in one request before the shift is known.
pub fn max_head_len(plaintext_len: u32) -> usize {
    HEADER_LEN + 4 * (plaintext_len as usize).div_ceil(1 << MIN_SHIFT)
}

impl FrameTable {
    /// Parse the header and table at the start of `bytes` (which may go on
    /// into the frames). `stored_len`, when known, is the length of the
    /// whole blob, and the table must add up to it.
    pub fn parse(bytes: &[u8], stored_len: Option<u64>) -> Result<Self> {
        let header = blob::parse_header(bytes)?;
        if header.version != VERSION {
            return Err(Error::Corrupt(format!(
                "blob version {} has no frames",
                header.version
            )));
        }
        let shift = header.frame_shift;
        let n = (header.plaintext_len as usize).div_ceil(1 << shift);
        let head_len = HEADER_LEN + 4 * n;
        if bytes.len() < head_len {
            return Err(Error::Corrupt("blob shorter than its frame table".into()));
        }
        let overhead = if header.flags & FLAG_ENCRYPTED != 0 {
            NONCE_LEN + TAG_LEN
        } else {
            MAC_LEN
        } as u64;
        let mut entries = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n + 1);
        let mut pos = head_len as u64;
        for i in 0..n {
            let at = HEADER_LEN + 4 * i;
            let e = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let stored = (e & !COMPRESSED) as u64;
            let plain = frame_len(header.plaintext_len, shift, i as u32) as u64;
            if stored < overhead || stored > plain + overhead {
                return Err(Error::Corrupt(format!(
                    "frame {i} claims {stored} stored bytes for {plain}"
                )));
            }
            entries.push(e);
            starts.push(pos);
            pos += stored;
        }
        starts.push(pos);
        if stored_len.is_some_and(|s| s != pos) {
            return Err(Error::Corrupt(format!(
                "frame table adds up to {pos} bytes, the blob has {}",
                stored_len.unwrap_or_default()
            )));
        }
        Ok(FrameTable {
            header,
            head: bytes[..head_len].to_vec(),
            entries,
            starts,
        })
    }

    /// Plaintext bytes per frame.
    pub fn frame_size(&self) -> u32 {
        1 << self.header.frame_shift
    }

    /// The number of frames.
    pub fn frames(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Bytes of header and table.
    pub fn head_len(&self) -> usize {
        self.head.len()
    }

    /// The whole blob's stored length.
    pub fn stored_len(&self) -> u64 {
        self.starts
            .last()
            .copied()
            .unwrap_or(self.head.len() as u64)
    }

    /// Plaintext bytes of frame `i`.
    pub fn frame_len(&self, i: u32) -> usize {
        frame_len(self.header.plaintext_len, self.header.frame_shift, i)
    }

    /// Where frames `first..=last` are stored, as offsets from the start of
    /// the blob (`first <= last < frames()`).
    pub fn span(&self, first: u32, last: u32) -> (u64, u64) {
        (self.starts[first as usize], self.starts[last as usize + 1])
    }

    /// Authenticate and decode frame `i` from its stored bytes.
    pub fn decode_frame(
        &self,
        id: &ChunkId,
        i: u32,
        stored: &[u8],
        seal: Option<&SealKey>,
        mac: Option<&MacKey>,
    ) -> Result<Vec<u8>> {
        let e = *self
            .entries
            .get(i as usize)
            .ok_or_else(|| Error::Corrupt(format!("no frame {i}")))?;
        if stored.len() as u64 != (e & !COMPRESSED) as u64 {
            return Err(Error::Corrupt(format!("frame {i}: truncated")));
        }
        let encrypted = self.header.flags & FLAG_ENCRYPTED != 0;
        let bind = bind(id, &self.head, i);
        let payload: std::borrow::Cow<[u8]> = match (encrypted, seal) {
            (true, Some(key)) => key
                .open(&bind, stored)
                .map_err(|e| Error::Corrupt(format!("frame {i}: {e}")))?
                .into(),
            (false, None) => {
                let (p, tag) = stored.split_at(stored.len() - MAC_LEN);
                // Without the mac key (the caller checks the chunk id of
                // the whole plaintext) the tag is not checked.
                if let Some(mac) = mac {
                    if mac.mac(&bind, p) != tag {
                        return Err(Error::Corrupt(format!(
                            "frame {i}: authentication failed (damaged or swapped data)"
                        )));
                    }
                }
                p.into()
            }
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
        let want = self.frame_len(i);
        let plain = if e & COMPRESSED != 0 {
            blob::decompress(&payload, want)?
        } else {
            payload.into_owned()
        };
        if plain.len() != want {
            return Err(Error::Corrupt(format!("frame {i}: length mismatch")));
        }
        Ok(plain)
    }

    /// Decode frames `first..=last` from their stored bytes (`bytes` is
    /// what [`FrameTable::span`] names), appending the plaintext to `out`.
    pub fn decode_frames(
        &self,
        id: &ChunkId,
        first: u32,
        bytes: &[u8],
        seal: Option<&SealKey>,
        mac: Option<&MacKey>,
        out: &mut dyn FnMut(u32, Vec<u8>),
    ) -> Result<()> {
        let base = self.starts.get(first as usize).copied().unwrap_or(0);
        let mut i = first;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let end = self
                .starts
                .get(i as usize + 1)
                .map(|&s| (s - base) as usize)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| Error::Corrupt(format!("frame {i}: truncated")))?;
            out(i, self.decode_frame(id, i, &bytes[pos..end], seal, mac)?);
            pos = end;
            i += 1;
        }
        Ok(())
    }
}

fn frame_len(len: u32, shift: u8, i: u32) -> usize {
    let start = (i as u64) << shift;
    ((len as u64).saturating_sub(start)).min(1 << shift) as usize
}

/// Decode a whole framed blob. Unencrypted frames are checked against
/// `mac` when it is given.
pub fn decode(
    id: &ChunkId,
    bytes: &[u8],
    seal: Option<&SealKey>,
    mac: Option<&MacKey>,
) -> Result<(BlobKind, Vec<u8>)> {
    let t = FrameTable::parse(bytes, Some(bytes.len() as u64))?;
    let mut plain = Vec::with_capacity(t.header.plaintext_len as usize);
    if t.frames() > 0 {
        let (from, _) = t.span(0, 0);
        t.decode_frames(id, 0, &bytes[from as usize..], seal, mac, &mut |_, f| {
            plain.extend_from_slice(&f)
        })?;
    }
    if plain.len() != t.header.plaintext_len as usize {
        return Err(Error::Corrupt("decoded length mismatch".into()));
    }
    Ok((t.header.kind, plain))
}

/// Re-seal every frame under another key (repack). Unencrypted blobs are
/// copied as they are: their macs do not depend on the pack.
pub fn reseal(
    id: &ChunkId,
    bytes: &[u8],
    from: Option<&SealKey>,
    to: Option<&SealKey>,
) -> Result<Vec<u8>> {
    let t = FrameTable::parse(bytes, Some(bytes.len() as u64))?;
    let encrypted = t.header.flags & FLAG_ENCRYPTED != 0;
    match (from, to) {
        (Some(from), Some(to)) if encrypted => {
            let mut out = Vec::with_capacity(bytes.len());
            out.extend_from_slice(&t.head);
            for i in 0..t.frames() {
                let (a, b) = t.span(i, i);
                let bind = bind(id, &t.head, i);
                let payload = from
                    .open(&bind, &bytes[a as usize..b as usize])
                    .map_err(|e| Error::Corrupt(format!("frame {i}: {e}")))?;
                to.seal_into(&bind, &payload, &mut out);
            }
            Ok(out)
        }
        (None, None) if !encrypted => Ok(bytes.to_vec()),
        _ => Err(Error::Corrupt(
            "blob encryption does not match the datastore".into(),
        )),
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
