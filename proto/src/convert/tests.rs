use arca_model::ids::{ExportId, RestorePointId};
use arca_model::task::{
    BackupParams, CommitExportParams, Confinement, ForgetParams, GcParams, PruneParams,
    RestoreParams, Retention, TaskSpec, VerifyParams,
};
use arca_model::task_result::{
    AffectedSnapshot, BackupResult, CommitExportResult, DamagedBlob, ForgetResult, GcResult,
    PruneResult, RestoreResult, TaskResult, TreeRestore, VerifyReport, VerifyResult,
};
use prost::Message;

use super::*;

fn ds() -> DatastoreRef {
    DatastoreRef {
        id: DatastoreId(3),
        name: "alpha/default".into(),
        path: "/var/lib/arca/datastores/default".into(),
    }
}

fn rp(c: char) -> RestorePointId {
    c.to_string().repeat(64).parse().unwrap()
}

fn confine() -> Confinement {
    Confinement {
        node: "alpha".into(),
        source_roots: vec!["/srv".into()],
        restore_roots: vec![],
        allow_block_devices: true,
        data_dir: "/var/lib/arca".into(),
        datastores: vec!["/var/lib/arca/datastores/default".into()],
    }
}

/// Every kind, with every optional field set and unset.
fn every_spec() -> Vec<TaskSpec> {
    vec![
        TaskSpec::Backup(BackupParams::default()),
        TaskSpec::Backup(BackupParams {
            confine: Some(confine()),
            source_restore_points: Some(vec![rp('a'), rp('b')]),
            protected: Some(vec![rp('f')]),
        }),
        // An empty list is not an absent one.
        TaskSpec::Backup(BackupParams {
            confine: Some(Confinement::default()),
            source_restore_points: Some(vec![]),
            protected: None,
        }),
        TaskSpec::Restore(RestoreParams {
            restore_point: rp('c'),
            target: "/srv/restores/x".into(),
            path: None,
            overwrite: false,
            special_files: false,
            confine: None,
            import: None,
        }),
        TaskSpec::Restore(RestoreParams {
            restore_point: rp('c'),
            target: "/dev/vdb".into(),
            path: Some("etc/hosts".into()),
            overwrite: true,
            special_files: true,
            confine: Some(confine()),
            import: Some(arca_model::VmImport {
                hypervisor_id: arca_model::HypervisorId(3),
                name: Some("web-restored".into()),
                dir: "/var/lib/libvirt/images".into(),
                format: "raw".into(),
                start: true,
            }),
        }),
        TaskSpec::Verify(VerifyParams::default()),
        TaskSpec::Verify(VerifyParams {
            all: true,
            read_data_percent: Some(12.5),
            restore_points: None,
            verify_max_age_days: None,
        }),
        TaskSpec::Verify(VerifyParams {
            all: false,
            read_data_percent: None,
            restore_points: Some(vec![]),
            verify_max_age_days: Some(30),
        }),
        TaskSpec::Prune(PruneParams {
            retention: Retention {
                keep_last: 2,
                keep_daily: 7,
                ..Default::default()
            },
            source: "web".into(),
            source_restore_points: Some(vec![rp('d')]),
            protected: Some(vec![]),
        }),
        TaskSpec::Prune(PruneParams::default()),
        TaskSpec::Gc(GcParams::default()),
        TaskSpec::Gc(GcParams {
            grace_seconds: Some(0),
        }),
        TaskSpec::CommitExport(CommitExportParams {
            export: ExportId(4),
            restore_point: rp('e'),
            source: String::new(),
        }),
        TaskSpec::Forget(ForgetParams {
            restore_points: vec![rp('a'), rp('b')],
            protected: Some(vec![rp('b')]),
        }),
        TaskSpec::Forget(ForgetParams::default()),
    ]
}

