//! Old image restore points stay readable: the checked-in
//! `tests/fixtures/image-blob-v1` datastore (written once by
//! `tests/fixtures/make-image.sh`, before blob version 2 existed) holds an
//! encrypted image restore point of whole-chunk (version 1) data blobs. A
//! whole restore and random reads through the shared [`ImageReader`] must
//! give the bytes of the image, which this test makes again from the same
//! deterministic generators.

use std::fs;
use std::path::{Path, PathBuf};

use arca_frontends::{chunk_cache, BlockSource, ImageReader};
use arca_repo::{Datastore, OpenOptions, SnapshotId};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

const K: usize = 1024;
const MIB: u64 = 1 << 20;

/// The fixture's image (see make-image.sh): 1 MiB blocks of mixed random
/// and text data, a text block, a hole, a copy of block 0 and a short last
/// block.
fn image() -> Vec<u8> {
    let mut b0 = random_bytes(512 * K, 1);
    b0.extend(text_bytes(512 * K, 2));
    let mut img = b0.clone();
    img.extend(text_bytes(1024 * K, 3));
    img.extend(vec![0u8; 1024 * K]);
    img.extend(&b0);
    img.extend(random_bytes(300_000, 4));
    img.extend(text_bytes(300_000, 5));
    img
}

fn fixture() -> PathBuf {
    source_dir().join("tests/fixtures/image-blob-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn image_fixture_of_blob_version_1_restores_and_reads_at_random() {
    let img = image();
    let expected: Value = serde_json::from_slice(
        &fs::read(fixture().with_file_name("image-blob-v1.expected.json")).unwrap(),
    )
    .unwrap();
    // The generator here makes the bytes that were backed up.
    assert_eq!(img.len() as u64, expected["size"].as_u64().unwrap());
    assert_eq!(
        hex(&Sha256::digest(&img)),
        expected["sha256"].as_str().unwrap()
    );

    let tmp = tempfile::tempdir().unwrap();
    let ds_path = tmp.path().join("ds");
    copy_dir(&fixture(), &ds_path);
    let env = Env::at(tmp, ds_path, expected["passphrase"].as_str().unwrap());
    let snap = expected["snapshot"].as_str().unwrap();

    // Whole restore through the CLI.
    let out = env.path("restored.img");
    env.ok(&["restore", snap, out.to_str().unwrap()]);
    assert!(fs::read(&out).unwrap() == img, "the restored image differs");
    let v = env.run(&["verify", "--json"]);
    assert!(
        v.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&v.stdout)
    );

    random_reads(&env.ds, &env.pass, snap, &img);
}

/// Random and sequential reads of the image restore point `snap` of the
/// datastore `ds` through the shared reader, with a cache of 1 MiB so that
/// frames and blocks are evicted and read again, compared with `img`.
fn random_reads(ds_path: &Path, pass: &str, snap: &str, img: &[u8]) {
    let ds = Datastore::open(
        ds_path,
        &OpenOptions {
            passphrase: Some(pass.as_bytes().to_vec()),
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let snap = ds
        .load_snapshot(&SnapshotId::from_hex(snap).unwrap())
        .unwrap();
    let reader = ImageReader::open(ds.clone(), &snap, chunk_cache(MIB)).unwrap();
    let size = img.len() as u64;
    assert_eq!(reader.size(), size);
    let check = |offset: u64, len: usize| {
        let mut buf = vec![0xa5u8; len];
        reader.read_at(offset, &mut buf).unwrap();
        let want = &img[offset as usize..offset as usize + len];
        assert!(buf == want, "read of {len} bytes at {offset} differs");
    };
    // Edges: the start, block boundaries, the hole, the short last block.
    for b in 0..=4u64 {
        for (off, len) in [(0i64, 4096usize), (-1, 2), (-4096, 8192), (65535, 1)] {
            let o = (b * MIB) as i64 + off;
            if o >= 0 && o as u64 + len as u64 <= size {
                check(o as u64, len);
            }
        }
    }
    check(size - 1, 1);
    check(size - 4096, 4096);
    // Random offsets and lengths, 4 KiB-aligned and not.
    let r = random_bytes(16 * 600, 77);
    for i in 0..600 {
        let x = u64::from_le_bytes(r[i * 16..i * 16 + 8].try_into().unwrap());
        let y = u64::from_le_bytes(r[i * 16 + 8..i * 16 + 16].try_into().unwrap());
        let len = [1usize, 512, 4096, 4096, 4096, 65536, 200_000, 1_500_000][(y % 8) as usize];
        let offset = if y & 8 == 0 {
            x % (size - len as u64)
        } else {
            (x % (size / 4096)) * 4096
        };
        let len = len.min((size - offset) as usize);
        check(offset, len);
    }
    // One sequential pass (read-ahead) in 128 KiB requests.
    let mut pos = 0;
    while pos < size {
        let len = (128 * K).min((size - pos) as usize);
        check(pos, len);
        pos += len as u64;
    }
    // Holes are reported as holes.
    let ext = reader.extents(2 * MIB, MIB).unwrap();
    assert!(ext.len() == 1 && ext[0].hole, "{ext:?}");
}

/// The same image backed up into new datastores (1 MiB chunks of 64 KiB
/// frames, blob version 2), encrypted and not: restored whole and read at
/// random, it gives the same bytes.
#[test]
fn image_of_framed_blobs_restores_and_reads_at_random() {
    let img = image();
    for enc in ["repokey", "none"] {
        let env = Env::with_init(&["--encryption", enc, "--pack-size-mib", "1"]);
        let info = env.json(&["datastore", "info"]);
        assert_eq!(info["image_frame_size"], 65536, "{info}");
        assert_eq!(
            info["image_compression_level"],
            arca_repo::config::DEFAULT_IMAGE_COMPRESSION_LEVEL,
            "{info}"
        );
        assert_eq!(info["image_chunk_size"], 1 << 20, "{info}");
        let path = env.path("disk.img");
        fs::write(&path, &img).unwrap();
        let b = env.json(&[
            "backup",
            "image",
            path.to_str().unwrap(),
            "--source",
            "disk",
        ]);
        let snap = b["snapshot"].as_str().unwrap().to_string();
        let out = env.path("restored.img");
        env.ok(&["restore", &snap, out.to_str().unwrap()]);
        assert!(
            fs::read(&out).unwrap() == img,
            "{enc}: the restored image differs"
        );
        let v = env.run(&["verify", "--json"]);
        assert!(
            v.status.success(),
            "verify: {}",
            String::from_utf8_lossy(&v.stdout)
        );
        random_reads(&env.ds, &env.pass, &snap, &img);
    }
}
