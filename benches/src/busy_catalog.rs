//! The busy-catalog case of `arca-control-scale` (`--busy-catalog`):
//! `GET /api/v1/tasks` latency while a long catalog write runs.
//!
//! One process, as `arca server` is: the REST API (`arca_web::app`) on
//! loopback over an on-disk catalog holding 100 sources and 10 000 tasks,
//! and one client thread that sends `GET /api/v1/tasks` (the newest 100
//! tasks) one request after the other on a kept-alive connection, timing
//! each. Every case but the first runs a writer thread beside it, and the
//! client measures until the writer is done:
//! - nothing written: a fixed number of requests, the baseline;
//! - an import as `arca_control::import_datastore` does it: one lookup of
//!   the source per source name, one `add_restore_point` (one transaction)
//!   per snapshot;
//! - an import through `Catalog::add_restore_points`: 1000 restore points
//!   per transaction;
//! - all restore points in one transaction, which holds the writer for
//!   the whole import (a "big transaction").
//!
//! The cases run twice: with the catalog's read pool, and with reads
//! through the writer connection (the catalog before the pool).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arca_catalog::{
    Catalog, DatastoreId, NewTask, ProjectId, RestorePoint, Role, RoleBinding, Source, SourceKind,
    TokenKind,
};

/// Source names of the restore points.
const SOURCES: usize = 100;
/// Tasks in the catalog (the list shows the newest 100).
const TASKS: usize = 10_000;
/// Requests of the baseline.
const IDLE_REQUESTS: usize = 2_000;

/// One case: the client's latencies and how long the write took.
pub struct Case {
    pub readers: usize,
    pub name: String,
    pub latencies_ms: Vec<f64>,
    pub write_s: Option<f64>,
}

impl Case {
    fn pct(&self, q: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    }

    /// The case as a markdown table row.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
            self.name,
            self.readers,
            self.latencies_ms.len(),
            self.pct(0.50),
            self.pct(0.99),
            self.pct(1.0),
            self.write_s
                .map_or_else(|| "–".to_string(), |s| format!("{s:.1} s")),
        )
    }
}

/// The table's header.
pub fn header(n: usize) -> String {
    format!(
        "| `GET /api/v1/tasks` (100 of {TASKS} tasks) while the catalog takes {n} restore points | read connections | requests | p50 ms | p99 ms | max ms | write |\n|---|---:|---:|---:|---:|---:|---:|"
    )
}

fn restore_point(case: usize, i: usize, n: usize, src: Option<&Source>, now: i64) -> RestorePoint {
    let name = format!("bench-src-{}", i % SOURCES);
    RestorePoint {
        // 64 hex digits: always a restore point id.
        id: format!("{:064x}", 0xb5_0000_0000u64 + (case * n + i) as u64)
            .parse()
            .unwrap_or_default(),
        datastore_id: DatastoreId(1),
        source_id: src.map(|s| s.id),
        source_name: name,
        project_id: src.map_or(ProjectId(1), |s| s.project_id),
        kind: SourceKind::Files,
        time: now - (n - i) as i64 * 60,
        bytes_total: 1 << 30,
        bytes_added: 1 << 20,
        files: 1000,
        hostname: "bench".into(),
        created_at: now,
        ..Default::default()
    }
}

/// `import_datastore`'s catalog calls for `n` snapshots.
fn import_one_by_one(c: &Catalog, case: usize, n: usize) -> Result<()> {
    let now = arca_catalog::now();
    let mut sources: HashMap<String, Option<Source>> = HashMap::new();
    for i in 0..n {
        let name = format!("bench-src-{}", i % SOURCES);
        let src = match sources.get(&name) {
            Some(s) => s.clone(),
            None => {
                let mut named = c.sources_named(&name)?;
                let s = if named.len() == 1 { named.pop() } else { None };
                sources.insert(name, s.clone());
                s
            }
        };
        c.add_restore_point(&restore_point(case, i, n, src.as_ref(), now))?;
    }
    Ok(())
}

/// The restore points of an import, built up front.
fn import_set(c: &Catalog, case: usize, n: usize) -> Result<Vec<RestorePoint>> {
    let now = arca_catalog::now();
    let by_name: HashMap<String, Source> = c
        .sources()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    Ok((0..n)
        .map(|i| {
            let src = by_name.get(&format!("bench-src-{}", i % SOURCES));
            restore_point(case, i, n, src, now)
        })
        .collect())
}

