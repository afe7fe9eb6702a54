use super::*;

mod edit;
mod ids;
mod readers;

fn setup() -> (Catalog, Node, Datastore, Source) {
    let c = Catalog::open_in_memory().unwrap();
    let n = c.upsert_node("local", true, 2, "0.1.0").unwrap();
    let d = c.add_datastore("default", n.id, "/data/ds").unwrap();
    let s = c
        .add_source(
            "web1",
            SourceKind::Files,
            "/srv",
            n.id,
            ProjectId(1),
            &["prod".into()],
            &serde_json::json!({}),
            None,
        )
        .unwrap();
    (c, n, d, s)
}

fn backup(s: &Source, d: &Datastore, slot: Option<i64>, policy: Option<PolicyId>) -> NewTask {
    NewTask {
        spec: TaskSpec::Backup(Default::default()),
        project_id: s.project_id,
        source_id: Some(s.id),
        policy_id: policy,
        datastore_id: Some(d.id),
        max_attempts: 2,
        slot,
        created_by: "test".into(),
        ..Default::default()
    }
}

#[test]
fn migrations_are_idempotent_and_newer_catalogs_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("catalog.db");
    let c = Catalog::open(&p).unwrap();
    assert_eq!(c.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    c.add_project("other").unwrap();
    drop(c);
    let c = Catalog::open(&p).unwrap();
    assert_eq!(c.projects().unwrap().len(), 2);
    c.db().pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    assert!(matches!(
        Catalog::open(&p),
        Err(Error::TooNew { found: 99, .. })
    ));
}

#[test]
fn users_roles_tokens() {
    let c = Catalog::open_in_memory().unwrap();
    let u = c
        .add_user(
            "ann",
            "hash",
            &[RoleBinding {
                role: Role::Operator,
                project_id: Some(ProjectId(1)),
            }],
        )
        .unwrap();
    assert_eq!(
        u.roles,
        vec![RoleBinding {
            role: Role::Operator,
            project_id: Some(ProjectId(1))
        }]
    );
    assert!(matches!(
        c.add_user("ann", "h", &[]),
        Err(Error::Conflict(_))
    ));
    let t = c
        .add_token(Some(u.id), None, "ci", TokenKind::Api, &[7; 32], None)
        .unwrap();
    assert_eq!(c.token_by_secret(&[7; 32]).unwrap().unwrap().id, t.id);
    c.revoke_token(t.id).unwrap();
    assert!(c.token(t.id).unwrap().revoked_at.is_some());
    assert!(matches!(c.revoke_token(t.id), Err(Error::NotFound(_))));
    c.delete_user(u.id).unwrap();
    assert!(c.token_by_secret(&[7; 32]).unwrap().is_none());
}

#[test]
fn a_slot_is_queued_once() {
    let (c, _, d, s) = setup();
    let p = c
        .add_policy(
            "p",
            ProjectId(1),
            "every 5s",
            None,
            &Retention::default(),
            d.id,
            0,
            None,
            &[],
            None,
        )
        .unwrap();
    assert!(c
        .add_task(&backup(&s, &d, Some(100), Some(p.id)))
        .unwrap()
        .is_some());
    assert!(c
        .add_task(&backup(&s, &d, Some(100), Some(p.id)))
        .unwrap()
        .is_none());
    assert!(c
        .add_task(&backup(&s, &d, Some(105), Some(p.id)))
        .unwrap()
        .is_some());
    assert_eq!(c.last_slot(p.id, s.id).unwrap(), Some(105));
    // Manual tasks have no slot and never collide.
    assert!(c.add_task(&backup(&s, &d, None, None)).unwrap().is_some());
    assert!(c.add_task(&backup(&s, &d, None, None)).unwrap().is_some());
}

