//! Helpers of the fault and crash tests: small datastores, versioned source
//! trees, and the checks every test ends with.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arca_ingest::{files, restore, BackupOutcome, Progress};
use arca_repo::backend::fault::Faults;
use arca_repo::gc::{gc, GcOptions, GcReport};
use arca_repo::verify::{verify, VerifyOptions, VerifyReport};
use arca_repo::{Datastore, Encryption, IndexKind, OpenOptions, Result, Snapshot};

pub const PASS: &[u8] = b"crash test passphrase";

/// A datastore with small chunks (4/16/64 KiB) and 1 MiB packs, so that a
/// few MiB of data make several packs.
pub fn init(path: &Path, encryption: Encryption) {
    let pass = (encryption == Encryption::Repokey).then_some(PASS);
    Datastore::init(path, encryption, pass, |c| {
        c.pack_size = 1 << 20;
        c.chunker.min_size = 4 << 10;
        c.chunker.avg_size = 16 << 10;
        c.chunker.max_size = 64 << 10;
    })
    .unwrap();
}

pub fn options() -> OpenOptions {
    OpenOptions {
        passphrase: Some(PASS.to_vec()),
        index: IndexKind::Rocks,
        ..Default::default()
    }
}

pub fn open(path: &Path) -> Result<Arc<Datastore>> {
    Datastore::open(path, &options())
}

pub fn open_faulty(path: &Path, faults: &Faults, opts: &OpenOptions) -> Result<Arc<Datastore>> {
    Datastore::open_with_backend(path, faults.backend(), opts)
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Version `v` of a small source tree: `a.bin` never changes, `b.bin` and
/// `sub/d.bin` change with each version, `sub/c.txt` names the version.
/// About 1.5 MiB of new data per version.
pub fn write_tree(dir: &Path, v: u64) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("a.bin"), random_bytes(600 << 10, 1)).unwrap();
    fs::write(dir.join("b.bin"), random_bytes(1200 << 10, 100 + v)).unwrap();
    fs::write(dir.join("sub/c.txt"), format!("version {v}\n")).unwrap();
    fs::write(dir.join("sub/d.bin"), random_bytes(300 << 10, 200 + v)).unwrap();
}

/// Back up `dir` as source "src" with `tag`, on top of the latest snapshot.
pub fn backup(ds: &Arc<Datastore>, dir: &Path, tag: &str) -> Result<BackupOutcome> {
    let parent = ds.resolve_snapshot("latest", Some("src")).ok();
    let opts = files::FilesOptions {
        source: "src".into(),
        parent,
        tags: vec![tag.into()],
    };
    files::backup(ds, dir, &opts, &Progress::default())
}

pub fn gc_now(ds: &Datastore) -> Result<GcReport> {
    gc(
        ds,
        &GcOptions {
            grace: Duration::ZERO,
            repack_threshold: 0.3,
            ..Default::default()
        },
        &|_, _, _| {},
    )
}

pub fn verify_all(ds: &Datastore) -> Result<VerifyReport> {
    verify(ds, &VerifyOptions::default(), &|_, _, _| {})
}

/// Compare two trees' names and file contents; the first difference.
pub fn same_tree(a: &Path, b: &Path) -> std::result::Result<(), String> {
    fn list(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                    out.insert(rel, None);
                } else {
                    out.insert(rel, Some(fs::read(e.path()).unwrap()));
                }
            }
        }
        out
    }
    let (la, lb) = (list(a), list(b));
    if la.keys().ne(lb.keys()) {
        return Err(format!(
            "different entries: {:?} vs {:?}",
            la.keys().collect::<Vec<_>>(),
            lb.keys().collect::<Vec<_>>()
        ));
    }
    for (k, v) in &la {
        if lb[k] != *v {
            return Err(format!("{} differs", k.display()));
        }
    }
    Ok(())
}

/// The tag a test gave a snapshot.
pub fn tag(s: &Snapshot) -> String {
    s.manifest.tags.first().cloned().unwrap_or_default()
}

/// Restore every listed snapshot and compare it with its source tree
/// (`sources` by tag). Returns the tags found.
pub fn restore_all(
    ds: &Datastore,
    sources: &BTreeMap<String, PathBuf>,
    scratch: &Path,
) -> std::result::Result<Vec<String>, String> {
    let mut tags = Vec::new();
    let snaps = ds.snapshots().map_err(|e| format!("list snapshots: {e}"))?;
    for s in snaps {
        let t = tag(&s);
        let src = sources
            .get(&t)
            .ok_or_else(|| format!("snapshot {} has an unknown tag {t:?}", s.id))?;
        let out = scratch.join(format!("restore-{t}-{}", s.id.short()));
        let _ = fs::remove_dir_all(&out);
        restore::restore(
            ds,
            &s,
            &out,
            None,
            &restore::RestoreOptions::default(),
            &Progress::default(),
        )
        .map_err(|e| format!("restore {t} ({}): {e}", s.id))?;
        same_tree(src, &out).map_err(|e| format!("snapshot {t} ({}): {e}", s.id))?;
        fs::remove_dir_all(&out).unwrap();
        tags.push(t);
    }
    tags.sort();
    Ok(tags)
}

pub fn require_clean(r: &VerifyReport) -> std::result::Result<(), String> {
    if r.is_clean() {
        Ok(())
    } else {
        Err(format!(
            "verify found damage: packs {:?}, blobs {:?}, snapshots {:?}, affected {:?}",
            r.damaged_packs,
            r.damaged_blobs
                .iter()
                .map(|b| format!("{} {}: {}", b.kind, b.id, b.reason))
                .collect::<Vec<_>>(),
            r.unreadable_snapshots,
            r.affected_snapshots
                .iter()
                .map(|a| a.id.clone())
                .collect::<Vec<_>>()
        ))
    }
}

/// Copy a datastore directory (closed). The space reserve is hard-linked:
/// it is never written after it is made.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() == arca_repo::reserve::RESERVE {
            fs::hard_link(e.path(), &dst).unwrap();
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// `.tmp-*` files anywhere under `dir`.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
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
    out
}
