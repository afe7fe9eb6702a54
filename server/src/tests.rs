use super::*;
use arca_catalog::{
    NewTask, NodeId, NodeState, RestorePointId, SourceId, SourceKind, TaskId, TaskKind, TaskSpec,
    TaskState,
};
use arca_node::{Coordinator, DatastoreRef, Finished, Passphrases, Runner, INTERRUPTED};
use serde_json::json;
use std::sync::Arc;

mod forget;
mod protect;

/// What a backup that made restore point `id` reports.
fn backup_result(id: RestorePointId) -> arca_model::TaskResult {
    arca_model::TaskResult::Backup(arca_model::BackupResult {
        snapshot: id,
        bytes_read: 100,
        pruned: 0,
        bytes_total: 100,
        bytes_added: 10,
        files: 1,
        duration_s: 0.5,
        mode: "full".into(),
        warnings: 0,
        consistency: None,
    })
}

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
fn backoff_doubles_and_is_capped() {
    assert_eq!(
        (1..=9).map(backoff_secs).collect::<Vec<_>>(),
        vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    );
}

#[test]
fn a_task_on_a_missing_datastore_fails_with_the_reason_and_retries() {
    let (c, node, ds) = setup();
    let s = source(&c, node, "web-1", &[]);
    let c = Arc::new(c);
    c.add_task(&NewTask {
        project_id: ProjectId(1),
        source_id: Some(s.id),
        datastore_id: Some(ds),
        max_attempts: 2,
        created_by: "test".into(),
        ..Default::default()
    })
    .unwrap();
    let r = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
    let l = r.coord.lease().unwrap().unwrap();
    r.run(l.clone());
    let t = c.task(l.task.id).unwrap();
    assert_eq!(t.state, TaskState::Queued, "first failure is retried");
    assert!(t.error.unwrap().contains("opening datastore default"));
    assert!(t.not_before >= catalog::now() + 25);
    let logs = c.task_logs(t.id).unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.starts_with("retry after 30 s")),
        "{logs:?}"
    );
}

