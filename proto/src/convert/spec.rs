//! Task parameters and retention: arca-model's [`TaskSpec`] and
//! [`Retention`] to and from their messages. A message the node cannot
//! read (no parameters, a bad restore point id) is an error saying so.

use arca_model::ids::{ExportId, RestorePointId};
use arca_model::task::{
    BackupParams, CommitExportParams, Confinement, ForgetParams, GcParams, PruneParams,
    RestoreParams, Retention, TaskSpec, VerifyParams, VmImport,
};

use crate::pb;
use crate::pb::task_spec::Params;

pub fn retention_to_pb(r: &Retention) -> pb::Retention {
    pb::Retention {
        keep_last: r.keep_last,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
        keep_yearly: r.keep_yearly,
    }
}

pub fn retention_from_pb(r: pb::Retention) -> Retention {
    Retention {
        keep_last: r.keep_last,
        keep_hourly: r.keep_hourly,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
        keep_yearly: r.keep_yearly,
    }
}

/// A restore point id in a message, read with what it is for errors.
pub(crate) fn rp_from_pb(id: &str, what: &str) -> Result<RestorePointId, String> {
    id.parse().map_err(|e| format!("{what}: {e}"))
}

fn ids_to_pb(ids: &Option<Vec<RestorePointId>>) -> Option<pb::RestorePointIds> {
    ids.as_ref().map(|ids| pb::RestorePointIds {
        ids: ids.iter().map(|id| id.to_hex()).collect(),
    })
}

fn ids_from_pb(
    ids: Option<pb::RestorePointIds>,
    what: &str,
) -> Result<Option<Vec<RestorePointId>>, String> {
    ids.map(|l| {
        l.ids
            .iter()
            .map(|id| rp_from_pb(id, what))
            .collect::<Result<Vec<_>, String>>()
    })
    .transpose()
}

fn confine_to_pb(c: &Confinement) -> pb::Confinement {
    pb::Confinement {
        node: c.node.clone(),
        source_roots: c.source_roots.clone(),
        restore_roots: c.restore_roots.clone(),
        allow_block_devices: c.allow_block_devices,
        data_dir: c.data_dir.clone(),
        datastores: c.datastores.clone(),
    }
}

fn confine_from_pb(c: pb::Confinement) -> Confinement {
    Confinement {
        node: c.node,
        source_roots: c.source_roots,
        restore_roots: c.restore_roots,
        allow_block_devices: c.allow_block_devices,
        data_dir: c.data_dir,
        datastores: c.datastores,
    }
}

/// A task's kind and parameters as the server sends them.
pub fn params_to_pb(spec: &TaskSpec) -> Params {
    match spec {
        TaskSpec::Backup(p) => Params::Backup(pb::BackupParams {
            confine: p.confine.as_ref().map(confine_to_pb),
            source_restore_points: ids_to_pb(&p.source_restore_points),
            protected: ids_to_pb(&p.protected),
        }),
        TaskSpec::Restore(p) => Params::Restore(pb::RestoreParams {
            restore_point: p.restore_point.to_hex(),
            target: p.target.clone(),
            path: p.path.clone(),
            overwrite: p.overwrite,
            special_files: p.special_files,
            confine: p.confine.as_ref().map(confine_to_pb),
            import: p.import.as_ref().map(|i| pb::VmImport {
                hypervisor_id: i.hypervisor_id.get(),
                name: i.name.clone(),
                dir: i.dir.clone(),
                format: i.format.clone(),
                start: i.start,
            }),
        }),
        TaskSpec::Verify(p) => Params::Verify(pb::VerifyParams {
            all: p.all,
            read_data_percent: p.read_data_percent,
            restore_points: ids_to_pb(&p.restore_points),
            verify_max_age_days: p.verify_max_age_days,
        }),
        TaskSpec::Prune(p) => Params::Prune(pb::PruneParams {
            retention: Some(retention_to_pb(&p.retention)),
            source: p.source.clone(),
            source_restore_points: ids_to_pb(&p.source_restore_points),
            protected: ids_to_pb(&p.protected),
        }),
        TaskSpec::Gc(p) => Params::Gc(pb::GcParams {
            grace_seconds: p.grace_seconds,
        }),
        TaskSpec::CommitExport(p) => Params::CommitExport(pb::CommitExportParams {
            export: p.export.get(),
            restore_point: p.restore_point.to_hex(),
            source: p.source.clone(),
        }),
        TaskSpec::Forget(p) => Params::Forget(pb::ForgetParams {
            restore_points: p.restore_points.iter().map(|id| id.to_hex()).collect(),
            protected: ids_to_pb(&p.protected),
        }),
    }
}

/// A task's kind and parameters as the node receives them.
pub fn params_from_pb(p: Option<Params>) -> Result<TaskSpec, String> {
    let p = p.ok_or("a task without parameters (no task kind): is the server another version?")?;
    Ok(match p {
        Params::Backup(p) => TaskSpec::Backup(BackupParams {
            confine: p.confine.map(confine_from_pb),
            source_restore_points: ids_from_pb(
                p.source_restore_points,
                "backup source_restore_points",
            )?,
            protected: ids_from_pb(p.protected, "backup protected")?,
        }),
        Params::Restore(p) => TaskSpec::Restore(RestoreParams {
            restore_point: rp_from_pb(&p.restore_point, "restore restore_point")?,
            target: p.target,
            path: p.path,
            overwrite: p.overwrite,
            special_files: p.special_files,
            confine: p.confine.map(confine_from_pb),
            import: p.import.map(|i| VmImport {
                hypervisor_id: arca_model::HypervisorId(i.hypervisor_id),
                name: i.name,
                dir: i.dir,
                format: i.format,
                start: i.start,
            }),
        }),
        Params::Verify(p) => TaskSpec::Verify(VerifyParams {
            all: p.all,
            read_data_percent: p.read_data_percent,
            restore_points: ids_from_pb(p.restore_points, "verify restore_points")?,
            verify_max_age_days: p.verify_max_age_days,
        }),
        Params::Prune(p) => TaskSpec::Prune(PruneParams {
            retention: retention_from_pb(p.retention.ok_or("a prune task without retention")?),
            source: p.source,
            source_restore_points: ids_from_pb(
                p.source_restore_points,
                "prune source_restore_points",
            )?,
            protected: ids_from_pb(p.protected, "prune protected")?,
        }),
        Params::Gc(p) => TaskSpec::Gc(GcParams {
            grace_seconds: p.grace_seconds,
        }),
        Params::CommitExport(p) => TaskSpec::CommitExport(CommitExportParams {
            export: ExportId(p.export),
            restore_point: rp_from_pb(&p.restore_point, "commit-export restore_point")?,
            source: p.source,
        }),
        Params::Forget(p) => TaskSpec::Forget(ForgetParams {
            restore_points: p
                .restore_points
                .iter()
                .map(|id| rp_from_pb(id, "forget restore_points"))
                .collect::<Result<_, _>>()?,
            protected: ids_from_pb(p.protected, "forget protected")?,
        }),
    })
}
