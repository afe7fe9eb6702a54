use serde_json::{json, Value};

use super::*;

fn rp(c: char) -> RestorePointId {
    c.to_string().repeat(64).parse().unwrap()
}

/// `r` writes exactly `stored` (the text the catalog keeps, keys sorted as
/// serde_json sorts them), and reads back from it as a `kind` result.
fn check(r: TaskResult, stored: &str) {
    let v = r.to_json();
    assert_eq!(v.to_string(), stored);
    let parsed: Value = serde_json::from_str(stored).unwrap();
    assert_eq!(TaskResult::from_json(r.kind(), &parsed).unwrap(), r);
}

#[test]
fn backup_results_are_today_s_json() {
    let b = BackupResult {
        snapshot: rp('a'),
        bytes_read: 4096,
        pruned: 2,
        bytes_total: 8192,
        bytes_added: 1024,
        files: 3,
        duration_s: 1.25,
        mode: "full".into(),
        warnings: 1,
        consistency: None,
    };
    // What node/src/runner.rs wrote with json! before.
    let today = json!({
        "snapshot": "a".repeat(64), "bytes_read": 4096u64, "pruned": 2usize,
        "bytes_total": 8192u64, "bytes_added": 1024u64,
        "files": 3u64, "duration_s": 1.25f64, "mode": "full",
        "warnings": 1usize,
    });
    assert_eq!(TaskResult::Backup(b.clone()).to_json(), today);
    check(
        TaskResult::Backup(b.clone()),
        &format!(
            r#"{{"bytes_added":1024,"bytes_read":4096,"bytes_total":8192,"duration_s":1.25,"files":3,"mode":"full","pruned":2,"snapshot":"{}","warnings":1}}"#,
            "a".repeat(64)
        ),
    );
    // A libvirt backup says which consistency it reached.
    let vm = BackupResult {
        consistency: Some(crate::api::Consistency::Application),
        ..b
    };
    check(
        TaskResult::Backup(vm),
        &format!(
            r#"{{"bytes_added":1024,"bytes_read":4096,"bytes_total":8192,"consistency":"application","duration_s":1.25,"files":3,"mode":"full","pruned":2,"snapshot":"{}","warnings":1}}"#,
            "a".repeat(64)
        ),
    );
}

#[test]
fn restore_results_are_today_s_json_for_images_and_trees() {
    let image = RestoreResult {
        restore_point: rp('b'),
        target: "/srv/restores/disk.img".into(),
        bytes: 1 << 20,
        tree: None,
    };
    check(
        TaskResult::Restore(image),
        &format!(
            r#"{{"bytes":1048576,"restore_point":"{}","target":"/srv/restores/disk.img"}}"#,
            "b".repeat(64)
        ),
    );
    let tree = RestoreResult {
        restore_point: rp('c'),
        target: "/srv/restores/x".into(),
        bytes: 10,
        tree: Some(TreeRestore {
            files: 2,
            warnings: vec!["etc/shadow: permission denied".into()],
            devices_skipped: 1,
            privileges_dropped: 0,
        }),
    };
    check(
        TaskResult::Restore(tree.clone()),
        &format!(
            r#"{{"bytes":10,"devices_skipped":1,"files":2,"privileges_dropped":0,"restore_point":"{}","target":"/srv/restores/x","warnings":["etc/shadow: permission denied"]}}"#,
            "c".repeat(64)
        ),
    );
    // A tree restore without warnings still lists them (empty).
    let quiet = RestoreResult {
        tree: Some(TreeRestore::default()),
        ..tree
    };
    assert_eq!(TaskResult::Restore(quiet).to_json()["warnings"], json!([]));
}

