//! Forget tasks run by the embedded node: the restore points they name
//! leave the datastore and then the catalog; one protected after the task
//! was queued is kept (the lease names it) and the task fails saying so;
//! one already gone from the datastore is dropped from the catalog.

use super::*;

#[test]
fn a_forget_task_removes_what_it_names_except_the_protected() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ds_path = root.join("ds");
    arca_repo::Datastore::init(&ds_path, arca_repo::Encryption::None, None, |_| {}).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();

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
            None,
        )
        .unwrap();
    let runner = Runner::new(Arc::new(Local::new(c.clone(), node)), Passphrases::new());
    let run_next = |id: TaskId| -> catalog::Task {
        let l = runner.coord.lease().unwrap().unwrap();
        assert_eq!(l.task.id, id);
        runner.run(l);
        c.task(id).unwrap()
    };
    let backup = |i: usize| -> RestorePointId {
        std::fs::write(data.join("n"), i.to_string()).unwrap();
        let t = c
            .add_task(&NewTask {
                spec: TaskSpec::Backup(Default::default()),
                project_id: ProjectId(1),
                source_id: Some(src.id),
                datastore_id: Some(ds.id),
                node_id: Some(node),
                max_attempts: 1,
                created_by: "test".into(),
                ..Default::default()
            })
            .unwrap()
            .unwrap();
        let t = run_next(t.id);
        assert_eq!(t.state, TaskState::Succeeded, "{:?}", t.error);
        let result = t.result.unwrap();
        result["snapshot"].as_str().unwrap().parse().unwrap()
    };
    let forget = |ids: &[RestorePointId]| -> catalog::Task {
        let t = NewTask {
            spec: TaskSpec::Forget(arca_model::ForgetParams {
                restore_points: ids.to_vec(),
                protected: None,
            }),
            project_id: ProjectId(1),
            source_id: Some(src.id),
            datastore_id: Some(ds.id),
            node_id: Some(node),
            max_attempts: 1,
            created_by: "test".into(),
            ..Default::default()
        };
        c.queue_forget(&[t], None).unwrap().remove(0)
    };
    let store = runner
        .datastore(&DatastoreRef {
            id: ds.id,
            name: "default".into(),
            path: ds_path.display().to_string(),
        })
        .unwrap();
    let listed = || c.restore_point_ids_of_source(src.id, ds.id).unwrap();
    let stored = || {
        let mut s = store.snapshots().unwrap();
        s.sort_by_key(|s| s.manifest.time_ns);
        s.into_iter()
            .map(|s| RestorePointId::from(s.id))
            .collect::<Vec<_>>()
    };
    let (a, b, d) = (backup(1), backup(2), backup(3));
    assert_eq!(stored(), vec![a, b, d]);

    // b is protected after the task was queued: the lease names it, the
    // node keeps it, removes a, and the task fails naming b.
    let t = forget(&[a, b]);
    c.set_restore_point_protection(b, Some(true), None).unwrap();
    let t = run_next(t.id);
    assert_eq!(t.state, TaskState::Failed);
    let e = t.error.unwrap_or_default();
    assert!(
        e.starts_with("1 restore point(s) removed, 1 kept: ")
            && e.contains(&format!("{} is protected", b.short())),
        "{e}"
    );
    assert_eq!(stored(), vec![b, d]);
    assert_eq!(listed(), vec![b, d]);

    // One that is gone from the datastore already is dropped from the
    // catalog (removed: 0).
    store.delete_snapshot(&d.snapshot_id()).unwrap();
    let t = run_next(forget(&[d]).id);
    assert_eq!(t.state, TaskState::Succeeded, "{:?}", t.error);
    assert_eq!(t.result, Some(json!({"removed": 0})));
    assert_eq!(listed(), vec![b]);

    // Unprotected, it goes.
    c.set_restore_point_protection(b, Some(false), None)
        .unwrap();
    let t = run_next(forget(&[b]).id);
    assert_eq!(t.state, TaskState::Succeeded, "{:?}", t.error);
    assert_eq!(t.result, Some(json!({"removed": 1})));
    assert!(listed().is_empty());
    assert!(stored().is_empty());
}
