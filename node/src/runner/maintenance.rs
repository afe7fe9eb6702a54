//! The datastore maintenance tasks a node runs: verify, prune (retention),
//! forget (named restore points) and gc.

use super::*;

impl Runner {
    /// Verify the restore points due (or all with `all`), quarantine the
    /// bad copies it finds (the next backup of the same data stores them
    /// again), and report per restore point what it found.
    pub(super) fn verify(
        &self,
        l: &Leased,
        p: &VerifyParams,
        progress: &Progress,
        fx: &mut TaskEffects,
    ) -> Outcome {
        let (_, ds) = self.task_datastore(l)?;
        let only: Option<HashSet<arca_repo::id::SnapshotId>> = p
            .restore_points
            .as_ref()
            .map(|a| a.iter().map(|r| r.snapshot_id()).collect());
        if only.as_ref().is_some_and(|o| o.is_empty()) {
            return Ok(TaskResult::Verify(VerifyResult {
                restore_points_checked: 0,
                note: Some(format!(
                    "nothing due: every restore point was verified within {} day(s)",
                    p.verify_max_age_days.unwrap_or(0)
                )),
                report: None,
            }));
        }
        let opts = arca_repo::verify::VerifyOptions {
            read_data_percent: p.read_data_percent.unwrap_or(100.0),
            snapshots: only,
            ..Default::default()
        };
        let report = |_: &str, done: u64, total: u64| {
            progress.total.store(total, Ordering::Relaxed);
            progress.bytes.store(done, Ordering::Relaxed);
        };
        let r = arca_repo::verify::verify(&ds, &opts, &report).map_err(|e| e.to_string())?;
        let bad = r.damaged_copies();
        let quarantined = if bad.is_empty() {
            0
        } else {
            ds.quarantine(&bad)
                .map_err(|e| format!("verify found damage, but quarantining it failed: {e}"))?
        };
        let mut damaged: Vec<(String, String)> = r
            .affected_snapshots
            .iter()
            .map(|a| {
                (
                    a.id.clone(),
                    format!("{} damaged or missing chunk reference(s)", a.damaged_refs),
                )
            })
            .collect();
        for u in &r.unreadable_snapshots {
            if let Some((id, why)) = u.split_once(": ") {
                // The catalog marks the restore point damaged if it knows it.
                self.coord.log(
                    l.task.id,
                    LogLevel::Error,
                    &format!("restore point {id}: its snapshot file cannot be read ({why})"),
                );
                damaged.push((id.to_string(), format!("unreadable: {why}")));
            }
        }
        // Snapshot ids as the verify report names them; one that is not
        // an id cannot be a restore point of the catalog's.
        fx.verify = Some(catalog::VerifyEffects {
            checked: r
                .checked_snapshots
                .iter()
                .filter_map(|id| id.parse().ok())
                .collect(),
            damaged: damaged
                .iter()
                .filter_map(|(id, why)| Some((id.parse().ok()?, why.clone())))
                .collect(),
        });
        if r.is_clean() {
            Ok(TaskResult::Verify(VerifyResult {
                restore_points_checked: r.checked_snapshots.len() as u64,
                note: None,
                report: Some(VerifyReport::new(&r, quarantined as u64)),
            }))
        } else {
            let names: Vec<String> = damaged
                .iter()
                .map(|(id, why)| format!("{} ({why})", &id[..id.len().min(12)]))
                .collect();
            Err(format!(
                "verify found damage: {} restore point(s) damaged{}{}; {} damaged blob(s), {} damaged pack(s); {quarantined} bad copies quarantined: the next backup of the same data stores them again",
                damaged.len(),
                if names.is_empty() { "" } else { ": " },
                names.join(", "),
                r.damaged_blobs.len(),
                r.damaged_packs.len(),
            ))
        }
    }

