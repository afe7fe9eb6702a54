use super::*;
use arca_catalog::{ProjectId, Retention, SourceKind, TaskState};
use serde_json::json;

fn setup() -> (Catalog, NodeId, DatastoreId) {
    let c = Catalog::open_in_memory().unwrap();
    let n = c.upsert_node("local", true, 2, "t").unwrap();
    let d = c.add_datastore("default", n.id, "/nonexistent").unwrap();
    (c, n.id, d.id)
}

fn source(c: &Catalog, node: NodeId, name: &str, tags: &[&str]) -> Source {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    c.add_source(
        name,
        SourceKind::Files,
        "/srv",
        node,
        ProjectId(1),
        &tags,
        &json!({}),
        None,
    )
    .unwrap()
}

#[test]
fn rules_assign_by_pattern_tag_and_priority() {
    let (c, node, ds) = setup();
    let web = source(&c, node, "web-1", &[]);
    let db = source(&c, node, "db-1", &["gold"]);
    let other = source(&c, node, "misc", &[]);
    let low = c
        .add_policy(
            "web",
            ProjectId(1),
            "daily",
            None,
            &Retention::default(),
            ds,
            0,
            Some("web-*"),
            &[],
            None,
        )
        .unwrap();
    let gold = c
        .add_policy(
            "gold",
            ProjectId(1),
            "hourly",
            None,
            &Retention::default(),
            ds,
            10,
            None,
            &["gold".into()],
            None,
        )
        .unwrap();
    assert_eq!(assign_policies(&c).unwrap(), 2);
    assert_eq!(c.source(web.id).unwrap().policy_id, Some(low.id));
    assert_eq!(c.source(db.id).unwrap().policy_id, Some(gold.id));
    assert_eq!(c.source(other.id).unwrap().policy_id, None);
    // Explicit assignments are left alone; unmatched rule assignments clear.
    c.assign_policy(other.id, Some(gold.id), AssignedBy::Explicit)
        .unwrap();
    c.delete_policy(low.id).unwrap();
    assert_eq!(
        assign_policies(&c).unwrap(),
        0,
        "ON DELETE SET NULL already cleared web-1"
    );
    assert_eq!(c.source(other.id).unwrap().policy_id, Some(gold.id));
    assert_eq!(assign_policies(&c).unwrap(), 0);
}

