use serde_json::json;

use super::*;

fn task(kind: &str, state: &str, result: serde_json::Value) -> Task {
    serde_json::from_value(
        json!({"id": 12, "kind": kind, "state": state, "project_id": 1,
        "source_id": 2, "policy_id": null, "datastore_id": 1, "node_id": 1, "params": {},
        "priority": -1, "slot": null, "attempt": 1, "max_attempts": 3, "not_before": 0,
        "lease_until": null, "cancel_requested": false, "bytes_done": 10485760,
        "bytes_total": 10485760, "progress": 100.0, "result": result, "error": null,
        "created_by": "admin", "created_at": 1_796_289_000, "started_at": 1_796_289_240,
        "finished_at": 1_796_289_305}),
    )
    .unwrap()
}

fn backup_result() -> serde_json::Value {
    json!({"snapshot": "a".repeat(64), "bytes_read": 10485760u64, "pruned": 0,
        "bytes_total": 20971520u64, "bytes_added": 1048576u64, "files": 3,
        "duration_s": 65.0, "mode": "incremental", "warnings": 0})
}

fn names() -> SourceNames {
    HashMap::from([(SourceId(2), "docs".to_string())])
}

/// `arca task list`: a header, the source by name, local times, the
/// duration, bytes in binary units and the rate.
#[test]
fn the_task_list_has_a_header_and_readable_columns() {
    let mut queued = task("gc", "queued", serde_json::Value::Null);
    queued.id = TaskId(13);
    queued.source_id = None;
    queued.started_at = None;
    queued.finished_at = None;
    queued.bytes_done = 0;
    let done = task("backup", "succeeded", backup_result());
    let text = task_table(&[queued, done], &names(), 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "ID  SOURCE  KIND    STATE      STARTED           DURATION     BYTES       RATE"
    );
    assert_eq!(
        lines[1],
        "13  -       gc      queued     -                        -         -          -"
    );
    assert_eq!(
        lines[2],
        format!(
            "12  docs    backup  succeeded  {}    1m 05s  10.0 MiB  0.2 MiB/s",
            local_time(1_796_289_240)
        )
    );
}

/// `arca task show`: readable times, the duration and what the backup
/// made, the log below; never `null`.
#[test]
fn task_show_is_readable() {
    let t = task("backup", "succeeded", backup_result());
    let logs: Vec<TaskLog> = serde_json::from_value(json!([
        {"seq": 1, "time": 1_796_289_241, "level": "info", "message": "reading /srv/docs"}
    ]))
    .unwrap();
    let text = task_text(&t, &logs, &names(), 0);
    assert!(text.starts_with("task 12\nkind      backup\n"), "{text}");
    for want in [
        "source    docs".to_string(),
        format!("started   {}", local_time(1_796_289_240)),
        "duration  1m 05s".to_string(),
        "attempt   1 of 3".to_string(),
        format!(
            "result    restore point {}, 3 files, read 10.0 MiB, added 1.0 MiB, mode incremental",
            "a".repeat(64)
        ),
        "log:".to_string(),
        format!("  {}  info  reading /srv/docs", local_time(1_796_289_241)),
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "no line {want:?} in\n{text}"
        );
    }
    assert!(!text.contains("null"), "{text}");
}

/// No human output of a task leaks `null`, whatever is absent.
#[test]
fn human_task_output_never_says_null() {
    let mut t = task("restore", "running", serde_json::Value::Null);
    t.result = None;
    t.source_id = Some(SourceId(99));
    t.finished_at = None;
    let texts = [
        task_table(std::slice::from_ref(&t), &SourceNames::new(), 1_796_289_300),
        task_text(&t, &[], &SourceNames::new(), 1_796_289_300),
        final_line(&t, 1_796_289_300),
    ];
    for text in texts {
        assert!(text.lines().all(|l| !l.contains("null")), "{text}");
        assert!(
            text.contains("#99") || text.contains("restore task 12"),
            "{text}"
        );
    }
}

/// `--wait` prints the summary, not a JSON blob.
#[test]
fn the_end_of_a_followed_task_is_a_summary() {
    let t = task(
        "gc",
        "succeeded",
        json!({"snapshots": 1, "live_blobs": 2,
        "packs_total": 3, "packs_deleted": 1, "packs_repacked": 0, "packs_in_grace": 0,
        "packs_healed": 0, "temporaries_removed": 0, "temporary_bytes_removed": 0,
        "blobs_removed": 4, "bytes_freed": 3145728, "bytes_rewritten": 0, "warnings": [],
        "damaged_snapshots": []}),
    );
    assert_eq!(
        final_line(&t, 0),
        "gc task 12 succeeded in 1m 05s: 3.0 MiB freed, 1 packs deleted, 0 repacked"
    );
    let mut f = task("verify", "failed", serde_json::Value::Null);
    f.error = Some("node offline".into());
    assert_eq!(
        final_line(&f, 0),
        "verify task 12 failed in 1m 05s: node offline"
    );
}
