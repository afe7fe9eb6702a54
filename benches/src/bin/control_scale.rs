//! `arca-control-scale`: the control plane at scale, without the network.
//!
//! 1. Scheduler: `--sources` sources spread over `--policies` policies
//!    (a mix of intervals and calendar events), all assigned; times one
//!    scheduler tick that queues every due slot (the first tick after a
//!    slot boundary) and one that finds nothing new (every other tick),
//!    and rule-based assignment over all sources.
//! 2. Catalog seeding for the API load test: `--seed-catalog PATH` fills
//!    an existing server catalog with `--restore-points` restore points
//!    and as many finished tasks, then exits.
//! 3. Busy catalog (`--busy-catalog`): `GET /api/v1/tasks` latency (p50,
//!    p99, max) from a client while the catalog takes an import of
//!    `--restore-points` restore points, in the ways an import can write
//!    (see `arca_benches::busy_catalog`).

use std::time::Instant;

use anyhow::Result;
use arca_catalog::{
    Catalog, DatastoreId, NewTask, NodeId, ProjectId, RestorePoint, Retention, SourceKind,
};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arca-control-scale")]
struct Cli {
    #[arg(long, default_value_t = 10_000)]
    sources: usize,
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Fill this catalog (of a stopped server) for the API benchmark.
    #[arg(long)]
    seed_catalog: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    restore_points: usize,
    /// Measure API latency while a long catalog write runs, then exit.
    #[arg(long)]
    busy_catalog: bool,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn seed(path: &std::path::Path, n: usize) -> Result<()> {
    let c = Catalog::open(path)?;
    let ds = c.datastores()?.first().map_or(DatastoreId(1), |d| d.id);
    let node = c.nodes()?.first().map_or(NodeId(1), |n| n.id);
    let sources = 100;
    for i in 0..sources {
        c.add_source(
            &format!("bench-src-{i}"),
            SourceKind::Files,
            "/nonexistent",
            node,
            ProjectId(1),
            &[],
            &serde_json::json!({}),
            None,
        )?;
    }
    let t = Instant::now();
    let now = arca_catalog::now();
    for i in 0..n {
        let src = c.source_by_name(ProjectId(1), &format!("bench-src-{}", i % sources))?;
        c.add_restore_point(&RestorePoint {
            id: format!("{:064x}", 0xbe_0000_0000u64 + i as u64).parse()?,
            datastore_id: ds,
            source_id: src.as_ref().map(|s| s.id),
            source_name: format!("bench-src-{}", i % sources),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time: now - (n - i) as i64 * 60,
            bytes_total: 1 << 30,
            bytes_added: 1 << 20,
            files: 1000,
            hostname: "bench".into(),
            task_id: None,
            created_at: now,
            ..Default::default()
        })?;
        if i % 10 == 0 {
            // Finished tasks, as a server's history has them.
            c.add_task(&NewTask {
                project_id: ProjectId(1),
                source_id: src.map(|s| s.id),
                datastore_id: Some(ds),
                max_attempts: 1,
                created_by: "bench".into(),
                ..Default::default()
            })?;
            if let Some(t) = c.lease_task(node, now, 30)? {
                c.finish_task(t.id, Ok(serde_json::json!({})), false, None)?;
            }
        }
    }
    println!(
        "seeded {n} restore points and {} tasks in {:.1} s",
        n / 10,
        ms(t) / 1000.0
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(p) = &cli.seed_catalog {
        return seed(p, cli.restore_points);
    }
    if cli.busy_catalog {
        println!("{}", arca_benches::busy_catalog::header(cli.restore_points));
        // With the read pool, then reading through the writer connection.
        for readers in [arca_catalog::db::READERS, 0] {
            let dir = tempfile_dir()?;
            for c in arca_benches::busy_catalog::run(&dir, cli.restore_points, readers)? {
                println!("{}", c.row());
            }
            std::fs::remove_dir_all(&dir)?;
        }
        return Ok(());
    }
    let dir = tempfile_dir()?;
    let c = Catalog::open(&dir.join("catalog.db"))?;
    let node = c.upsert_node("bench", true, 2, "bench")?;
    let ds = c.add_datastore("default", node.id, "/nonexistent")?;
    let schedules = [
        "every 5m",
        "every 1h",
        "hourly",
        "daily",
        "Mon..Fri 22:00",
        "*:0/15",
        "*-*-* 02:30",
        "every 6h",
    ];
    // Policies are created "in the past" so that current slots count.
    let mut policy_ids = Vec::new();
    for i in 0..cli.policies {
        let p = c.add_policy(
            &format!("p{i}"),
            ProjectId(1),
            schedules[i % schedules.len()],
            None,
            &Retention::default(),
            ds.id,
            (i % 5) as i64,
            Some(&format!("src-{i}-*")),
            &[],
            None,
        )?;
        policy_ids.push(p.id);
    }
    let t = Instant::now();
    for i in 0..cli.sources {
        c.add_source(
            &format!("src-{}-{i}", i % cli.policies),
            SourceKind::Files,
            "/nonexistent",
            node.id,
            ProjectId(1),
            &[],
            &serde_json::json!({}),
            None,
        )?;
    }
    let add_ms = ms(t);
    let t = Instant::now();
    let assigned = arca_control::assign_policies(&c)?;
    let assign_ms = ms(t);
    // Backdate creation so that the current slot of every schedule counts.
    c.backdate_for_bench(86_400 * 8)?;
    let now = arca_catalog::now();
    let t = Instant::now();
    let queued = arca_control::schedule_due(&c, now)?.len();
    let first_ms = ms(t);
    let t = Instant::now();
    let again = arca_control::schedule_due(&c, now)?.len();
    let idle_ms = ms(t);
    println!(
        "| control plane, {} sources in {} policies | value |",
        cli.sources, cli.policies
    );
    println!("|---|---:|");
    println!("| adding the sources (ms) | {add_ms:.0} |");
    println!("| rule assignment of all sources (ms) | {assign_ms:.1} ({assigned} assigned) |");
    println!(
        "| scheduler tick queuing every due slot (ms) | {first_ms:.1} ({queued} tasks queued) |"
    );
    println!("| scheduler tick with nothing new due (ms) | {idle_ms:.1} ({again} queued) |");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("arca-control-scale-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
