//! Every command of the CLI against a server, in human and `--json` form,
//! checked against the API: the JSON a read command prints carries what
//! the corresponding GET answers (ids, names, counts), its human form is a
//! table with a header (or the record's own first line) and never "null";
//! the JSON a write command prints is the record the API then returns.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::*;

struct Cli<'a> {
    url: &'a str,
    token: &'a str,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", self.url)
            .env("ARCA_TOKEN", self.token)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// `arca --json ARGS`: it succeeds and prints one JSON document.
    fn json(&self, args: &[&str]) -> Value {
        let all = [&["--json"][..], args].concat();
        let (code, out, err) = self.run(&all);
        assert_eq!(code, Some(0), "arca {all:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("arca {all:?}: {e}: {out}"))
    }

    /// `arca ARGS` for people: it succeeds, prints no "null" and no JSON.
    fn human(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, Some(0), "arca {args:?}: {err}");
        assert!(!out.contains("null"), "arca {args:?}:\n{out}");
        assert!(
            !out.trim_start().starts_with('{') && !out.trim_start().starts_with('['),
            "arca {args:?} printed JSON:\n{out}"
        );
        out
    }

    fn get(&self, path: &str) -> Value {
        let (s, v) = call(self.url, self.token, "GET", &format!("/api/v1{path}"), None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }
}

/// A table for people: its first line is the header, in capitals, whose
/// first column titles are those of `first`; then one line per row.
fn assert_table(out: &str, first: &str, rows: usize) {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header
            .split_whitespace()
            .zip(first.split_whitespace())
            .all(|(a, b)| a == b),
        "{out}"
    );
    assert_eq!(header, header.to_uppercase(), "{out}");
    assert_eq!(lines.count(), rows, "{out}");
}

fn ids(v: &Value, key: &str) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].to_string())
        .collect()
}

/// The element of the list `v` whose `id` is `id`.
fn by_id(v: &Value, id: &Value) -> Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == *id)
        .cloned()
        .unwrap_or_else(|| panic!("no id {id} in {v}"))
}

/// `v` without the fields that change by themselves (heartbeats, use).
fn steady(mut v: Value, moving: &[&str]) -> Value {
    for k in moving {
        if let Some(o) = v.as_object_mut() {
            o.remove(*k);
        }
    }
    v
}

