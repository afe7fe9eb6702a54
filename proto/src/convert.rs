//! Between the protocol's messages and the types of both sides: task
//! parameters ([`spec`]), results ([`result`]), server → node queries
//! and their answers ([`query`]), and the rest here. Every
//! conversion of what the other side sent is fallible: a message that
//! lacks a required part or carries an unknown enum value is an error
//! naming it, never a panic.

use std::str::FromStr;

use arca_catalog::{
    self as catalog, AssignedBy, DatastoreId, ExportId, NodeId, PolicyId, ProjectId,
    RestorePointId, SourceId, TaskId, VerifyEffects,
};
use arca_model::api::{OnPreFailure, VmHooks};
use arca_model::{ExportOnStop, ExportProtocol, ExportState, LogLevel, SourceKind, TaskState};
use serde_json::Value;

use crate::{pb, DatastoreRef, ExportSpec, Finished, HypervisorAccess, Leased, LeasedTask};

mod files;
mod find;
mod query;
mod result;
mod spec;

pub use find::{find_match_to_pb, find_result_from_pb, find_result_to_pb};
pub use query::{
    answer_from_pb, answer_to_pb, query_from_pb, query_to_pb, tree_entry_to_pb, tree_page_from_pb,
    tree_page_to_pb,
};
pub use result::{outcome_from_pb, result_from_pb, result_to_pb};
pub use spec::{params_from_pb, params_to_pb, retention_from_pb, retention_to_pb};

/// A protocol enum's value as the model's, or why it is none: `P` is the
/// generated enum, `to` maps its values (`None` for UNSPECIFIED).
fn enum_from_pb<P: TryFrom<i32>, T>(
    v: i32,
    what: &str,
    to: impl FnOnce(P) -> Option<T>,
) -> Result<T, String> {
    match P::try_from(v) {
        Ok(p) => to(p).ok_or_else(|| format!("{what} is unspecified")),
        Err(_) => Err(format!("unknown {what} {v}")),
    }
}

pub fn log_level_to_pb(l: LogLevel) -> pb::LogLevel {
    match l {
        LogLevel::Debug => pb::LogLevel::Debug,
        LogLevel::Info => pb::LogLevel::Info,
        LogLevel::Warn => pb::LogLevel::Warn,
        LogLevel::Error => pb::LogLevel::Error,
    }
}

pub fn log_level_from_pb(v: i32) -> Result<LogLevel, String> {
    enum_from_pb(v, "log level", |l: pb::LogLevel| match l {
        pb::LogLevel::Unspecified => None,
        pb::LogLevel::Debug => Some(LogLevel::Debug),
        pb::LogLevel::Info => Some(LogLevel::Info),
        pb::LogLevel::Warn => Some(LogLevel::Warn),
        pb::LogLevel::Error => Some(LogLevel::Error),
    })
}

pub fn task_state_to_pb(s: TaskState) -> pb::TaskState {
    match s {
        TaskState::Queued => pb::TaskState::Queued,
        TaskState::Running => pb::TaskState::Running,
        TaskState::Succeeded => pb::TaskState::Succeeded,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::Cancelled => pb::TaskState::Cancelled,
    }
}

pub fn task_state_from_pb(v: i32) -> Result<TaskState, String> {
    enum_from_pb(v, "task state", |s: pb::TaskState| match s {
        pb::TaskState::Unspecified => None,
        pb::TaskState::Queued => Some(TaskState::Queued),
        pb::TaskState::Running => Some(TaskState::Running),
        pb::TaskState::Succeeded => Some(TaskState::Succeeded),
        pb::TaskState::Failed => Some(TaskState::Failed),
        pb::TaskState::Cancelled => Some(TaskState::Cancelled),
    })
}

fn source_kind_to_pb(kind: SourceKind) -> i32 {
    let k = match kind {
        SourceKind::Files => pb::SourceKind::Files,
        SourceKind::Image => pb::SourceKind::Image,
        SourceKind::Libvirt => pb::SourceKind::Libvirt,
    };
    k as i32
}

