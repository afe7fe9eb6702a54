use super::*;
use crate::{
    Datastore, ExportProtocol, Lease, NewExport, ProjectId, RestorePoint, Source, SourceKind,
    TaskEffects, TaskState,
};
use arca_model::ForgetParams;

fn rp_id(c: char) -> RestorePointId {
    c.to_string().repeat(64).parse().unwrap()
}

/// A catalog with one node, datastore and source, and restore points
/// `a`, `b`, `c` of that source.
fn setup() -> (Catalog, crate::Node, Datastore, Source) {
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
            &[],
            &serde_json::json!({}),
            None,
        )
        .unwrap();
    for (i, ch) in ['a', 'b', 'c'].into_iter().enumerate() {
        c.add_restore_point(&RestorePoint {
            id: rp_id(ch),
            datastore_id: d.id,
            source_id: Some(s.id),
            source_name: s.name.clone(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time: 1000 + i as i64,
            ..Default::default()
        })
        .unwrap();
    }
    (c, n, d, s)
}

fn forget(d: &Datastore, s: Option<&Source>, ids: &[char]) -> NewTask {
    NewTask {
        spec: TaskSpec::Forget(ForgetParams {
            restore_points: ids.iter().map(|c| rp_id(*c)).collect(),
            protected: None,
        }),
        project_id: ProjectId(1),
        source_id: s.map(|s| s.id),
        datastore_id: Some(d.id),
        node_id: Some(d.node_id),
        max_attempts: 1,
        created_by: "test".into(),
        ..Default::default()
    }
}

fn refused(r: Result<Vec<Task>>) -> String {
    match r {
        Err(Error::State(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn protected_exported_and_queued_restore_points_are_refused() {
    let (c, n, d, s) = setup();
    c.set_restore_point_protection(rp_id('a'), Some(true), None)
        .unwrap();
    let m = refused(c.queue_forget(&[forget(&d, Some(&s), &['a'])], None));
    assert!(m.contains("is protected: unprotect it first"), "{m}");
    assert_eq!(
        c.protected_among(&[rp_id('a'), rp_id('b')]).unwrap(),
        vec![rp_id('a')]
    );
    let e = c
        .add_export(&NewExport {
            restore_point_id: rp_id('b'),
            datastore_id: d.id,
            node_id: n.id,
            project_id: ProjectId(1),
            protocol: ExportProtocol::Nbd,
            writable: false,
            ttl_seconds: 3600,
            created_by: "t".into(),
            allow: Vec::new(),
        })
        .unwrap();
    let m = refused(c.queue_forget(&[forget(&d, Some(&s), &['b'])], None));
    assert!(m.contains(&format!("served by export {}", e.id)), "{m}");
    // Both at once: one message naming each.
    let m = refused(c.queue_forget(&[forget(&d, Some(&s), &['a', 'b', 'c'])], None));
    assert!(m.starts_with("2 of the 3 restore points"), "{m}");
    // Nothing was queued by the refusals.
    assert!(c.tasks(None, None, 100, 0).unwrap().is_empty());
    let t = c
        .queue_forget(&[forget(&d, Some(&s), &['c'])], None)
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].kind, t[0].state),
        (TaskKind::Forget, TaskState::Queued)
    );
    let m = refused(c.queue_forget(&[forget(&d, Some(&s), &['c'])], None));
    assert!(
        m.contains(&format!("being removed already: task {}", t[0].id)),
        "{m}"
    );
    // Once the export stops, b may go.
    c.stop_export(e.id, None).unwrap();
    assert!(c
        .queue_forget(&[forget(&d, Some(&s), &['b'])], None)
        .is_ok());
}

#[test]
fn the_source_goes_only_with_its_tasks() {
    let (c, _, d, s) = setup();
    c.set_restore_point_protection(rp_id('a'), Some(true), None)
        .unwrap();
    refused(c.queue_forget(&[forget(&d, Some(&s), &['a', 'b', 'c'])], Some(s.id)));
    assert!(c.source(s.id).is_ok(), "a refusal keeps the source");
    c.set_restore_point_protection(rp_id('a'), Some(false), None)
        .unwrap();
    let t = c
        .queue_forget(&[forget(&d, Some(&s), &['a', 'b', 'c'])], Some(s.id))
        .unwrap();
    assert!(matches!(c.source(s.id), Err(Error::NotFound(_))));
    // The task outlives its source (its source_id is cleared).
    assert_eq!(c.task(t[0].id).unwrap().source_id, None);
    let all = c.restore_points_of_source_everywhere(s.id).unwrap();
    assert!(all.is_empty(), "their source_id is cleared too: {all:?}");
}

#[test]
fn a_forget_removes_only_what_it_names() {
    let (c, n, d, s) = setup();
    let t = c
        .queue_forget(&[forget(&d, Some(&s), &['a'])], Some(s.id))
        .unwrap()
        .remove(0);
    let l = c.lease_task(n.id, now(), 30).unwrap().unwrap();
    assert_eq!(l.id, t.id);
    let lease = Lease {
        node_id: n.id,
        attempt: l.attempt,
    };
    // `b` is not named: the whole report is refused.
    let fx = TaskEffects {
        removed_restore_points: vec![rp_id('a'), rp_id('b')],
        ..Default::default()
    };
    let r = c.finish_task_leased(
        t.id,
        Some(&lease),
        Ok(serde_json::json!({"removed": 2})),
        false,
        None,
        &fx,
    );
    assert!(matches!(r, Err(Error::Denied(_))), "{r:?}");
    assert!(c.restore_point(&rp_id('a').to_hex(), None).is_ok());
    let fx = TaskEffects {
        removed_restore_points: vec![rp_id('a')],
        ..Default::default()
    };
    let st = c
        .finish_task_leased(
            t.id,
            Some(&lease),
            Ok(serde_json::json!({"removed": 1})),
            false,
            None,
            &fx,
        )
        .unwrap();
    assert_eq!(st, TaskState::Succeeded);
    assert!(matches!(
        c.restore_point(&rp_id('a').to_hex(), None),
        Err(Error::NotFound(_))
    ));
    assert!(c.restore_point(&rp_id('b').to_hex(), None).is_ok());
}
