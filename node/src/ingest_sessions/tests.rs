//! Upload sessions against a real datastore: what an agent may and may
//! not make the datastore store or list.

use super::*;
use arca_repo::{Encryption, OpenOptions};

const CS: u32 = 64 * 1024;

fn datastore(dir: &std::path::Path) -> Arc<Datastore> {
    let p = dir.join("ds");
    Datastore::init(&p, Encryption::None, None, |c| c.image_chunk_size = CS).unwrap();
    Datastore::open(&p, &OpenOptions::default()).unwrap()
}

/// Incompressible bytes, different for each seed.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn upload(ds: &Datastore, data: &[u8]) -> Upload {
    Upload {
        id: ds.keys().chunk_id(data),
        length: data.len() as u32,
        compressed: zstd::bulk::compress(data, 3).unwrap(),
    }
}

fn put_all(s: &Session<()>, ups: Vec<Upload>) -> Result<u64> {
    let mut it = ups.into_iter();
    s.put(|| Ok::<_, String>(it.next()))
}

/// The disk: 5 full blocks (block 2 all zero) and a short last one.
fn disk() -> Vec<u8> {
    let mut d = noise(5 * CS as usize + 1000, 1);
    d[2 * CS as usize..3 * CS as usize].fill(0);
    d
}

fn spec(d: &[u8]) -> DiskSpec {
    DiskSpec {
        name: "vda".into(),
        size: d.len() as u64,
    }
}

fn table(d: &[u8], ids: Vec<ChunkId>) -> DiskTable {
    DiskTable {
        spec: spec(d),
        ids,
        format: "raw".into(),
        ..Default::default()
    }
}

/// The agent's side, by hand: hash the blocks, ask Have, upload the
/// missing ones, commit the table.
fn backup(
    sessions: &IngestSessions<()>,
    ds: &Arc<Datastore>,
    d: &[u8],
    parent: Option<Snapshot>,
) -> (Committed, usize) {
    let (s, begun) = sessions
        .begin(ds.clone(), "vm", vec![spec(d)], parent, ())
        .unwrap();
    assert_eq!(begun.chunk_size, CS);
    let blocks: Vec<&[u8]> = d.chunks(CS as usize).collect();
    let ids: Vec<ChunkId> = blocks
        .iter()
        .map(|b| {
            if b.iter().all(|x| *x == 0) {
                ChunkId::default()
            } else {
                ChunkId(*blake3::keyed_hash(&begun.id_key, b).as_bytes())
            }
        })
        .collect();
    let parent_ids: std::collections::HashSet<ChunkId> = begun
        .parent_tables
        .iter()
        .flat_map(|t| t.ids.iter().copied())
        .collect();
    let ask: Vec<usize> = (0..ids.len())
        .filter(|i| !ids[*i].is_zero() && !parent_ids.contains(&ids[*i]))
        .collect();
    let missing = s
        .have(&ask.iter().map(|i| ids[*i]).collect::<Vec<_>>())
        .unwrap();
    let ups: Vec<Upload> = missing
        .iter()
        .map(|m| upload(ds, blocks[ask[*m as usize]]))
        .collect();
    let sent = ups.len();
    assert_eq!(put_all(&s, ups).unwrap(), sent as u64);
    let c = s
        .commit(vec![table(d, ids)], &CommitInfo::default())
        .unwrap();
    sessions.remove(&s.id);
    (c, sent)
}

#[test]
fn upload_commit_restore_then_dedup_against_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let d = disk();
    let (first, sent) = backup(&sessions, &ds, &d, None);
    assert_eq!(sent, 5, "5 blocks hold data (one is a hole)");
    let snap = ds.load_snapshot(&first.snapshot).unwrap();
    assert_eq!(snap.manifest.disks[0].holes, 1);
    let target = dir.path().join("restored");
    arca_ingest::image::restore(
        &ds,
        &snap,
        &target,
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), d);

    // Again, with the first as parent: nothing is sent, nothing added.
    let (second, sent) = backup(&sessions, &ds, &d, Some(snap));
    assert_eq!(sent, 0);
    assert_eq!(second.bytes_added, 0);
    let snap2 = ds.load_snapshot(&second.snapshot).unwrap();
    assert_eq!(snap2.manifest.parent, first.snapshot.0.to_vec());
}

#[test]
fn a_chunk_that_does_not_match_its_id_is_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let d = disk();
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    let good = noise(CS as usize, 7);
    let evil = noise(CS as usize, 8);
    let mut up = upload(&ds, &evil);
    up.id = ds.keys().chunk_id(&good);
    let err = put_all(&s, vec![up]).unwrap_err();
    assert!(
        matches!(&err, IngestError::Invalid(m) if m.contains("does not match its bytes")),
        "{err:?}"
    );
    s.abort();
    assert!(ds
        .index()
        .get(&ds.keys().chunk_id(&evil))
        .unwrap()
        .is_none());
    assert!(ds
        .index()
        .get(&ds.keys().chunk_id(&good))
        .unwrap()
        .is_none());
}

