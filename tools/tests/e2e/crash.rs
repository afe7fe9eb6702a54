//! kill -9 during backup, prune and gc: the datastore opens, verify is
//! clean, the next backup works, and no earlier restore point is lost.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

fn kill_after(env: &Env, args: &[&str], ms: u64) {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

fn check_all(env: &Env, expected: &[(String, u64)]) {
    let o = env.run(&["verify", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "verify after crash: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for (id, seed) in expected {
        let out = env.path(&format!("check-{}", &id[..8]));
        let _ = fs::remove_dir_all(&out);
        env.ok(&["restore", id, out.to_str().unwrap()]);
        assert_eq!(
            fs::read(out.join("big")).unwrap(),
            random_bytes(12_000_000, *seed),
            "snapshot {id}"
        );
    }
}

#[test]
fn kill_backup_prune_gc_at_random_moments() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut expected: Vec<(String, u64)> = Vec::new();
    let mut seed = 500u64;
    fs::write(src.join("big"), random_bytes(12_000_000, seed)).unwrap();
    expected.push((
        env.backup_files(&src, "s")["snapshot"]
            .as_str()
            .unwrap()
            .to_string(),
        seed,
    ));
    // Pseudo-random kill moments, different in each run (printed on failure).
    let moments = random_bytes(32, std::process::id() as u64);
    for &moment in &moments[..3] {
        seed += 1;
        fs::write(src.join("big"), random_bytes(12_000_000, seed)).unwrap();
        kill_after(
            &env,
            &["backup", "files", src.to_str().unwrap(), "--source", "s"],
            20 + moment as u64 * 2,
        );
        check_all(&env, &expected);
        // Whatever the killed backup left, the next one works.
        expected.push((
            env.backup_files(&src, "s")["snapshot"]
                .as_str()
                .unwrap()
                .to_string(),
            seed,
        ));
    }
    // A snapshot to prune, then kill prune and gc.
    for round in 0..3usize {
        kill_after(
            &env,
            &["prune", "--keep-last", &(expected.len() + 5).to_string()],
            moments[8 + round] as u64 / 8,
        );
        kill_after(
            &env,
            &["gc", "--grace", "0s"],
            10 + moments[16 + round] as u64,
        );
        check_all(&env, &expected);
    }
    // Drop the oldest restore point and kill gc while it reclaims it.
    let (oldest, _) = expected.remove(0);
    // (A killed backup may have committed its snapshot just before dying.)
    let keep = env.snapshot_ids().len() - 1;
    env.ok(&["prune", "--keep-last", &keep.to_string()]);
    assert!(!env.snapshot_ids().contains(&oldest));
    for round in 0..3usize {
        kill_after(
            &env,
            &["gc", "--grace", "0s"],
            5 + moments[24 + round] as u64 / 2,
        );
        check_all(&env, &expected);
    }
    env.ok(&["gc", "--grace", "0s"]);
    check_all(&env, &expected);
    seed += 1;
    fs::write(src.join("big"), random_bytes(12_000_000, seed)).unwrap();
    expected.push((
        env.backup_files(&src, "s")["snapshot"]
            .as_str()
            .unwrap()
            .to_string(),
        seed,
    ));
    check_all(&env, &expected);
}