fn leased(spec: TaskSpec) -> Leased {
    let source = catalog::Source {
        id: SourceId(5),
        kind: SourceKind::Image,
        name: "web".into(),
        path: "/srv/www".into(),
        tags: vec!["prod".into()],
        project_id: ProjectId(1),
        node_id: NodeId(9),
        policy_id: Some(PolicyId(4)),
        settings: Value::Null,
        assigned_by: AssignedBy::None,
        created_at: 0,
    };
    Leased {
        task: LeasedTask {
            id: TaskId(7),
            attempt: 2,
            max_attempts: 3,
            project_id: ProjectId(1),
            policy_id: Some(PolicyId(4)),
            source_id: Some(SourceId(5)),
            spec,
        },
        source: Some(source),
        retention: Some(Retention {
            keep_last: 3,
            keep_yearly: 1,
            ..Default::default()
        }),
        datastore: Some(ds()),
        hypervisor: Some(crate::HypervisorAccess {
            id: 3,
            address: "kvm1:2222".into(),
            user: "root".into(),
            private_key: b"-----BEGIN OPENSSH PRIVATE KEY-----".to_vec(),
            host_key: "SHA256:abc".into(),
        }),
        hooks: Some(arca_model::api::VmHooks {
            pre: vec![vec!["virsh".into(), "domfsfreeze".into(), "web 1".into()]],
            post: vec![vec!["/bin/true".into()]],
            on_pre_failure: arca_model::api::OnPreFailure::CrashConsistent,
        }),
    }
}

#[test]
fn every_task_spec_crosses_the_wire_unchanged() {
    for spec in every_spec() {
        let l = leased(spec.clone());
        let wire = leased_to_pb(&l).encode_to_vec();
        let back = leased_from_pb(pb::TaskSpec::decode(&wire[..]).unwrap(), NodeId(9)).unwrap();
        assert_eq!(back.task, l.task, "{spec:?}");
        assert_eq!(back.retention, l.retention);
        assert_eq!(back.datastore, Some(ds()));
        let s = back.source.unwrap();
        assert_eq!(
            (s.id, s.kind, s.node_id),
            (SourceId(5), SourceKind::Image, NodeId(9))
        );
        assert_eq!(
            (s.tags, s.policy_id),
            (vec!["prod".to_string()], Some(PolicyId(4)))
        );
        let h = back.hypervisor.unwrap();
        assert_eq!(
            (
                h.id,
                h.address.as_str(),
                h.user.as_str(),
                h.host_key.as_str()
            ),
            (3, "kvm1:2222", "root", "SHA256:abc")
        );
        assert_eq!(h.private_key, b"-----BEGIN OPENSSH PRIVATE KEY-----");
        // The key never shows in a debug print (a log line).
        assert!(!format!("{h:?}").contains("PRIVATE"));
        // The pre/post commands arrive as argv arrays, spaces kept.
        assert_eq!(back.hooks, l.hooks);
    }
    // No source, no retention, no datastore (a gc, say).
    let l = Leased {
        source: None,
        retention: None,
        datastore: None,
        hypervisor: None,
        hooks: None,
        ..leased(TaskSpec::Gc(GcParams::default()))
    };
    let back = leased_from_pb(leased_to_pb(&l), NodeId(9)).unwrap();
    assert_eq!(back.task.source_id, None);
    assert!(back.source.is_none() && back.retention.is_none() && back.datastore.is_none());
    assert!(back.hypervisor.is_none());
}

#[test]
fn a_task_the_node_cannot_read_is_an_error_not_a_panic() {
    let good = leased_to_pb(&leased(TaskSpec::Gc(GcParams::default())));
    let no_params = pb::TaskSpec {
        params: None,
        ..good.clone()
    };
    let e = leased_from_pb(no_params, NodeId(9)).unwrap_err();
    assert!(e.starts_with("a task without parameters"), "{e}");

    let mut bad_kind = good.clone();
    bad_kind.source.as_mut().unwrap().kind = 42;
    assert_eq!(
        leased_from_pb(bad_kind, NodeId(9)).unwrap_err(),
        "task source: unknown source kind 42"
    );
    let mut unspecified = good.clone();
    unspecified.source.as_mut().unwrap().kind = 0;
    assert_eq!(
        leased_from_pb(unspecified, NodeId(9)).unwrap_err(),
        "task source: source kind is unspecified"
    );

    let restore = pb::TaskSpec {
        params: Some(pb::task_spec::Params::Restore(pb::RestoreParams {
            restore_point: "abc".into(),
            target: "/t".into(),
            ..Default::default()
        })),
        ..good.clone()
    };
    let e = leased_from_pb(restore, NodeId(9)).unwrap_err();
    assert!(e.starts_with("restore restore_point: "), "{e}");

    let forget = pb::TaskSpec {
        params: Some(pb::task_spec::Params::Forget(pb::ForgetParams {
            restore_points: vec!["xyz".into()],
            protected: None,
        })),
        ..good.clone()
    };
    let e = leased_from_pb(forget, NodeId(9)).unwrap_err();
    assert!(e.starts_with("forget restore_points: "), "{e}");

    let prune = pb::TaskSpec {
        params: Some(pb::task_spec::Params::Prune(pb::PruneParams::default())),
        ..good
    };
    assert_eq!(
        leased_from_pb(prune, NodeId(9)).unwrap_err(),
        "a prune task without retention"
    );
}

