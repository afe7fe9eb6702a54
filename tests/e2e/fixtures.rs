//! The checked-in fixture datastores (tests/fixtures/, written once per
//! format version by tests/fixtures/make.sh) must stay readable by every
//! later build: each restores to exactly what was backed up, verifies
//! clean, and each damaged one gives the verify report recorded when it was
//! made. Every `datastore-v*` and `damaged-v*` directory there is tested,
//! so a new format version adds its fixtures and keeps the old ones.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

fn fixtures() -> PathBuf {
    source_dir().join("tests/fixtures")
}

/// The fixture directories whose name starts with `prefix`, sorted.
fn dirs(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// A writable copy: opening a datastore builds its index, and the
/// checked-in tree must stay as it was written.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every entry under `root` as the fixture's expected.json describes it.
fn describe(root: &Path, dir: &Path, out: &mut BTreeMap<String, Value>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let mut v = serde_json::json!({
            "mode": format!("0o{:o}", md.mode() & 0o7777),
            "mtime": md.mtime(),
        });
        if md.file_type().is_symlink() {
            v["type"] = "symlink".into();
            v["target"] = fs::read_link(&p).unwrap().to_str().unwrap().into();
        } else if md.is_dir() {
            v["type"] = "dir".into();
            describe(root, &p, out);
        } else {
            let data = fs::read(&p).unwrap();
            v["type"] = "file".into();
            v["size"] = data.len().into();
            v["sha256"] = sha256(&data).into();
        }
        out.insert(rel, v);
    }
}

/// The parts of an entry the fixture pins (a symlink's own mode and mtime
/// are not restored on Linux).
fn pinned(v: &Value) -> Value {
    let mut v = v.clone();
    if v["type"] == "symlink" {
        let o = v.as_object_mut().unwrap();
        o.remove("mode");
        o.remove("mtime");
    }
    v
}

#[test]
fn every_fixture_datastore_restores_what_was_written_and_verifies_clean() {
    let all = dirs("datastore-v");
    assert!(!all.is_empty(), "no fixture datastores in {:?}", fixtures());
    for fixture in all {
        let name = fixture.file_name().unwrap().to_str().unwrap().to_string();
        let expected: Value = serde_json::from_slice(
            &fs::read(fixtures().join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        copy_dir(&fixture, &ds);
        let env = Env::at(tmp, ds, expected["passphrase"].as_str().unwrap());

        let listed = env.json(&["snapshots"]);
        let listed: BTreeMap<&str, &Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap(), s))
            .collect();
        let snaps = expected["snapshots"].as_array().unwrap();
        assert_eq!(listed.len(), snaps.len(), "{name}: {listed:?}");
        for want in snaps {
            let id = want["id"].as_str().unwrap();
            let got = listed
                .get(id)
                .unwrap_or_else(|| panic!("{name}: snapshot {id} is not listed"));
            assert_eq!(got["state"], "ok", "{name} {id}");
            assert_eq!(got["source"], want["source"], "{name} {id}");
            assert_eq!(got["kind"], want["kind"], "{name} {id}");
            if let Some(parent) = want.get("parent") {
                assert_eq!(&got["parent"], parent, "{name} {id}");
            }
            let out = env.path(&format!("out-{id}"));
            env.ok(&["restore", id, out.to_str().unwrap()]);
            if want["kind"] == "image" {
                // An image restore point of one disk restores to one file.
                let file = if out.is_dir() {
                    let mut f: Vec<_> = fs::read_dir(&out).unwrap().collect();
                    assert_eq!(f.len(), 1, "{name} {id}");
                    f.remove(0).unwrap().path()
                } else {
                    out.clone()
                };
                let data = fs::read(&file).unwrap();
                assert_eq!(data.len() as u64, want["size"].as_u64().unwrap());
                assert_eq!(sha256(&data), want["sha256"], "{name} {id}: image");
            } else {
                let mut got = BTreeMap::new();
                describe(&out, &out, &mut got);
                let want_files = want["files"].as_object().unwrap();
                assert_eq!(
                    got.keys().collect::<Vec<_>>(),
                    want_files.keys().collect::<Vec<_>>(),
                    "{name} {id}: entries"
                );
                for (rel, w) in want_files {
                    assert_eq!(pinned(&got[rel]), pinned(w), "{name} {id}: {rel}");
                }
            }
        }

        let o = env.run(&["verify", "--json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: verify: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["snapshots_checked"], snaps.len(), "{name}: {report}");
        assert!(
            report["packs_read"].as_u64().unwrap() > 0,
            "{name}: {report}"
        );
    }
}

/// Arrays sorted, so the comparison does not depend on listing order.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut a: Vec<Value> = a.iter().map(normalized).collect();
            a.sort_by_key(|x| x.to_string());
            Value::Array(a)
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        v => v.clone(),
    }
}

#[test]
fn every_damaged_fixture_gives_its_recorded_verify_report() {
    let all = dirs("damaged-v");
    assert!(!all.is_empty(), "no damaged fixtures in {:?}", fixtures());
    for fixture in all {
        let name = fixture.file_name().unwrap().to_str().unwrap().to_string();
        let expected: Value = serde_json::from_slice(
            &fs::read(fixtures().join(format!("{name}.expected-verify.json"))).unwrap(),
        )
        .unwrap();
        let clean: Value = serde_json::from_slice(
            &fs::read(fixtures().join(format!(
                "{}.expected.json",
                name.replace("damaged-", "datastore-")
            )))
            .unwrap(),
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ds = tmp.path().join("ds");
        copy_dir(&fixture, &ds);
        let env = Env::at(tmp, ds, clean["passphrase"].as_str().unwrap());
        let o = env.run(&["verify", "--json"]);
        assert_eq!(
            o.status.code().map(i64::from),
            expected["exit_code"].as_i64(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            normalized(&report),
            normalized(&expected["report"]),
            "{name}: the verify report changed"
        );
        // The damage is named: a damaged blob in the pack that was flipped,
        // and at least one restore point affected by it.
        let pack = expected["flipped_byte_in"].as_str().unwrap();
        let pack_id = Path::new(pack).file_name().unwrap().to_str().unwrap();
        assert!(
            report["damaged_blobs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["pack"] == pack_id),
            "{name}: {report}"
        );
        assert!(
            !report["affected_snapshots"].as_array().unwrap().is_empty(),
            "{name}: {report}"
        );
    }
}