#[test]
fn every_command_in_human_and_json_form() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"alpha").unwrap();
    std::fs::write(tree.join("sub/b.txt"), b"beta").unwrap();
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let cli = Cli {
        url: &srv.url,
        token: &token,
    };
    let path = tree.to_str().unwrap();

    // Writes: what is printed is what the API then returns.
    let src = cli.json(&["source", "add", "files", "docs", path, "--tag", "t1"]);
    assert_eq!(src, cli.get(&format!("/sources/{}", src["id"])));
    assert_eq!(src["name"], "docs");
    let pol = cli.json(&[
        "policy",
        "add",
        "nightly",
        "--schedule",
        "daily",
        "--match-tag",
        "t2",
        "--keep-last",
        "3",
    ]);
    assert_eq!(pol, cli.get(&format!("/policies/{}", pol["id"])));
    let src = cli.json(&[
        "source", "edit", "docs", "--tag", "t2", "--policy", "nightly",
    ]);
    assert_eq!(src, cli.get(&format!("/sources/{}", src["id"])));
    assert_eq!(
        (&src["tags"], &src["policy_id"]),
        (&json!(["t2"]), &pol["id"])
    );
    let pol = cli.json(&[
        "policy",
        "edit",
        "nightly",
        "--keep-daily",
        "7",
        "--enabled",
        "false",
    ]);
    assert_eq!(pol, cli.get(&format!("/policies/{}", pol["id"])));
    assert_eq!(
        (&pol["enabled"], &pol["retention"]["keep_daily"]),
        (&json!(false), &json!(7))
    );
    let gone = cli.json(&["policy", "add", "gone", "--schedule", "weekly"]);
    let removed = cli.json(&["policy", "remove", "gone"]);
    assert_eq!(removed, json!({"removed": gone["id"]}));
    let (s, v) = call(
        &srv.url,
        &token,
        "GET",
        &format!("/api/v1/policies/{}", gone["id"]),
        None,
    );
    assert_eq!(s, 404, "{v}");

    let queued = cli.json(&["backup", "now", "docs"]);
    let t = wait_task(&srv.url, &token, queued["id"].as_i64().unwrap(), 60);
    assert_eq!(t["state"], "succeeded", "{t}");
    for k in [
        "id",
        "kind",
        "source_id",
        "policy_id",
        "created_by",
        "created_at",
    ] {
        assert_eq!(queued[k], t[k], "{k}: {queued} vs {t}");
    }
    let rp = t["result"]["snapshot"].as_str().unwrap().to_string();
    // Followed with `--progress json`: progress lines on stderr, ending
    // with everything done; the summary on stdout.
    let (code, out, err) = cli.run(&["--progress", "json", "backup", "now", "docs", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("backup task ") && out.contains(" succeeded in "),
        "{out}"
    );
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["progress"], "task", "{err}");
    assert_eq!(last["bytes_done"], last["bytes_total"], "{err}");
    assert_eq!(last["bytes_total"], 9, "{err}");
    let prot = cli.json(&["protect", &rp[..12], "--note", "keep it"]);
    assert_eq!(prot, cli.get(&format!("/restore-points/{rp}")));
    assert_eq!(
        (&prot["protected"], &prot["note"]),
        (&json!(true), &json!("keep it"))
    );
    let unprot = cli.json(&["unprotect", &rp]);
    assert_eq!(unprot, cli.get(&format!("/restore-points/{rp}")));
    assert_eq!(unprot["protected"], false);
    let target = dir.path().join("restored");
    let restore = cli.json(&["restore", &rp[..12], "--to", target.to_str().unwrap()]);
    let r = wait_task(&srv.url, &token, restore["id"].as_i64().unwrap(), 60);
    assert_eq!(r["state"], "succeeded", "{r}");
    assert_eq!((&restore["id"], &restore["kind"]), (&r["id"], &r["kind"]));

    let ds = cli.json(&["datastore", "set", "default", "--verify-max-age-days", "10"]);
    assert_eq!(
        steady(ds.clone(), &["bytes_used"]),
        steady(by_id(&cli.get("/datastores"), &ds["id"]), &["bytes_used"])
    );
    assert_eq!(ds["verify_max_age_days"], 10);
    let node_name = cli.get("/nodes")[0]["name"].as_str().unwrap().to_string();
    let node = cli.json(&["node", "set", &node_name, "--allow-block-devices", "false"]);
    let moving = ["last_heartbeat", "state"];
    assert_eq!(
        steady(node.clone(), &moving),
        steady(by_id(&cli.get("/nodes"), &node["id"]), &moving)
    );
    let settings = cli.json(&["settings", "set", "token-max-lifetime", "30d"]);
    assert_eq!(settings, cli.get("/settings"));
    assert_eq!(settings["token_max_lifetime_s"], 30 * 86_400);
    let made = cli.json(&["token", "create", "ci", "--expires", "1d"]);
    assert!(
        made["token"].as_str().unwrap().starts_with("arca_"),
        "{made}"
    );
    assert_eq!(
        made["info"],
        by_id(&cli.get("/tokens"), &made["info"]["id"])
    );
    let old = cli.json(&["token", "create", "old"]);
    let revoked = cli.json(&["token", "revoke", &old["info"]["id"].to_string()]);
    assert_eq!(revoked, json!({"revoked": old["info"]["id"]}));
    assert_eq!(
        by_id(&cli.get("/tokens"), &old["info"]["id"])["state"],
        "revoked"
    );

    // Reads: the JSON is the API's answer; the table has a header and a
    // line per record.
    let api = cli.get("/sources");
    assert_eq!(cli.json(&["source", "list"]), api);
    let out = cli.human(&["source", "list"]);
    assert_table(&out, "ID  NAME", api.as_array().unwrap().len());
    assert!(
        out.lines().any(|l| l.contains("docs") && l.contains(path)),
        "{out}"
    );

    let api = cli.get("/policies");
    assert_eq!(cli.json(&["policy", "list"]), api);
    let out = cli.human(&["policy", "list"]);
    assert_table(&out, "ID  NAME", api.as_array().unwrap().len());
    assert!(
        out.lines()
            .any(|l| l.contains("nightly") && l.contains("daily 7")),
        "{out}"
    );

    let api = cli.get("/tasks?limit=50");
    assert_eq!(cli.json(&["task", "list"]), api);
    let out = cli.human(&["task", "list"]);
    assert_table(&out, "ID  SOURCE", api.as_array().unwrap().len());
    for t in api.as_array().unwrap() {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(&t["id"].to_string())),
            "task {} missing:\n{out}",
            t["id"]
        );
    }

    // The filters: by kind and by source name, as the API's.
    let filtered = cli.json(&["task", "list", "--kind", "backup", "--source", "docs"]);
    assert_eq!(
        filtered,
        cli.get(&format!("/tasks?limit=50&kind=backup&source={}", src["id"]))
    );
    assert!(!filtered.as_array().unwrap().is_empty());
    assert!(
        filtered
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["kind"] == "backup" && t["source_id"] == src["id"]),
        "{filtered}"
    );
    assert_eq!(
        cli.json(&["task", "list", "--kind", "gc", "--source", "docs"]),
        json!([])
    );
    let (code, _, err) = cli.run(&["task", "list", "--source", "nope"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("no source named \"nope\""), "{err}");

    let id = t["id"].to_string();
    let shown = cli.json(&["task", "show", &id]);
    assert_eq!(shown["task"], cli.get(&format!("/tasks/{id}")));
    assert_eq!(shown["logs"], cli.get(&format!("/tasks/{id}/logs")));
    let out = cli.human(&["task", "show", &id]);
    assert!(out.starts_with(&format!("task {id}\n")), "{out}");
    assert!(out.contains(&rp), "{out}");

    let api = cli.get("/restore-points");
    let listed = cli.json(&["snapshots"]);
    assert_eq!(ids(&listed, "id"), ids(&api, "id"));
    let out = cli.human(&["snapshots"]);
    let n = api.as_array().unwrap().len();
    assert_table(&out, "ID  TIME", n + 1);
    assert!(out.ends_with(&format!("{n} snapshots\n")), "{out}");
    assert!(out.contains(&rp[..8]), "{out}");

    let api = cli.get(&format!("/restore-points/{rp}/tree?path=&recursive=true"));
    let listed = cli.json(&["ls", &rp[..12], "--recursive"]);
    assert_eq!(listed["entries"], api["entries"]);
    let out = cli.human(&["ls", &rp[..12], "--recursive"]);
    // `ls` prints one line per entry, like `ls -l`, without a header.
    let entries = api["entries"].as_array().unwrap();
    assert_eq!(out.lines().count(), entries.len(), "{out}");
    for e in entries {
        let p = e["path"].as_str().unwrap();
        assert!(out.lines().any(|l| l.ends_with(p)), "{p} missing:\n{out}");
    }

    let api = cli.get("/datastores");
    assert_eq!(
        ids(&cli.json(&["datastore", "list"]), "name"),
        ids(&api, "name")
    );
    let out = cli.human(&["datastore", "list"]);
    assert_table(&out, "ID  NAME", api.as_array().unwrap().len());
    assert!(
        out.lines()
            .any(|l| l.contains("default") && l.contains("10 days")),
        "{out}"
    );

    let api = cli.get("/nodes");
    let listed = cli.json(&["node", "list"]);
    assert_eq!(ids(&listed, "id"), ids(&api, "id"));
    assert_eq!(ids(&listed, "name"), ids(&api, "name"));
    let out = cli.human(&["node", "list"]);
    assert_table(&out, "ID  NAME", api.as_array().unwrap().len());
    assert!(out.contains(&node_name), "{out}");

    let api = cli.get("/tokens");
    let listed = cli.json(&["token", "list"]);
    assert_eq!(ids(&listed, "id"), ids(&api, "id"));
    assert_eq!(ids(&listed, "state"), ids(&api, "state"));
    let out = cli.human(&["token", "list"]);
    assert_table(&out, "ID  NAME", api.as_array().unwrap().len());
    assert!(
        out.lines()
            .any(|l| l.contains("old") && l.contains("revoked")),
        "{out}"
    );

    for all in [false, true] {
        let api = cli.get(&format!("/exports?all={all}"));
        let args: &[&str] = if all {
            &["mounts", "--all"]
        } else {
            &["mounts"]
        };
        assert_eq!(cli.json(args), api);
        assert_table(&cli.human(args), "ID  STATE", api.as_array().unwrap().len());
    }

    assert_eq!(cli.json(&["settings", "show"]), cli.get("/settings"));
    let out = cli.human(&["settings", "show"]);
    assert_eq!(out, "token-max-lifetime 30d (2592000 s)\n");

    // `datastore info`, locally on the server's datastore: its snapshots
    // are the restore points the API lists for it.
    let out = common_datastore(&data, &["--json", "datastore", "info"]);
    let info: Value = serde_json::from_str(&out).unwrap();
    let n = cli.get("/restore-points").as_array().unwrap().len();
    assert_eq!((info["snapshots"].as_u64(), n), (Some(n as u64), 2));
    let out = common_datastore(&data, &["datastore", "info"]);
    assert!(out.starts_with("datastore "), "{out}");
    assert!(!out.contains("null"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["snapshots", &n.to_string()])),
        "{out}"
    );
}