fn source_kind_from_pb(v: i32) -> Result<SourceKind, String> {
    enum_from_pb(v, "source kind", |k: pb::SourceKind| match k {
        pb::SourceKind::Unspecified => None,
        pb::SourceKind::Files => Some(SourceKind::Files),
        pb::SourceKind::Image => Some(SourceKind::Image),
        pb::SourceKind::Libvirt => Some(SourceKind::Libvirt),
    })
}

/// `s` as a `T`, or an error naming `what`.
fn parse<T: FromStr>(what: &str, s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("{what}: {e}"))
}

pub fn datastore_to_pb(d: &DatastoreRef) -> pb::RegisteredDatastore {
    pb::RegisteredDatastore {
        id: d.id.get(),
        name: d.name.clone(),
        path: d.path.clone(),
    }
}

pub fn datastore_from_pb(d: pb::RegisteredDatastore) -> DatastoreRef {
    DatastoreRef {
        id: DatastoreId(d.id),
        name: d.name,
        path: d.path,
    }
}

/// A leased task as the server sends it.
pub fn leased_to_pb(l: &Leased) -> pb::TaskSpec {
    let t = &l.task;
    pb::TaskSpec {
        id: t.id.get(),
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        policy_id: t.policy_id.map(PolicyId::get),
        project_id: t.project_id.get(),
        source: l.source.as_ref().map(|s| pb::Source {
            id: s.id.get(),
            kind: source_kind_to_pb(s.kind),
            name: s.name.clone(),
            path: s.path.clone(),
            tags: s.tags.clone(),
            project_id: s.project_id.get(),
        }),
        retention: l.retention.as_ref().map(retention_to_pb),
        datastore: l.datastore.as_ref().map(datastore_to_pb),
        hypervisor: l.hypervisor.as_ref().map(|h| pb::Hypervisor {
            id: h.id,
            address: h.address.clone(),
            user: h.user.clone(),
            private_key: h.private_key.clone(),
            host_key: h.host_key.clone(),
        }),
        hooks: l.hooks.as_ref().map(|h| {
            let (pre, post, pre_failure_is_warning) = hooks_to_parts(h);
            pb::VmHooks {
                pre: pre.into_iter().map(|args| pb::Argv { args }).collect(),
                post: post.into_iter().map(|args| pb::Argv { args }).collect(),
                pre_failure_is_warning,
            }
        }),
        params: Some(params_to_pb(&t.spec)),
    }
}

/// A source's hooks as argv lists and the pre-failure choice (for both
/// protocols' `VmHooks`).
pub fn hooks_to_parts(h: &VmHooks) -> (Vec<Vec<String>>, Vec<Vec<String>>, bool) {
    (
        h.pre.clone(),
        h.post.clone(),
        h.on_pre_failure == OnPreFailure::CrashConsistent,
    )
}

/// The hooks from a message's parts, checked as the API checks them.
pub fn hooks_from_parts(
    pre: Vec<Vec<String>>,
    post: Vec<Vec<String>>,
    pre_failure_is_warning: bool,
) -> Result<VmHooks, String> {
    let h = VmHooks {
        pre,
        post,
        on_pre_failure: if pre_failure_is_warning {
            OnPreFailure::CrashConsistent
        } else {
            OnPreFailure::Fail
        },
    };
    h.check()?;
    Ok(h)
}