fn every_result() -> Vec<TaskResult> {
    vec![
        TaskResult::Backup(BackupResult {
            snapshot: rp('a'),
            bytes_read: 10,
            pruned: 1,
            bytes_total: 20,
            bytes_added: 5,
            files: 2,
            duration_s: 0.5,
            mode: "incremental".into(),
            warnings: 3,
            consistency: Some(arca_model::api::Consistency::Application),
        }),
        TaskResult::Restore(RestoreResult {
            restore_point: rp('b'),
            target: "/t/disk.img".into(),
            bytes: 4096,
            tree: None,
        }),
        TaskResult::Restore(RestoreResult {
            restore_point: rp('b'),
            target: "/t".into(),
            bytes: 4096,
            tree: Some(TreeRestore {
                files: 3,
                warnings: vec!["x: denied".into()],
                devices_skipped: 1,
                privileges_dropped: 2,
            }),
        }),
        TaskResult::Verify(VerifyResult {
            restore_points_checked: 0,
            note: Some("nothing due".into()),
            report: None,
        }),
        TaskResult::Verify(VerifyResult {
            restore_points_checked: 1,
            note: None,
            report: Some(VerifyReport {
                packs_total: 1,
                packs_read: 1,
                blobs_read: 9,
                bytes_read: 900,
                snapshots_checked: 1,
                damaged_blobs: vec![DamagedBlob {
                    id: "c".into(),
                    kind: "data".into(),
                    pack: "p".into(),
                    reason: "bad".into(),
                }],
                damaged_packs: vec!["p".into()],
                unreadable_snapshots: vec!["s: gone".into()],
                affected_snapshots: vec![AffectedSnapshot {
                    id: "s".into(),
                    source: "web".into(),
                    time: "t".into(),
                    damaged_refs: 2,
                }],
                unindexed_packs: vec!["q".into()],
                checked_snapshots: vec!["s".into()],
                quarantined_blobs: 1,
            }),
        }),
        TaskResult::Prune(PruneResult { removed: 4 }),
        TaskResult::Gc(GcResult {
            snapshots: 1,
            packs_deleted: 2,
            bytes_freed: 3,
            warnings: vec!["w".into()],
            damaged_snapshots: vec!["d".into()],
            ..Default::default()
        }),
        TaskResult::CommitExport(CommitExportResult {
            restore_point: rp('f'),
            bytes_added: 7,
        }),
        TaskResult::Forget(ForgetResult { removed: 2 }),
    ]
}

#[test]
fn every_result_crosses_the_wire_unchanged() {
    for r in every_result() {
        let f = Finished {
            outcome: Ok(r.clone()),
            cancelled: false,
            effects: Default::default(),
        };
        let wire = finished_to_pb(TaskId(7), 2, f).encode_to_vec();
        let req = pb::FinishRequest::decode(&wire[..]).unwrap();
        assert!(req.ok && req.error.is_empty());
        let back = outcome_from_pb(req.ok, req.result, req.error).unwrap();
        assert_eq!(back.unwrap(), r);
    }
    let failed = finished_to_pb(
        TaskId(7),
        2,
        Finished {
            outcome: Err("disk full".into()),
            cancelled: false,
            effects: Default::default(),
        },
    );
    assert!(failed.result.is_none());
    assert_eq!(
        outcome_from_pb(failed.ok, failed.result, failed.error).unwrap(),
        Err("disk full".to_string())
    );
}

