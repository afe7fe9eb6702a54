//! Temporaries: gc removes those of writers that are gone (no grace beyond
//! `--grace`), and never those that a writer of this process is still
//! writing, however old (gc runs inside the node beside its backups).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arca_repo::format::Manifest;
use arca_repo::gc::{gc, GcOptions};
use arca_repo::{BlobKind, Datastore, Encryption, IndexKind, OpenOptions};

mod common;

use common::random;

fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn age(path: &Path, by: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - by)
        .unwrap();
}

#[test]
fn gc_removes_dead_writers_temporaries_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    Datastore::init(dir.path(), Encryption::None, None, |c| {
        c.pack_size = 1 << 20
    })
    .unwrap();
    let opts = OpenOptions {
        index: IndexKind::Memory,
        ..Default::default()
    };
    let ds = Datastore::open(dir.path(), &opts).unwrap();

    // What a killed writer left: a temporary no writer of this process owns.
    let dead = dir.path().join("packs/ab/.tmp-0123456789abcdef");
    fs::create_dir_all(dead.parent().unwrap()).unwrap();
    fs::write(&dead, vec![1u8; 5000]).unwrap();
    age(&dead, Duration::from_secs(120));

    // A live session with a pack temporary being written, made to look old.
    let session = ds.begin_session().unwrap();
    let mut pending = Vec::new();
    for i in 0..8 {
        pending.push(session.submit(BlobKind::Data, random(100_000, i)).unwrap());
    }
    let ids: Vec<_> = pending.into_iter().map(|p| p.wait().unwrap()).collect();
    // The pack writer thread creates its temporary when the first blob
    // reaches it.
    let mut live = Vec::new();
    for _ in 0..1000 {
        live = temporaries(dir.path())
            .into_iter()
            .filter(|p| *p != dead)
            .collect();
        if !live.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(live.len(), 1, "{live:?}");
    age(&live[0], Duration::from_secs(48 * 3600));

    // The default grace keeps the dead writer's temporary of two minutes.
    let r = gc(&ds, &GcOptions::default(), &|_, _, _| {}).unwrap();
    assert_eq!(r.temporaries_removed, 0);
    assert!(dead.exists());
    // With --grace 0 it goes at once; the live one stays, however old.
    let r = gc(
        &ds,
        &GcOptions {
            grace: Duration::ZERO,
            ..Default::default()
        },
        &|_, _, _| {},
    )
    .unwrap();
    assert_eq!(
        (r.temporaries_removed, r.temporary_bytes_removed),
        (1, 5000)
    );
    assert!(!dead.exists());
    assert!(live[0].exists());
    // The session still commits, and its data is there.
    let table = session
        .store(
            BlobKind::ImageTable,
            &arca_repo::image::encode_table_blob(&ids),
        )
        .unwrap();
    let snap = session
        .commit(Manifest {
            source_kind: "image".into(),
            source: "vm".into(),
            disks: vec![arca_repo::format::Disk {
                name: "d".into(),
                size: ids.len() as u64 * 100_000,
                chunk_size: 131072,
                table: vec![table.0.to_vec()],
                holes: 0,
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap();
    assert!(ds.load_snapshot(&snap).is_ok());
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(ds.read_blob(id).unwrap(), random(100_000, i as u64));
    }
    assert!(temporaries(dir.path()).is_empty());
}