#[test]
fn lease_progress_retry_and_finish() {
    let (c, n, d, s) = setup();
    let t = c.add_task(&backup(&s, &d, None, None)).unwrap().unwrap();
    assert_eq!(t.state, TaskState::Queued);
    let l = c.lease_task(n.id, now(), 30).unwrap().unwrap();
    assert_eq!((l.id, l.state, l.attempt), (t.id, TaskState::Running, 1));
    // One task per source at a time.
    c.add_task(&backup(&s, &d, None, None)).unwrap();
    assert!(c.lease_task(n.id, now(), 30).unwrap().is_none());
    assert!(!c.task_progress(t.id, 50, 100, now() + 30).unwrap());
    assert_eq!(c.task(t.id).unwrap().progress, Some(50.0));
    // A failure with attempts left goes back to the queue, later.
    let st = c
        .finish_task(t.id, Err("disk full".into()), false, Some(now() + 60))
        .unwrap();
    assert_eq!(st, TaskState::Queued);
    let again = c.task(t.id).unwrap();
    assert_eq!(again.error.as_deref(), Some("disk full"));
    assert!(again.not_before > now());
    // The second task is leased first now (the retry is not yet due).
    let l2 = c.lease_task(n.id, now(), 30).unwrap().unwrap();
    assert_ne!(l2.id, t.id);
    c.finish_task(
        l2.id,
        Ok(serde_json::json!({"snapshot": "ab"})),
        false,
        None,
    )
    .unwrap();
    // The retry runs and fails for good on its last attempt.
    let l3 = c.lease_task(n.id, now() + 61, 30).unwrap().unwrap();
    assert_eq!((l3.id, l3.attempt), (t.id, 2));
    let st = c
        .finish_task(t.id, Err("disk full".into()), false, Some(now()))
        .unwrap();
    assert_eq!(st, TaskState::Failed);
    assert!(matches!(
        c.finish_task(t.id, Ok(serde_json::Value::Null), false, None),
        Err(Error::Invalid(_))
    ));
    let counts: std::collections::HashMap<_, _> = c.task_counts().unwrap().into_iter().collect();
    assert_eq!(
        (counts[&TaskState::Failed], counts[&TaskState::Succeeded]),
        (1, 1)
    );
}

#[test]
fn cancel_and_expired_leases() {
    let (c, n, d, s) = setup();
    let t = c.add_task(&backup(&s, &d, None, None)).unwrap().unwrap();
    assert_eq!(c.cancel_task(t.id).unwrap(), TaskState::Cancelled);
    assert!(matches!(c.cancel_task(t.id), Err(Error::Invalid(_))));
    let t = c.add_task(&backup(&s, &d, None, None)).unwrap().unwrap();
    c.lease_task(n.id, now(), 30).unwrap().unwrap();
    assert_eq!(c.cancel_task(t.id).unwrap(), TaskState::Running);
    assert!(c.task_progress(t.id, 1, 2, now() + 30).unwrap());
    assert_eq!(
        c.finish_task(t.id, Err("cancelled".into()), true, None)
            .unwrap(),
        TaskState::Cancelled
    );
    // A lease that runs out requeues (attempts left) with the reason.
    let t = c.add_task(&backup(&s, &d, None, None)).unwrap().unwrap();
    c.lease_task(n.id, now(), 30).unwrap().unwrap();
    assert!(c.expire_leases(now(), &[], "x").unwrap().is_empty());
    let ids = c.expire_leases(now() + 31, &[], "node lost").unwrap();
    assert_eq!(ids, vec![t.id]);
    let t2 = c.task(t.id).unwrap();
    assert_eq!(
        (t2.state, t2.error.as_deref()),
        (TaskState::Queued, Some("node lost"))
    );
    // Second attempt on an offline node: no attempts left, failed.
    c.lease_task(n.id, now() + 31, 30).unwrap().unwrap();
    let ids = c.expire_leases(now(), &[n.id], "node offline").unwrap();
    assert_eq!(ids, vec![t.id]);
    assert_eq!(c.task(t.id).unwrap().state, TaskState::Failed);
}

#[test]
fn restore_points_filter_and_prefix() {
    let (c, _, d, s) = setup();
    for i in 0..5 {
        c.add_restore_point(&RestorePoint {
            id: format!("{:02x}{}", i, "0".repeat(62)).parse().unwrap(),
            datastore_id: d.id,
            source_id: Some(s.id),
            source_name: if i % 2 == 0 {
                "web1".into()
            } else {
                "db1".into()
            },
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time: 1000 + i,
            bytes_total: 10,
            bytes_added: 1,
            files: 1,
            hostname: "h".into(),
            task_id: None,
            created_at: 0,
            ..Default::default()
        })
        .unwrap();
    }
    let f = RestorePointFilter {
        source: Some("web1".into()),
        limit: 10,
        ..Default::default()
    };
    let l = c.restore_points(&f).unwrap();
    assert_eq!(
        l.iter().map(|r| r.time).collect::<Vec<_>>(),
        vec![1004, 1002, 1000]
    );
    assert_eq!(c.restore_point("03", None).unwrap().time, 1003);
    assert!(matches!(c.restore_point("0", None), Err(Error::Invalid(_))));
    assert!(matches!(
        c.restore_point("ff", None),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        c.restore_point("zz'; --", None),
        Err(Error::Invalid(_))
    ));
    let none = RestorePointFilter {
        project_ids: Some(vec![]),
        limit: 10,
        ..Default::default()
    };
    assert!(c.restore_points(&none).unwrap().is_empty());
    assert_eq!(c.restore_point_count().unwrap(), 5);
}

