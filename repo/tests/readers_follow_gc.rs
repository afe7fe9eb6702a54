//! Readers follow gc: a datastore opened read-only (a restore, an NBD
//! export, verify) whose view of the index is older than a repack, or than
//! a snapshot committed since, refreshes the view and finds the chunks in
//! their new packs. A chunk that is really gone is still reported.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use arca_repo::gc::{gc, GcOptions};
use arca_repo::verify::{verify, VerifyOptions};
use arca_repo::{
    image, BlobKind, Datastore, Encryption, Error, IndexKind, OpenOptions, SnapshotId,
};

mod common;

use common::image_manifest;

/// [`common::random`] with the seed's bits spread.
fn random(n: usize, seed: u64) -> Vec<u8> {
    common::random(n, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// An image snapshot of `blocks`, written in one session, each block
/// followed by a garbage block that nothing references (so that every pack
/// is half garbage and gc repacks it).
fn snapshot(ds: &Arc<Datastore>, blocks: &[Vec<u8>], garbage_seed: Option<u64>) -> SnapshotId {
    let s = ds.begin_session().unwrap();
    let mut ids = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let live = s.submit(BlobKind::Data, b.clone()).unwrap();
        if let Some(seed) = garbage_seed {
            s.submit(BlobKind::Data, random(b.len(), seed + i as u64))
                .unwrap()
                .wait()
                .unwrap();
        }
        ids.push(live.wait().unwrap());
    }
    let table = s
        .store(BlobKind::ImageTable, &image::encode_table_blob(&ids))
        .unwrap();
    s.commit(image_manifest(table, blocks.len())).unwrap()
}

/// The blocks of an image snapshot, read through `ds` as a restore does.
fn read_image(ds: &Datastore, id: &SnapshotId) -> Vec<Vec<u8>> {
    let snap = ds.resolve_snapshot(&id.to_hex(), None).unwrap();
    let ids = image::read_table(ds, &snap.manifest.disks[0]).unwrap();
    ids.iter().map(|c| ds.read_blob(c).unwrap()).collect()
}

fn blocks(n: u64, seed: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| random(65536, seed * 1000 + i)).collect()
}

fn follows_repacks(kind: IndexKind) {
    let dir = tempfile::tempdir().unwrap();
    Datastore::init(dir.path(), Encryption::None, None, |c| {
        c.pack_size = 1 << 20
    })
    .unwrap();
    let wo = OpenOptions {
        index: kind.clone(),
        ..Default::default()
    };
    let writer = Datastore::open(dir.path(), &wo).unwrap();
    let first = blocks(12, 1);
    let s1 = snapshot(&writer, &first, Some(77));

    // The reader's view is taken now, before any repack.
    let ro = OpenOptions {
        index: kind,
        read_only: true,
        ..Default::default()
    };
    let reader = Datastore::open(dir.path(), &ro).unwrap();
    assert_eq!(read_image(&reader, &s1), first);
    let epoch = reader.view_epoch();

    let g = GcOptions {
        grace: Duration::ZERO,
        repack_threshold: 0.3,
        ..Default::default()
    };
    for round in 0..3u64 {
        // Each round: a new snapshot sharing half of the blocks of the one
        // before, which then goes: every pack is half garbage.
        let mut next = read_image(&writer, &writer.snapshots().unwrap()[0].id);
        for (i, b) in next.iter_mut().enumerate() {
            if i % 2 == round as usize % 2 {
                *b = random(65536, 9000 + round * 100 + i as u64);
            }
        }
        let old = writer.snapshots().unwrap()[0].id;
        let new = snapshot(&writer, &next, Some(500 + round * 100));
        writer.delete_snapshot(&old).unwrap();
        let r = gc(&writer, &g, &|_, _, _| {}).unwrap();
        assert!(r.packs_repacked > 0, "round {round}: {r:?}");
        // A snapshot committed after the view, its blobs repacked since.
        assert_eq!(read_image(&reader, &new), next, "round {round}");
    }
    assert!(reader.view_epoch() > epoch, "the reader never refreshed");
    let r = verify(&reader, &VerifyOptions::default(), &|_, _, _| {}).unwrap();
    assert!(r.is_clean(), "{r:?}");

    // A chunk whose pack is really gone is reported, after the refreshes.
    let last = writer.snapshots().unwrap()[0].clone();
    let ids = image::read_table(&writer, &last.manifest.disks[0]).unwrap();
    let loc = writer.locate(&ids[0]).unwrap();
    std::fs::remove_file(dir.path().join(arca_repo::pack::object_name(&loc.pack))).unwrap();
    match reader.read_blob(&ids[0]) {
        Err(Error::PackMissing { pack, chunk }) => {
            assert_eq!((pack, chunk), (loc.pack, ids[0]));
        }
        // An index built from the packs drops a pack that is gone.
        Err(Error::ChunkMissing(c)) => assert_eq!(c, ids[0]),
        other => panic!("expected a missing pack, got {other:?}"),
    }
}

#[test]
fn a_read_only_rocksdb_view_follows_repacks() {
    follows_repacks(IndexKind::Rocks);
}

#[test]
fn an_index_built_from_packs_follows_repacks() {
    follows_repacks(IndexKind::Memory);
}

/// Readers in the same process as gc share its live index: a blob moved
/// between the lookup and the read is found by looking again.
#[test]
fn a_writer_reads_past_its_own_repack() {
    let dir = tempfile::tempdir().unwrap();
    Datastore::init(dir.path(), Encryption::None, None, |c| {
        c.pack_size = 1 << 20
    })
    .unwrap();
    let ds = Datastore::open(dir.path(), &OpenOptions::default()).unwrap();
    let data = blocks(8, 3);
    let s = snapshot(&ds, &data, Some(33));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n == 0 {
                assert_eq!(read_image(&ds, &s), data);
                n += 1;
            }
        });
        let g = GcOptions {
            grace: Duration::ZERO,
            repack_threshold: 0.3,
            ..Default::default()
        };
        let r = gc(&ds, &g, &|_, _, _| {}).unwrap();
        assert!(r.packs_repacked > 0, "{r:?}");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
    });
}
