//! Deleting restore points through a server: `arca forget` (a forget task
//! on the datastore's node), protection refusing it, gc freeing the space
//! afterwards, and `arca source remove` keeping or removing the source's
//! restore points.

use std::process::Command;

use serde_json::Value;

use crate::common;
use crate::helpers::*;

#[test]
fn forget_and_source_remove_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let site = dir.path().join("site");
    let docs = dir.path().join("docs");
    let back = dir.path().join("back");
    for d in [&site, &docs] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (srv, lines) = Server::start(&data);
    let url = srv.url.clone();
    let token = login(&url, &first_password(&lines));
    let ds = data.join("datastores/default");
    let cfg = dir.path().join("cfg");
    let pw = first_password(&lines);
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &url)
            .env("XDG_CONFIG_HOME", &cfg)
            .env("ARCA_PASSWORD", &pw)
            .env_remove("ARCA_TOKEN")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let json = |args: &[&str]| -> Value {
        let (code, out) = arca(&[&["--json"], args].concat());
        assert_eq!(code, Some(0), "{args:?}: {out}");
        serde_json::from_str(&out).unwrap()
    };
    // A backup of `source` after writing `seed`'s data; its restore point.
    let backup = |tree: &std::path::Path, source: &str, seed: u64| -> String {
        write_atomic(&tree.join("data.bin"), &common::random_bytes(4 << 20, seed));
        let t = json(&["backup", "now", source, "--wait"]);
        assert_eq!(t["state"], "succeeded", "{t}");
        t["result"]["snapshot"].as_str().unwrap().to_string()
    };
    assert_eq!(arca(&["login"]).0, Some(0));
    json(&["source", "add", "files", "site", site.to_str().unwrap()]);
    json(&["source", "add", "files", "docs", docs.to_str().unwrap()]);
    let first = backup(&site, "site", 1);
    let second = backup(&site, "site", 2);
    let listed = |source: &str| -> Vec<String> {
        restore_points(&url, &token, source)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed("site").len(), 2);

    // Forget the first by a prefix, and wait for its task.
    let (code, out) = arca(&["forget", &first[..12], "--wait"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("forget task")
            && out.contains("succeeded")
            && out.contains("1 restore points removed"),
        "{out}"
    );
    assert!(out.contains("next gc"), "{out}");
    assert_eq!(listed("site"), vec![second.clone()]);
    let snaps = datastore_snapshots(&data);
    assert!(!snaps.contains(&first), "{snaps:?}");
    assert!(snaps.contains(&second), "{snaps:?}");
    // Its own data goes at the next gc.
    let before = packs_bytes(&ds);
    let (code, out) = arca(&["datastore", "gc", "default", "--grace", "0s", "--wait"]);
    assert_eq!(code, Some(0), "{out}");
    let after = packs_bytes(&ds);
    assert!(
        after + (3 << 20) < before,
        "gc freed {} of {before} bytes",
        before - after
    );
    // Unknown and malformed ids are named; nothing is queued for them.
    let (code, out) = arca(&["forget", &first]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not found"), "{out}");
    let (code, out) = arca(&["forget", "zz"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not a hex id"), "{out}");

    // A protected one is refused (409) and stays.
    json(&["protect", &second]);
    let (code, out) = arca(&["forget", &second]);
    assert_eq!(code, Some(1));
    assert!(out.contains("protected: unprotect it first"), "{out}");
    let (s, v) = call(
        &url,
        &token,
        "DELETE",
        &format!("/api/v1/restore-points/{second}"),
        None,
    );
    assert_eq!(s, 409, "{v}");
    assert_eq!(listed("site"), vec![second.clone()]);
    assert!(datastore_snapshots(&data).contains(&second));

    // Removing a source: without a terminal, the choice is required.
    let third = backup(&site, "site", 3);
    let (code, out) = arca(&["source", "remove", "site"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("--keep-restore-points") && out.contains("--remove-restore-points"),
        "{out}"
    );
    // Refused while one is protected: the source stays.
    let (code, out) = arca(&["source", "remove", "site", "--remove-restore-points"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("1 protected restore point(s) of 2"), "{out}");
    assert_eq!(json(&["source", "list"]).as_array().unwrap().len(), 2);
    json(&["unprotect", &second]);
    let (code, out) = arca(&[
        "source",
        "remove",
        "site",
        "--remove-restore-points",
        "--wait",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("succeeded") && out.contains("2 restore points removed"),
        "{out}"
    );
    assert!(listed("site").is_empty());
    let snaps = datastore_snapshots(&data);
    assert!(
        !snaps.contains(&second) && !snaps.contains(&third),
        "{snaps:?}"
    );

    // Kept: listed under the source's name, and restorable.
    let kept = backup(&docs, "docs", 4);
    let out = json(&["source", "remove", "docs", "--keep-restore-points"]);
    assert_eq!(out["restore_points"], "keep", "{out}");
    assert_eq!(listed("docs"), vec![kept.clone()]);
    let t = json(&["restore", &kept, "--to", back.to_str().unwrap(), "--wait"]);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(
        std::fs::read(back.join("data.bin")).unwrap(),
        common::random_bytes(4 << 20, 4)
    );
    assert!(datastore_snapshots(&data).contains(&kept));
}