#[test]
fn audit_is_listed_newest_first() {
    let c = Catalog::open_in_memory().unwrap();
    c.audit(
        "admin",
        "source.add",
        "web1",
        "127.0.0.1",
        AuditResult::Ok,
        "",
    )
    .unwrap();
    c.audit(
        "ann",
        "login",
        "",
        "127.0.0.1",
        AuditResult::Denied,
        "bad password",
    )
    .unwrap();
    let a = c.audit_log(10, 0).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].actor.as_str(), a[0].result.as_str()),
        ("ann", "denied")
    );
}

#[test]
fn audit_is_filtered_by_actor_action_result_and_time() {
    let c = Catalog::open_in_memory().unwrap();
    for (actor, action, result) in [
        ("admin", "user.add", AuditResult::Ok),
        ("admin", "user.delete", AuditResult::Failed),
        ("ann", "user.add", AuditResult::Denied),
        ("ann", "source.add", AuditResult::Ok),
        ("bob", "user_x.add", AuditResult::Ok),
    ] {
        c.audit(actor, action, "t", "", result, "").unwrap();
    }
    let list = |f: AuditFilter| {
        c.audit_log_filtered(&f, 100, 0)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.actor, e.action))
            .collect::<Vec<_>>()
    };
    let f = |actor: Option<&str>, action: Option<&str>, result| AuditFilter {
        actor: actor.map(String::from),
        action: action.map(String::from),
        result,
        ..Default::default()
    };
    assert_eq!(
        list(f(None, Some("user.add"), None)),
        ["ann user.add", "admin user.add"]
    );
    // A prefix ending in "." is a prefix, and "_" in it is no wildcard.
    assert_eq!(
        list(f(None, Some("user."), None)),
        ["ann user.add", "admin user.delete", "admin user.add"]
    );
    assert_eq!(
        list(f(Some("ann"), None, None)),
        ["ann source.add", "ann user.add"]
    );
    assert_eq!(
        list(f(Some("admin"), Some("user."), Some(AuditResult::Failed))),
        ["admin user.delete"]
    );
    assert!(list(f(Some("nobody"), None, None)).is_empty());
    let t = c.audit_log(1, 0).unwrap()[0].time;
    let since = |s, u| AuditFilter {
        since: Some(s),
        until: Some(u),
        ..Default::default()
    };
    assert_eq!(list(since(t - 3600, t + 3600)).len(), 5);
    assert!(list(since(t + 1, t + 3600)).is_empty());
    assert!(list(since(t - 3600, t - 1)).is_empty());
    // Paged: the second of the "user." entries.
    let p = c
        .audit_log_filtered(&f(None, Some("user."), None), 1, 1)
        .unwrap();
    assert_eq!(p[0].action, "user.delete");
}

