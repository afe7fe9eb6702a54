//! Unit tests of the export host (node/src/exports.rs).

use super::*;
use std::sync::mpsc;

/// A writable disk whose writes wait for a signal, logging events.
struct Slow {
    go: Mutex<mpsc::Receiver<()>>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl BlockSource for Slow {
    fn size(&self) -> u64 {
        4096
    }
    fn read_at(&self, _: u64, buf: &mut [u8]) -> RepoResult<()> {
        buf.fill(0);
        Ok(())
    }
    fn extents(&self, _: u64, len: u64) -> RepoResult<Vec<Extent>> {
        Ok(vec![Extent { len, hole: true }])
    }
    fn writable(&self) -> bool {
        true
    }
    fn write_at(&self, _: u64, _: &[u8]) -> RepoResult<()> {
        self.log.lock().unwrap().push("write started");
        self.go.lock().unwrap().recv().unwrap();
        self.log.lock().unwrap().push("write done");
        Ok(())
    }
    fn flush(&self) -> RepoResult<()> {
        self.log.lock().unwrap().push("flush");
        Ok(())
    }
}

fn served(id: i64, secret: &str, source: Arc<dyn BlockSource>) -> Served {
    Served {
        spec: ExportSpec {
            id: ExportId(id),
            restore_point: "ab".repeat(32).parse().unwrap(),
            datastore: DatastoreRef {
                id: arca_catalog::DatastoreId(1),
                name: "default".into(),
                path: "/ds".into(),
            },
            protocol: ExportProtocol::Nbd,
            writable: true,
            name: format!("export-{id}"),
            state: ExportState::Active,
            on_stop: ExportOnStop::Commit,
            secret: secret.into(),
            allow: Vec::new(),
            source: String::new(),
        },
        description: String::new(),
        source: Arc::new(Revocable {
            size: source.size(),
            writable: true,
            inner: RwLock::new(Some(source)),
        }),
    }
}

#[test]
fn revoking_waits_for_writes_in_flight() {
    let (tx, rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let slow: Arc<dyn BlockSource> = Arc::new(Slow {
        go: Mutex::new(rx),
        log: log.clone(),
    });
    let s = served(1, "x", slow);
    let src = s.source.clone();
    let writer = std::thread::spawn(move || src.write_at(0, b"data"));
    while log.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    // Revoke (and flush) while the write is in flight; let the write
    // finish a moment later.
    let src = s.source.clone();
    let stopper = std::thread::spawn(move || src.revoke().map(|s| s.flush()));
    std::thread::sleep(Duration::from_millis(100));
    tx.send(()).unwrap();
    writer.join().unwrap().unwrap();
    stopper.join().unwrap().unwrap().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["write started", "write done", "flush"]
    );
    // After revoking, requests fail.
    assert!(s.source.read_at(0, &mut [0; 8]).is_err());
}

/// A commit waits for its export to stop being served: woken when it
/// stops, not by polling; and a host stopped for a shutdown serves
/// nothing, not even what the catalog still lists.
#[test]
fn waits_for_an_export_to_stop_are_woken_and_a_stopped_host_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(ExportHost::new(
        Listeners::default(),
        dir.path().to_path_buf(),
        arca_frontends::chunk_cache(1 << 20),
        Arc::new(Trees::new(arca_frontends::chunk_cache(1 << 20), 4)),
        |_| Err("no datastore".to_string()),
    ));
    let disk: Arc<dyn BlockSource> = Arc::new(arca_frontends::reader::MemDisk {
        data: vec![1; 4096],
    });
    let s = served(7, "AbCdEfGh12345678", disk);
    let spec = s.spec.clone();
    host.nbd
        .by_name
        .write()
        .unwrap()
        .insert(spec.name.clone(), s);
    assert!(host.serves(ExportId(7)));
    // Not stopped: the wait gives up after its timeout.
    assert!(!host.wait_unserved(ExportId(7), Duration::from_millis(50)));
    let waiter = {
        let h = host.clone();
        std::thread::spawn(move || h.wait_unserved(ExportId(7), Duration::from_secs(600)))
    };
    assert_eq!(host.stop(), 1);
    assert!(waiter.join().unwrap());
    assert!(!host.serves(ExportId(7)) && host.is_stopped());
    // The catalog's list is not served again after the stop.
    assert!(host.reconcile(&[spec]).is_empty());
    assert!(!host.serves(ExportId(7)));
    assert!(host.nbd.open("export-7-AbCdEfGh12345678").is_none());
}

