//! A damaged snapshot file is listed as damaged, restoring it says so,
//! gc goes on with a warning naming it, and `arca forget` removes it.

use std::fs;

use crate::common::*;

#[test]
fn damaged_snapshot_file_is_listed_and_forgettable() {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("data"), random_bytes(1_500_000, 1)).unwrap();
    fs::write(b.join("data"), random_bytes(1_500_000, 2)).unwrap();
    let sa = env.backup_files(&a, "a")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let sb = env.backup_files(&b, "b")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();

    // One flipped byte in the middle of a's snapshot file.
    let file = env.ds.join("snapshots").join(&sa);
    let at = fs::metadata(&file).unwrap().len() / 2;
    flip_bits(&file, at, 0x01);

    // Listed, as damaged, with its error; the listing itself succeeds.
    let o = env.run(&["snapshots"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(&sa[..8]))
        .unwrap_or_else(|| panic!("{sa} is not listed:\n{text}"));
    assert!(line.contains("DAMAGED"), "{line}");
    assert!(line.contains("unknown"), "{line}");
    assert!(text.contains("2 snapshots, 1 damaged"), "{text}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("arca forget"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let list = env.json(&["snapshots"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    let bad = rows.iter().find(|r| r["id"] == sa.as_str()).unwrap();
    assert_eq!(bad["state"], "damaged", "{bad}");
    assert!(bad["source"].is_null(), "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("corrupt"), "{bad}");
    let good = rows.iter().find(|r| r["id"] == sb.as_str()).unwrap();
    assert_eq!(good["state"], "ok", "{good}");
    assert_eq!(good["source"], "b", "{good}");

    // Restoring it says it is damaged, by full id and by prefix.
    for spec in [sa.as_str(), &sa[..8]] {
        let o = env.run(&["restore", spec, env.path("out-a").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("snapshot {sa} is damaged")), "{err}");
        assert!(err.contains("arca forget"), "{err}");
        assert!(!err.contains("not found"), "{err}");
    }

    // verify reports it; gc goes on and names it.
    let o = env.run(&["verify", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["unreadable_snapshots"][0]
            .as_str()
            .unwrap()
            .starts_with(&sa),
        "{v}"
    );
    let o = env.run(&["gc", "--grace", "0s", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["damaged_snapshots"], serde_json::json!([sa]), "{g}");
    let w = g["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains(&sa) && w.contains("cannot read")
        }),
        "{g}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&sa));
    assert!(g["packs_deleted"].as_u64().unwrap() > 0, "{g}");

    // b is untouched.
    let out = env.path("out-b");
    env.ok(&["restore", &sb, out.to_str().unwrap()]);
    assert_same_tree(&b, &out);

    // forget resolves prefixes over damaged files too, and removes it.
    let o = env.run(&["forget", "ffffffffffff"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    let r = env.json(&["forget", &sa[..8]]);
    assert_eq!(r["removed"][0]["id"], sa.as_str(), "{r}");
    assert_eq!(r["removed"][0]["state"], "damaged", "{r}");
    assert!(!file.exists());

    // A clean list, a clean verify, a gc without warnings.
    let list = env.json(&["snapshots"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], sb.as_str());
    assert_eq!(list[0]["state"], "ok");
    let o = env.run(&["snapshots"]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 snapshots"));
    assert_eq!(env.run(&["verify"]).status.code(), Some(0));
    let g = env.json(&["gc", "--grace", "0s"]);
    assert!(g["warnings"].as_array().unwrap().is_empty(), "{g}");
    assert_eq!(g["damaged_snapshots"], serde_json::json!([]), "{g}");
}

/// forget of a readable snapshot: by prefix, with its source, and the
/// next gc reclaims its data.
#[test]
fn forget_removes_a_snapshot() {
    let env = Env::new();
    let a = env.path("a");
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("data"), random_bytes(500_000, 3)).unwrap();
    let s1 = env.backup_files(&a, "a")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.ok(&["forget", &s1[..10]]);
    assert!(
        out.contains(&format!("removed snapshot {s1} of a")),
        "{out}"
    );
    assert!(env.snapshot_ids().is_empty());
    let g = env.json(&["gc", "--grace", "0s"]);
    assert!(g["packs_deleted"].as_u64().unwrap() > 0, "{g}");
    // Nothing to forget: a clear error, exit 1.
    let o = env.run(&["forget", &s1]);
    assert_eq!(o.status.code(), Some(1));
}