#[test]
fn exports_wake_their_node_expire_and_stop_once() {
    let (c, n, d, _) = setup();
    let c = std::sync::Arc::new(c);
    let (seen, none) = c
        .wait_exports(n.id, u64::MAX, std::time::Duration::ZERO)
        .unwrap();
    assert!(none.is_empty());
    // A node waiting for changes is woken by a new export.
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.wait_exports(n.id, seen, std::time::Duration::from_secs(20))
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let new = |writable, ttl| NewExport {
        restore_point_id: "ab".repeat(32).parse().unwrap(),
        datastore_id: d.id,
        node_id: n.id,
        project_id: ProjectId(1),
        protocol: ExportProtocol::Nbd,
        writable,
        ttl_seconds: ttl,
        created_by: "t".into(),
        allow: Vec::new(),
    };
    let t0 = std::time::Instant::now();
    let ro = c.add_export(&new(false, 3600)).unwrap();
    let (gen, list) = waiter.join().unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert!(gen != seen && list == vec![ro.clone()]);
    assert_eq!(ro.name, format!("export-{}", ro.id));
    let rw = c.add_export(&new(true, 3600)).unwrap();
    assert_eq!(rw.name, format!("export-{}", rw.id));
    // Each export has its own random, URL-safe secret.
    for e in [&ro, &rw] {
        assert_eq!(e.secret.len(), crate::exports::SECRET_LEN);
        assert!(
            e.secret.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{}",
            e.secret
        );
    }
    assert_ne!(ro.secret, rw.secret);
    assert!(ro.allow.is_empty());
    // An NFS export keeps its allow list.
    let nfs = c
        .add_export(&NewExport {
            protocol: ExportProtocol::Nfs,
            allow: vec!["10.0.0.0/8".into(), "::1/128".into()],
            ..new(false, 60)
        })
        .unwrap();
    assert_eq!(
        (nfs.protocol, nfs.allow.clone()),
        (
            ExportProtocol::Nfs,
            vec!["10.0.0.0/8".to_string(), "::1/128".to_string()]
        )
    );
    assert_eq!(c.export(nfs.id).unwrap(), nfs);
    c.stop_export(nfs.id, None).unwrap();
    // The node reports; only live exports of its own take the report.
    c.export_active(ro.id, n.id, "nbd://h:1/x").unwrap();
    c.export_active(ro.id, NodeId(n.id.0 + 1), "nbd://evil")
        .unwrap();
    assert_eq!(
        c.export(ro.id).unwrap().address.as_deref(),
        Some("nbd://h:1/x")
    );
    assert_eq!(c.export(ro.id).unwrap().state, ExportState::Active);
    // Stop once; a second stop is a state conflict.
    let stopped = c.stop_export(rw.id, None).unwrap();
    assert_eq!(
        (stopped.state, stopped.on_stop),
        (ExportState::Stopped, ExportOnStop::Discard)
    );
    assert!(matches!(c.stop_export(rw.id, None), Err(Error::State(_))));
    c.export_active(rw.id, n.id, "nbd://late").unwrap();
    assert_eq!(c.export(rw.id).unwrap().state, ExportState::Stopped);
    // TTLs.
    assert_eq!(c.expire_exports(now() + 10).unwrap(), 0);
    assert_eq!(c.expire_exports(now() + 3601).unwrap(), 1);
    assert_eq!(c.export(ro.id).unwrap().state, ExportState::Expired);
    assert!(c.exports(true, None).unwrap().is_empty());
    assert_eq!(c.exports(false, None).unwrap().len(), 3);
    assert!(c.exports(false, Some(&[ProjectId(2)])).unwrap().is_empty());
    assert!(matches!(c.export(ExportId(999)), Err(Error::NotFound(_))));
}

/// A task started running at once (an agent's backup): leased to its
/// node for attempt 1, never leased again, refused while another task of
/// the source runs, and ended by its lease holder.
#[test]
fn a_started_task_runs_at_once_and_alone() {
    let (c, n, d, s) = setup();
    let t = c.start_task(&backup(&s, &d, None, None), n.id, 30).unwrap();
    assert_eq!(
        (t.state, t.attempt, t.node_id),
        (TaskState::Running, 1, Some(n.id))
    );
    assert!(t.lease_until.unwrap() > now());
    assert!(t.started_at.is_some());
    // Nobody leases it, and a queued backup of the source waits for it.
    c.add_task(&backup(&s, &d, None, None)).unwrap();
    assert!(c.lease_task(n.id, now(), 30).unwrap().is_none());
    assert!(matches!(
        c.start_task(&backup(&s, &d, None, None), n.id, 30),
        Err(Error::State(_))
    ));
    let lease = Lease {
        node_id: n.id,
        attempt: 1,
    };
    assert!(!c.task_progress_leased(t.id, &lease, 5, 10, 30).unwrap());
    let st = c
        .finish_task_leased(
            t.id,
            Some(&lease),
            Err("the agent went away".into()),
            false,
            None,
            &TaskEffects::default(),
        )
        .unwrap();
    assert_eq!(st, TaskState::Failed, "one attempt: no retry");
    // Now the queued one runs.
    assert!(c.lease_task(n.id, now(), 30).unwrap().is_some());
}