    /// Remove the restore points of `source` that `r` does not keep from
    /// the datastore, and report them in `fx`. Returns how many went.
    /// `mine`: the source's restore points by id (from the catalog); only
    /// without it (a task of an older server) are they matched by name.
    /// `protected` restore points are never removed: they are not among
    /// those retention chooses from (the server leaves them out of
    /// `mine` too), so they do not count against `keep_last` either.
    pub(super) fn apply_retention(
        &self,
        ds: &Datastore,
        source: &str,
        mine: Option<&HashSet<String>>,
        protected: &HashSet<String>,
        r: &Retention,
        fx: &mut TaskEffects,
    ) -> Result<usize, String> {
        let snaps: Vec<_> = ds
            .snapshots()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| !protected.contains(&s.id.to_hex()))
            .filter(|s| match mine {
                Some(ids) => ids.contains(&s.id.to_hex()),
                None => s.manifest.source == source,
            })
            .collect();
        let mut plan = arca_repo::prune::plan(&snaps, r).map_err(|e| e.to_string())?;
        // Restore points being exported stay until their exports end.
        let held = self.exports.get().map(|h| h.held()).unwrap_or_default();
        for d in plan.iter_mut().filter(|d| !d.keep) {
            if held.contains(&d.snapshot.id.to_hex()) {
                d.keep = true;
            }
        }
        let removed = arca_repo::prune::apply(ds, &plan).map_err(|e| e.to_string())?;
        fx.removed_restore_points.extend(
            plan.iter()
                .filter(|d| !d.keep)
                .map(|d| RestorePointId::from(d.snapshot.id)),
        );
        Ok(removed)
    }

    pub(super) fn prune(&self, l: &Leased, p: &PruneParams, fx: &mut TaskEffects) -> Outcome {
        let (_, ds) = self.task_datastore(l)?;
        let r: Retention = p.retention.clone().into();
        let mine = source_restore_points(p.source_restore_points.as_deref());
        let protected = source_restore_points(p.protected.as_deref()).unwrap_or_default();
        let removed = self.apply_retention(&ds, &p.source, mine.as_ref(), &protected, &r, fx)?;
        Ok(TaskResult::Prune(PruneResult {
            removed: removed as u64,
        }))
    }

    /// Delete the named restore points from the task's datastore, except
    /// those the lease names as protected and those a live export serves
    /// (as retention keeps them), and report the deleted ones in `fx`
    /// (the catalog drops them when the task finishes). One that is not
    /// in the datastore any more is reported too: the catalog forgets it.
    /// When some were kept, the task fails after deleting the others,
    /// naming each and why. Their data is freed by the next gc.
    pub(super) fn forget(&self, l: &Leased, p: &ForgetParams, fx: &mut TaskEffects) -> Outcome {
        let (_, ds) = self.task_datastore(l)?;
        let protected = source_restore_points(p.protected.as_deref()).unwrap_or_default();
        let held = self.exports.get().map(|h| h.held()).unwrap_or_default();
        let present: HashSet<arca_repo::id::SnapshotId> = ds
            .snapshot_files()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut seen = HashSet::new();
        let mut removed = 0u64;
        let mut kept = Vec::new();
        for rp in p.restore_points.iter().copied() {
            let hex = rp.to_hex();
            if !seen.insert(hex.clone()) {
                continue;
            }
            if protected.contains(&hex) {
                kept.push(format!("{} is protected (unprotect it first)", rp.short()));
                continue;
            }
            if held.contains(&hex) {
                kept.push(format!(
                    "{} is exported (stop its export first)",
                    rp.short()
                ));
                continue;
            }
            if present.contains(&rp.snapshot_id()) {
                ds.delete_snapshot(&rp.snapshot_id())
                    .map_err(|e| format!("deleting restore point {}: {e}", rp.short()))?;
                removed += 1;
            } else {
                self.coord.log(
                    l.task.id,
                    LogLevel::Warn,
                    &format!(
                        "restore point {} is not in the datastore (removed already?): the catalog forgets it",
                        rp.short()
                    ),
                );
            }
            fx.removed_restore_points.push(rp);
        }
        if removed > 0 {
            self.coord.log(
                l.task.id,
                LogLevel::Info,
                &format!(
                    "{removed} restore point(s) removed; their space comes back at the datastore's next gc"
                ),
            );
        }
        if !kept.is_empty() {
            return Err(format!(
                "{removed} restore point(s) removed, {} kept: {}",
                kept.len(),
                kept.join("; ")
            ));
        }
        Ok(TaskResult::Forget(ForgetResult { removed }))
    }

    /// gc beside running backups: the datastore stays open for them (the
    /// GC lock and the sessions' references keep their chunks).
    pub(super) fn gc(
        &self,
        l: &Leased,
        p: &GcParams,
        progress: &Progress,
        fx: &mut TaskEffects,
    ) -> Outcome {
        let (d, ds) = self.task_datastore(l)?;
        let mut opts = arca_repo::gc::GcOptions::default();
        if let Some(g) = p.grace_seconds {
            opts.grace = std::time::Duration::from_secs(g);
        }
        let report = |_: &str, done: u64, total: u64| {
            progress.total.store(total, Ordering::Relaxed);
            progress.bytes.store(done, Ordering::Relaxed);
        };
        let r = arca_repo::gc::gc(&ds, &opts, &report).map_err(|e| e.to_string())?;
        // A damaged snapshot file, a repack stopped by a full disk: gc
        // succeeded, but the log says what it could not do.
        for w in &r.warnings {
            self.coord.log(l.task.id, LogLevel::Warn, w);
        }
        fx.datastore_bytes_used = Some((d.id, bytes_used(&ds)));
        Ok(TaskResult::Gc(GcResult::from(&r)))
    }
}
