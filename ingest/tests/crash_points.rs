//! Crash points, enumerated: a backup, a prune and a gc are run once to
//! count their mutations (every create, write, fsync, rename, remove and
//! mkdir of the datastore's files, and every index write and sync); then,
//! for every k, again on a fresh copy of the same datastore with a crash at
//! mutation k, in two models:
//! - process crash (`kill -9`): what was done before k stays;
//! - power loss: only what was fsynced (files, and directories for their
//!   entries) before k stays, and the index is rolled back to its last sync.
//!
//! After each crash the datastore must open, verify clean, restore every
//! snapshot it lists byte for byte, list every snapshot that was committed
//! before the operation (and, for prune, none it did not have), and take a
//! following backup and gc. See docs/faults.md for what the model covers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use arca_repo::backend::fault::Faults;
use arca_repo::prune::{self, Retention};
use arca_repo::{Datastore, Encryption, Result};
use common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Process,
    PowerLoss,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Back up version 3 on top of versions 1 and 2.
    Backup,
    /// Keep the last of versions 1, 2, 3.
    Prune,
    /// After that prune: delete dead packs and repack the half-dead ones.
    Gc,
}

struct Fixture {
    dir: tempfile::TempDir,
    template: PathBuf,
    sources: BTreeMap<String, PathBuf>,
}

fn fixture(scenario: Scenario) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = BTreeMap::new();
    for v in 1..=4 {
        let p = dir.path().join(format!("src-v{v}"));
        write_tree(&p, v);
        sources.insert(format!("v{v}"), p);
    }
    let template = dir.path().join("template");
    init(&template, Encryption::None);
    let ds = open(&template).unwrap();
    backup(&ds, &sources["v1"], "v1").unwrap();
    backup(&ds, &sources["v2"], "v2").unwrap();
    if scenario != Scenario::Backup {
        backup(&ds, &sources["v3"], "v3").unwrap();
    }
    if scenario == Scenario::Gc {
        keep_last(&ds).unwrap();
    }
    drop(ds);
    Fixture {
        dir,
        template,
        sources,
    }
}

fn keep_last(ds: &Datastore) -> Result<usize> {
    let retention = Retention {
        keep_last: 1,
        ..Default::default()
    };
    let plan = prune::plan(&ds.snapshots()?, &retention)?;
    prune::apply(ds, &plan)
}

/// The operation under test; a summary of what it did.
fn operate(scenario: Scenario, fx: &Fixture, ds: &std::sync::Arc<Datastore>) -> Result<String> {
    match scenario {
        Scenario::Backup => backup(ds, &fx.sources["v3"], "v3").map(|o| format!("{o:?}")),
        Scenario::Prune => keep_last(ds).map(|n| format!("{n} removed")),
        Scenario::Gc => gc_now(ds).map(|r| {
            assert!(
                r.packs_deleted > 0 && r.packs_repacked > 0,
                "the gc under test must delete and repack: {r:?}"
            );
            format!("{r:?}")
        }),
    }
}

/// Snapshots that must be listed after a crash of the operation, and those
/// that may be. Once the operation has reported success, its effect is
/// durable: a power loss right after it changes nothing.
fn expected(
    scenario: Scenario,
    succeeded: bool,
) -> (&'static [&'static str], &'static [&'static str]) {
    match (scenario, succeeded) {
        (Scenario::Backup, false) => (&["v1", "v2"], &["v3"]),
        (Scenario::Backup, true) => (&["v1", "v2", "v3"], &[]),
        (Scenario::Prune, false) => (&["v3"], &["v1", "v2"]),
        (Scenario::Prune, true) | (Scenario::Gc, _) => (&["v3"], &[]),
    }
}

