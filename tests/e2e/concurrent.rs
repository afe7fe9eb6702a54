//! Readers beside writers of other processes: `arca restore` and NBD reads
//! while `arca gc` repacks what they read, and `arca verify` while a
//! backup commits. Every gc here repacks (each version of the data shares
//! half of its blocks with the one before, and the one before is
//! forgotten), and every reader's bytes are compared.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::common::*;

/// Tries of each stress test.
const TRIES: u64 = 50;
/// Files (or image blocks) per version, and their size.
const PIECES: u64 = 32;
const PIECE: usize = 64 * 1024;

fn env() -> Env {
    Env::with_init(&[
        "--encryption",
        "none",
        "--pack-size-mib",
        "1",
        "--image-chunk-kib",
        "64",
    ])
}

/// Whether piece `p` changes in version `v`: all of them in version 0,
/// then those with bit `v % 5` set. Two versions in a row use different
/// bits, so a version keeps exactly half of the pieces the one before
/// wrote: each pack of the version before is half garbage once that
/// version is forgotten.
fn changes(p: u64, v: u64) -> bool {
    v == 0 || (p >> (v % 5)) & 1 == 1
}

fn piece(p: u64, v: u64) -> Vec<u8> {
    random_bytes(PIECE, v * 1000 + p + 1)
}

/// Version `v` of a tree of `PIECES` files.
fn write_tree(dir: &Path, v: u64) {
    fs::create_dir_all(dir).unwrap();
    for p in (0..PIECES).filter(|&p| changes(p, v)) {
        fs::write(dir.join(format!("f{p:02}")), piece(p, v)).unwrap();
    }
}

/// Version `v` of an image of `PIECES` blocks.
fn write_image(file: &Path, v: u64) {
    let f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(file)
        .unwrap();
    for p in (0..PIECES).filter(|&p| changes(p, v)) {
        f.write_all_at(&piece(p, v), p * PIECE as u64).unwrap();
    }
}

