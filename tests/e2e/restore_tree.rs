//! Tree restores of awkward trees are exact, and a killed restore is safe.
//! - Hard links, symbolic links (relative, absolute, dangling), sparse
//!   files, empty files and directories, odd names (newlines, non-UTF-8
//!   bytes, 255 bytes), 100,000 files in one directory and a tree 200
//!   levels deep restore byte for byte with their modes, times and links
//!   (both trees walked and compared, directory times included).
//! - A restore killed with SIGKILL at pseudo-random moments (a fixed seed)
//!   never leaves a file at its final name with other content than the
//!   original; running it again (without --overwrite) is allowed, skips
//!   what is finished, removes the temporaries and ends identical.
//! - A target with the marker of another restore point still needs
//!   --overwrite.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use filetime::FileTime;

use crate::common::*;

const MARKER: &str = ".arca-restore-in-progress";
const TEMP_PREFIX: &[u8] = b".arca-tmp-";

fn set_mtime(p: &Path, secs: i64, ns: u32) {
    filetime::set_symlink_file_times(
        p,
        FileTime::from_unix_time(secs, ns),
        FileTime::from_unix_time(secs, ns),
    )
    .unwrap();
}

fn awkward_tree(root: &Path) {
    fs::create_dir_all(root.join("empty-dir/also-empty")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("data"), random_bytes(700_000, 11)).unwrap();
    // Hard links: a group of three across directories, one of two.
    fs::create_dir_all(root.join("links/a/b")).unwrap();
    fs::write(root.join("links/one"), text_bytes(50_000, 12)).unwrap();
    fs::hard_link(root.join("links/one"), root.join("links/a/two")).unwrap();
    fs::hard_link(root.join("links/one"), root.join("links/a/b/three")).unwrap();
    fs::write(root.join("links/x"), b"x").unwrap();
    fs::hard_link(root.join("links/x"), root.join("links/y")).unwrap();
    // Symbolic links.
    std::os::unix::fs::symlink("../data", root.join("links/rel")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("links/abs")).unwrap();
    std::os::unix::fs::symlink("no/such/thing", root.join("links/dangling")).unwrap();
    std::os::unix::fs::symlink("a", root.join("links/to-dir")).unwrap();
    // Sparse: a hole at the start, data, a hole at the end.
    let f = fs::File::create(root.join("sparse")).unwrap();
    f.set_len(24 << 20).unwrap();
    f.write_all_at(&random_bytes(9_000, 13), 10 << 20).unwrap();
    // A file that is all hole.
    fs::File::create(root.join("hole"))
        .unwrap()
        .set_len(5 << 20)
        .unwrap();
    // Odd names.
    let odd = root.join("odd");
    fs::create_dir(&odd).unwrap();
    for name in [
        &b"new\nline"[..],
        b"\n",
        b"tab\there",
        b"non-utf8-\xff\xfe\x80",
        b" leading and trailing space ",
        b"-dash",
        b"*?[glob]",
        b"back\\slash",
        b"\xe2\x98\x83 snowman",
    ] {
        fs::write(odd.join(OsStr::from_bytes(name)), name).unwrap();
    }
    let long = "L".repeat(255);
    fs::write(odd.join(&long), b"long").unwrap();
    fs::create_dir(odd.join("d".repeat(255))).unwrap();
    fs::write(
        odd.join("d".repeat(255)).join(OsStr::from_bytes(b"\xff")),
        b"",
    )
    .unwrap();
    // Modes.
    fs::write(root.join("exec"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("exec"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o400)).unwrap();
    fs::set_permissions(root.join("empty-dir"), fs::Permissions::from_mode(0o751)).unwrap();
    // 100,000 files in one directory.
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..100_000u32 {
        let p = many.join(format!("f{i:06}"));
        if i % 7 == 0 {
            fs::write(&p, b"").unwrap();
        } else {
            fs::write(&p, i.to_le_bytes()).unwrap();
        }
    }
    // 200 levels deep, a file at the bottom.
    let mut deep = root.join("deep");
    for _ in 0..200 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom"), b"bottom").unwrap();
    // Times with nanoseconds, on files, links and directories (deepest
    // first, so that setting one does not change its parent's later).
    set_mtime(&root.join("data"), 1_100_000_000, 999_999_999);
    set_mtime(&root.join("links/rel"), 1_200_000_000, 5);
    set_mtime(&root.join("odd").join(&long), 1_300_000_000, 1);
    set_mtime(&root.join("empty-dir/also-empty"), 1_400_000_000, 42);
    set_mtime(&root.join("empty-dir"), 1_400_000_001, 43);
}

/// Every entry below `dir` with its metadata (not following links).
fn entries(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        out.push((p.strip_prefix(root).unwrap().to_path_buf(), md.clone()));
        if md.is_dir() {
            entries(root, &p, out);
        }
    }
}

