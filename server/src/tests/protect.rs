//! Protected restore points: retention (after a backup, and a prune task)
//! never removes one, however many newer backups come in, until it is
//! unprotected; it may still be the parent of the next backup, and gc
//! leaves it whole.

use super::*;

#[test]
fn a_protected_restore_point_survives_keep_last_1() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ds_path = root.join("ds");
    arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("index.html"), b"hello").unwrap();

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
    let keep_1 = catalog::Retention {
        keep_last: 1,
        ..Default::default()
    };
    let pol = c
        .add_policy(
            "one",
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
    let src = c
        .add_source(
            "web",
            SourceKind::Files,
            &data.display().to_string(),
            node,
            ProjectId(1),
            &[],
            &json!({}),
            Some(pol.id),
        )
        .unwrap();
    let runner = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
    let run = |spec: TaskSpec| -> catalog::Task {
        let t = c
            .add_task(&NewTask {
                spec,
                project_id: ProjectId(1),
                source_id: Some(src.id),
                policy_id: Some(pol.id),
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
        t
    };
    let backup = |i: usize| -> RestorePointId {
        std::fs::write(data.join("n"), i.to_string()).unwrap();
        let t = run(TaskSpec::Backup(Default::default()));
        c.restore_points(&catalog::RestorePointFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .find(|rp| rp.task_id == Some(t.id))
        .unwrap()
        .id
    };
    let store = runner
        .datastore(&DatastoreRef {
            id: ds,
            name: "default".into(),
            path: ds_path.display().to_string(),
        })
        .unwrap();
    // What the catalog lists and what the datastore holds, oldest first.
    let listed = || c.restore_point_ids_of_source(src.id, ds).unwrap();
    let stored = || {
        let mut s: Vec<_> = store.snapshots().unwrap();
        s.sort_by_key(|s| s.manifest.time_ns);
        s.into_iter()
            .map(|s| RestorePointId::from(s.id))
            .collect::<Vec<_>>()
    };

    let first = backup(1);
    c.set_restore_point_protection(first, Some(true), Some("keep me"))
        .unwrap();
    let parent = |id: RestorePointId| -> Vec<u8> {
        store
            .load_snapshot(&id.snapshot_id())
            .unwrap()
            .manifest
            .parent
    };
    let mut newest = first;
    for i in 2..6 {
        let previous = newest;
        newest = backup(i);
        // The newest of the source's restore points is the parent,
        // protected or not.
        assert_eq!(parent(newest), previous.snapshot_id().as_bytes().to_vec());
        assert_eq!(listed(), vec![first, newest], "after backup {i}");
        assert_eq!(stored(), vec![first, newest], "after backup {i}");
    }
    // A prune task with keep_last=1 keeps it too.
    run(TaskSpec::Prune(arca_model::PruneParams {
        retention: keep_1.clone().into(),
        source: "web".into(),
        ..Default::default()
    }));
    assert_eq!(listed(), vec![first, newest]);
    assert_eq!(stored(), vec![first, newest]);
    // gc removes no restore point, and the protected one is whole: a
    // verify of every restore point succeeds after it.
    run(TaskSpec::Gc(arca_model::GcParams {
        grace_seconds: Some(0),
    }));
    assert_eq!(stored(), vec![first, newest]);
    run(TaskSpec::Verify(arca_model::VerifyParams {
        all: true,
        ..Default::default()
    }));
    let rp = c.restore_point(&first.to_string(), None).unwrap();
    assert!(rp.protected);
    assert_eq!(rp.state, catalog::RestorePointState::Ok);
    assert_eq!(rp.note.as_deref(), Some("keep me"));

    // Unprotected, it goes with the next retention.
    c.set_restore_point_protection(first, Some(false), None)
        .unwrap();
    let last = backup(9);
    assert_eq!(listed(), vec![last]);
    assert_eq!(stored(), vec![last]);
}
