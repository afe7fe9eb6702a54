use std::sync::Arc;

use super::*;
use crate::format::Manifest;
use crate::test_util::pseudo_random;
use crate::{BlobKind, Encryption, IndexKind, OpenOptions};

type Stored = Vec<(ChunkId, Vec<u8>)>;

/// A datastore holding three data chunks stored with 64 KiB frames (two of
/// 1 MiB, one of 300000 bytes) and one stored whole.
fn setup(enc: Encryption) -> (tempfile::TempDir, Arc<Datastore>, Stored) {
    let dir = tempfile::tempdir().unwrap();
    let pass = (enc == Encryption::Repokey).then_some(&b"pw"[..]);
    Datastore::init(dir.path(), enc, pass, |_| {}).unwrap();
    let opts = OpenOptions {
        passphrase: pass.map(|p| p.to_vec()),
        index: IndexKind::Memory,
        ..Default::default()
    };
    let ds = Datastore::open(dir.path(), &opts).unwrap();
    let mut text: Vec<u8> = b"text compresses well. ".repeat(50_000);
    text.truncate(1 << 20);
    let mut mixed = pseudo_random(1 << 20, 3);
    mixed[..300_000].copy_from_slice(&text[..300_000]);
    let chunks = [text, mixed, pseudo_random(300_000, 4)];
    let s = ds.begin_session_framed(Some(65536)).unwrap();
    let mut out = Vec::new();
    for c in chunks {
        let id = s.submit(BlobKind::Data, c.clone()).unwrap().wait().unwrap();
        out.push((id, c));
    }
    s.commit(Manifest::default()).unwrap();
    let whole = pseudo_random(200_000, 5);
    let s = ds.begin_session().unwrap();
    let id = s
        .submit(BlobKind::Data, whole.clone())
        .unwrap()
        .wait()
        .unwrap();
    s.commit(Manifest::default()).unwrap();
    out.push((id, whole));
    (dir, ds, out)
}

#[test]
fn partial_reads_at_frame_edges_give_the_chunk_bytes() {
    for enc in [Encryption::None, Encryption::Repokey] {
        let (_dir, ds, chunks) = setup(enc);
        for (n, (id, plain)) in chunks.iter().enumerate() {
            assert_eq!(&ds.read_blob(id).unwrap(), plain);
            let layout = ds.blob_layout(id).unwrap();
            match (&layout, n) {
                (Layout::Framed(t), 0..=2) => {
                    assert_eq!(t.frame_size(), 65536);
                    assert_eq!(t.frames() as usize, plain.len().div_ceil(65536));
                }
                (Layout::Whole { len }, 3) => assert_eq!(*len as usize, plain.len()),
                (l, n) => panic!("chunk {n}: {l:?}"),
            }
            let len = plain.len() as u64;
            let f = 65536u64;
            let mut cases = vec![
                (0, 1),
                (0, 4096),
                (len - 1, 1),
                (len - 4096, 4096),
                (0, len as usize),
            ];
            for k in 1..len.div_ceil(f) {
                for (d, l) in [(0, 4096), (-1i64, 2), (-4096, 8192), (-1, f as usize + 2)] {
                    let o = (k * f) as i64 + d;
                    if o >= 0 && o as u64 + l as u64 <= len {
                        cases.push((o as u64, l));
                    }
                }
            }
            for (o, l) in cases {
                let got = ds.read_blob_range(id, o, l).unwrap();
                assert!(
                    got == plain[o as usize..o as usize + l],
                    "chunk {n}: {l} at {o}"
                );
            }
            assert!(matches!(
                ds.read_blob_range(id, len - 1, 2),
                Err(Error::InvalidInput(_))
            ));
            assert!(ds.read_blob_range(id, len, 0).unwrap().is_empty());
            assert!(ds.read_frames(id, 0, 100, &mut |_, _| {}).is_err());
        }
    }
}

/// One flipped byte in one frame of a stored blob: reads of that frame fail
/// naming the chunk, reads of the other frames still work, and a whole
/// read fails.
#[test]
fn a_tampered_frame_fails_its_reads_only() {
    for enc in [Encryption::None, Encryption::Repokey] {
        let (dir, ds, chunks) = setup(enc);
        let (id, plain) = &chunks[1];
        let Layout::Framed(t) = ds.blob_layout(id).unwrap() else {
            panic!("not framed")
        };
        let loc = ds.locate(id).unwrap();
        let (a, b) = t.span(7, 7);
        let path = dir.path().join(pack::object_name(&loc.pack));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(loc.offset + (a + b) / 2) as usize] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let e = ds.read_blob_range(id, 7 * 65536 + 10, 100).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(e.to_string().contains(&id.to_string()), "{e}");
        assert!(e.to_string().contains("frame 7"), "{e}");
        let got = ds.read_blob_range(id, 6 * 65536, 65536).unwrap();
        assert!(got == plain[6 * 65536..7 * 65536]);
        assert!(ds.read_blob(id).is_err());
    }
}

/// Stored length of a framed blob of `plain` and of a whole one, in a
/// datastore whose image frames use `image_level` and everything else 1.
fn stored_at(image_level: Option<i32>, plain: &[u8]) -> (u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    Datastore::init(dir.path(), Encryption::None, None, |c| {
        c.compression_level = 1;
        c.image_compression_level = image_level;
    })
    .unwrap();
    let opts = OpenOptions {
        index: IndexKind::Memory,
        ..Default::default()
    };
    let ds = Datastore::open(dir.path(), &opts).unwrap();
    let s = ds.begin_session_framed(Some(65536)).unwrap();
    let framed = s
        .submit(BlobKind::Data, plain.to_vec())
        .unwrap()
        .wait()
        .unwrap();
    s.commit(Manifest::default()).unwrap();
    // The same bytes with one more at the end: another chunk, stored whole.
    let mut other = plain.to_vec();
    other.push(1);
    let s = ds.begin_session().unwrap();
    let whole = s
        .submit(BlobKind::Data, other.clone())
        .unwrap()
        .wait()
        .unwrap();
    s.commit(Manifest::default()).unwrap();
    assert_eq!(ds.read_blob(&framed).unwrap(), plain);
    assert_eq!(ds.read_blob(&whole).unwrap(), other);
    assert!(matches!(
        ds.blob_layout(&framed).unwrap(),
        Layout::Framed(_)
    ));
    assert!(matches!(
        ds.blob_layout(&whole).unwrap(),
        Layout::Whole { .. }
    ));
    let stored = |id| ds.index().get(id).unwrap().unwrap().length;
    (stored(&framed), stored(&whole))
}

#[test]
fn image_frames_use_the_image_level_and_nothing_else_does() {
    // Words in a random order: zstd's higher levels find more of them.
    let words = [
        "alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot ",
    ];
    let noise = pseudo_random(1 << 20, 9);
    let mut text = Vec::new();
    for b in noise.chunks(2) {
        text.extend_from_slice(words[(b[0] % 6) as usize].as_bytes());
        text.extend_from_slice(&b[1..].iter().map(|x| b'a' + x % 4).collect::<Vec<_>>());
    }
    text.truncate(1 << 20);
    let (framed_1, whole_1) = stored_at(Some(1), &text);
    let (framed_19, whole_19) = stored_at(Some(19), &text);
    let (framed_old, whole_old) = stored_at(None, &text);
    assert!(framed_19 < framed_1, "{framed_19} < {framed_1}");
    // Without the field (older configs) frames use compression_level.
    assert_eq!(framed_old, framed_1);
    assert_eq!(whole_1, whole_19);
    assert_eq!(whole_1, whole_old);
}