/// What `assert_same_tree` leaves out: directory and link times, and the
/// sizes of sparse files on disk.
fn assert_same_times_and_holes(a: &Path, b: &Path) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    entries(a, a, &mut ea);
    entries(b, b, &mut eb);
    ea.sort_by(|x, y| x.0.cmp(&y.0));
    eb.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(ea.len(), eb.len());
    for ((p, ma), (q, mb)) in ea.iter().zip(&eb) {
        assert_eq!(p, q);
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "{p:?}: mtime"
        );
        if ma.is_file() {
            assert_eq!(ma.len(), mb.len(), "{p:?}: size");
            // Not more allocated than the original (holes stay holes);
            // some file systems round up by a block or two.
            assert!(
                mb.blocks() <= ma.blocks() + 16,
                "{p:?}: {} blocks restored, {} originally",
                mb.blocks(),
                ma.blocks()
            );
        }
    }
}

/// Regular files and temporaries below `dir`.
fn files_and_temps(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut temps) = (Vec::new(), Vec::new());
    walk(dir, &mut |p, md| {
        if !md.is_file() || p == dir.join(MARKER) {
            return;
        }
        if p.file_name().unwrap().as_bytes().starts_with(TEMP_PREFIX) {
            temps.push(p.to_path_buf());
        } else {
            files.push(p.to_path_buf());
        }
    });
    (files, temps)
}

