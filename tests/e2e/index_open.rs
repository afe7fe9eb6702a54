//! Opening the index: a read-only open writes nothing (not even the
//! index marker), a second writer is refused by the writer lock with its
//! own message, and a damaged index says so and names `arca index
//! rebuild`, which then works. See docs/faults.md ("Opening the index").

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use arca_repo::{Datastore, Error, OpenOptions};

use crate::common::*;

const MARKER: &str = "index/ARCA-INDEX-COMPLETE";

/// A datastore with one snapshot of a few packs.
fn setup() -> Env {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("data"), random_bytes(2_500_000, 7)).unwrap();
    env.backup_files(&src, "src");
    env
}

fn opts(read_only: bool) -> OpenOptions {
    OpenOptions {
        passphrase: Some(PASS.as_bytes().to_vec()),
        read_only,
        ..Default::default()
    }
}

/// Every file and directory under the datastore, the index included, with
/// size and mtime.
fn everything(env: &Env) -> BTreeMap<PathBuf, (bool, u64, i64)> {
    let mut out = BTreeMap::new();
    walk(&env.ds, &mut |p, md| {
        out.insert(
            p.to_path_buf(),
            (
                md.is_dir(),
                md.len(),
                md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            ),
        );
    });
    out
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn read_only_open_with_the_marker_missing_writes_nothing() {
    let env = setup();
    // What a writer's half-built index looks like to a reader: no marker.
    fs::remove_file(env.ds.join(MARKER)).unwrap();
    let before = everything(&env);

    let ds = Datastore::open(&env.ds, &opts(true)).unwrap();
    // Writes are refused from the start, and the in-memory index built
    // from the packs serves reads.
    assert!(ds.check_writable().is_err());
    assert!(ds.rebuild_index(&mut |_, _| {}).is_err());
    let snaps = ds.snapshots().unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(!ds.index().packs().unwrap().is_empty());
    drop(ds);
    // The CLI's read-only commands as well (verify reads every chunk).
    env.ok(&["snapshots"]);
    env.ok(&["verify"]);

    assert!(!env.ds.join(MARKER).exists(), "a reader wrote the marker");
    assert_eq!(
        before,
        everything(&env),
        "a read-only open changed the datastore"
    );

    // A writer rebuilds the index and marks it complete.
    drop(Datastore::open(&env.ds, &opts(false)).unwrap());
    assert!(env.ds.join(MARKER).exists());

    // With a complete index, a reader opens RocksDB read-only: nothing
    // changes either, the index directory included.
    let before = everything(&env);
    let ds = Datastore::open(&env.ds, &opts(true)).unwrap();
    assert_eq!(ds.snapshots().unwrap().len(), 1);
    drop(ds);
    assert_eq!(before, everything(&env));
}

#[test]
fn a_second_writer_is_refused_by_the_writer_lock() {
    let env = setup();
    let first = Datastore::open(&env.ds, &opts(false)).unwrap();

    // In the same process: the lock is per open file.
    let e = Datastore::open(&env.ds, &opts(false)).err().unwrap();
    assert!(matches!(e, Error::Locked(_)), "{e:?}");
    assert!(
        e.to_string().contains("in use by another arca process"),
        "{e}"
    );
    // In another process.
    let src = env.path("src");
    let o = env.run(&["backup", "files", src.to_str().unwrap(), "--source", "s2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in use by another arca process"),
        "{}",
        stderr(&o)
    );
    // Readers take no lock.
    let ro = Datastore::open(&env.ds, &opts(true)).unwrap();
    assert_eq!(ro.snapshots().unwrap().len(), 1);
    env.ok(&["snapshots"]);
    drop(ro);
    drop(first);

    // A holder that says who it is is named to the refused writer.
    let held = Datastore::open(
        &env.ds,
        &OpenOptions {
            holder: Some("arca server (pid 4242) at http://example:8080".into()),
            ..opts(false)
        },
    )
    .unwrap();
    let e = Datastore::open(&env.ds, &opts(false)).err().unwrap();
    assert!(
        matches!(e, Error::Held(ref h) if h.contains("pid 4242")),
        "{e:?}"
    );
    let o = env.run(&["index", "rebuild"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("held by arca server (pid 4242)"),
        "{}",
        stderr(&o)
    );
    drop(held);

    // Released on drop; a writer that names no holder clears the old note,
    // so that the next refusal does not name a holder that is gone.
    let plain = Datastore::open(&env.ds, &opts(false)).unwrap();
    assert!(!env.ds.join(arca_repo::datastore::HELD_BY).exists());
    let e = Datastore::open(&env.ds, &opts(false)).err().unwrap();
    assert!(matches!(e, Error::Locked(_)), "{e:?}");
    drop(plain);
    env.ok(&["backup", "files", src.to_str().unwrap(), "--source", "s2"]);
}

#[test]
fn a_damaged_index_says_so_and_index_rebuild_repairs_it() {
    let env = setup();
    // CURRENT names the live MANIFEST; garbled, RocksDB reports corruption.
    fs::write(env.ds.join("index/CURRENT"), b"\x00garbled").unwrap();

    for read_only in [false, true] {
        let e = Datastore::open(&env.ds, &opts(read_only)).err().unwrap();
        assert!(matches!(e, Error::IndexCorrupt(_)), "{e:?}");
        let m = e.to_string();
        assert!(
            m.contains("index is damaged") && m.contains("arca index rebuild"),
            "{m}"
        );
        assert!(!m.contains("in use"), "{m}");
    }
    // A writer does not rebuild on its own: it says what to do.
    let src = env.path("src");
    let o = env.run(&["backup", "files", src.to_str().unwrap(), "--source", "s2"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("index is damaged") && err.contains("arca index rebuild"),
        "{err}"
    );
    assert!(!err.contains("in use by another"), "{err}");

    let out = env.ok(&["index", "rebuild"]);
    assert!(out.contains("index rebuilt"), "{out}");
    assert!(env.ds.join(MARKER).exists());
    env.ok(&["verify"]);
    env.ok(&["backup", "files", src.to_str().unwrap(), "--source", "s2"]);
    assert_eq!(env.snapshot_ids().len(), 2);
}