#[test]
fn a_result_the_server_cannot_read_is_an_error_not_a_panic() {
    let e = outcome_from_pb(true, None, String::new()).unwrap_err();
    assert_eq!(e, "a succeeded task without its result");
    let r = pb::finish_request::Result::Prune(pb::PruneResult { removed: 1 });
    assert!(outcome_from_pb(false, Some(r), "x".into()).is_err());
    let bad = pb::finish_request::Result::CommitExport(pb::CommitExportResult {
        restore_point: "zz".into(),
        bytes_added: 1,
    });
    let e = outcome_from_pb(true, Some(bad), String::new()).unwrap_err();
    assert!(e.starts_with("commit-export result restore_point: "), "{e}");
}

#[test]
fn enums_cross_the_wire_and_unknown_values_are_errors() {
    for l in LogLevel::ALL {
        assert_eq!(log_level_from_pb(log_level_to_pb(*l) as i32).unwrap(), *l);
    }
    assert_eq!(
        log_level_from_pb(0).unwrap_err(),
        "log level is unspecified"
    );
    assert_eq!(log_level_from_pb(99).unwrap_err(), "unknown log level 99");
    for s in TaskState::ALL {
        assert_eq!(task_state_from_pb(task_state_to_pb(*s) as i32).unwrap(), *s);
    }
    assert_eq!(task_state_from_pb(-1).unwrap_err(), "unknown task state -1");
    assert!(task_state_from_pb(0).is_err());
}

#[test]
fn exports_and_effects_cross_the_wire_unchanged() {
    use ExportOnStop::{Commit, Discard};
    use ExportProtocol::{Iscsi, Nbd, Nfs};
    use ExportState::{Active, Expired, Failed, Starting, Stopped};
    for (protocol, state, on_stop) in [
        (Nbd, Active, Commit),
        (Iscsi, Starting, Discard),
        (Nfs, Active, Discard),
        (Nbd, Expired, Discard),
        (Nbd, Failed, Discard),
        (Iscsi, Stopped, Commit),
    ] {
        let e = ExportSpec {
            id: ExportId(1),
            restore_point: rp('a'),
            datastore: ds(),
            protocol,
            writable: true,
            name: "export-1".into(),
            state,
            on_stop,
            secret: "AbCdEfGh12345678".into(),
            allow: if protocol == Nfs {
                vec!["10.0.0.0/8".into(), "::1/128".into()]
            } else {
                Vec::new()
            },
            source: "web/01".into(),
        };
        assert_eq!(export_from_pb(export_to_pb(e.clone())).unwrap(), e);
        assert!(!format!("{e:?}").contains("AbCdEfGh12345678"));
    }
    let e = export_to_pb(ExportSpec {
        id: ExportId(1),
        restore_point: rp('a'),
        datastore: ds(),
        protocol: Nbd,
        writable: false,
        name: "export-1".into(),
        state: Active,
        on_stop: Discard,
        secret: String::new(),
        allow: Vec::new(),
        source: String::new(),
    });
    let no_ds = pb::ExportSpec {
        datastore: None,
        ..e.clone()
    };
    assert!(export_from_pb(no_ds).is_err());
    let bad_state = pb::ExportSpec {
        state: 17,
        ..e.clone()
    };
    assert_eq!(
        export_from_pb(bad_state).unwrap_err(),
        "unknown export state 17"
    );
    let no_protocol = pb::ExportSpec { protocol: 0, ..e };
    assert_eq!(
        export_from_pb(no_protocol).unwrap_err(),
        "export protocol is unspecified"
    );

    let f = Finished {
        outcome: Err("interrupted by shutdown".into()),
        cancelled: true,
        effects: catalog::TaskEffects {
            restore_point: Some(catalog::RestorePoint {
                id: rp('c'),
                datastore_id: DatastoreId(3),
                kind: SourceKind::Files,
                ..Default::default()
            }),
            datastore_bytes_used: Some((DatastoreId(3), 100)),
            verify: Some(VerifyEffects {
                checked: vec![rp('a')],
                damaged: vec![(rp('a'), "bad".into())],
            }),
            ..Default::default()
        },
    };
    let r = finished_to_pb(TaskId(7), 2, f);
    assert!(!r.ok && r.cancelled && r.error == "interrupted by shutdown");
    assert_eq!((r.task_id, r.attempt), (7, 2));
    assert_eq!(
        (r.datastore_id, r.datastore_bytes_used),
        (Some(3), Some(100))
    );
    let v = verify_from_pb(r.verify.clone().unwrap()).unwrap();
    assert_eq!(v.damaged, vec![(rp('a'), "bad".to_string())]);
    let bad = pb::VerifyEffects {
        checked: vec!["a".into()],
        damaged: vec![],
    };
    assert!(verify_from_pb(bad)
        .unwrap_err()
        .starts_with("restore point id"));
    let p = r.restore_point.unwrap();
    let back = restore_point_from_pb(p.clone(), TaskId(7)).unwrap();
    assert_eq!(
        (back.id, back.kind, back.task_id),
        (rp('c'), SourceKind::Files, Some(TaskId(7)))
    );
    let bad = pb::RestorePoint {
        kind: 9,
        ..p.clone()
    };
    assert_eq!(
        restore_point_from_pb(bad, TaskId(7)).unwrap_err(),
        "restore point: unknown source kind 9"
    );
    let bad = pb::RestorePoint {
        id: "zz".into(),
        ..p
    };
    assert!(restore_point_from_pb(bad, TaskId(7))
        .unwrap_err()
        .starts_with("restore point id"));
}

