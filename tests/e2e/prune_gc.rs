//! Retention and garbage collection.

use std::fs;

use crate::common::*;

#[test]
fn prune_then_gc_reclaims_and_keeps_the_rest() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut ids = Vec::new();
    for i in 0..4u64 {
        fs::write(src.join("data"), random_bytes(2_000_000, 100 + i)).unwrap();
        ids.push(
            env.backup_files(&src, "s")["snapshot"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let size = |env: &Env| {
        env.packs()
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum::<u64>()
    };
    let before = size(&env);

    let dry = env.json(&["prune", "--keep-last", "2", "--dry-run"]);
    let keep: Vec<bool> = dry["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["keep"].as_bool().unwrap())
        .collect();
    assert_eq!(keep, [false, false, true, true]);
    assert_eq!(dry["snapshots"][3]["reasons"][0], "last 1");
    assert_eq!(env.snapshot_ids().len(), 4, "dry run removed nothing");

    let r = env.json(&["prune", "--keep-last", "2"]);
    assert_eq!(r["removed"], 2);
    let left = env.snapshot_ids();
    assert_eq!(left.len(), 2);

    // Within the grace period nothing is deleted.
    let g = env.json(&["gc"]);
    assert_eq!(g["packs_deleted"], 0);
    assert_eq!(size(&env), before);
    let g = env.json(&["gc", "--grace", "0s"]);
    assert!(
        g["packs_deleted"].as_u64().unwrap() + g["packs_repacked"].as_u64().unwrap() > 0,
        "{g}"
    );
    let after = size(&env);
    assert!(
        after < before * 3 / 4,
        "gc freed too little: {before} -> {after}"
    );
    assert_eq!(env.run(&["verify"]).status.code(), Some(0));
    let out = env.path("out");
    env.ok(&["restore", &ids[3], out.to_str().unwrap()]);
    assert_eq!(
        fs::read(out.join("data")).unwrap(),
        random_bytes(2_000_000, 103)
    );
    let out = env.path("out2");
    env.ok(&["restore", &ids[2], out.to_str().unwrap()]);
    assert_eq!(
        fs::read(out.join("data")).unwrap(),
        random_bytes(2_000_000, 102)
    );
    // A second gc finds nothing to do.
    let g = env.json(&["gc", "--grace", "0s"]);
    assert_eq!(g["packs_deleted"], 0, "{g}");
}