#[test]
fn verify_results_are_today_s_json() {
    // Nothing due.
    let none = VerifyResult {
        restore_points_checked: 0,
        note: Some("nothing due: every restore point was verified within 30 day(s)".into()),
        report: None,
    };
    check(
        TaskResult::Verify(none),
        r#"{"note":"nothing due: every restore point was verified within 30 day(s)","restore_points_checked":0}"#,
    );
    // A clean verify: the datastore's report as serde wrote it, plus two
    // fields (what the runner did with `v[...] = json!(...)`).
    let repo = arca_repo::verify::VerifyReport {
        packs_total: 4,
        packs_read: 4,
        blobs_read: 40,
        bytes_read: 4000,
        snapshots_checked: 2,
        damaged_blobs: vec![arca_repo::verify::DamagedBlob {
            id: "c1".into(),
            kind: "data".into(),
            pack: "p1".into(),
            reason: "bad tag".into(),
        }],
        damaged_packs: vec!["p2".into()],
        unreadable_snapshots: vec!["s3: truncated".into()],
        affected_snapshots: vec![arca_repo::verify::AffectedSnapshot {
            id: "s1".into(),
            source: "web".into(),
            time: "2026-12-01T10:00:00Z".into(),
            damaged_refs: 3,
        }],
        unindexed_packs: vec!["p9".into()],
        checked_snapshots: vec!["s1".into(), "s2".into()],
    };
    let mut today = serde_json::to_value(&repo).unwrap();
    today["restore_points_checked"] = json!(repo.checked_snapshots.len());
    today["quarantined_blobs"] = json!(1usize);
    let v = VerifyResult {
        restore_points_checked: 2,
        note: None,
        report: Some(VerifyReport::new(&repo, 1)),
    };
    assert_eq!(TaskResult::Verify(v.clone()).to_json(), today);
    check(
        TaskResult::Verify(v),
        r#"{"affected_snapshots":[{"damaged_refs":3,"id":"s1","source":"web","time":"2026-12-01T10:00:00Z"}],"blobs_read":40,"bytes_read":4000,"checked_snapshots":["s1","s2"],"damaged_blobs":[{"id":"c1","kind":"data","pack":"p1","reason":"bad tag"}],"damaged_packs":["p2"],"packs_read":4,"packs_total":4,"quarantined_blobs":1,"restore_points_checked":2,"snapshots_checked":2,"unindexed_packs":["p9"],"unreadable_snapshots":["s3: truncated"]}"#,
    );
}

#[test]
fn prune_gc_and_commit_results_are_today_s_json() {
    check(
        TaskResult::Prune(PruneResult { removed: 3 }),
        r#"{"removed":3}"#,
    );
    let repo = arca_repo::gc::GcReport {
        snapshots: 1,
        live_blobs: 2,
        packs_total: 3,
        packs_deleted: 4,
        packs_repacked: 5,
        packs_in_grace: 6,
        packs_healed: 7,
        temporaries_removed: 8,
        temporary_bytes_removed: 9,
        blobs_removed: 10,
        bytes_freed: 11,
        bytes_rewritten: 12,
        warnings: vec!["disk full".into()],
        damaged_snapshots: vec!["s4".into()],
    };
    let gc = GcResult::from(&repo);
    // The runner wrote `serde_json::to_value(&report)`.
    assert_eq!(
        TaskResult::Gc(gc.clone()).to_json(),
        serde_json::to_value(&repo).unwrap()
    );
    check(
        TaskResult::Gc(gc),
        r#"{"blobs_removed":10,"bytes_freed":11,"bytes_rewritten":12,"damaged_snapshots":["s4"],"live_blobs":2,"packs_deleted":4,"packs_healed":7,"packs_in_grace":6,"packs_repacked":5,"packs_total":3,"snapshots":1,"temporaries_removed":8,"temporary_bytes_removed":9,"warnings":["disk full"]}"#,
    );
    check(
        TaskResult::CommitExport(CommitExportResult {
            restore_point: rp('d'),
            bytes_added: 512,
        }),
        &format!(
            r#"{{"bytes_added":512,"restore_point":"{}"}}"#,
            "d".repeat(64)
        ),
    );
}

#[test]
fn forget_result_reads_back_with_its_kind() {
    let f = TaskResult::Forget(ForgetResult { removed: 2 });
    assert_eq!(f.kind(), TaskKind::Forget);
    check(f, r#"{"removed":2}"#);
    let e = TaskResult::from_json(TaskKind::Forget, &json!({})).unwrap_err();
    assert!(
        e.to_string().starts_with("result of a forget task: "),
        "{e}"
    );
}

#[test]
fn a_result_that_does_not_fit_its_kind_says_so() {
    let e = TaskResult::from_json(TaskKind::Prune, &json!({"removed": "three"})).unwrap_err();
    assert!(e.to_string().starts_with("result of a prune task: "), "{e}");
    let e =
        TaskResult::from_json(TaskKind::CommitExport, &json!({"restore_point": "ab"})).unwrap_err();
    assert!(e.to_string().contains("not a restore point id"), "{e}");
    assert!(TaskResult::from_json(TaskKind::Backup, &Value::Null).is_err());
}
