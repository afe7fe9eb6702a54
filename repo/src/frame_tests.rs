use super::*;
use crate::crypto::MasterKeys;
use proptest::prelude::*;

fn data(n: usize, seed: u8) -> Vec<u8> {
    // Half text (compressible frames), half noise (stored frames).
    let mut x = seed as u64 | 1;
    (0..n)
        .map(|i| {
            if (i / 5000) % 2 == 0 {
                b"frames of text "[i % 15]
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

fn keys(encrypted: bool) -> (MasterKeys, Option<SealKey>, MacKey) {
    let keys = MasterKeys::generate(encrypted);
    let seal = keys.subkey(&[9; 32]);
    let mac = MacKey::derive(&keys.id_key);
    (keys, seal, mac)
}

/// Every frame of `blob` decoded on its own, from a range read as a
/// reader makes it, concatenated.
fn by_frames(id: &ChunkId, blob: &[u8], seal: Option<&SealKey>, mac: &MacKey) -> Vec<u8> {
    let head = &blob[..max_head_len(u32::MAX >> 6).min(blob.len())];
    let t = FrameTable::parse(head, None).unwrap();
    let mut out = Vec::new();
    for i in 0..t.frames() {
        let (a, b) = t.span(i, i);
        let f = t
            .decode_frame(id, i, &blob[a as usize..b as usize], seal, Some(mac))
            .unwrap();
        assert_eq!(f.len(), t.frame_len(i));
        out.extend(f);
    }
    out
}

proptest! {
    #[test]
    fn roundtrip(len in 0usize..300_000, shift in 12u8..=17, encrypted: bool, seed: u8) {
        let (keys, seal, mac) = keys(encrypted);
        let plain = data(len, seed);
        let id = keys.chunk_id(&plain);
        let b = encode(&id, BlobKind::Data, &plain, 3, seal.as_ref(), &mac, 1 << shift);
        let (kind, whole) = crate::blob::decode_with_mac(&id, &b, seal.as_ref(), Some(&mac)).unwrap();
        prop_assert_eq!(kind, BlobKind::Data);
        prop_assert_eq!(&whole, &plain);
        prop_assert_eq!(by_frames(&id, &b, seal.as_ref(), &mac), plain);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), shift in 12u8..=24) {
        let keys = MasterKeys::generate(true);
        let seal = keys.subkey(&[1; 32]);
        let mac = MacKey::derive(&keys.id_key);
        let mut framed = data.clone();
        if framed.len() >= 12 {
            framed[..3].copy_from_slice(b"aB\x02");
            framed[5] = shift;
        }
        for d in [&data, &framed] {
            let _ = decode(&ChunkId::default(), d, seal.as_ref(), Some(&mac));
            let _ = decode(&ChunkId::default(), d, None, Some(&mac));
            let _ = reseal(&ChunkId::default(), d, seal.as_ref(), seal.as_ref());
            if let Ok(t) = FrameTable::parse(d, None) {
                for i in 0..t.frames() {
                    let (a, b) = t.span(i, i);
                    if let Some(s) = d.get(a as usize..b as usize) {
                        let _ = t.decode_frame(&ChunkId::default(), i, s, None, Some(&mac));
                    }
                }
            }
        }
    }
}

#[test]
fn every_frame_size_round_trips_at_frame_edges() {
    for encrypted in [false, true] {
        let (keys, seal, mac) = keys(encrypted);
        for shift in [12u8, 14, 16, 18, 20] {
            let fs = 1usize << shift;
            // Exactly n frames, n frames and one byte, one byte short.
            for len in [fs * 4, fs * 4 + 1, fs * 4 - 1, 1, 0] {
                let plain = data(len, shift);
                let id = keys.chunk_id(&plain);
                let b = encode(
                    &id,
                    BlobKind::Data,
                    &plain,
                    3,
                    seal.as_ref(),
                    &mac,
                    fs as u32,
                );
                let t = FrameTable::parse(&b, Some(b.len() as u64)).unwrap();
                assert_eq!(t.frames() as usize, len.div_ceil(fs));
                assert_eq!(t.frame_size() as usize, fs);
                assert_eq!(t.stored_len(), b.len() as u64);
                assert_eq!(by_frames(&id, &b, seal.as_ref(), &mac), plain);
                // Runs of frames decode as one range read.
                if t.frames() >= 3 {
                    let (a, z) = t.span(1, 2);
                    let mut got = Vec::new();
                    t.decode_frames(
                        &id,
                        1,
                        &b[a as usize..z as usize],
                        seal.as_ref(),
                        Some(&mac),
                        &mut |i, f| {
                            assert!(i == 1 || i == 2);
                            got.extend(f)
                        },
                    )
                    .unwrap();
                    assert_eq!(got, plain[fs..3 * fs]);
                }
            }
        }
    }
}

#[test]
fn a_tampered_or_moved_frame_fails() {
    for encrypted in [false, true] {
        let (keys, seal, mac) = keys(encrypted);
        let plain = data(200_000, 3);
        let id = keys.chunk_id(&plain);
        let b = encode(&id, BlobKind::Data, &plain, 3, seal.as_ref(), &mac, 1 << 16);
        let t = FrameTable::parse(&b, None).unwrap();
        let (a, z) = t.span(1, 1);
        let mut bad = b.clone();
        bad[(a + z) as usize / 2] ^= 0x10;
        let t2 = FrameTable::parse(&bad, None).unwrap();
        let e = t2
            .decode_frame(
                &id,
                1,
                &bad[a as usize..z as usize],
                seal.as_ref(),
                Some(&mac),
            )
            .unwrap_err();
        assert!(e.to_string().contains("frame 1"), "{e}");
        assert!(decode(&id, &bad, seal.as_ref(), Some(&mac)).is_err());
        // Frame 0's bytes offered as frame 1 (same length when stored
        // uncompressed is not needed: the length check or the tag fails).
        let (a0, z0) = t.span(0, 0);
        assert!(t
            .decode_frame(
                &id,
                1,
                &b[a0 as usize..z0 as usize],
                seal.as_ref(),
                Some(&mac)
            )
            .is_err());
        // Another chunk id.
        assert!(t
            .decode_frame(
                &keys.chunk_id(b"x"),
                1,
                &b[a as usize..z as usize],
                seal.as_ref(),
                Some(&mac)
            )
            .is_err());
        // A changed table entry (another frame's compressed bit).
        let mut table = b.clone();
        table[HEADER_LEN + 3] ^= 0x80;
        if let Ok(t3) = FrameTable::parse(&table, None) {
            let (a, z) = t3.span(1, 1);
            assert!(t3
                .decode_frame(
                    &id,
                    1,
                    &table[a as usize..z as usize],
                    seal.as_ref(),
                    Some(&mac)
                )
                .is_err());
        }
    }
}

#[test]
fn a_truncated_blob_is_an_error() {
    let (keys, seal, mac) = keys(true);
    let plain = data(150_000, 5);
    let id = keys.chunk_id(&plain);
    let b = encode(&id, BlobKind::Data, &plain, 3, seal.as_ref(), &mac, 1 << 15);
    for cut in [b.len() - 1, b.len() / 2, HEADER_LEN + 2, 5] {
        assert!(decode(&id, &b[..cut], seal.as_ref(), Some(&mac)).is_err());
    }
    let t = FrameTable::parse(&b, None).unwrap();
    let (a, z) = t.span(2, 4);
    let e = t
        .decode_frames(
            &id,
            2,
            &b[a as usize..z as usize - 1],
            seal.as_ref(),
            Some(&mac),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("frame 4"), "{e}");
}

#[test]
fn resealed_blobs_decode_under_the_new_key() {
    let keys = MasterKeys::generate(true);
    let (k1, k2) = (keys.subkey(&[1; 32]), keys.subkey(&[2; 32]));
    let mac = MacKey::derive(&keys.id_key);
    let plain = data(100_000, 7);
    let id = keys.chunk_id(&plain);
    let b = encode(&id, BlobKind::Data, &plain, 3, k1.as_ref(), &mac, 1 << 14);
    let r = crate::blob::reseal(&id, &b, k1.as_ref(), k2.as_ref()).unwrap();
    assert_eq!(r.len(), b.len());
    assert!(decode(&id, &r, k1.as_ref(), None).is_err());
    assert_eq!(decode(&id, &r, k2.as_ref(), None).unwrap().1, plain);
}

#[test]
fn header_checks() {
    let (keys, _, mac) = keys(false);
    let id = keys.chunk_id(b"abc");
    let b = encode(&id, BlobKind::Tree, b"abc", 3, None, &mac, 4096);
    let h = crate::blob::parse_header(&b).unwrap();
    assert_eq!((h.version, h.frame_shift, h.kind), (2, 12, BlobKind::Tree));
    for (at, v) in [(5, 11u8), (5, 25), (6, 1), (3, 1), (2, 3)] {
        let mut bad = b.clone();
        bad[at] = v;
        assert!(crate::blob::parse_header(&bad).is_err(), "byte {at} = {v}");
    }
    assert!(valid_frame_size(65536) && !valid_frame_size(2048) && !valid_frame_size(3 << 12));
}

/// Writes the framed seeds of the blob fuzz target (fuzz/seeds/blob/),
/// made with its fixed keys: `ARCA_WRITE_SEEDS=fuzz/seeds/blob cargo test
/// --release --workspace --lib -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Ok(dir) = std::env::var("ARCA_WRITE_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let id = ChunkId([5u8; 32]);
    let seal = SealKey::derive(&[7u8; 32], &[1u8; 32]);
    let mac = MacKey::derive(&[3u8; 32]);
    let plain = data(20_000, 9);
    let sealed = encode(&id, BlobKind::Data, &plain, 3, Some(&seal), &mac, 4096);
    std::fs::write(dir.join("framed-sealed"), sealed).unwrap();
    let plain_framed = encode(&id, BlobKind::Data, &plain, 3, None, &mac, 8192);
    std::fs::write(dir.join("framed-plain"), plain_framed).unwrap();
    let short = encode(&id, BlobKind::Data, &plain[..5000], 3, None, &mac, 4096);
    std::fs::write(dir.join("framed-plain-short"), short).unwrap();
}
