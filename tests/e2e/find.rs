//! `arca find` on a local datastore: two backups of a changing tree, a
//! file in both, one only in the newer, none; name and path patterns,
//! case, the limit, filters, a bad pattern and an image snapshot skipped.

use std::fs;

use serde_json::Value;

use crate::common::*;

/// (restore point, path) of every match, in order.
fn found(v: &Value) -> Vec<(String, String)> {
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["restore_point"].as_str().unwrap().to_string(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn find_names_the_restore_points_that_hold_a_file() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("docs/deep")).unwrap();
    fs::write(src.join("keep.txt"), b"kept").unwrap();
    fs::write(src.join("docs/old.txt"), b"old").unwrap();
    fs::write(src.join("docs/Report.PDF"), b"%PDF").unwrap();
    fs::write(src.join("docs/deep/keep.txt"), b"deeper").unwrap();
    let first = env.backup_files(&src, "docs")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(src.join("docs/old.txt")).unwrap();
    fs::write(src.join("docs/new.txt"), b"new!").unwrap();
    let second = env.backup_files(&src, "docs")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);

    // In both, newest first, every place it is.
    let v = env.json(&["find", "keep.txt"]);
    assert_eq!(
        found(&v),
        [
            (second.clone(), "docs/deep/keep.txt".to_string()),
            (second.clone(), "keep.txt".to_string()),
            (first.clone(), "docs/deep/keep.txt".to_string()),
            (first.clone(), "keep.txt".to_string()),
        ]
    );
    assert_eq!(v["truncated"], false);
    assert_eq!(v["searched"], 2);
    let m = &v["matches"][1];
    assert_eq!(m["kind"], "file");
    assert_eq!(m["size"], 4);
    assert_eq!(m["source"], "docs");
    assert!(m["time"].as_i64().unwrap() > 1_700_000_000, "{m}");
    assert!(m["mtime"].as_i64().unwrap() > 1_700_000_000, "{m}");
    // Only in the newer one; only in the older one; in none.
    assert_eq!(
        found(&env.json(&["find", "new.txt"])),
        [(second.clone(), "docs/new.txt".to_string())]
    );
    assert_eq!(
        found(&env.json(&["find", "old.*"])),
        [(first.clone(), "docs/old.txt".to_string())]
    );
    let none = env.json(&["find", "nowhere*"]);
    assert!(found(&none).is_empty());
    assert_eq!(none["searched"], 2);

    // A path pattern is matched against the whole path.
    let v = env.json(&["find", "docs/*.txt"]);
    assert_eq!(
        found(&v),
        [
            (second.clone(), "docs/new.txt".to_string()),
            (first.clone(), "docs/old.txt".to_string()),
        ]
    );
    assert_eq!(found(&env.json(&["find", "/keep.txt"])).len(), 2);
    // Case.
    assert!(found(&env.json(&["find", "*.pdf"])).is_empty());
    assert_eq!(found(&env.json(&["find", "*.pdf", "-i"])).len(), 2);

    // The table: short ids, paths, and a summary line.
    let out = env.ok(&["find", "*.txt"]);
    assert!(out.starts_with("RESTORE POINT"), "{out}");
    assert!(
        out.contains(&second[..8]) && out.contains(&first[..8]),
        "{out}"
    );
    assert!(out.contains("docs/deep/keep.txt"), "{out}");
    assert!(
        out.contains("6 matches in 2 of 2 restore points searched"),
        "{out}"
    );

    // The limit cuts the output and says so.
    let o = env.run(&["find", "*", "--limit", "3", "--json"]);
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(found(&v).len(), 3);
    assert_eq!(v["truncated"], true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stopped at 3 matches"), "{err}");

    // Filters: another source, times.
    let v = env.json(&["find", "*", "--source", "other"]);
    assert!(found(&v).is_empty());
    assert_eq!(v["searched"], 0);
    let v = env.json(&["find", "keep.txt", "--until", "2000-01-01"]);
    assert_eq!(v["searched"], 0);
    let v = env.json(&["find", "keep.txt", "--since", "2000-01-01"]);
    assert_eq!(found(&v).len(), 4);

    let o = env.run(&[
        "find",
        "*",
        "--since",
        "2000-01-02",
        "--until",
        "2000-01-01",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--since is after --until"));

    // A bad pattern is refused with the problem.
    let o = env.run(&["find", "[abc"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a glob"), "{err}");

    // An image snapshot is skipped with a note; the others are searched.
    let img = env.path("disk.img");
    fs::write(&img, random_bytes(256 * 1024, 7)).unwrap();
    env.json(&["backup", "image", img.to_str().unwrap(), "--source", "disk"]);
    let o = env.run(&["find", "keep.txt"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipped") && err.contains("image"), "{err}");
    let v = env.json(&["find", "keep.txt"]);
    assert_eq!(found(&v).len(), 4);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
}