/// Everything a crash must leave working.
fn check(
    fx: &Fixture,
    work: &Path,
    scenario: Scenario,
    succeeded: bool,
) -> std::result::Result<(), String> {
    let ds = open(work).map_err(|e| format!("the datastore does not open: {e}"))?;
    let r = verify_all(&ds).map_err(|e| format!("verify failed: {e}"))?;
    require_clean(&r)?;
    let scratch = fx.dir.path().join(format!(
        "scratch-{}",
        work.file_name().unwrap().to_string_lossy()
    ));
    let tags = restore_all(&ds, &fx.sources, &scratch)?;
    let (must, may) = expected(scenario, succeeded);
    for t in must {
        if !tags.iter().any(|x| x == t) {
            return Err(format!("snapshot {t} was lost; listed: {tags:?}"));
        }
    }
    if let Some(t) = tags
        .iter()
        .find(|t| !must.contains(&t.as_str()) && !may.contains(&t.as_str()))
    {
        return Err(format!("unexpected snapshot {t}; listed: {tags:?}"));
    }
    // Whatever the crash left, the next backup and gc work.
    backup(&ds, &fx.sources["v4"], "v4").map_err(|e| format!("the next backup failed: {e}"))?;
    gc_now(&ds).map_err(|e| format!("the next gc failed: {e}"))?;
    let r = verify_all(&ds).map_err(|e| format!("verify after the next gc failed: {e}"))?;
    require_clean(&r).map_err(|e| format!("after the next backup and gc: {e}"))?;
    let mut after = restore_all(&ds, &fx.sources, &scratch)
        .map_err(|e| format!("after the next backup and gc: {e}"))?;
    after.retain(|t| t != "v4");
    if after != tags {
        return Err(format!(
            "the next backup and gc changed the snapshots: {tags:?} -> {after:?}"
        ));
    }
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

fn crash_points(scenario: Scenario, model: Model) {
    let fx = fixture(scenario);
    let started = std::time::Instant::now();
    // Count the mutations of an uninterrupted run.
    let work = fx.dir.path().join("count");
    copy_dir(&fx.template, &work);
    let faults = Faults::new(&work);
    let ds = open_faulty(&work, &faults, &options()).unwrap();
    operate(scenario, &fx, &ds).unwrap();
    drop(ds);
    let n = faults.mutations();
    let log: Vec<String> = faults
        .log()
        .iter()
        .filter(|r| r.seq > 0)
        .map(|r| format!("{} {:?} {}", r.seq, r.op, r.what))
        .collect();
    eprintln!("{scenario:?}: {n} crash points:\n  {}", log.join("\n  "));
    assert!(n >= 4, "{scenario:?} made only {n} mutations");
    check(&fx, &work, scenario, true).unwrap();
    fs::remove_dir_all(&work).unwrap();

    let mut crashed = 0;
    // In the power-loss model, k = n + 1 is a power loss right after the
    // operation returned: what it reported done must be durable.
    let last = if model == Model::PowerLoss { n + 1 } else { n };
    for k in 1..=last {
        let work = fx.dir.path().join(format!("crash-{k}"));
        copy_dir(&fx.template, &work);
        let faults = match model {
            Model::Process => Faults::new(&work),
            Model::PowerLoss => Faults::with_power_loss_model(&work).unwrap(),
        };
        faults.crash_at(k);
        let ds = open_faulty(&work, &faults, &options()).unwrap();
        let r = operate(scenario, &fx, &ds);
        drop(ds);
        let label = format!(
            "{scenario:?}, {model:?}, crash at mutation {k} of {n} ({})",
            faults.injected().join("; ")
        );
        if faults.crashed() {
            crashed += 1;
            assert!(
                r.is_err(),
                "{label}: the operation reported success after a crash: {r:?}"
            );
        }
        if model == Model::PowerLoss {
            faults.power_loss().unwrap();
        }
        if let Err(e) = check(&fx, &work, scenario, r.is_ok()) {
            panic!("{label}: {e}");
        }
        fs::remove_dir_all(&work).unwrap();
    }
    // The backup's pack writer and flusher run on two threads, so the order
    // of their calls (not their number) may differ between runs; every k
    // still stops the run at its k-th mutation.
    eprintln!(
        "{scenario:?}, {model:?}: {last} runs, {crashed} crashed, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        crashed + 2 >= n,
        "{scenario:?}: only {crashed} of {n} runs reached their crash point"
    );
}

#[test]
fn backup_process_crash() {
    crash_points(Scenario::Backup, Model::Process);
}

#[test]
fn backup_power_loss() {
    crash_points(Scenario::Backup, Model::PowerLoss);
}

#[test]
fn prune_process_crash() {
    crash_points(Scenario::Prune, Model::Process);
}

#[test]
fn prune_power_loss() {
    crash_points(Scenario::Prune, Model::PowerLoss);
}

#[test]
fn gc_process_crash() {
    crash_points(Scenario::Gc, Model::Process);
}

#[test]
fn gc_power_loss() {
    crash_points(Scenario::Gc, Model::PowerLoss);
}