fn gc_cmd(env: &Env) -> Command {
    let mut c = env.cmd(&["gc", "--grace", "0s", "--repack-threshold", "0.3", "--json"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Wait for a gc and require that it succeeded and repacked.
fn gc_done(child: Child, what: &str) {
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{what}: gc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        r["packs_repacked"].as_u64().unwrap() > 0,
        "{what}: gc did not repack: {r}"
    );
}

fn check(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn signal(child: &Child, sig: &str) {
    let s = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success(), "kill -{sig}");
}

/// Freeze `child` `delay_ms` after it started, run `f` to its end, then
/// let the child go on. A reader frozen after it opened its index view and
/// before it read what it needs reads after `f` (a gc, a backup) changed
/// the datastore; one frozen earlier or later still runs beside it. The
/// delays of the tries spread over the reader's start, so that most tries
/// freeze it in that window (what it does there is not timed or asserted).
fn while_frozen(child: &Child, delay_ms: u64, f: impl FnOnce()) {
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    signal(child, "STOP");
    f();
    signal(child, "CONT");
}

fn new_version(env: &Env, args: &[&str], old: Option<&str>) -> String {
    let id = env.json(args)["snapshot"].as_str().unwrap().to_string();
    if let Some(old) = old {
        env.ok(&["forget", old]);
    }
    id
}

/// `arca restore` (a process of its own, its index opened read-only)
/// while `arca gc` repacks the packs it reads: no failure in 50 tries, and
/// the restored tree is the backed-up one.
#[test]
fn restore_while_gc_repacks() {
    let env = env();
    let src = env.path("src");
    write_tree(&src, 0);
    let args = ["backup", "files", src.to_str().unwrap(), "--source", "s"];
    let mut snap = new_version(&env, &args, None);
    for v in 1..=TRIES {
        write_tree(&src, v);
        let id = new_version(&env, &args, Some(&snap));
        let target = env.path(&format!("out{v}"));
        let mut restore = env.cmd(&["restore", &id, target.to_str().unwrap()]);
        restore.stdout(Stdio::piped()).stderr(Stdio::piped());
        let restore = if v.is_multiple_of(2) {
            // The whole gc inside the restore (frozen), so that its view
            // is older than the repack.
            let r = restore.spawn().unwrap();
            while_frozen(&r, (v / 2) % 10 * 4, || {
                gc_done(gc_cmd(&env).spawn().unwrap(), &format!("try {v}"))
            });
            r
        } else {
            // Both at once, either started first.
            let (g, r) = if v % 4 == 1 {
                let g = gc_cmd(&env).spawn().unwrap();
                (g, restore.spawn().unwrap())
            } else {
                let r = restore.spawn().unwrap();
                (gc_cmd(&env).spawn().unwrap(), r)
            };
            gc_done(g, &format!("try {v}"));
            r
        };
        check(
            &restore.wait_with_output().unwrap(),
            &format!("restore {v}"),
        );
        assert_same_tree(&src, &target);
        fs::remove_dir_all(&target).unwrap();
        snap = id;
    }
}

/// A running `arca serve nbd` and its address.
struct Serve {
    _proc: Proc,
    url: String,
}

/// `arca serve nbd` with a 1 MiB chunk cache (less than the image, so
/// reads go to the packs).
fn serve(env: &Env) -> Serve {
    let (_proc, url) = env.serve("nbd", &["--cache-mib", "1"]);
    Serve { _proc, url }
}

fn nbd_read(url: &str, out: &Path) -> Vec<u8> {
    let _ = fs::remove_file(out);
    let o = Command::new("nbdcopy")
        .args([url, out.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("nbdcopy: {e} (the README's test command installs it)"));
    check(&o, &format!("nbdcopy {url}"));
    fs::read(out).unwrap()
}

/// NBD reads from one `arca serve nbd` process, whose index view is as
/// old as the server, while `arca gc` repacks: every restore point is a
/// new one (its blobs unknown to the view) and half of its blocks are
/// moved by the gc. 50 tries, each read compared.
#[test]
fn nbd_reads_while_gc_repacks() {
    let env = env();
    let img = env.path("vm.raw");
    write_image(&img, 0);
    let args = ["backup", "image", img.to_str().unwrap(), "--source", "vm"];
    let mut snap = new_version(&env, &args, None);
    let srv = serve(&env);
    let out = env.path("read.raw");
    for v in 1..=TRIES {
        write_image(&img, v);
        let id = new_version(&env, &args, Some(&snap));
        let want = fs::read(&img).unwrap();
        let url = format!("{}{id}", srv.url);
        let mut gc = gc_cmd(&env).spawn().unwrap();
        // Read while gc runs, and once more after it.
        loop {
            let running = gc.try_wait().unwrap().is_none();
            assert!(nbd_read(&url, &out) == want, "try {v}: bytes differ");
            if !running {
                break;
            }
        }
        gc_done(gc, &format!("try {v}"));
        snap = id;
    }
}

/// `arca verify` (read-only) beside `arca backup` of the same datastore,
/// 50 times: never a false alarm. A flipped byte is still reported.
#[test]
fn verify_beside_a_running_backup() {
    let env = env();
    let src = env.path("src");
    write_tree(&src, 0);
    let args = |src: &Path| {
        vec![
            "backup".to_string(),
            "files".into(),
            src.to_str().unwrap().into(),
            "--source".into(),
            "s".into(),
        ]
    };
    env.ok(&args(&src).iter().map(String::as_str).collect::<Vec<_>>());
    let run_both = |v: u64| -> Output {
        write_tree(&src, v);
        let mut backup = env.cmd(&args(&src).iter().map(String::as_str).collect::<Vec<_>>());
        backup.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut verify = env.cmd(&["verify", "--json"]);
        verify.stdout(Stdio::piped()).stderr(Stdio::piped());
        let c = if v.is_multiple_of(2) {
            // The whole backup, commit included, inside the verify.
            let c = verify.spawn().unwrap();
            while_frozen(&c, (v / 2) % 10 * 4, || {
                check(&backup.output().unwrap(), &format!("backup {v}"))
            });
            c
        } else {
            // Both at once, either started first.
            let (b, c) = if v % 4 == 1 {
                let b = backup.spawn().unwrap();
                (b, verify.spawn().unwrap())
            } else {
                let c = verify.spawn().unwrap();
                (backup.spawn().unwrap(), c)
            };
            check(&b.wait_with_output().unwrap(), &format!("backup {v}"));
            c
        };
        c.wait_with_output().unwrap()
    };
    for v in 1..=TRIES {
        let verify = run_both(v);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "try {v}: a false alarm: {}\n{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    assert_eq!(env.snapshot_ids().len() as u64, TRIES + 1);

    // Real damage, found beside a running backup too.
    let p = env
        .packs()
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    flip_bits(&p, 1000, 0x40);
    let verify = run_both(TRIES + 1);
    let r: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify.status.code(), Some(3), "{r}");
    assert!(!r["damaged_blobs"].as_array().unwrap().is_empty(), "{r}");
    assert!(
        !r["affected_snapshots"].as_array().unwrap().is_empty(),
        "{r}"
    );
}
