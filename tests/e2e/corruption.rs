//! Damaged packs: verify exits 3 and names exactly the affected snapshots;
//! unaffected snapshots still restore.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use crate::common::*;

/// Two sources with disjoint data, each in its own packs.
fn setup() -> (Env, String, String, Vec<PathBuf>) {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("data"), random_bytes(3_000_000, 11)).unwrap();
    fs::write(b.join("data"), random_bytes(3_000_000, 22)).unwrap();
    let sa = env.backup_files(&a, "a")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let packs_a = env.packs();
    let sb = env.backup_files(&b, "b")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    (env, sa, sb, packs_a)
}

fn verify_affected(env: &Env) -> (i32, BTreeSet<String>, serde_json::Value) {
    let o = env.run(&["verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let affected = v["affected_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    (o.status.code().unwrap(), affected, v)
}

fn largest(packs: &[PathBuf]) -> PathBuf {
    packs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone()
}

fn b_still_restores(env: &Env, sb: &str) {
    let out = env.path("b-out");
    env.ok(&["restore", sb, out.to_str().unwrap()]);
    assert_eq!(
        fs::read(out.join("data")).unwrap(),
        random_bytes(3_000_000, 22)
    );
}

#[test]
fn clean_datastore_verifies() {
    let (env, ..) = setup();
    let (code, affected, v) = verify_affected(&env);
    assert_eq!(code, 0, "{v}");
    assert!(affected.is_empty());
    let o = env.run(&["verify", "--read-data-subset", "50%"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn flipped_byte() {
    let (env, sa, sb, packs_a) = setup();
    let p = largest(&packs_a);
    flip_bits(&p, 1000, 0x40);
    let (code, affected, v) = verify_affected(&env);
    assert_eq!(code, 3, "{v}");
    assert_eq!(affected, BTreeSet::from([sa.clone()]), "{v}");
    assert!(!v["damaged_blobs"].as_array().unwrap().is_empty());
    b_still_restores(&env, &sb);
    let o = env.run(&["restore", &sa, env.path("a-out").to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "restoring damaged data must fail loudly"
    );
}

#[test]
fn truncated_pack() {
    let (env, sa, sb, packs_a) = setup();
    let p = largest(&packs_a);
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, affected, v) = verify_affected(&env);
    assert_eq!(code, 3, "{v}");
    assert_eq!(affected, BTreeSet::from([sa]), "{v}");
    b_still_restores(&env, &sb);
}

#[test]
fn deleted_pack() {
    let (env, sa, sb, packs_a) = setup();
    fs::remove_file(largest(&packs_a)).unwrap();
    let (code, affected, v) = verify_affected(&env);
    assert_eq!(code, 3, "{v}");
    assert_eq!(affected, BTreeSet::from([sa]), "{v}");
    b_still_restores(&env, &sb);
    // A subset read still finds the structural damage.
    let o = env.run(&["verify", "--read-data-subset", "0"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn index_rebuild_restores_service() {
    let (env, sa, sb, _) = setup();
    fs::remove_dir_all(env.ds.join("index")).unwrap();
    let r = env.json(&["index", "rebuild"]);
    assert!(r["blobs"].as_u64().unwrap() > 0);
    let (code, _, v) = verify_affected(&env);
    assert_eq!(code, 0, "{v}");
    b_still_restores(&env, &sb);
    let out = env.path("a-out");
    env.ok(&["restore", &sa, out.to_str().unwrap()]);
}
