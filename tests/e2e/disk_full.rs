//! A real full file system: the datastore lives on a small tmpfs.
//! - A backup that runs out of space fails with the first error (the path
//!   and "No space left on device", once) in text and in `--json`, lists
//!   nothing half-committed, leaves no temporary, and verify stays clean.
//! - At 100% full, prune and gc still open the datastore and free space
//!   (the space reserve), and failed tries do not pile up index files.
//! - Once space is freed the next backup works; every snapshot restores.
//! - A read-only file system is reported as such, once.
//!
//! Needs root (mount); without it the test says so and does nothing.
//! The same cases on the fault-injecting backend, without root, are in
//! ingest/tests/disk_full.rs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const BIG: usize = 6_000_000;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, mib: u64) -> Option<Tmpfs> {
        fs::create_dir_all(path).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Tmpfs(path.to_path_buf())),
            o => {
                // Without root, or in a container without CAP_SYS_ADMIN, the
                // fault-backend tests (ingest/tests/disk_full.rs) still cover
                // the same paths; this one needs a real file system.
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {o:?}"
                );
                None
            }
        }
    }

    fn remount(&self, opt: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "remount {opt}: {o:?}");
    }

    /// Free bytes.
    fn avail(&self) -> u64 {
        let o = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Fill the file system until `leave` bytes are free (0: completely).
    fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let p = self.0.join(name);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        let block = vec![0x5au8; 1 << 20];
        if leave == 0 {
            for size in [1 << 20, 4096, 1] {
                while f.write_all(&block[..size]).is_ok() {}
            }
        } else {
            let mut want = self.avail().saturating_sub(leave);
            while want > 0 {
                let n = want.min(1 << 20);
                if f.write_all(&block[..n as usize]).is_err() {
                    break;
                }
                want -= n;
            }
        }
        let _ = f.sync_all();
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn index_files(ds: &Path) -> Vec<String> {
    let mut v = Vec::new();
    walk(&ds.join("index"), &mut |p, md| {
        if md.is_file() {
            v.push(format!(
                "{} {}",
                p.file_name().unwrap().to_string_lossy(),
                md.len()
            ));
        }
    });
    v.sort();
    v
}

/// The error of a failed command, from stderr (text) or stdout (`--json`).
fn failure(env: &Env, args: &[&str], json: bool) -> String {
    let mut a = args.to_vec();
    if json {
        a.push("--json");
    }
    let o = env.run(&a);
    assert_eq!(o.status.code(), Some(1), "arca {a:?} should fail: {o:?}");
    if json {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
        v["error"].as_str().unwrap().to_string()
    } else {
        let e = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(e.starts_with("error: "), "{e}");
        e
    }
}

fn assert_first_error(msg: &str, os_error: &str, path: &Path) {
    assert_eq!(msg.matches(os_error).count(), 1, "{os_error} once: {msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "the path is named: {msg}"
    );
    assert!(!msg.contains("previous write failed"), "{msg}");
    assert!(!msg.contains("before the root directory"), "{msg}");
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn tmp_files(ds: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk(ds, &mut |p, md| {
        if md.is_file()
            && p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        {
            v.push(p.to_path_buf());
        }
    });
    v
}

#[test]
fn full_and_read_only_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("fs"), 48) else {
        return;
    };
    let env = Env::at(dir, tmpfs.0.join("ds"), PASS);
    env.ok(&[
        "datastore",
        "init",
        env.ds.to_str().unwrap(),
        "--encryption",
        "repokey",
        "--pack-size-mib",
        "1",
    ]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let backup = |seed: u64| -> Vec<String> {
        fs::write(src.join("big"), random_bytes(BIG, seed)).unwrap();
        [
            "backup",
            "files",
            src.to_str().unwrap(),
            "--source",
            "s",
            "--tag",
            &format!("seed-{seed}"),
        ]
        .map(String::from)
        .to_vec()
    };
    let run_ok = |v: &[String]| env.ok(&strs(v));
    let check_restores = |seeds: &[u64]| {
        let listed = env.json(&["snapshots"]);
        let tags: Vec<_> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["tags"][0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            tags,
            seeds
                .iter()
                .map(|s| format!("seed-{s}"))
                .collect::<Vec<_>>()
        );
        for (s, seed) in listed.as_array().unwrap().iter().zip(seeds) {
            let id = s["id"].as_str().unwrap();
            let out = env.path(&format!("restore-{seed}"));
            let _ = fs::remove_dir_all(&out);
            env.ok(&["restore", id, out.to_str().unwrap()]);
            assert!(fs::read(out.join("big")).unwrap() == random_bytes(BIG, *seed));
            fs::remove_dir_all(&out).unwrap();
        }
    };
    let verify_clean = |when: &str| {
        let o = env.run(&["verify"]);
        assert_eq!(o.status.code(), Some(0), "{when}: {o:?}");
    };
    run_ok(&backup(1));
    run_ok(&backup(2));
    assert!(env.ds.join("space-reserve").exists());

    // Nearly full: the backup opens, then runs out of space writing packs.
    let filler = tmpfs.fill("filler", 2 << 20);
    let third = backup(3);
    let third = strs(&third);
    for json in [false, true] {
        let msg = failure(&env, &third, json);
        assert_first_error(&msg, "No space left on device (os error 28)", &tmpfs.0);
    }
    assert_eq!(tmp_files(&env.ds), Vec::<PathBuf>::new());
    verify_clean("after a backup on a nearly full disk");
    check_restores(&[1, 2]);

    // 100% full: backups fail, and do not pile up index files.
    let rest = tmpfs.fill("filler-rest", 0);
    assert!(tmpfs.avail() < 64 << 10, "{}", tmpfs.avail());
    let before = index_files(&env.ds);
    for json in [false, true] {
        let msg = failure(&env, &third, json);
        assert_eq!(
            msg.matches("No space left on device").count(),
            1,
            "once: {msg}"
        );
        assert!(msg.contains(&tmpfs.0.display().to_string()), "{msg}");
    }
    let after = index_files(&env.ds);
    assert!(
        after.len() <= before.len(),
        "index files piled up: {before:?} -> {after:?}"
    );
    verify_clean("on a full disk");
    // Deletion works on the full disk and frees space.
    let packs = env.packs().len();
    env.ok(&["prune", "--keep-last", "1"]);
    let r = env.json(&["gc", "--grace", "0s"]);
    assert!(r["packs_deleted"].as_u64().unwrap() > 0, "{r}");
    assert!(env.packs().len() < packs);
    verify_clean("after prune and gc on a full disk");
    check_restores(&[2]);

    // Space freed: the next backup works.
    fs::remove_file(filler).unwrap();
    fs::remove_file(rest).unwrap();
    run_ok(&backup(3));
    verify_clean("after space was freed");
    check_restores(&[2, 3]);

    // Read-only: said once, with the path; nothing changes.
    tmpfs.remount("ro");
    let fourth = backup(4);
    let fourth = strs(&fourth);
    for json in [false, true] {
        let msg = failure(&env, &fourth, json);
        assert_first_error(&msg, "Read-only file system (os error 30)", &tmpfs.0);
    }
    verify_clean("read-only");
    tmpfs.remount("rw");
    run_ok(&backup(4));
    verify_clean("writable again");
    check_restores(&[2, 3, 4]);
    drop(tmpfs);
}