/// A leased task as the node receives it (leased by `node_id`).
pub fn leased_from_pb(t: pb::TaskSpec, node_id: NodeId) -> Result<Leased, String> {
    let spec = params_from_pb(t.params)?;
    let source = match t.source {
        Some(s) => Some(catalog::Source {
            id: SourceId(s.id),
            name: s.name,
            kind: source_kind_from_pb(s.kind).map_err(|e| format!("task source: {e}"))?,
            path: s.path,
            node_id,
            project_id: ProjectId(s.project_id),
            tags: s.tags,
            settings: Value::Null,
            policy_id: t.policy_id.map(PolicyId),
            // Not sent: the node does not need it.
            assigned_by: AssignedBy::None,
            created_at: 0,
        }),
        None => None,
    };
    Ok(Leased {
        task: LeasedTask {
            id: TaskId(t.id),
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            project_id: ProjectId(t.project_id),
            policy_id: t.policy_id.map(PolicyId),
            source_id: source.as_ref().map(|s| s.id),
            spec,
        },
        source,
        retention: t.retention.map(retention_from_pb),
        datastore: t.datastore.map(datastore_from_pb),
        hypervisor: t.hypervisor.map(|h| HypervisorAccess {
            id: h.id,
            address: h.address,
            user: h.user,
            private_key: h.private_key,
            host_key: h.host_key,
        }),
        hooks: t
            .hooks
            .map(|h| {
                hooks_from_parts(
                    h.pre.into_iter().map(|a| a.args).collect(),
                    h.post.into_iter().map(|a| a.args).collect(),
                    h.pre_failure_is_warning,
                )
            })
            .transpose()
            .map_err(|e| format!("task hooks: {e}"))?,
    })
}

pub fn export_to_pb(e: ExportSpec) -> pb::ExportSpec {
    let protocol = match e.protocol {
        ExportProtocol::Nbd => pb::ExportProtocol::Nbd,
        ExportProtocol::Iscsi => pb::ExportProtocol::Iscsi,
        ExportProtocol::Nfs => pb::ExportProtocol::Nfs,
    };
    let state = match e.state {
        ExportState::Starting => pb::ExportState::Starting,
        ExportState::Active => pb::ExportState::Active,
        ExportState::Failed => pb::ExportState::Failed,
        ExportState::Stopped => pb::ExportState::Stopped,
        ExportState::Expired => pb::ExportState::Expired,
    };
    let on_stop = match e.on_stop {
        ExportOnStop::Discard => pb::ExportOnStop::Discard,
        ExportOnStop::Commit => pb::ExportOnStop::Commit,
    };
    pb::ExportSpec {
        id: e.id.get(),
        restore_point: e.restore_point.to_hex(),
        datastore: Some(datastore_to_pb(&e.datastore)),
        protocol: protocol as i32,
        writable: e.writable,
        name: e.name,
        state: state as i32,
        on_stop: on_stop as i32,
        secret: e.secret,
        allow: e.allow,
        source: e.source,
    }
}

pub fn export_from_pb(e: pb::ExportSpec) -> Result<ExportSpec, String> {
    let d = e.datastore.ok_or("an export without a datastore")?;
    let protocol = enum_from_pb(
        e.protocol,
        "export protocol",
        |p: pb::ExportProtocol| match p {
            pb::ExportProtocol::Unspecified => None,
            pb::ExportProtocol::Nbd => Some(ExportProtocol::Nbd),
            pb::ExportProtocol::Iscsi => Some(ExportProtocol::Iscsi),
            pb::ExportProtocol::Nfs => Some(ExportProtocol::Nfs),
        },
    )?;
    let state = enum_from_pb(e.state, "export state", |s: pb::ExportState| match s {
        pb::ExportState::Unspecified => None,
        pb::ExportState::Starting => Some(ExportState::Starting),
        pb::ExportState::Active => Some(ExportState::Active),
        pb::ExportState::Failed => Some(ExportState::Failed),
        pb::ExportState::Stopped => Some(ExportState::Stopped),
        pb::ExportState::Expired => Some(ExportState::Expired),
    })?;
    let on_stop = enum_from_pb(
        e.on_stop,
        "export stop mode",
        |o: pb::ExportOnStop| match o {
            pb::ExportOnStop::Unspecified => None,
            pb::ExportOnStop::Discard => Some(ExportOnStop::Discard),
            pb::ExportOnStop::Commit => Some(ExportOnStop::Commit),
        },
    )?;
    Ok(ExportSpec {
        id: ExportId(e.id),
        restore_point: parse("export restore point", &e.restore_point)?,
        datastore: datastore_from_pb(d),
        protocol,
        writable: e.writable,
        name: e.name,
        state,
        on_stop,
        secret: e.secret,
        allow: e.allow,
        source: e.source,
    })
}