#[test]
fn bad_uploads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let d = disk();
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    let data = noise(CS as usize, 3);
    // Longer than declared (a zip bomb stops at the declared length).
    let mut up = upload(&ds, &data);
    up.length = 100;
    assert!(matches!(
        put_all(&s, vec![up]),
        Err(IngestError::Invalid(_))
    ));
    // Longer than the chunk size.
    let big = noise(CS as usize + 1, 3);
    assert!(matches!(
        put_all(&s, vec![upload(&ds, &big)]),
        Err(IngestError::Invalid(_))
    ));
    // Not zstd.
    let mut up = upload(&ds, &data);
    up.compressed = b"not zstd at all".to_vec();
    assert!(matches!(
        put_all(&s, vec![up]),
        Err(IngestError::Invalid(_))
    ));
    // A broken stream.
    let r = s.put(|| Err::<Option<Upload>, _>("connection reset"));
    assert!(matches!(r, Err(IngestError::State(m)) if m.contains("connection reset")));
}

#[test]
fn commit_refuses_chunks_the_datastore_was_not_shown_to_hold() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let d = disk();
    let blocks: Vec<&[u8]> = d.chunks(CS as usize).collect();
    let ids: Vec<ChunkId> = blocks.iter().map(|b| ds.keys().chunk_id(b)).collect();

    // Never uploaded.
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    let err = s
        .commit(vec![table(&d, ids.clone())], &CommitInfo::default())
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::Invalid(m) if m.contains("neither uploaded")),
        "{err:?}"
    );

    // A full block's chunk listed as the short last block.
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    put_all(&s, vec![upload(&ds, blocks[0])]).unwrap();
    let mut t = vec![ChunkId::default(); blocks.len()];
    t[5] = ids[0];
    let err = s
        .commit(vec![table(&d, t)], &CommitInfo::default())
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::Invalid(m) if m.contains("holds 65536 bytes")),
        "{err:?}"
    );

    // Tables of other disks than the session's.
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    let other = DiskSpec {
        name: "vdb".into(),
        size: d.len() as u64,
    };
    assert!(matches!(
        s.commit(
            vec![DiskTable {
                spec: other,
                ids,
                ..Default::default()
            }],
            &CommitInfo::default()
        ),
        Err(IngestError::Invalid(_))
    ));
    assert!(
        ds.snapshots().unwrap().is_empty(),
        "no restore point was written"
    );
}

#[test]
fn sessions_are_limited_and_named_disks_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let two = vec![spec(&[1]), spec(&[1])];
    assert!(matches!(
        sessions.begin(ds.clone(), "vm", two, None, ()),
        Err(IngestError::Invalid(_))
    ));
    let slash = vec![DiskSpec {
        name: "../x".into(),
        size: 1,
    }];
    assert!(matches!(
        sessions.begin(ds.clone(), "vm", slash, None, ()),
        Err(IngestError::Invalid(_))
    ));
    assert!(matches!(
        sessions.begin(ds.clone(), "vm", Vec::new(), None, ()),
        Err(IngestError::Invalid(_))
    ));
    let many: Vec<DiskSpec> = (0..=MAX_DISKS)
        .map(|i| DiskSpec {
            name: format!("d{i}"),
            size: 1,
        })
        .collect();
    assert!(matches!(
        sessions.begin(ds.clone(), "vm", many, None, ()),
        Err(IngestError::Invalid(_))
    ));
    let mut open = Vec::new();
    for _ in 0..MAX_SESSIONS {
        open.push(
            sessions
                .begin(ds.clone(), "vm", vec![spec(&[1])], None, ())
                .unwrap()
                .0,
        );
    }
    assert!(matches!(
        sessions.begin(ds.clone(), "vm", vec![spec(&[1])], None, ()),
        Err(IngestError::State(_))
    ));
    let gone = sessions.remove(&open[0].id).unwrap();
    gone.abort();
    assert!(matches!(
        sessions.get(&gone.id),
        Err(IngestError::NotFound(_))
    ));
    assert!(sessions
        .begin(ds.clone(), "vm", vec![spec(&[1])], None, ())
        .is_ok());
}

/// Ending a session while its upload waits for the agent never blocks
/// (the agent may itself wait for a `Have` of the session): the upload
/// stops at its next chunk, and later calls are refused.
#[test]
fn abort_during_an_upload_does_not_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let ds = datastore(dir.path());
    let sessions = IngestSessions::default();
    let d = disk();
    let (s, _) = sessions
        .begin(ds.clone(), "vm", vec![spec(&d)], None, ())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Upload>(0);
    let up = {
        let s = s.clone();
        std::thread::spawn(move || s.put(|| Ok::<_, String>(rx.recv().ok())))
    };
    tx.send(upload(&ds, &noise(CS as usize, 1))).unwrap();
    let start = std::time::Instant::now();
    assert!(s.end());
    s.abort();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!s.end(), "ended once");
    // The upload's next chunk ends it: that is the second chunk, or the
    // first when the end came before the upload looked at it (then the
    // upload is over and nobody takes the second).
    let _ = tx.send(upload(&ds, &noise(CS as usize, 2)));
    let r = up.join().unwrap();
    assert!(
        matches!(&r, Err(IngestError::State(m)) if m.contains("has ended")),
        "{r:?}"
    );
    s.abort();
    assert!(matches!(
        s.have(&[ChunkId::default()]),
        Err(IngestError::State(_))
    ));
    assert!(matches!(
        s.commit(Vec::new(), &CommitInfo::default()),
        Err(IngestError::State(_))
    ));
}
