//! The progress total of a tree backup is known early: a 2 GiB tree (of
//! sparse files, so the test writes nothing) reports a total within 10% of
//! its true size before a third of it has been read, and exactly its size
//! by the end. The samples are taken as the backup runs; nothing here
//! depends on how fast the machine is, only on the order of events.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arca_ingest::files::{self, FilesOptions};
use arca_ingest::Progress;
use arca_repo::Encryption;

const FILES: u64 = 16;
const SIZE: u64 = 128 << 20;

#[test]
fn a_tree_backup_knows_its_total_before_a_third_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = dir.path().join("ds");
    common::init(&ds_path, Encryption::Repokey);
    let ds = common::open(&ds_path).unwrap();
    let tree = dir.path().join("tree");
    for i in 0..FILES {
        let sub = tree.join(format!("d{}", i % 4));
        std::fs::create_dir_all(&sub).unwrap();
        let f = std::fs::File::create(sub.join(format!("f{i}"))).unwrap();
        f.set_len(SIZE).unwrap();
    }
    let true_size = FILES * SIZE;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (p, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.push((
                    p.bytes.load(Ordering::Relaxed),
                    p.total.load(Ordering::Relaxed),
                ));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            samples
        })
    };
    let opts = FilesOptions {
        source: "tree".into(),
        ..Default::default()
    };
    let out = files::backup(&ds, &tree, &opts, &progress).unwrap();
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    assert_eq!(out.bytes_total, true_size);
    assert_eq!(progress.total.load(Ordering::Relaxed), true_size);
    // Samples while less than a third was read.
    let early: Vec<_> = samples
        .iter()
        .filter(|(bytes, _)| *bytes > 0 && *bytes < true_size / 3)
        .collect();
    assert!(
        !early.is_empty(),
        "no sample in the first third: {samples:?}"
    );
    let (bytes, total) = early[early.len() - 1];
    let off = total.abs_diff(true_size) as f64 / true_size as f64;
    assert!(
        off <= 0.10,
        "at {bytes} bytes read the total was {total}, {:.0}% off {true_size}",
        off * 100.0
    );
}