/// Send `GET url` until `stop` is set and at least `min` requests are
/// done; the latency of each, in ms.
fn client(url: &str, token: &str, stop: &AtomicBool, min: usize) -> Result<Vec<f64>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let mut out = Vec::new();
    while out.len() < min || !stop.load(Ordering::Acquire) {
        let t = Instant::now();
        let mut resp = agent
            .get(url)
            .header("authorization", &auth)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let body = resp.body_mut().read_to_vec()?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        if !resp.status().is_success() {
            bail!(
                "GET {url}: {}: {}",
                resp.status(),
                String::from_utf8_lossy(&body)
            );
        }
        if out.len() == 1 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let n = v.as_array().map_or(0, Vec::len);
            if n != 100 {
                bail!("GET {url} listed {n} tasks, not 100");
            }
        }
    }
    Ok(out)
}

/// Run the cases on a new catalog in `dir` with imports of `n` restore
/// points each, reading through `readers` read-only connections (0: through
/// the writer connection, as the catalog did before it had a read pool).
pub fn run(dir: &Path, n: usize, readers: usize) -> Result<Vec<Case>> {
    let c = Arc::new(Catalog::open_with_readers(
        &dir.join("catalog.db"),
        readers,
    )?);
    let node = c.upsert_node("bench", true, 2, "bench")?;
    let ds = c.add_datastore("default", node.id, "/nonexistent")?;
    let mut sources = Vec::new();
    for i in 0..SOURCES {
        sources.push(c.add_source(
            &format!("bench-src-{i}"),
            SourceKind::Files,
            "/nonexistent",
            node.id,
            ProjectId(1),
            &[],
            &serde_json::json!({}),
            None,
        )?);
    }
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|i| NewTask {
            project_id: ProjectId(1),
            source_id: Some(sources[i % SOURCES].id),
            datastore_id: Some(ds.id),
            max_attempts: 1,
            created_by: "bench".into(),
            ..Default::default()
        })
        .collect();
    c.add_tasks(&tasks)?;
    let admin = c.add_user(
        "bench",
        "!",
        &[RoleBinding {
            role: Role::Admin,
            project_id: None,
        }],
    )?;
    let (token, hash) = arca_web::auth::new_secret();
    c.add_token(Some(admin.id), None, "bench", TokenKind::Api, &hash, None)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = arca_web::app(arca_web::AppState::new(c.clone()))
        .into_make_service_with_connect_info::<SocketAddr>();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let url = format!("http://{addr}/api/v1/tasks");

    let mut cases = Vec::new();
    let stop = AtomicBool::new(true);
    cases.push(Case {
        readers,
        name: "nothing (baseline)".into(),
        latencies_ms: client(&url, &token, &stop, IDLE_REQUESTS)?,
        write_s: None,
    });
    type Writer = fn(&Catalog, usize, usize) -> Result<()>;
    let writers: [(&str, Writer); 3] = [
        (
            "an import, one transaction per restore point (`import_datastore`'s calls)",
            import_one_by_one,
        ),
        (
            "an import, 1000 per transaction (`Catalog::add_restore_points`)",
            |c, case, n| {
                let all = import_set(c, case, n)?;
                c.add_restore_points(&all)?;
                Ok(())
            },
        ),
        ("one transaction of all of them", |c, case, n| {
            let all = import_set(c, case, n)?;
            c.add_restore_points_in(&all, usize::MAX)?;
            Ok(())
        }),
    ];
    for (i, (name, write)) in writers.into_iter().enumerate() {
        let before = c.restore_point_count()?;
        let stop = AtomicBool::new(false);
        let (latencies, write_s) = std::thread::scope(|s| -> Result<(Vec<f64>, f64)> {
            let writer = s.spawn(|| -> Result<f64> {
                let t = Instant::now();
                let r = write(&c, i + 1, n);
                stop.store(true, Ordering::Release);
                r.map(|()| t.elapsed().as_secs_f64())
            });
            let latencies = client(&url, &token, &stop, 1);
            // The writer ends on its own; the client's error comes first.
            let write_s = writer
                .join()
                .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
            Ok((latencies?, write_s))
        })?;
        let added = c.restore_point_count()? - before;
        if added != n as i64 {
            bail!("{name}: {added} restore points added, not {n}");
        }
        cases.push(Case {
            readers,
            name: name.into(),
            latencies_ms: latencies,
            write_s: Some(write_s),
        });
    }
    rt.shutdown_background();
    Ok(cases)
}
