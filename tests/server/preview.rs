//! Retention preview through a server: `arca policy preview` says which
//! restore points a prune removes and why the others stay (protected ones
//! too), and `arca policy prune` then removes exactly those; `arca policy list` shows
//! the next run; `arca snapshots --project` lists one project's restore
//! points.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::common;
use crate::helpers::*;

/// (short id, keep, reasons) of the preview's one source, newest first.
fn rows(p: &Value) -> Vec<(String, bool, Vec<String>)> {
    assert_eq!(p["sources"].as_array().unwrap().len(), 1, "{p}");
    p["sources"][0]["restore_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap()[..8].to_string(),
                r["keep"].as_bool().unwrap(),
                r["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn reasons(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

#[test]
fn preview_then_prune_removes_exactly_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let (srv, _) = Server::start(&data);
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let cfg = dir.path().join("cfg");
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &srv.url)
            .env("XDG_CONFIG_HOME", &cfg)
            .env("ARCA_PASSWORD", pw.trim())
            .env_remove("ARCA_TOKEN")
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
    assert_eq!(arca(&["login"]).0, Some(0));
    let token = login(&srv.url, pw.trim());
    // Keep everything while the restore points are made.
    let pol = json(&["policy", "add", "keep", "--schedule", "daily"]);
    assert!(
        pol["next_run"].as_i64().unwrap() > arca_catalog::now(),
        "{pol}"
    );
    let src = json(&[
        "source",
        "add",
        "files",
        "web",
        tree.to_str().unwrap(),
        "--policy",
        "keep",
    ]);

    // Three restore points, oldest first, each in its own second (the
    // catalog knows times to the second).
    let mut made = Vec::new();
    for i in 0..3u64 {
        std::fs::write(tree.join("f.txt"), common::text_bytes(5_000, i)).unwrap();
        let t = json(&["backup", "now", "web"]);
        let t = wait_task(&srv.url, &token, t["id"].as_i64().unwrap(), 120);
        assert_eq!(t["state"], "succeeded", "{t}");
        made.push(t["result"]["snapshot"].as_str().unwrap()[..8].to_string());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let [a, b, c] = [&made[0], &made[1], &made[2]];
    let preview = || json(&["policy", "preview", "keep"]);
    let p = preview();
    assert_eq!(
        rows(&p),
        vec![
            (c.clone(), true, reasons(&["keep all"])),
            (b.clone(), true, reasons(&["keep all"])),
            (a.clone(), true, reasons(&["keep all"])),
        ]
    );

    // keep_last 2: the oldest goes; the others say which rule keeps them.
    json(&["policy", "edit", "keep", "--keep-last", "2"]);
    let p = preview();
    assert_eq!(
        rows(&p),
        vec![
            (c.clone(), true, reasons(&["last 1"])),
            (b.clone(), true, reasons(&["last 2"])),
            (a.clone(), false, vec![]),
        ]
    );
    assert_eq!(
        (&p["sources"][0]["kept"], &p["sources"][0]["removed"]),
        (&2.into(), &1.into())
    );
    let (code, text) = arca(&["policy", "preview", "keep"]);
    assert_eq!(code, Some(0), "{text}");
    let line_of = |id: &str| text.lines().find(|l| l.contains(id)).unwrap().to_string();
    assert!(text.starts_with("SOURCE  RESTORE POINT  TIME"), "{text}");
    assert!(line_of(a).contains("remove"), "{text}");
    assert!(
        line_of(c).contains("keep") && line_of(c).contains("last 1"),
        "{text}"
    );
    assert!(
        text.contains("web: 2 kept, 1 to remove (retention: last 2)"),
        "{text}"
    );

    // A protected restore point stays and does not count against the
    // rules; with keep_last 1 the oldest still goes.
    json(&["protect", c]);
    json(&["policy", "edit", "keep", "--keep-last", "1"]);
    let p = preview();
    assert_eq!(
        rows(&p),
        vec![
            (c.clone(), true, reasons(&["protected"])),
            (b.clone(), true, reasons(&["last 1"])),
            (a.clone(), false, vec![]),
        ]
    );
    let to_remove: BTreeSet<String> = rows(&p).into_iter().filter(|r| !r.1).map(|r| r.0).collect();

    // Nothing was removed by the preview.
    let short =
        |v: Vec<String>| -> BTreeSet<String> { v.iter().map(|s| s[..8].to_string()).collect() };
    let all: BTreeSet<String> = made.iter().cloned().collect();
    assert_eq!(short(datastore_snapshots(&data)), all);

    // Prune now (the policy's retention, one task for its one source),
    // followed to its end: it says what it removed.
    let (code, text) = arca(&["policy", "prune", "keep", "--wait"]);
    assert_eq!(code, Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("web: prune task "))
        .unwrap_or_default();
    assert!(
        line.contains(" succeeded")
            && line.ends_with(&format!(": {} restore points removed", to_remove.len())),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} restore point(s) removed", to_remove.len())),
        "{text}"
    );
    // Prune again, in JSON without waiting: the queued task, then it
    // removes nothing more.
    let queued = json(&["policy", "prune", "keep"]);
    let queued = queued.as_array().unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (
            &queued[0]["kind"],
            &queued[0]["source_id"],
            &queued[0]["policy_id"]
        ),
        (&"prune".into(), &src["id"], &pol["id"])
    );
    let t = wait_task(&srv.url, &token, queued[0]["id"].as_i64().unwrap(), 120);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["result"]["removed"], 0, "{t}");
    let left: BTreeSet<String> = all.difference(&to_remove).cloned().collect();
    assert_eq!(short(datastore_snapshots(&data)), left);
    let listed: Vec<String> = restore_points(&srv.url, &token, "web")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(short(listed), left);
    let p = preview();
    assert_eq!(p["sources"][0]["removed"], 0, "{p}");

    // policy list: the next run in local time, the rules in short.
    let (code, text) = arca(&["policy", "list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.lines().next().unwrap().contains("NEXT RUN"), "{text}");
    let header = text.lines().next().unwrap();
    let row = text.lines().find(|l| l.contains("keep")).unwrap();
    assert!(row.contains("last 1"), "{text}");
    let next = &row[header.find("NEXT RUN").unwrap()..];
    assert!(next.starts_with("20"), "a next run in local time: {text}");

    // snapshots --project: by name or id; an unknown one is an error.
    let mine = json(&["snapshots", "--project", "default"]);
    assert_eq!(mine.as_array().unwrap().len(), left.len(), "{mine}");
    let by_id = json(&["snapshots", "--project", "1"]);
    assert_eq!(by_id, mine);
    let (s, _) = call(
        &srv.url,
        &token,
        "POST",
        "/api/v1/projects",
        Some(serde_json::json!({"name": "empty"})),
    );
    assert_eq!(s, 201);
    assert_eq!(
        json(&["snapshots", "--project", "empty"]),
        serde_json::json!([])
    );
    let (code, out) = arca(&["snapshots", "--project", "nope"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("project \"nope\""), "{out}");
}
