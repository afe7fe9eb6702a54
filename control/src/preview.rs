//! Retention preview: what a prune of every source of a policy would keep
//! and remove now, and why, from the catalog alone (no node round trip).
//!
//! It follows what the node does when it applies a policy's retention
//! (after a backup, or in a prune task; node/src/runner/maintenance.rs):
//!
//! - the sources are those the policy is assigned to ([`crate::assign_policies`]),
//!   each in the datastore its backups go to ([`crate::place`]);
//! - protected restore points are left out of those the rules choose among
//!   (so they do not count against `keep_last`) and stay;
//! - the rules are the datastore's own, [`arca_repo::prune::decide`];
//! - restore points a live export serves stay until the export ends.
//!
//! Times: the catalog knows restore points to the second, the node to the
//! nanosecond. Periods start on whole seconds, so both put every restore
//! point in the same periods; only two restore points of one source taken
//! within the same second could be ordered differently (by id here).

use std::collections::HashSet;

use arca_catalog::{Catalog, Policy, RestorePointId};
use arca_model::api;
use arca_repo::prune::{decide, Retention};

use crate::{at, place, Result};

/// Why a protected restore point stays.
pub const PROTECTED: &str = "protected";
/// Why a restore point a live export serves stays.
pub const EXPORTED: &str = "exported";
/// Why every restore point stays under a policy without keep rules.
pub const KEEP_ALL: &str = "keep all";

/// The preview of `policy`'s retention at `now`: its sources by name,
/// each with its restore points newest first.
pub fn preview_retention(c: &Catalog, policy: &Policy, now: i64) -> Result<api::RetentionPreview> {
    let datastores = c.datastores()?;
    let exported: HashSet<RestorePointId> = c
        .exports(true, None)?
        .into_iter()
        .filter(|e| e.is_live())
        .map(|e| e.restore_point_id)
        .collect();
    let sources = crate::policy_sources(c, policy)?;
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let ds = place(&datastores, policy.datastore_id, s.node_id);
        let items = source_items(
            &c.restore_points_in(s.id, ds)?,
            &policy.retention,
            &exported,
        );
        let kept = items.iter().filter(|i| i.keep).count() as u64;
        out.push(api::SourcePreview {
            source_id: s.id,
            source_name: s.name,
            datastore_id: ds,
            kept,
            removed: items.len() as u64 - kept,
            restore_points: items,
        });
    }
    Ok(api::RetentionPreview {
        policy_id: policy.id,
        retention: policy.retention.clone().into(),
        sources: out,
        time: now,
    })
}

/// One source's restore points (in one datastore), newest first, each
/// with what retention `r` decides for it.
fn source_items(
    rps: &[arca_catalog::RestorePoint],
    r: &Retention,
    exported: &HashSet<RestorePointId>,
) -> Vec<api::RetentionItem> {
    let mut items: Vec<api::RetentionItem> = rps
        .iter()
        .map(|rp| api::RetentionItem {
            id: rp.id,
            time: rp.time,
            keep: true,
            reasons: Vec::new(),
        })
        .collect();
    // The restore points the rules choose among: all but the protected.
    let chosen: Vec<usize> = (0..rps.len()).filter(|&i| !rps[i].protected).collect();
    if r.is_empty() {
        for &i in &chosen {
            items[i].reasons.push(KEEP_ALL.into());
        }
    } else {
        let input: Vec<_> = chosen
            .iter()
            .map(|&i| (at(rps[i].time), rps[i].id))
            .collect();
        for (&i, v) in chosen.iter().zip(decide(&input, r)) {
            items[i].keep = v.keep;
            items[i].reasons = v.reasons;
        }
    }
    for (item, rp) in items.iter_mut().zip(rps) {
        if rp.protected {
            item.reasons.push(PROTECTED.into());
        }
        if exported.contains(&rp.id) {
            item.keep = true;
            item.reasons.push(EXPORTED.into());
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse((i.time, i.id)));
    items
}

#[cfg(test)]
mod tests {
    use arca_catalog::{ProjectId, RestorePoint, SourceKind};

    use super::*;

    fn rp(n: u8, time: i64, protected: bool) -> RestorePoint {
        RestorePoint {
            id: format!("{:02x}", n).repeat(32).parse().unwrap(),
            source_name: "web".into(),
            project_id: ProjectId(1),
            kind: SourceKind::Files,
            time,
            protected,
            ..Default::default()
        }
    }

    fn short(items: &[api::RetentionItem]) -> Vec<(u8, bool, Vec<String>)> {
        items
            .iter()
            .map(|i| (i.id.0 .0[0], i.keep, i.reasons.clone()))
            .collect()
    }

    const DAY: i64 = 86_400;

    #[test]
    fn protected_do_not_count_and_exported_stay() {
        // 2026-11-01 .. 2026-11-04, one a day; the newest is protected.
        let t0 = 1_793_491_200;
        let rps = [
            rp(1, t0, false),
            rp(2, t0 + DAY, false),
            rp(3, t0 + 2 * DAY, false),
            rp(4, t0 + 3 * DAY, true),
        ];
        let r = Retention {
            keep_last: 2,
            ..Default::default()
        };
        let none = HashSet::new();
        assert_eq!(
            short(&source_items(&rps, &r, &none)),
            vec![
                (4, true, vec!["protected".into()]),
                (3, true, vec!["last 1".into()]),
                (2, true, vec!["last 2".into()]),
                (1, false, vec![]),
            ]
        );
        let held = HashSet::from([rps[0].id]);
        let items = source_items(&rps, &r, &held);
        assert_eq!(short(&items)[3], (1, true, vec!["exported".into()]));
        // Without rules everything stays.
        let all = source_items(&rps, &Retention::default(), &none);
        assert!(all.iter().all(|i| i.keep));
        assert_eq!(all[1].reasons, vec!["keep all"]);
        assert_eq!(all[0].reasons, vec!["protected"]);
    }
}
