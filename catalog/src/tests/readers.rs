//! Reads on their own connections: they do not wait for the writer, see
//! only committed data, and an in-memory catalog still works through the
//! writer connection.

use std::sync::{mpsc, Arc, Barrier};

use super::*;
use crate::restore_points::insert_restore_point;

fn rp(i: usize, ds: DatastoreId) -> RestorePoint {
    RestorePoint {
        id: format!("{:064x}", 0xa0_0000 + i).parse().unwrap(),
        datastore_id: ds,
        source_name: "web1".into(),
        project_id: ProjectId(1),
        kind: SourceKind::Files,
        time: 1000 + i as i64,
        hostname: "h".into(),
        ..Default::default()
    }
}

fn file_catalog() -> (tempfile::TempDir, Arc<Catalog>, Datastore, Source) {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&dir.path().join("catalog.db")).unwrap();
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
    (dir, Arc::new(c), d, s)
}

#[test]
fn a_file_catalog_is_in_wal_mode_with_a_read_pool() {
    let (_dir, c, _, _) = file_catalog();
    let mode: String = c
        .db()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(c.read_connections(), db::READERS);
    // The pool's connections cannot write.
    let r = c.rd();
    assert!(r
        .execute(
            "INSERT INTO projects (name, created_at) VALUES ('x', 0)",
            []
        )
        .is_err());
    drop(r);
    let m = Catalog::open_in_memory().unwrap();
    assert_eq!(m.read_connections(), 0);
    assert_eq!(m.projects().unwrap().len(), 1);
}

/// A read issued while another thread holds the writer inside an open
/// transaction returns (with the data committed before it), instead of
/// waiting for the transaction's end. The writer commits only after the
/// read has returned, so a read that waited would never return.
#[test]
fn reads_do_not_wait_for_an_open_write_transaction() {
    let (_dir, c, d, s) = file_catalog();
    c.add_restore_point(&rp(0, d.id)).unwrap();
    let queued = c.add_task(&backup(&s, &d, None, None)).unwrap().unwrap();

    let open = Arc::new(Barrier::new(2));
    let read_done = Arc::new(Barrier::new(2));
    let writer = {
        let (c, open, read_done) = (c.clone(), open.clone(), read_done.clone());
        std::thread::spawn(move || {
            let mut db = c.db();
            let tx = db
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            for i in 1..=500 {
                insert_restore_point(&tx, &rp(i, d.id)).unwrap();
            }
            tx.execute("UPDATE tasks SET state = 'cancelled'", [])
                .unwrap();
            open.wait();
            read_done.wait();
            tx.commit().unwrap();
        })
    };
    open.wait();
    let (tx, rx) = mpsc::channel();
    {
        let (c, read_done) = (c.clone(), read_done.clone());
        std::thread::spawn(move || {
            let seen = (
                c.restore_point_count().unwrap(),
                c.tasks(None, None, 100, 0).unwrap(),
                c.task(queued.id).unwrap().state,
                c.sources().unwrap().len(),
            );
            let _ = tx.send(seen);
            read_done.wait();
        });
    }
    // Generous: only a read stuck behind the writer takes this long.
    let (count, tasks, state, sources) = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a read waited for the open write transaction");
    // The reads saw what was committed, nothing of the open transaction.
    assert_eq!(count, 1);
    assert_eq!(tasks.len(), 1);
    assert_eq!(state, TaskState::Queued);
    assert_eq!(sources, 1);
    writer.join().unwrap();
    // Once committed, every later read sees it.
    assert_eq!(c.restore_point_count().unwrap(), 501);
    assert_eq!(c.task(queued.id).unwrap().state, TaskState::Cancelled);
}

#[test]
fn many_threads_share_the_read_pool_and_see_each_commit() {
    let (_dir, c, d, _) = file_catalog();
    let threads: Vec<_> = (0..3 * db::READERS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let n = t * 100 + i;
                    c.add_restore_point(&rp(n, d.id)).unwrap();
                    // Read-your-writes across connections.
                    let id = format!("{:064x}", 0xa0_0000 + n);
                    assert_eq!(c.restore_point(&id, None).unwrap().id.to_hex(), id);
                    assert!(c.restore_point_count().unwrap() >= 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        c.restore_point_count().unwrap(),
        (3 * db::READERS * 20) as i64
    );
}

#[test]
fn an_import_is_recorded_in_batches_and_can_run_again() {
    let (_dir, c, d, _) = file_catalog();
    let all: Vec<RestorePoint> = (0..2 * IMPORT_BATCH + 7).map(|i| rp(i, d.id)).collect();
    assert_eq!(c.add_restore_points(&all).unwrap(), all.len());
    assert_eq!(c.restore_point_count().unwrap(), all.len() as i64);
    // Again: every id is listed already.
    assert_eq!(c.add_restore_points(&all).unwrap(), 0);
    // One transaction for everything, and one per restore point.
    let more: Vec<RestorePoint> = (5000..5010).map(|i| rp(i, d.id)).collect();
    assert_eq!(c.add_restore_points_in(&more[..5], usize::MAX).unwrap(), 5);
    assert_eq!(c.add_restore_points_in(&more, 1).unwrap(), 5);
    // An in-memory catalog imports the same way.
    let m = Catalog::open_in_memory().unwrap();
    let n = m.upsert_node("local", true, 2, "0.1.0").unwrap();
    let md = m.add_datastore("default", n.id, "/data/ds").unwrap();
    let some: Vec<RestorePoint> = (0..10).map(|i| rp(i, md.id)).collect();
    assert_eq!(m.add_restore_points(&some).unwrap(), 10);
}

#[test]
fn the_async_handle_runs_calls_off_the_runtime() {
    let (_dir, c, _, _) = file_catalog();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let a = AsyncCatalog::new(c.clone());
    let (names, thread) = rt.block_on(a.call(|c| {
        (
            c.sources()
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<_>>(),
            std::thread::current().id(),
        )
    }));
    assert_eq!(names, vec!["web1".to_string()]);
    // It ran on a blocking-pool thread, not on the caller's.
    assert_ne!(thread, std::thread::current().id());
}