/// What the server does with a message from a node, as the fuzz target
/// `node_protocol` does it: decode, then convert. Never a panic.
fn decode_finish(bytes: &[u8]) -> Result<(), String> {
    let r = pb::FinishRequest::decode(bytes).map_err(|e| e.to_string())?;
    let _ = outcome_from_pb(r.ok, r.result, r.error)?;
    if let Some(rp) = r.restore_point {
        restore_point_from_pb(rp, TaskId(1))?;
    }
    if let Some(v) = r.verify {
        verify_from_pb(v)?;
    }
    Ok(())
}

#[test]
fn damaged_messages_are_refused_not_a_panic() {
    let mut f = finished_to_pb(
        TaskId(7),
        2,
        Finished {
            outcome: Ok(every_result().swap_remove(4)),
            cancelled: false,
            effects: Default::default(),
        },
    );
    f.restore_point = Some(pb::RestorePoint {
        id: "ab".repeat(32),
        kind: 1,
        ..Default::default()
    });
    let wire = f.encode_to_vec();
    assert_eq!(decode_finish(&wire), Ok(()));
    // Every truncation, and every byte changed in a few ways.
    let mut refused = 0;
    for n in 0..wire.len() {
        refused += decode_finish(&wire[..n]).is_err() as usize;
        for x in [0x01u8, 0x80, 0xff] {
            let mut w = wire.clone();
            w[n] ^= x;
            refused += decode_finish(&w).is_err() as usize;
        }
    }
    assert!(refused > wire.len(), "{refused} of {} refused", wire.len());
}

/// The fuzz target's seeds (fuzz/seeds/node_protocol: the first byte
/// picks the message, as in fuzz/fuzz_targets/node_protocol.rs) are valid
/// messages that convert, so that fuzzing starts from real ones.
#[test]
fn the_fuzz_seeds_are_messages_that_convert() {
    // The manifest directory at run time (cargo sets it for the test): a
    // binary built in another checkout sharing the target directory
    // would carry that checkout's compile-time path.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    let dir = manifest.join("../fuzz/seeds/node_protocol");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let (call, data) = bytes.split_first().unwrap();
        match call % 13 {
            0 => drop(pb::RegisterRequest::decode(data).unwrap()),
            5 => {
                let r = pb::LogRequest::decode(data).unwrap();
                assert_eq!(log_level_from_pb(r.level), Ok(LogLevel::Info));
            }
            6 => assert_eq!(decode_finish(data), Ok(()), "{}", path.display()),
            9 => {
                let t = pb::TaskSpec::decode(data).unwrap();
                leased_from_pb(t, NodeId(1)).unwrap();
            }
            11 => {
                let a = pb::AnswerRequest::decode(data).unwrap();
                let (_, r) = answer_from_pb(a).unwrap();
                assert!(r.is_ok(), "{}: {r:?}", path.display());
            }
            12 => {
                let q = pb::Query::decode(data).unwrap();
                let (_, r) = query_from_pb(q);
                assert!(r.is_ok(), "{}: {r:?}", path.display());
            }
            c => panic!("{}: call {c} has no seed check", path.display()),
        }
        seen += 1;
    }
    assert!(seen >= 13, "{seen} seeds in {}", dir.display());
}