#[test]
fn a_node_runs_at_most_max_tasks() {
    let (c, node, ds) = setup();
    let c = Arc::new(c);
    for i in 0..3 {
        let s = source(&c, node, &format!("s{i}"), &[]);
        c.add_task(&NewTask {
            project_id: ProjectId(1),
            source_id: Some(s.id),
            datastore_id: Some(ds),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap();
    }
    c.upsert_node("local", true, 1, "t").unwrap();
    let r = Arc::new(Runner::new(
        Arc::new(Local::new(c.clone(), node)),
        Passphrases::new(),
    ));
    let started = r.start_due().unwrap();
    assert_eq!(started.len(), 1);
    for h in started {
        h.join().unwrap();
    }
    // The next call takes the next one, again only one.
    assert_eq!(r.start_due().unwrap().len(), 1);
}

#[test]
fn a_node_never_runs_a_task_on_a_datastore_it_does_not_own() {
    let (c, _node, ds) = setup();
    let c = Arc::new(c);
    let remote = c.add_node("alpha", 2).unwrap();
    let s = source(&c, remote.id, "web-1", &[]);
    let id = c
        .add_task(&NewTask {
            project_id: ProjectId(1),
            source_id: Some(s.id),
            datastore_id: Some(ds),
            node_id: Some(remote.id),
            max_attempts: 3,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
    let l = Local::new(c.clone(), remote.id);
    assert!(l.lease().unwrap().is_none());
    let t = c.task(id.id).unwrap();
    assert_eq!(t.state, TaskState::Failed, "no retry: it cannot work");
    let err = t.error.unwrap();
    assert!(err.contains("belongs to node local"), "{err}");
}

#[test]
fn a_backup_s_restore_point_is_listed_with_its_success_in_one_step() {
    let (c, node, ds) = setup();
    let c = Arc::new(c);
    let s = source(&c, node, "web-1", &[]);
    c.add_task(&NewTask {
        project_id: ProjectId(1),
        source_id: Some(s.id),
        datastore_id: Some(ds),
        max_attempts: 1,
        created_by: "test".into(),
        ..Default::default()
    })
    .unwrap();
    let local = Local::new(c.clone(), node);
    let l = local.lease().unwrap().unwrap();
    assert_eq!(l.source.as_ref().unwrap().name, "web-1");
    assert_eq!(l.datastore.as_ref().unwrap().path, "/nonexistent");
    let rp = RestorePoint {
        id: "ab".repeat(32).parse().unwrap(),
        datastore_id: ds,
        source_id: Some(s.id),
        source_name: "web-1".into(),
        project_id: ProjectId(1),
        kind: SourceKind::Files,
        time: 5,
        bytes_total: 100,
        bytes_added: 10,
        files: 1,
        hostname: "h".into(),
        task_id: Some(l.task.id),
        created_at: 5,
        ..Default::default()
    };
    assert_eq!(c.restore_point_count().unwrap(), 0);
    let st = local
        .finish(
            l.task.id,
            Finished {
                outcome: Ok(backup_result(rp.id)),
                cancelled: false,
                effects: catalog::TaskEffects {
                    restore_point: Some(rp.clone()),
                    removed_restore_points: vec![],
                    datastore_bytes_used: Some((ds, 42)),
                    verify: None,
                },
            },
        )
        .unwrap();
    assert_eq!(st, TaskState::Succeeded);
    // The result is stored as the JSON it always was.
    assert_eq!(
        c.task(l.task.id).unwrap().result.unwrap(),
        json!({"snapshot": rp.id.to_hex(), "bytes_read": 100, "pruned": 0, "bytes_total": 100,
               "bytes_added": 10, "files": 1, "duration_s": 0.5, "mode": "full", "warnings": 0})
    );
    assert_eq!(c.restore_point(&rp.id.to_hex(), None).unwrap(), rp);
    let d = c.datastore(ds).unwrap();
    assert_eq!((d.bytes_used, d.bytes_logical), (42, 100));
    // A second report of the same task is refused; nothing changes.
    let again = local.finish(
        l.task.id,
        Finished {
            outcome: Err("late".into()),
            cancelled: false,
            effects: Default::default(),
        },
    );
    // (the node gave its lease back with the first).
    assert!(again.unwrap_err().contains("not leased"));
    assert_eq!(c.task(l.task.id).unwrap().state, TaskState::Succeeded);
}

/// A node with a token and a datastore, for the node service.
fn node_with_token(c: &Catalog, name: &str) -> (catalog::Node, DatastoreId, String) {
    let n = c.add_node(name, 2).unwrap();
    let d = c
        .add_datastore(&format!("{name}/default"), n.id, &format!("/srv/{name}"))
        .unwrap();
    let secret = format!("arca_{name}_secret");
    let hash = <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()).to_vec();
    c.add_token(
        None,
        Some(n.id),
        name,
        catalog::TokenKind::Node,
        &hash,
        None,
    )
    .unwrap();
    (n, d.id, secret)
}

fn call<T>(token: &str, m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn pb_rp(
    id: &str,
    ds: DatastoreId,
    source: Option<SourceId>,
    project: i64,
) -> arca_proto::pb::RestorePoint {
    arca_proto::pb::RestorePoint {
        id: id.into(),
        datastore_id: ds.get(),
        source_id: source.map(SourceId::get),
        source_name: "web-1".into(),
        project_id: project,
        kind: arca_proto::pb::SourceKind::Files as i32,
        time: 1,
        ..Default::default()
    }
}

/// What the node service must leave untouched when it refuses a report.
fn snapshot(c: &Catalog, task: TaskId) -> String {
    let t = c.task(task).unwrap();
    let rps = c
        .restore_points(&catalog::RestorePointFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let ds: Vec<_> = c
        .datastores()
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.bytes_used))
        .collect();
    format!(
        "{:?} {:?} {:?} {} {:?} {:?} {}",
        t.state,
        t.attempt,
        t.bytes_done,
        t.result.is_some(),
        rps.iter().map(|r| &r.id).collect::<Vec<_>>(),
        ds,
        c.task_logs(task).unwrap().len()
    )
}

#[tokio::test]
async fn a_node_reports_only_on_the_task_it_leased_and_only_inside_it() {
    use arca_proto::pb::node_server::Node as _;
    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let (alpha, ads, atok) = node_with_token(&c, "alpha");
    let (_beta, bds, btok) = node_with_token(&c, "beta");
    let svc = crate::service::NodeService::new(
        c.clone(),
        Arc::new(Notifier::default()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let web = source(&c, alpha.id, "web-1", &[]);
    let db = source(&c, alpha.id, "db-1", &[]);
    // A restore point of another source in alpha's datastore, and one in
    // beta's datastore.
    let theirs = "cd".repeat(32);
    let far = "ef".repeat(32);
    for (id, ds, src) in [(&theirs, ads, db.id), (&far, bds, db.id)] {
        c.add_restore_point(&RestorePoint {
            id: id.parse().unwrap(),
            datastore_id: ds,
            source_id: Some(src),
            source_name: "db-1".into(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            ..Default::default()
        })
        .unwrap();
    }
    let task = c
        .add_task(&NewTask {
            project_id: ProjectId(1),
            source_id: Some(web.id),
            datastore_id: Some(ads),
            node_id: Some(alpha.id),
            max_attempts: 3,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    let leased = c.lease_task(alpha.id, catalog::now(), 30).unwrap().unwrap();
    assert_eq!((leased.id, leased.attempt), (task, 1));
    let before = snapshot(&c, task);
    let mine = "ab".repeat(32);
    let good = || arca_proto::pb::FinishRequest {
        task_id: task.get(),
        ok: true,
        result: Some(arca_proto::convert::result_to_pb(&backup_result(
            mine.parse().unwrap(),
        ))),
        restore_point: Some(pb_rp(&mine, ads, Some(web.id), 1)),
        datastore_id: Some(ads.get()),
        datastore_bytes_used: Some(7),
        attempt: 1,
        ..Default::default()
    };
    use tonic::Code;

    // Another node: refused, whatever the call.
    let e = svc.finish(call(&btok, good())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = svc
        .progress(call(
            &btok,
            arca_proto::pb::ProgressRequest {
                task_id: task.get(),
                bytes_done: 5,
                attempt: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = svc
        .log(call(
            &btok,
            arca_proto::pb::LogRequest {
                task_id: task.get(),
                level: arca_proto::pb::LogLevel::Info as i32,
                message: "not mine".into(),
                attempt: 1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert_eq!(snapshot(&c, task), before);

    // The right node, but effects beyond the task: refused, nothing applied.
    let cases: Vec<(&str, arca_proto::pb::FinishRequest)> = vec![
        (
            "rp in another node's datastore",
            arca_proto::pb::FinishRequest {
                restore_point: Some(pb_rp(&mine, bds, Some(web.id), 1)),
                datastore_id: None,
                ..good()
            },
        ),
        (
            "rp of another source",
            arca_proto::pb::FinishRequest {
                restore_point: Some(pb_rp(&mine, ads, Some(db.id), 1)),
                ..good()
            },
        ),
        (
            "rp of another project",
            arca_proto::pb::FinishRequest {
                restore_point: Some(pb_rp(&mine, ads, Some(web.id), 2)),
                ..good()
            },
        ),
        (
            "removes another source's rp",
            arca_proto::pb::FinishRequest {
                removed_restore_points: vec![theirs.clone()],
                ..good()
            },
        ),
        (
            "removes an rp of another datastore",
            arca_proto::pb::FinishRequest {
                removed_restore_points: vec![far.clone()],
                ..good()
            },
        ),
        (
            "verify results from a backup task",
            arca_proto::pb::FinishRequest {
                verify: Some(arca_proto::pb::VerifyEffects {
                    checked: vec![mine.clone()],
                    damaged: vec![],
                }),
                ..good()
            },
        ),
        (
            "usage of another datastore",
            arca_proto::pb::FinishRequest {
                datastore_id: Some(bds.get()),
                ..good()
            },
        ),
    ];
    for (what, req) in cases {
        let e = svc.finish(call(&atok, req)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        assert_eq!(snapshot(&c, task), before, "{what}");
    }
    // A result that is missing, or not a backup's: refused as invalid.
    let gc = arca_model::TaskResult::Gc(Default::default());
    let cases: Vec<(&str, &str, arca_proto::pb::FinishRequest)> = vec![
        (
            "ok without a result",
            "without its result",
            arca_proto::pb::FinishRequest {
                result: None,
                ..good()
            },
        ),
        (
            "a gc result for a backup",
            "the result of a gc task for backup task",
            arca_proto::pb::FinishRequest {
                result: Some(arca_proto::convert::result_to_pb(&gc)),
                ..good()
            },
        ),
        (
            "a bad snapshot id",
            "backup result snapshot",
            arca_proto::pb::FinishRequest {
                result: Some(arca_proto::pb::finish_request::Result::Backup(
                    arca_proto::pb::BackupResult {
                        snapshot: "xyz".into(),
                        ..Default::default()
                    },
                )),
                ..good()
            },
        ),
    ];
    for (what, says, req) in cases {
        let e = svc.finish(call(&atok, req)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(says), "{what}: {e:?}");
        assert_eq!(snapshot(&c, task), before, "{what}");
    }
    let e = svc
        .log(call(
            &atok,
            arca_proto::pb::LogRequest {
                task_id: task.get(),
                level: 99,
                message: "a level from elsewhere".into(),
                attempt: 1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(e.message(), "unknown log level 99");
    assert_eq!(snapshot(&c, task), before);
    // A usage report for beta's datastore is caught in the transaction
    // too (not only by the service's early check).
    let e = c
        .finish_task_leased(
            task,
            Some(&catalog::Lease {
                node_id: alpha.id,
                attempt: 1,
            }),
            Ok(json!({})),
            false,
            None,
            &catalog::TaskEffects {
                datastore_bytes_used: Some((bds, 1)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, catalog::Error::Denied(_)), "{e:?}");

    // A wrong or missing attempt.
    let e = svc
        .finish(call(
            &atok,
            arca_proto::pb::FinishRequest {
                attempt: 2,
                ..good()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = svc
        .finish(call(
            &atok,
            arca_proto::pb::FinishRequest {
                attempt: 0,
                ..good()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(snapshot(&c, task), before);

    // An expired lease: progress, log and finish are refused.
    c.task_progress(task, 0, 0, catalog::now() - 5).unwrap();
    let before = snapshot(&c, task);
    let e = svc.finish(call(&atok, good())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("ran out"), "{e:?}");
    let e = svc
        .progress(call(
            &atok,
            arca_proto::pb::ProgressRequest {
                task_id: task.get(),
                attempt: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(snapshot(&c, task), before);

    // Requeued and leased again: the old attempt cannot finish the new one.
    c.expire_leases(catalog::now(), &[], "lost").unwrap();
    let again = c.lease_task(alpha.id, catalog::now(), 30).unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (task, 2));
    let before = snapshot(&c, task);
    let e = svc.finish(call(&atok, good())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("leased again"), "{e:?}");
    assert_eq!(snapshot(&c, task), before);

    // The current lease, with effects inside the task: recorded.
    svc.log(call(
        &atok,
        arca_proto::pb::LogRequest {
            task_id: task.get(),
            level: arca_proto::pb::LogLevel::Info as i32,
            message: "mine".into(),
            attempt: 2,
        },
    ))
    .await
    .unwrap();
    let r = svc
        .finish(call(
            &atok,
            arca_proto::pb::FinishRequest {
                attempt: 2,
                ..good()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state(), arca_proto::pb::TaskState::Succeeded);
    let rp = c.restore_point(&mine, None).unwrap();
    assert_eq!(
        (rp.datastore_id, rp.source_id, rp.task_id),
        (ads, Some(web.id), Some(task))
    );
    assert_eq!(c.datastore(ads).unwrap().bytes_used, 7);
    assert!(c.restore_point(&theirs, None).is_ok() && c.restore_point(&far, None).is_ok());
    assert!(c
        .task_logs(task)
        .unwrap()
        .iter()
        .any(|l| l.message == "mine"));

    // Verify results: only from a verify task, only about its datastore.
    let verify = c
        .add_task(&NewTask {
            spec: TaskSpec::Verify(Default::default()),
            project_id: ProjectId(1),
            datastore_id: Some(ads),
            node_id: Some(alpha.id),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    let v = c.lease_task(alpha.id, catalog::now(), 30).unwrap().unwrap();
    assert_eq!(v.id, verify);
    let damaged = |id: &str| arca_proto::pb::FinishRequest {
        task_id: verify.get(),
        ok: false,
        error: "damage".into(),
        verify: Some(arca_proto::pb::VerifyEffects {
            checked: vec![id.to_string()],
            damaged: vec![arca_proto::pb::DamagedRestorePoint {
                id: id.to_string(),
                damage: "chunk missing".into(),
            }],
        }),
        attempt: 1,
        ..Default::default()
    };
    let before = snapshot(&c, verify);
    let e = svc.finish(call(&atok, damaged(&far))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert_eq!(snapshot(&c, verify), before);
    assert_eq!(
        c.restore_point(&far, None).unwrap().state,
        catalog::RestorePointState::Ok
    );
    svc.finish(call(&atok, damaged(&theirs))).await.unwrap();
    assert_eq!(
        c.restore_point(&theirs, None).unwrap().state,
        catalog::RestorePointState::Damaged
    );
}

#[test]
fn the_embedded_node_reports_only_on_what_it_leased() {
    let (c, node, ds) = setup();
    let c = Arc::new(c);
    let s = source(&c, node, "web-1", &[]);
    let other = source(&c, node, "web-2", &[]);
    let task = c
        .add_task(&NewTask {
            project_id: ProjectId(1),
            source_id: Some(s.id),
            datastore_id: Some(ds),
            max_attempts: 2,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    let a = Local::new(c.clone(), node);
    let b = Local::new(c.clone(), node);
    let l = a.lease().unwrap().unwrap();
    assert_eq!(l.task.id, task);
    let done = |fx: catalog::TaskEffects| Finished {
        outcome: Ok(backup_result("ab".repeat(32).parse().unwrap())),
        cancelled: false,
        effects: fx,
    };
    // Not leased through this coordinator: refused.
    assert!(b
        .finish(task, done(Default::default()))
        .unwrap_err()
        .contains("not leased"));
    assert!(b.progress(task, 1, 1).unwrap_err().contains("not leased"));
    // A restore point of another source: refused, nothing recorded.
    let rp = RestorePoint {
        id: "ab".repeat(32).parse().unwrap(),
        datastore_id: ds,
        source_id: Some(other.id),
        source_name: "web-2".into(),
        project_id: ProjectId(1),
        kind: SourceKind::Files,
        task_id: Some(task),
        ..Default::default()
    };
    let e = a
        .finish(
            task,
            done(catalog::TaskEffects {
                restore_point: Some(rp.clone()),
                ..Default::default()
            }),
        )
        .unwrap_err();
    assert!(e.contains("another source"), "{e}");
    assert_eq!(c.restore_point_count().unwrap(), 0);
    assert_eq!(c.task(task).unwrap().state, TaskState::Running);
}

#[test]
fn leased_backups_and_restores_carry_their_node_s_confinement() {
    let (c, node, ds) = setup();
    c.set_node_data_dir(node, "/var/lib/arca").unwrap();
    c.set_node_confinement(
        node,
        &catalog::NodeConfinement {
            source_roots: Some(vec!["/srv".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    let s = source(&c, node, "web-1", &[]);
    let c = Arc::new(c);
    let restore = arca_model::RestoreParams {
        restore_point: "ab".repeat(32).parse().unwrap(),
        target: "/x".into(),
        path: None,
        overwrite: false,
        special_files: false,
        // Whatever a task's parameters say, the rules come from the catalog.
        confine: Some(arca_model::Confinement {
            source_roots: vec!["/".into()],
            ..Default::default()
        }),
        import: None,
    };
    for spec in [
        TaskSpec::Backup(Default::default()),
        TaskSpec::Restore(restore),
    ] {
        let backup = spec.kind() == TaskKind::Backup;
        c.add_task(&NewTask {
            spec,
            project_id: ProjectId(1),
            source_id: backup.then_some(s.id),
            datastore_id: Some(ds),
            node_id: Some(node),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap();
    }
    let local = Local::new(c.clone(), node);
    for _ in 0..2 {
        let l = local.lease().unwrap().unwrap();
        let conf = match &l.task.spec {
            arca_model::TaskSpec::Backup(p) => p.confine.clone(),
            arca_model::TaskSpec::Restore(p) => p.confine.clone(),
            other => panic!("{other:?}"),
        };
        // The node's own type, as the runner reads it.
        let conf: arca_control::confine::Confinement =
            serde_json::from_value(serde_json::to_value(conf.unwrap()).unwrap()).unwrap();
        assert_eq!(conf.source_roots, vec!["/srv".to_string()]);
        assert_eq!(
            conf.restore_roots(),
            vec!["/var/lib/arca/restores".to_string()]
        );
        assert_eq!(conf.datastores, vec!["/nonexistent".to_string()]);
        assert_eq!(conf.node, "local");
    }
    // A task without rules is not run.
    assert!(arca_control::confine::Confinement::of_task(&json!({}))
        .unwrap_err()
        .contains("no confinement rules"));
}

/// Issue 18: source names are unique per project only, so project 2's
/// "web" is not project 1's. A backup's parent is chosen among its own
/// source's restore points (by id): project 2's first backup of "web" has
/// no parent, though the datastore holds a restore point of a source named
/// "web"; project 1's next backup builds on project 1's own.
#[test]
fn a_backup_s_parent_is_its_own_source_s_never_a_same_named_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ds_path = root.join("ds");
    arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("index.html"), b"hello from web").unwrap();

    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let node = c.upsert_node("local", true, 2, "t").unwrap().id;
    c.set_node_confinement(
        node,
        &catalog::NodeConfinement {
            source_roots: Some(vec![data.display().to_string()]),
            ..Default::default()
        },
    )
    .unwrap();
    let ds = c
        .add_datastore("default", node, &ds_path.display().to_string())
        .unwrap()
        .id;
    let b = c.add_project("b").unwrap().id;
    let path = data.display().to_string();
    let web_a = c
        .add_source(
            "web",
            SourceKind::Files,
            &path,
            node,
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let web_b = c
        .add_source(
            "web",
            SourceKind::Files,
            &path,
            node,
            b,
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    assert_ne!(web_a.id, web_b.id);

    let runner = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
    let backup = |s: &Source| -> RestorePoint {
        let t = c
            .add_task(&NewTask {
                project_id: s.project_id,
                source_id: Some(s.id),
                datastore_id: Some(ds),
                node_id: Some(node),
                max_attempts: 1,
                created_by: "test".into(),
                ..Default::default()
            })
            .unwrap()
            .unwrap();
        let l = runner.coord.lease().unwrap().unwrap();
        assert_eq!(l.task.id, t.id);
        runner.run(l);
        let t = c.task(t.id).unwrap();
        assert_eq!(t.state, TaskState::Succeeded, "{:?}", t.error);
        c.restore_points(&catalog::RestorePointFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .find(|rp| rp.task_id == Some(t.id))
        .unwrap()
    };
    let a1 = backup(&web_a);
    let b1 = backup(&web_b);
    let a2 = backup(&web_a);
    assert_eq!((b1.project_id, b1.source_id), (b, Some(web_b.id)));
    assert_eq!(
        (a2.project_id, a2.source_id),
        (ProjectId(1), Some(web_a.id))
    );

    let store = runner
        .datastore(&DatastoreRef {
            id: ds,
            name: "default".into(),
            path: ds_path.display().to_string(),
        })
        .unwrap();
    let parent = |rp: &RestorePoint| -> Option<String> {
        let p = store
            .load_snapshot(&rp.id.snapshot_id())
            .unwrap()
            .manifest
            .parent;
        (!p.is_empty()).then(|| arca_repo::SnapshotId::from_slice(&p).unwrap().to_hex())
    };
    assert_eq!(parent(&a1), None);
    assert_eq!(parent(&b1), None, "project 2's first backup took a parent");
    assert_eq!(parent(&a2), Some(a1.id.to_hex()));
}

/// A shutdown cancels the running backup (a 1 TiB sparse image, read for
/// minutes): it ends `cancelled` with "interrupted by shutdown" and no
/// restore point, and nothing more is leased afterwards.
#[test]
fn shutdown_interrupts_running_tasks_and_leases_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ds_path = root.join("ds");
    arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let image = data.join("big.raw");
    std::fs::write(&image, b"not only holes").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();

    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let node = c.upsert_node("local", true, 2, "t").unwrap().id;
    c.set_node_confinement(
        node,
        &catalog::NodeConfinement {
            source_roots: Some(vec![data.display().to_string()]),
            ..Default::default()
        },
    )
    .unwrap();
    let ds = c
        .add_datastore("default", node, &ds_path.display().to_string())
        .unwrap()
        .id;
    let path = image.display().to_string();
    let s = c
        .add_source(
            "big",
            SourceKind::Image,
            &path,
            node,
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let task = || NewTask {
        project_id: ProjectId(1),
        source_id: Some(s.id),
        datastore_id: Some(ds),
        node_id: Some(node),
        max_attempts: 3,
        created_by: "test".into(),
        ..Default::default()
    };
    let first = c.add_task(&task()).unwrap().unwrap().id;
    let runner = Arc::new(Runner::new(
        Arc::new(Local::new(c.clone(), node)),
        Passphrases::new(),
    ));
    let handles = runner.start_due().unwrap();
    assert_eq!(handles.len(), 1);
    assert_eq!(runner.running_tasks(), vec![first]);
    // Wait until it reads (a hang here fails the test's harness timeout).
    while c.task(first).unwrap().bytes_done == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = runner.shutdown(std::time::Duration::from_secs(600));
    assert_eq!(report.interrupted, vec![first]);
    assert!(report.abandoned.is_empty());
    assert!(runner.running_tasks().is_empty());
    for h in handles {
        h.join().unwrap();
    }
    let t = c.task(first).unwrap();
    assert_eq!(t.state, TaskState::Cancelled);
    assert_eq!(t.error.as_deref(), Some(INTERRUPTED));
    assert_eq!(t.lease_until, None, "the lease is released");
    assert!(c
        .task_logs(first)
        .unwrap()
        .iter()
        .any(|l| l.message == INTERRUPTED));
    assert_eq!(c.restore_point_count().unwrap(), 0);
    // Nothing is leased once stopping.
    let second = c.add_task(&task()).unwrap().unwrap().id;
    assert!(runner.is_stopping());
    assert!(runner.start_due().unwrap().is_empty());
    assert_eq!(c.task(second).unwrap().state, TaskState::Queued);
}

/// An import lists every snapshot of a datastore once (a second import
/// adds nothing): a snapshot of a source the catalog knows joins it and
/// its project, one of an unknown source goes to project 1 under its name.
#[test]
fn import_lists_each_snapshot_once_and_joins_known_sources() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ds_path = root.join("ds");
    arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), b"import me").unwrap();
    let path = data.display().to_string();
    let ds_str = ds_path.display().to_string();

    // Three snapshots made through a first catalog: two of "web", one of
    // "db" (project b).
    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let node = c.upsert_node("local", true, 2, "t").unwrap().id;
    c.set_node_confinement(
        node,
        &catalog::NodeConfinement {
            source_roots: Some(vec![path.clone()]),
            ..Default::default()
        },
    )
    .unwrap();
    let ds = c.add_datastore("default", node, &ds_str).unwrap().id;
    let b = c.add_project("b").unwrap().id;
    let web = c
        .add_source(
            "web",
            SourceKind::Files,
            &path,
            node,
            ProjectId(1),
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let db = c
        .add_source(
            "db",
            SourceKind::Files,
            &path,
            node,
            b,
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    let runner = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
    for s in [&web, &db, &web] {
        c.add_task(&NewTask {
            project_id: s.project_id,
            source_id: Some(s.id),
            datastore_id: Some(ds),
            node_id: Some(node),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        let l = runner.coord.lease().unwrap().unwrap();
        let id = l.task.id;
        runner.run(l);
        let t = c.task(id).unwrap();
        assert_eq!(t.state, TaskState::Succeeded, "{:?}", t.error);
    }
    let store = runner
        .datastore(&DatastoreRef {
            id: ds,
            name: "default".into(),
            path: ds_str.clone(),
        })
        .unwrap();
    // The same catalog already lists them all.
    assert_eq!(import_datastore(&c, &store, ds).unwrap(), 0);
    // Each at the time its snapshot's manifest records, as an import
    // lists it (not when its task finished).
    let listed = |c: &Catalog| -> Vec<(String, i64)> {
        let mut v: Vec<_> = c
            .restore_points(&catalog::RestorePointFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|rp| (rp.id.to_hex(), rp.time))
            .collect();
        v.sort();
        v
    };
    let by_task = listed(&c);
    assert_eq!(by_task.len(), 3);
    for (id, time) in &by_task {
        let snap = store
            .load_snapshot(&arca_repo::SnapshotId::from_hex(id).unwrap())
            .unwrap();
        assert_eq!(
            *time,
            snap.manifest.time_ns.div_euclid(1_000_000_000),
            "{id}"
        );
    }

    // A new catalog that knows "db" (in project b) but not "web".
    let c2 = Catalog::open_in_memory().unwrap();
    let node2 = c2.upsert_node("local", true, 2, "t").unwrap().id;
    let ds2 = c2.add_datastore("default", node2, &ds_str).unwrap().id;
    let b2 = c2.add_project("b").unwrap().id;
    let db2 = c2
        .add_source(
            "db",
            SourceKind::Files,
            &path,
            node2,
            b2,
            &[],
            &json!({}),
            None,
        )
        .unwrap();
    assert_eq!(import_datastore(&c2, &store, ds2).unwrap(), 3);
    assert_eq!(import_datastore(&c2, &store, ds2).unwrap(), 0);
    assert_eq!(listed(&c2), by_task, "imported at the same times");
    let mut rps: Vec<(String, ProjectId, Option<SourceId>, DatastoreId)> = c2
        .restore_points(&catalog::RestorePointFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|rp| (rp.source_name, rp.project_id, rp.source_id, rp.datastore_id))
        .collect();
    rps.sort();
    assert_eq!(
        rps,
        vec![
            ("db".to_string(), b2, Some(db2.id), ds2),
            ("web".to_string(), ProjectId(1), None, ds2),
            ("web".to_string(), ProjectId(1), None, ds2),
        ]
    );
}

/// A node that says it leaves is offline at once: its heartbeats are
/// refused until it registers again, what the catalog says it runs is
/// requeued, and another node's token cannot make it leave.
#[tokio::test]
async fn a_node_that_leaves_is_offline_at_once_and_its_tasks_requeued() {
    use arca_proto::pb::node_server::Node as _;
    use tonic::Code;
    let c = Arc::new(Catalog::open_in_memory().unwrap());
    let (alpha, ads, atok) = node_with_token(&c, "alpha");
    let (beta, _bds, btok) = node_with_token(&c, "beta");
    let svc = crate::service::NodeService::new(
        c.clone(),
        Arc::new(Notifier::default()),
        Arc::new(tokio::sync::Notify::new()),
    );
    for tok in [&atok, &btok] {
        svc.register(call(
            tok,
            arca_proto::pb::RegisterRequest {
                version: "t".into(),
                max_tasks: 2,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }
    let web = source(&c, alpha.id, "web-1", &[]);
    let task = c
        .add_task(&NewTask {
            project_id: ProjectId(1),
            source_id: Some(web.id),
            datastore_id: Some(ads),
            node_id: Some(alpha.id),
            max_attempts: 3,
            created_by: "test".into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
        .id;
    let leased = c.lease_task(alpha.id, catalog::now(), 30).unwrap().unwrap();
    assert_eq!(leased.id, task);
    let state = |id: NodeId| c.node(id).unwrap().state;
    assert_eq!(
        (state(alpha.id), state(beta.id)),
        (NodeState::Online, NodeState::Online)
    );

    // Beta leaves: alpha stays online and keeps its task.
    svc.leave(call(&btok, arca_proto::pb::LeaveRequest {}))
        .await
        .unwrap();
    assert_eq!(
        (state(alpha.id), state(beta.id)),
        (NodeState::Online, NodeState::Offline)
    );
    assert_eq!(c.task(task).unwrap().state, TaskState::Running);

    // Alpha leaves: offline, its task back in the queue, heartbeats refused.
    svc.leave(call(&atok, arca_proto::pb::LeaveRequest {}))
        .await
        .unwrap();
    assert_eq!(state(alpha.id), NodeState::Offline);
    let t = c.task(task).unwrap();
    assert_eq!(t.state, TaskState::Queued, "{t:?}");
    let e = svc
        .heartbeat(call(&atok, arca_proto::pb::HeartbeatRequest {}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // A call without a node's token is refused.
    let e = svc
        .leave(call("arca_nobody", arca_proto::pb::LeaveRequest {}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // Registering brings it back.
    svc.register(call(
        &atok,
        arca_proto::pb::RegisterRequest {
            version: "t".into(),
            max_tasks: 2,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(state(alpha.id), NodeState::Online);
}

#[test]
fn a_task_whose_parameters_do_not_fit_its_kind_fails_and_says_what_is_wrong() {
    // A catalog file, so that the stored parameters can be spoilt behind
    // the catalog's back, as an older server may have stored them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let c = Arc::new(Catalog::open(&path).unwrap());
    let node = c.upsert_node("local", true, 2, "t").unwrap().id;
    let ds = c.add_datastore("default", node, "/nonexistent").unwrap().id;
    let bad = [
        (
            json!({"restore_point": "00".repeat(32)}),
            "parameters of a restore task: missing field `target`",
        ),
        (
            json!({"restore_point": "abc", "target": "/tmp/x"}),
            "parameters of a restore task",
        ),
    ];
    for (params, want) in bad {
        let id = c
            .add_task(&NewTask {
                spec: TaskSpec::Restore(arca_model::RestoreParams {
                    restore_point: "00".repeat(32).parse().unwrap(),
                    target: "/tmp/x".into(),
                    path: None,
                    overwrite: false,
                    special_files: false,
                    confine: None,
                    import: None,
                }),
                project_id: ProjectId(1),
                datastore_id: Some(ds),
                max_attempts: 1,
                created_by: "test".into(),
                ..Default::default()
            })
            .unwrap()
            .unwrap()
            .id;
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE tasks SET params = ?1 WHERE id = ?2",
                rusqlite::params![params.to_string(), id.get()],
            )
            .unwrap();
        // Read into a typed spec at lease time: the task fails then, with
        // the reason, and no node ever runs it.
        let r = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
        assert!(r.coord.lease().unwrap().is_none());
        let t = c.task(id).unwrap();
        assert_eq!(t.state, TaskState::Failed, "{t:?}");
        let err = t.error.unwrap();
        assert!(err.contains(want), "{err}");
        assert!(c
            .task_logs(id)
            .unwrap()
            .iter()
            .any(|l| l.level == catalog::LogLevel::Error && l.message.contains(want)));
    }
}
