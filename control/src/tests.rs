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
