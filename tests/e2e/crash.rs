//! kill -9 during backup, prune and gc, only while the process is changing
//! the datastore (it is alive, past key derivation, and a pack is being
//! written or a snapshot or pack has just gone): afterwards the datastore
//! verifies clean, every listed snapshot restores to exactly what was backed
//! up, no earlier restore point is lost, and the next backup and gc work.
//! Also: the next gc removes what a killed backup left behind.
//!
//! The deterministic enumeration of crash points (every write, fsync and
//! rename, with a power-loss model) is in ingest/tests/crash_points.rs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

const BIG: usize = 12_000_000;

/// Start `arca args`, wait until `mutating()` says it is changing the
/// datastore, then wait `extra_ms` more and kill it with SIGKILL if it is
/// still alive. Whether it was killed while alive and mutating.
fn kill_while(env: &Env, args: &[&str], mutating: &dyn Fn() -> bool, extra_ms: u64) -> bool {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false; // finished before we saw it write
        }
        if mutating() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "arca {args:?} never started writing"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    std::thread::sleep(Duration::from_millis(extra_ms));
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    alive
}

/// Pack temporaries: a backup or a repack is writing a pack.
fn pack_temporaries(ds: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk(&ds.join("packs"), &mut |p, md| {
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

fn count_snapshots(ds: &Path) -> usize {
    fs::read_dir(ds.join("snapshots"))
        .map(|rd| {
            rd.filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count()
        })
        .unwrap_or(0)
}

/// What each tag's snapshot holds: the seed of `big`, or the text of a
/// small tree.
#[derive(Clone)]
enum Content {
    Big(u64),
    Tiny(String),
}

/// Verify is clean, every listed snapshot restores to its content, and
/// every snapshot in `required` is listed.
fn check_all(env: &Env, contents: &BTreeMap<String, Content>, required: &[String], when: &str) {
    let o = env.run(&["verify", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{when}: verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let listed = env.json(&["snapshots"]);
    let mut tags = Vec::new();
    for s in listed.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let tag = s["tags"][0].as_str().unwrap().to_string();
        let out = env.path(&format!("check-{}", &id[..8]));
        let _ = fs::remove_dir_all(&out);
        env.ok(&["restore", id, out.to_str().unwrap()]);
        match contents.get(&tag) {
            Some(Content::Big(seed)) => assert!(
                fs::read(out.join("big")).unwrap() == random_bytes(BIG, *seed),
                "{when}: snapshot {id} ({tag}) does not restore to what was backed up"
            ),
            Some(Content::Tiny(text)) => assert_eq!(
                &fs::read_to_string(out.join("t.txt")).unwrap(),
                text,
                "{when}: snapshot {id} ({tag})"
            ),
            None => panic!("{when}: snapshot {id} has an unknown tag {tag}"),
        }
        fs::remove_dir_all(&out).unwrap();
        tags.push(tag);
    }
    for t in required {
        assert!(tags.contains(t), "{when}: snapshot {t} was lost ({tags:?})");
    }
}

/// Write `big` with `seed` and return the arguments of its backup.
fn backup_big(src: &Path, seed: u64) -> Vec<String> {
    fs::write(src.join("big"), random_bytes(BIG, seed)).unwrap();
    [
        "backup",
        "files",
        src.to_str().unwrap(),
        "--source",
        "s",
        "--tag",
        &format!("big-{seed}"),
    ]
    .map(String::from)
    .to_vec()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn kill_backup_prune_gc_while_they_write() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut contents: BTreeMap<String, Content> = BTreeMap::new();
    let mut required: Vec<String> = Vec::new();
    let mut seed = 500u64;
    env.ok(&args(&backup_big(&src, seed)));
    contents.insert(format!("big-{seed}"), Content::Big(seed));
    required.push(format!("big-{seed}"));
    // Pseudo-random extra delays, different in each run (printed on failure).
    let moments = random_bytes(32, std::process::id() as u64);
    let mut killed = BTreeMap::<&str, u32>::new();

    // Backups killed while a pack is being written.
    for &moment in &moments[..3] {
        seed += 1;
        let a = backup_big(&src, seed);
        contents.insert(format!("big-{seed}"), Content::Big(seed));
        let ds = env.ds.clone();
        if kill_while(
            &env,
            &args(&a),
            &|| !pack_temporaries(&ds).is_empty(),
            moment as u64 % 40,
        ) {
            *killed.entry("backup").or_default() += 1;
        }
        check_all(
            &env,
            &contents,
            &required,
            &format!("backup killed ({moment})"),
        );
        // Whatever the killed backup left, the next one works.
        env.ok(&args(&a));
        required.push(format!("big-{seed}"));
        check_all(&env, &contents, &required, "backup after a killed one");
    }

    // Prune killed after its first deletion, while it deletes the rest.
    let tiny = env.path("tiny");
    fs::create_dir_all(&tiny).unwrap();
    for round in 0..2usize {
        for i in 0..10 {
            let text = format!("tiny {round} {i}\n");
            fs::write(tiny.join("t.txt"), &text).unwrap();
            let tag = format!("tiny-{round}-{i}");
            env.ok(&[
                "backup",
                "files",
                tiny.to_str().unwrap(),
                "--source",
                "t",
                "--tag",
                &tag,
            ]);
            contents.insert(tag, Content::Tiny(text));
        }
        let before = count_snapshots(&env.ds);
        let ds = env.ds.clone();
        if kill_while(
            &env,
            &["prune", "--source", "t", "--keep-last", "1"],
            &|| count_snapshots(&ds) < before,
            moments[8 + round] as u64 % 3,
        ) {
            *killed.entry("prune").or_default() += 1;
        }
        // The newest tiny snapshot is never pruned.
        let mut req = required.clone();
        req.push(format!("tiny-{round}-9"));
        check_all(&env, &contents, &req, "prune killed");
    }
    env.ok(&["prune", "--source", "t", "--keep-last", "1"]);

    // gc killed while it deletes or repacks: drop old restore points first,
    // so that it has packs to delete and to repack.
    for round in 0..3usize {
        seed += 1;
        env.ok(&args(&backup_big(&src, seed)));
        contents.insert(format!("big-{seed}"), Content::Big(seed));
        required.push(format!("big-{seed}"));
        env.ok(&["prune", "--source", "s", "--keep-last", "2"]);
        let listed: Vec<String> = env
            .json(&["snapshots"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["tags"][0].as_str().unwrap().to_string())
            .collect();
        required.retain(|t| listed.contains(t));
        let packs_before = env.packs().len();
        let ds = env.ds.clone();
        if kill_while(
            &env,
            &["gc", "--grace", "0s", "--repack-threshold", "0.2"],
            &|| env_packs(&ds) < packs_before || !pack_temporaries(&ds).is_empty(),
            moments[16 + round] as u64 % 20,
        ) {
            *killed.entry("gc").or_default() += 1;
        }
        check_all(
            &env,
            &contents,
            &required,
            &format!("gc killed (round {round})"),
        );
    }
    env.ok(&["gc", "--grace", "0s"]);
    check_all(&env, &contents, &required, "gc after killed ones");
    seed += 1;
    env.ok(&args(&backup_big(&src, seed)));
    contents.insert(format!("big-{seed}"), Content::Big(seed));
    required.push(format!("big-{seed}"));
    check_all(&env, &contents, &required, "the end");
    // Each kind was killed at least once while it was writing (the delays
    // are short next to the work that follows the first write).
    for what in ["backup", "prune", "gc"] {
        assert!(
            killed.get(what).copied().unwrap_or(0) > 0,
            "no {what} was killed while writing ({killed:?}, moments {:?})",
            &moments[..24]
        );
    }
}

fn env_packs(ds: &Path) -> usize {
    let mut n = 0;
    walk(&ds.join("packs"), &mut |p, md| {
        if md.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            n += 1;
        }
    });
    n
}

#[test]
fn gc_removes_what_a_killed_backup_left() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    env.ok(&args(&backup_big(&src, 1)));
    // Much more data than one pack, so that it is killed mid-pack.
    fs::write(src.join("more"), random_bytes(40_000_000, 2)).unwrap();
    let mut left = Vec::new();
    for _ in 0..5 {
        let ds = env.ds.clone();
        kill_while(
            &env,
            &["backup", "files", src.to_str().unwrap(), "--source", "s"],
            &|| !pack_temporaries(&ds).is_empty(),
            0,
        );
        left = pack_temporaries(&env.ds);
        if !left.is_empty() {
            break;
        }
    }
    assert!(!left.is_empty(), "no killed backup left a temporary");
    let bytes: u64 = left.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    // The writer is gone: the next gc removes its leftovers at once.
    let r = env.json(&["gc", "--grace", "0s"]);
    assert!(
        r["temporaries_removed"].as_u64().unwrap() >= left.len() as u64,
        "{r}"
    );
    assert!(
        r["temporary_bytes_removed"].as_u64().unwrap() >= bytes,
        "{r}"
    );
    assert_eq!(pack_temporaries(&env.ds), Vec::<PathBuf>::new());
    let o = env.run(&["verify"]);
    assert_eq!(o.status.code(), Some(0));
}