/// `arca ARGS` on the server's default datastore, read locally.
fn common_datastore(data: &std::path::Path, args: &[&str]) -> String {
    let out = crate::common::daemon::on_default_datastore(data, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `arca project list|add`, `arca user list|add|edit|remove`: what is printed is what the API
/// holds, and a disabled user can neither sign in nor use a session it
/// already had, until enabled again.
#[test]
fn users_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let cli = Cli {
        url: &srv.url,
        token: &token,
    };
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    let sign_in = || {
        call(
            &srv.url,
            "",
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "alice", "password": "correct horse battery"})),
        )
    };

    let web = cli.json(&["project", "add", "web"]);
    assert_eq!(web["name"], "web");
    let api = cli.get("/projects");
    assert_eq!(cli.json(&["project", "list"]), api);
    assert_eq!(api.as_array().unwrap().len(), 2, "default and web: {api}");
    let out = cli.human(&["project", "list"]);
    assert_table(&out, "ID  NAME", 2);
    assert!(
        out.lines().any(|l| l.trim_end().ends_with("  web")),
        "{out}"
    );
    let made = cli.json(&[
        "user",
        "add",
        "alice",
        "--role",
        "operator@web",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(made["user"], by_id(&cli.get("/users"), &made["user"]["id"]));
    assert_eq!(made["user"]["roles"][0]["role"], "operator");
    assert!(made.get("password").is_none(), "{made}");
    let id = made["user"]["id"].to_string();

    let api = cli.get("/users");
    assert_eq!(cli.json(&["user", "list"]), api);
    let out = cli.human(&["user", "list"]);
    assert_table(
        &out,
        "ID  NAME  ROLES  STATE",
        api.as_array().unwrap().len(),
    );
    assert!(
        out.lines()
            .any(|l| l.contains("alice") && l.contains("operator@web") && l.contains("active")),
        "{out}"
    );

    let (s, v) = sign_in();
    assert_eq!(s, 200, "{v}");
    let alice = v["token"].as_str().unwrap().to_string();
    let (s, _) = call(&srv.url, &alice, "GET", "/api/v1/me", None);
    assert_eq!(s, 200);

    // Disabled: no sign-in, and the session it had is refused.
    let edited = cli.json(&["user", "edit", "alice", "--disable"]);
    assert_eq!(edited["disabled"], true);
    assert_eq!(edited, cli.get(&format!("/users/{id}")));
    assert_eq!(sign_in().0, 401);
    assert_eq!(call(&srv.url, &alice, "GET", "/api/v1/me", None).0, 401);
    let out = cli.human(&["user", "edit", "alice", "--enable", "--role", "auditor"]);
    assert_eq!(out, "user \"alice\": roles auditor, active\n");
    assert_eq!(call(&srv.url, &alice, "GET", "/api/v1/me", None).0, 200);
    let v = cli.get(&format!("/users/{id}"));
    assert_eq!(v["roles"], json!([{"role": "auditor", "project_id": null}]));

    // Nothing to change, an unknown role or project: refused, nothing sent.
    for bad in [
        &["user", "edit", "alice"][..],
        &["user", "edit", "alice", "--role", "admn"],
        &["user", "edit", "alice", "--role", "operator@nowhere"],
        &["user", "edit", "nobody", "--disable"],
    ] {
        let (code, _, err) = cli.run(bad);
        assert_ne!(code, Some(0), "arca {bad:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (_, _, err) = cli.run(&["user", "edit", "alice", "--role", "admn"]);
    assert!(
        err.contains("restore-only"),
        "the valid roles are named: {err}"
    );
    assert_eq!(cli.get(&format!("/users/{id}")), v);

    // An admin cannot disable themself.
    let (code, _, err) = cli.run(&["user", "edit", "admin", "--disable"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("yourself"), "{err}");

    let removed = cli.json(&["user", "remove", "alice"]);
    assert_eq!(removed, json!({"removed": "alice"}));
    let (s, _) = call(
        &srv.url,
        &token,
        "GET",
        &format!("/api/v1/users/{id}"),
        None,
    );
    assert_eq!(s, 404);
    assert_eq!(call(&srv.url, &alice, "GET", "/api/v1/me", None).0, 401);
}