#[test]
fn awkward_trees_restore_exactly() {
    let env = Env::new();
    let src = env.path("src");
    awkward_tree(&src);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o705)).unwrap();
    set_mtime(&src, 1_500_000_000, 77);
    env.backup_files(&src, "awkward");
    let out = env.path("out");
    let r = env.json(&["restore", "latest", out.to_str().unwrap()]);
    assert_eq!(r["skipped"], 0, "{r}");
    assert!(r["files"].as_u64().unwrap() > 100_000, "{r}");
    assert_same_tree(&src, &out);
    assert_same_times_and_holes(&src, &out);
    // The restore's own files are gone.
    let (_, temps) = files_and_temps(&out);
    assert!(temps.is_empty(), "{temps:?}");
    assert!(!out.join(MARKER).exists());
    let md = fs::metadata(&out).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o705);
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_500_000_000, 77));
    // A finished restore is not resumed: the same restore again needs
    // --overwrite.
    let o = env.run(&["restore", "latest", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
}

/// The marker's identity: a new one (each run writes its own) differs.
fn marker_id(target: &Path) -> Option<(u64, i64, i64)> {
    let md = fs::symlink_metadata(target.join(MARKER)).ok()?;
    Some((md.ino(), md.ctime(), md.ctime_nsec()))
}

/// How a restore started by [`kill_restore`] ended.
#[derive(Debug, PartialEq)]
enum Run {
    /// Killed while its marker was in the target: an interrupted restore.
    Killed,
    /// It finished its work (exited on its own, or was killed after it
    /// removed its marker, its last step).
    Finished,
}

/// Start the restore, wait until it has begun writing (it wrote its
/// marker), wait `extra_ms` more and kill it with SIGKILL.
fn kill_restore(env: &Env, target: &Path, extra_ms: u64) -> Run {
    let before = marker_id(target);
    let mut child = env
        .cmd(&["restore", "latest", target.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = marker_id(target);
        if now.is_some() && now != before {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "the restore (after {before:?}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Run::Finished;
        }
        assert!(Instant::now() < deadline, "the restore never started");
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(extra_ms));
    let _ = child.kill();
    let _ = child.wait();
    if target.join(MARKER).exists() {
        Run::Killed
    } else {
        Run::Finished
    }
}

#[test]
fn killed_restores_leave_whole_files_and_resume() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("small")).unwrap();
    // Big files take many chunks (killed mid-file), small ones many names.
    for i in 0..6u64 {
        fs::write(
            src.join(format!("big{i}")),
            random_bytes(6_000_000 + i as usize * 77_777, 100 + i),
        )
        .unwrap();
    }
    for i in 0..3000u64 {
        let n = (i as usize * 37) % 9000;
        fs::write(src.join(format!("small/s{i}")), text_bytes(n, i)).unwrap();
    }
    fs::hard_link(src.join("big0"), src.join("small/big0-link")).unwrap();
    std::os::unix::fs::symlink("../big1", src.join("small/link")).unwrap();
    env.backup_files(&src, "tree");

    let target = env.path("target");
    // Deterministic moments: the same in every run of the test. Each run
    // after a killed one resumes it (and may itself be killed, even while
    // it replaces the marker: the next run must still resume).
    let moments = random_bytes(8, 14);
    let mut killed = 0;
    for &m in &moments[..6] {
        if kill_restore(&env, &target, u64::from(m) % 120) == Run::Finished {
            // A fast machine finished the restore: it is whole; start over.
            assert_same_tree(&src, &target);
            fs::remove_dir_all(&target).unwrap();
            continue;
        }
        killed += 1;
        // Every file at its final name is whole and as backed up.
        let (files, _) = files_and_temps(&target);
        for f in files {
            let rel = f.strip_prefix(&target).unwrap();
            assert_eq!(
                fs::read(&f).unwrap(),
                fs::read(src.join(rel)).unwrap(),
                "{rel:?} at its name after a kill at +{m} ms is not the original"
            );
        }
    }
    assert!(killed > 0, "no restore was killed before it finished");
    // The rerun finishes; what the killed runs finished is skipped.
    let (done, _) = files_and_temps(&target);
    let r = env.json(&["restore", "latest", target.to_str().unwrap()]);
    assert_same_tree(&src, &target);
    let (_, temps) = files_and_temps(&target);
    assert!(temps.is_empty(), "temporaries left: {temps:?}");
    assert!(!target.join(MARKER).exists());
    let skipped = r["skipped"].as_u64().unwrap();
    assert!(
        skipped > 0 || done.is_empty(),
        "nothing skipped with {} files restored by the killed runs: {r}",
        done.len()
    );
    // Human output says so too: kill once more, then resume.
    fs::remove_dir_all(&target).unwrap();
    if kill_restore(&env, &target, 300) == Run::Killed {
        let (files, _) = files_and_temps(&target);
        let out = env.ok(&["restore", "latest", target.to_str().unwrap()]);
        if !files.is_empty() {
            assert!(out.contains("already restored"), "{out}");
        }
        assert_same_tree(&src, &target);
    }
}

#[test]
fn a_marker_of_another_restore_point_needs_overwrite() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"first").unwrap();
    let first = env.backup_files(&src, "tree")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(src.join("a"), b"second").unwrap();
    env.backup_files(&src, "tree");
    let target = env.path("target");
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("a"), b"partial").unwrap();
    // The marker a killed restore of the first restore point leaves.
    fs::write(
        target.join(MARKER),
        format!("arca restore in progress: run the same restore again to finish it\nrestore_point {first}\npath \n"),
    )
    .unwrap();
    let o = env.run(&["restore", "latest", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    assert_eq!(fs::read(target.join("a")).unwrap(), b"partial");
    // The first restore point resumes into it.
    let r = env.json(&["restore", &first, target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("a")).unwrap(), b"first");
    assert_eq!(r["skipped"], 0, "{r}");
    assert!(!target.join(MARKER).exists());
}