/// NFS exports that cannot be served fail with the reason: no NFS
/// listener, a writable one, a bad or empty allow list, an unreadable
/// datastore. Nothing is served, held or shown.
#[test]
fn nfs_exports_that_cannot_be_served_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let host = |nfs: Option<SocketAddr>| {
        ExportHost::new(
            Listeners {
                nfs,
                ..Default::default()
            },
            dir.path().to_path_buf(),
            arca_frontends::chunk_cache(1 << 20),
            Arc::new(Trees::new(arca_frontends::chunk_cache(1 << 20), 4)),
            |_| Err("no datastore".to_string()),
        )
    };
    let spec = |writable: bool, allow: &[&str]| {
        let mut s = served(
            3,
            "",
            Arc::new(arca_frontends::reader::MemDisk { data: vec![] }),
        )
        .spec;
        s.protocol = ExportProtocol::Nfs;
        s.state = ExportState::Starting;
        s.writable = writable;
        s.allow = allow.iter().map(|a| a.to_string()).collect();
        s
    };
    let error = |h: &ExportHost, s: ExportSpec| {
        let r = h.reconcile(&[s]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(h.held().is_empty() && !h.serves(ExportId(3)));
        r[0].1.clone().unwrap_err()
    };
    let off = host(None);
    let e = error(&off, spec(false, &["10.0.0.0/8"]));
    assert!(e.contains("--nfs-listen"), "{e}");
    let on = host(Some("127.0.0.1:2049".parse().unwrap()));
    let e = error(&on, spec(true, &["10.0.0.0/8"]));
    assert!(e.contains("read-only"), "{e}");
    let e = error(&on, spec(false, &["10.0.0.0/33"]));
    assert!(e.contains("10.0.0.0/33"), "{e}");
    let e = error(&on, spec(false, &[]));
    assert!(e.contains("--allow"), "{e}");
    let e = error(&on, spec(false, &["10.0.0.0/8"]));
    assert_eq!(e, "no datastore");
    assert!(!arca_nfs::Namespace::admits(
        &*on.nfs,
        "10.1.2.3".parse().unwrap()
    ));
}

#[test]
fn tables_open_exports_only_with_their_credentials() {
    let disk = || -> Arc<dyn BlockSource> {
        Arc::new(arca_frontends::reader::MemDisk {
            data: vec![1; 4096],
        })
    };
    let secret = "AbCdEfGh12345678";
    let nbd = Table::new(Naming::SecretInName);
    nbd.by_name
        .write()
        .unwrap()
        .insert("export-7".into(), served(7, secret, disk()));
    assert!(nbd.private() && nbd.names().is_empty());
    assert!(nbd.open(&format!("export-7-{secret}")).is_some());
    for bad in [
        "export-7".to_string(),
        "export-7-".to_string(),
        format!("export-7-{secret}0"),
        format!("export-7-{}", &secret[..15]),
        format!("export-8-{secret}"),
        String::new(),
    ] {
        assert!(nbd.open(&bad).is_none(), "{bad}");
        assert!(nbd.description(&bad).is_none(), "{bad}");
    }
    assert_eq!(
        nbd.label(&format!("export-7-{secret}")),
        "export-7-<secret>"
    );
    assert!(nbd.chap("export-7").is_none() && nbd.by_target_name("x").is_none());

    let iscsi = Table::new(Naming::Chap);
    iscsi
        .by_name
        .write()
        .unwrap()
        .insert("export-7".into(), served(7, secret, disk()));
    assert!(iscsi.private() && iscsi.names().is_empty());
    assert_eq!(
        iscsi
            .by_target_name("iqn.2026-11.io.arca:export-7")
            .as_deref(),
        Some("export-7")
    );
    let c = iscsi.chap("export-7").unwrap();
    assert_eq!((c.user.as_str(), c.secret.as_str()), ("export-7", secret));
    assert!(!format!("{c:?}").contains(secret));
    assert_eq!(iscsi.by_chap_user("export-7").as_deref(), Some("export-7"));
    assert!(iscsi.by_chap_user("export-8").is_none());
}
