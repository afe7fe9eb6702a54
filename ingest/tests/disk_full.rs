//! A backup that hits a full disk (ENOSPC), a read-only file system (EROFS)
//! or an I/O error, injected by the fault backend at every kind of call:
//! - it fails with the first error, whole: the path and the OS error, once,
//!   not "a previous write failed";
//! - nothing half-committed is listed, verify is clean, and no temporary
//!   stays behind;
//! - the next backup, once the fault is gone ("space freed"), works.
//!
//! And deletion on a full disk: with every call that needs space failing,
//! prune and gc still open the datastore and free space.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;

use arca_repo::backend::fault::{Fault, Faults, Op};
use arca_repo::prune::{self, Retention};
use arca_repo::{Encryption, Error};
use common::*;

fn os_error(f: Fault) -> &'static str {
    match f {
        Fault::NoSpace | Fault::ShortWrite => "No space left on device (os error 28)",
        Fault::ReadOnly => "Read-only file system (os error 30)",
        Fault::Io => "Input/output error (os error 5)",
    }
}

#[test]
fn backup_reports_the_first_error_and_leaves_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = dir.path().join("ds");
    init(&ds_path, Encryption::Repokey);
    let mut sources = BTreeMap::new();
    let faults = Faults::new(&ds_path);
    let ds = open_faulty(&ds_path, &faults, &options()).unwrap();
    let source = |sources: &mut BTreeMap<String, std::path::PathBuf>, v: u64| {
        let p = dir.path().join(format!("src-v{v}"));
        write_tree(&p, v);
        sources.insert(format!("v{v}"), p.clone());
        (p, format!("v{v}"))
    };
    let (first, tag) = source(&mut sources, 1);
    backup(&ds, &first, &tag).unwrap();

    // (call, which one of this backup's calls of that kind, fault)
    let cases = [
        (Op::Write, 1, Fault::NoSpace),
        (Op::Write, 3, Fault::ShortWrite),
        (Op::Write, 2, Fault::ReadOnly),
        (Op::Fsync, 1, Fault::NoSpace),
        (Op::Fsync, 4, Fault::Io),
        (Op::Create, 1, Fault::ReadOnly),
        (Op::Create, 2, Fault::NoSpace),
        (Op::Rename, 1, Fault::NoSpace),
        (Op::Rename, 3, Fault::ReadOnly),
    ];
    for (i, (op, nth, fault)) in cases.into_iter().enumerate() {
        let (src, tag) = source(&mut sources, i as u64 + 2);
        let before: Vec<_> = ds.snapshots().unwrap().iter().map(|s| s.id).collect();
        // Every call of the kind from the nth on fails: the disk stays full.
        faults.fail_from(op, faults.count(op) + nth, fault);
        let e = backup(&ds, &src, &tag).unwrap_err();
        let msg = e.to_string();
        let case = format!("{op:?} #{nth} {fault:?}: {msg}");
        assert!(!faults.injected().is_empty(), "{case}: no fault was hit");
        assert!(
            matches!(e, Error::Io { .. }),
            "{case}: not the I/O error itself ({e:?})"
        );
        assert_eq!(
            msg.matches(os_error(fault)).count(),
            1,
            "{case}: the OS error, once"
        );
        assert!(
            msg.contains(&ds_path.display().to_string()),
            "{case}: no path"
        );
        assert!(!msg.contains("previous write failed"), "{case}");
        assert!(!msg.contains("before the root directory"), "{case}");
        faults.clear();
        // Nothing half-committed is listed; nothing is damaged.
        let after: Vec<_> = ds.snapshots().unwrap().iter().map(|s| s.id).collect();
        assert_eq!(before, after, "{case}: a snapshot appeared");
        require_clean(&verify_all(&ds).unwrap()).unwrap();
        assert_eq!(
            temporaries(&ds_path),
            Vec::<std::path::PathBuf>::new(),
            "{case}: temporaries left"
        );
        // Space freed: the same backup works now.
        backup(&ds, &src, &tag).unwrap();
    }
    drop(ds);
    let ds = open(&ds_path).unwrap();
    require_clean(&verify_all(&ds).unwrap()).unwrap();
    let tags = restore_all(&ds, &sources, &dir.path().join("scratch")).unwrap();
    assert_eq!(tags.len(), cases.len() + 1);
}

#[test]
fn prune_and_gc_free_space_on_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = dir.path().join("ds");
    init(&ds_path, Encryption::None);
    let mut sources = BTreeMap::new();
    {
        let ds = open(&ds_path).unwrap();
        for v in 1..=3 {
            let p = dir.path().join(format!("src-v{v}"));
            write_tree(&p, v);
            sources.insert(format!("v{v}"), p.clone());
            backup(&ds, &p, &format!("v{v}")).unwrap();
        }
    }
    let packs_before = ds_files(&ds_path, "packs");
    let p4 = dir.path().join("src-v4");
    write_tree(&p4, 4);
    sources.insert("v4".into(), p4.clone());

    // From here on, nothing that needs space works.
    let faults = Faults::new(&ds_path);
    faults.disk_full();
    let ds = open_faulty(&ds_path, &faults, &options()).unwrap();
    let e = backup(&ds, &p4, "v4").unwrap_err().to_string();
    assert!(e.contains("No space left on device (os error 28)"), "{e}");
    let plan = prune::plan(
        &ds.snapshots().unwrap(),
        &Retention {
            keep_last: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(prune::apply(&ds, &plan).unwrap(), 2);
    let r = gc_now(&ds).unwrap();
    assert!(r.packs_deleted > 0, "{r:?}");
    assert!(r.bytes_freed > 0, "{r:?}");
    // Repacking needs space: gc says it stopped, and did not fail.
    if r.packs_repacked == 0 {
        assert!(
            r.warnings.iter().any(|w| w.contains("No space left")),
            "{r:?}"
        );
    }
    assert!(ds_files(&ds_path, "packs") < packs_before);
    require_clean(&verify_all(&ds).unwrap()).unwrap();
    // Space freed: backups work again, and everything restores.
    faults.clear();
    backup(&ds, &p4, "v4").unwrap();
    gc_now(&ds).unwrap();
    require_clean(&verify_all(&ds).unwrap()).unwrap();
    let tags = restore_all(&ds, &sources, &dir.path().join("scratch")).unwrap();
    assert_eq!(tags, ["v3", "v4"]);
}

/// Number of files under `ds/sub`.
fn ds_files(ds: &std::path::Path, sub: &str) -> usize {
    let mut n = 0;
    let mut stack = vec![ds.join(sub)];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}