#[test]
fn each_slot_runs_once_and_downtime_runs_the_newest_once() {
    let (c, node, ds) = setup();
    let s = source(&c, node, "web-1", &[]);
    let p = c
        .add_policy(
            "p",
            ProjectId(1),
            "every 10s",
            None,
            &Retention::default(),
            ds,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    c.assign_policy(s.id, Some(p.id), AssignedBy::Explicit)
        .unwrap();
    let t0 = (catalog::now() / 10 + 1) * 10; // a slot boundary after creation
    let first = schedule_due(&c, t0 + 3).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].slot, t0);
    // Same slot again, as after a restart: nothing new.
    assert!(schedule_due(&c, t0 + 9).unwrap().is_empty());
    // Next slot.
    assert_eq!(schedule_due(&c, t0 + 10).unwrap()[0].slot, t0 + 10);
    // Down for an hour: only the newest missed slot is queued.
    let after = schedule_due(&c, t0 + 3605).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].slot, t0 + 3600);
    assert_eq!(
        c.tasks(Some(TaskState::Queued), None, 100, 0)
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn slots_before_the_policy_existed_do_not_run() {
    let (c, node, ds) = setup();
    let s = source(&c, node, "web-1", &[]);
    let p = c
        .add_policy(
            "p",
            ProjectId(1),
            "daily",
            None,
            &Retention::default(),
            ds,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    c.assign_policy(s.id, Some(p.id), AssignedBy::Explicit)
        .unwrap();
    // Today's 00:00 slot predates the policy.
    assert!(schedule_due(&c, catalog::now()).unwrap().is_empty());
    assert_eq!(schedule_due(&c, catalog::now() + 86_400).unwrap().len(), 1);
}

#[test]
fn backup_windows_delay_tasks() {
    let (c, node, ds) = setup();
    let s = source(&c, node, "web-1", &[]);
    let now = catalog::now();
    let open = at(now + 7200);
    let window = format!(
        "{}-{}",
        open.format("%H:00"),
        (open + chrono::Duration::hours(1)).format("%H:00")
    );
    let p = c
        .add_policy(
            "p",
            ProjectId(1),
            "every 10s",
            Some(&window),
            &Retention::default(),
            ds,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    c.assign_policy(s.id, Some(p.id), AssignedBy::Explicit)
        .unwrap();
    let t = schedule_due(&c, now + 10).unwrap();
    assert_eq!(t.len(), 1);
    assert!(
        t[0].not_before > now + 3600,
        "{window}: {}",
        t[0].not_before - now
    );
}

#[test]
fn a_policy_datastore_stands_for_the_same_named_one_on_other_nodes() {
    let (c, node, ds) = setup();
    let remote = c.add_node("alpha", 2).unwrap();
    let other = c.add_node("beta", 2).unwrap();
    let rds = c
        .add_datastore("alpha/default", remote.id, "/srv/alpha")
        .unwrap();
    let all = c.datastores().unwrap();
    assert_eq!(place(&all, ds, node), ds);
    assert_eq!(place(&all, ds, remote.id), rds.id);
    assert_eq!(place(&all, rds.id, node), ds);
    // beta has no "default": the policy's own, failed at lease time.
    assert_eq!(place(&all, ds, other.id), ds);
    assert_eq!(local_name("alpha/default"), "default");
}

#[test]
fn next_run_is_the_next_slot_after_the_window_opens() {
    let (c, _, ds) = setup();
    let add = |name: &str, sched: &str, window: Option<&str>| {
        c.add_policy(
            name,
            ProjectId(1),
            sched,
            window,
            &Retention::default(),
            ds,
            0,
            None,
            &[],
            None,
        )
        .unwrap()
    };
    // 2026-11-07 10:00:00 UTC.
    let now = 1_794_045_600;
    let daily = add("daily", "*-*-* 02:00:00", None);
    assert_eq!(next_run(&daily, now), Some(now + 16 * 3600));
    // A slot is "next" only strictly after now.
    assert_eq!(next_run(&daily, now + 16 * 3600), Some(now + 40 * 3600));
    let windowed = add("windowed", "every 1h", Some("20:00-22:00"));
    assert_eq!(next_run(&windowed, now), Some(now + 10 * 3600));
    let mut off = daily.clone();
    off.enabled = false;
    assert_eq!(next_run(&off, now), None);
    let mut never = daily;
    never.schedule = "never".into();
    assert_eq!(next_run(&never, now), None);
}

#[test]
fn preview_covers_the_assigned_sources_in_their_datastore() {
    let (c, node, ds) = setup();
    let web = source(&c, node, "web", &[]);
    let db = source(&c, node, "db", &[]);
    let keep_1 = Retention {
        keep_last: 1,
        ..Default::default()
    };
    let pol = c
        .add_policy(
            "p",
            ProjectId(1),
            "daily",
            None,
            &keep_1,
            ds,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    c.assign_policy(web.id, Some(pol.id), AssignedBy::Explicit)
        .unwrap();
    for (n, t) in [(1u8, 100), (2, 200)] {
        c.add_restore_point(&catalog::RestorePoint {
            id: format!("{n:02x}").repeat(32).parse().unwrap(),
            datastore_id: ds,
            source_id: Some(web.id),
            source_name: "web".into(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time: t,
            ..Default::default()
        })
        .unwrap();
    }
    let p = preview::preview_retention(&c, &c.policy(pol.id).unwrap(), 300).unwrap();
    // db has no policy: not in the preview.
    assert_eq!(p.sources.len(), 1);
    let s = &p.sources[0];
    assert_eq!((s.source_id, s.datastore_id), (web.id, ds));
    assert_eq!((s.kept, s.removed), (1, 1));
    let times: Vec<(i64, bool)> = s.restore_points.iter().map(|i| (i.time, i.keep)).collect();
    assert_eq!(times, vec![(200, true), (100, false)]);
    assert_eq!(s.restore_points[0].reasons, vec!["last 1"]);
    assert!(db.policy_id.is_none());
    assert_eq!((p.time, p.retention.keep_last), (300, 1));
}