/// A task's end as the node sends it, for the lease of `attempt`.
pub fn finished_to_pb(task_id: TaskId, attempt: i64, f: Finished) -> pb::FinishRequest {
    let (ok, result, error) = match f.outcome {
        Ok(r) => (true, Some(result_to_pb(&r)), String::new()),
        Err(e) => (false, None, e),
    };
    let fx = f.effects;
    pb::FinishRequest {
        task_id: task_id.get(),
        ok,
        result,
        error,
        cancelled: f.cancelled,
        restore_point: fx.restore_point.map(|rp| pb::RestorePoint {
            id: rp.id.to_hex(),
            datastore_id: rp.datastore_id.get(),
            source_id: rp.source_id.map(SourceId::get),
            source_name: rp.source_name,
            project_id: rp.project_id.get(),
            kind: source_kind_to_pb(rp.kind),
            time: rp.time,
            bytes_total: rp.bytes_total,
            bytes_added: rp.bytes_added,
            files: rp.files,
            hostname: rp.hostname,
        }),
        removed_restore_points: fx
            .removed_restore_points
            .iter()
            .map(|id| id.to_hex())
            .collect(),
        verify: fx.verify.map(|v| pb::VerifyEffects {
            checked: v.checked.iter().map(|id| id.to_hex()).collect(),
            damaged: v
                .damaged
                .into_iter()
                .map(|(id, damage)| pb::DamagedRestorePoint {
                    id: id.to_hex(),
                    damage,
                })
                .collect(),
        }),
        datastore_id: fx.datastore_bytes_used.map(|(d, _)| d.get()),
        datastore_bytes_used: fx.datastore_bytes_used.map(|(_, b)| b),
        attempt,
    }
}

/// A reported restore point as the catalog lists it, made by `task_id`
/// (the server checks its datastore first). Its `time` is the node's: the
/// snapshot manifest's.
pub fn restore_point_from_pb(
    rp: pb::RestorePoint,
    task_id: TaskId,
) -> Result<catalog::RestorePoint, String> {
    Ok(catalog::RestorePoint {
        id: parse("restore point id", &rp.id)?,
        datastore_id: DatastoreId(rp.datastore_id),
        source_id: rp.source_id.map(SourceId),
        source_name: rp.source_name,
        project_id: ProjectId(rp.project_id),
        kind: source_kind_from_pb(rp.kind).map_err(|e| format!("restore point: {e}"))?,
        time: rp.time,
        bytes_total: rp.bytes_total,
        bytes_added: rp.bytes_added,
        files: rp.files,
        hostname: rp.hostname,
        task_id: Some(task_id),
        created_at: catalog::now(),
        ..Default::default()
    })
}

/// Restore point ids as a message lists them.
pub fn restore_point_ids_from_pb(ids: &[String]) -> Result<Vec<RestorePointId>, String> {
    ids.iter().map(|id| parse("restore point id", id)).collect()
}

pub fn verify_from_pb(v: pb::VerifyEffects) -> Result<VerifyEffects, String> {
    Ok(VerifyEffects {
        checked: restore_point_ids_from_pb(&v.checked)?,
        damaged: v
            .damaged
            .into_iter()
            .map(|d| Ok((parse("restore point id", &d.id)?, d.damage)))
            .collect::<Result<_, String>>()?,
    })
}

#[cfg(test)]
mod tests;
