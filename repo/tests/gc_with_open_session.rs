//! GC running while a backup session is open never removes what the session
//! wrote or deduplicated against (the rule in the crate documentation).

use std::sync::atomic::Ordering;
use std::time::Duration;

use arca_repo::gc::{gc, GcOptions};
use arca_repo::verify::{verify, VerifyOptions};
use arca_repo::{image, BlobKind, Datastore, Encryption, IndexKind, OpenOptions};

mod common;

use common::{image_manifest, random};

#[test]
fn gc_during_open_session_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    Datastore::init(dir.path(), Encryption::Repokey, Some(b"pw"), |c| {
        c.pack_size = 1 << 20
    })
    .unwrap();
    let opts = OpenOptions {
        passphrase: Some(b"pw".to_vec()),
        index: IndexKind::Memory,
        holder: None,
        ..Default::default()
    };
    let ds = Datastore::open(dir.path(), &opts).unwrap();
    let (a, b) = (random(65536, 1), random(3 << 20, 2));

    // Snapshot 1 holds A; deleting it makes A garbage.
    let s1 = ds.begin_session().unwrap();
    let id_a = s1
        .submit(BlobKind::Data, a.clone())
        .unwrap()
        .wait()
        .unwrap();
    let t1 = s1
        .store(BlobKind::ImageTable, &image::encode_table_blob(&[id_a]))
        .unwrap();
    let snap1 = s1.commit(image_manifest(t1, 1)).unwrap();
    ds.delete_snapshot(&snap1).unwrap();

    // Session 2 dedups against A and writes B; a pack of B reaches disk.
    let s2 = ds.begin_session().unwrap();
    assert_eq!(
        s2.submit(BlobKind::Data, a.clone())
            .unwrap()
            .wait()
            .unwrap(),
        id_a
    );
    let id_b = s2
        .submit(BlobKind::Data, b.clone())
        .unwrap()
        .wait()
        .unwrap();
    for _ in 0..500 {
        if s2.counters().packs_written.load(Ordering::Relaxed) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(s2.counters().packs_written.load(Ordering::Relaxed) > 0);

    // GC with no grace period: nothing of the open session may go.
    let g = GcOptions {
        grace: Duration::ZERO,
        ..Default::default()
    };
    gc(&ds, &g, &|_, _, _| {}).unwrap();
    assert!(
        ds.read_blob(&id_a).is_ok(),
        "gc removed a chunk an open session deduplicated against"
    );

    let t2 = s2
        .store(
            BlobKind::ImageTable,
            &image::encode_table_blob(&[id_a, id_b]),
        )
        .unwrap();
    let snap2 = s2.commit(image_manifest(t2, 2)).unwrap();
    gc(&ds, &g, &|_, _, _| {}).unwrap();
    let r = verify(&ds, &VerifyOptions::default(), &|_, _, _| {}).unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(ds.read_blob(&id_a).unwrap(), a);
    assert_eq!(ds.read_blob(&id_b).unwrap(), b);
    assert_eq!(ds.snapshots().unwrap().len(), 1);
    assert_eq!(ds.snapshots().unwrap()[0].id, snap2);
}
