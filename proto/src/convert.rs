//! Between the protocol's messages and the types of both sides: task
//! parameters ([`spec`]), results ([`result`]), and the rest here. Every
//! conversion of what the other side sent is fallible: a message that
//! lacks a required part or carries an unknown enum value is an error
//! naming it, never a panic.

use arca_catalog::{self as catalog, VerifyEffects};
use arca_model::{ExportOnStop, ExportProtocol, ExportState, LogLevel, SourceKind, TaskState};
use serde_json::Value;

use crate::{pb, DatastoreRef, ExportSpec, Finished, Leased, LeasedTask};

mod result;
mod spec;

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

/// The catalog's task state as `FinishReply.state`.
pub fn catalog_state_to_pb(s: catalog::TaskState) -> pb::TaskState {
    s.as_str()
        .parse::<TaskState>()
        .map_or(pb::TaskState::Unspecified, task_state_to_pb)
}

/// `FinishReply.state` as the catalog's task state.
pub fn catalog_state_from_pb(v: i32) -> Result<catalog::TaskState, String> {
    let s = task_state_from_pb(v)?;
    catalog::TaskState::parse(s.as_str()).ok_or_else(|| format!("unknown task state {s}"))
}

/// A source or restore point kind as the catalog writes it (UNSPECIFIED
/// for a value it does not know: the other side refuses it).
fn source_kind_to_pb(kind: &str) -> i32 {
    let k = match kind.parse::<SourceKind>() {
        Ok(SourceKind::Files) => pb::SourceKind::Files,
        Ok(SourceKind::Image) => pb::SourceKind::Image,
        Err(_) => pb::SourceKind::Unspecified,
    };
    k as i32
}

fn source_kind_from_pb(v: i32) -> Result<String, String> {
    enum_from_pb(v, "source kind", |k: pb::SourceKind| match k {
        pb::SourceKind::Unspecified => None,
        pb::SourceKind::Files => Some(SourceKind::Files),
        pb::SourceKind::Image => Some(SourceKind::Image),
    })
    .map(|k| k.as_str().to_string())
}

pub fn datastore_to_pb(d: &DatastoreRef) -> pb::RegisteredDatastore {
    pb::RegisteredDatastore {
        id: d.id,
        name: d.name.clone(),
        path: d.path.clone(),
    }
}

pub fn datastore_from_pb(d: pb::RegisteredDatastore) -> DatastoreRef {
    DatastoreRef {
        id: d.id,
        name: d.name,
        path: d.path,
    }
}

/// A leased task as the server sends it.
pub fn leased_to_pb(l: &Leased) -> pb::TaskSpec {
    let t = &l.task;
    pb::TaskSpec {
        id: t.id,
        attempt: t.attempt,
        max_attempts: t.max_attempts,
        policy_id: t.policy_id,
        project_id: t.project_id,
        source: l.source.as_ref().map(|s| pb::Source {
            id: s.id,
            kind: source_kind_to_pb(&s.kind),
            name: s.name.clone(),
            path: s.path.clone(),
            tags: s.tags.clone(),
            project_id: s.project_id,
        }),
        retention: l.retention.as_ref().map(retention_to_pb),
        datastore: l.datastore.as_ref().map(datastore_to_pb),
        params: Some(params_to_pb(&t.spec)),
    }
}

/// A leased task as the node receives it (leased by `node_id`).
pub fn leased_from_pb(t: pb::TaskSpec, node_id: i64) -> Result<Leased, String> {
    let spec = params_from_pb(t.params)?;
    let source = match t.source {
        Some(s) => Some(catalog::Source {
            id: s.id,
            name: s.name,
            kind: source_kind_from_pb(s.kind).map_err(|e| format!("task source: {e}"))?,
            path: s.path,
            node_id,
            project_id: s.project_id,
            tags: s.tags,
            settings: Value::Null,
            policy_id: t.policy_id,
            assigned_by: String::new(),
            created_at: 0,
        }),
        None => None,
    };
    Ok(Leased {
        task: LeasedTask {
            id: t.id,
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            project_id: t.project_id,
            policy_id: t.policy_id,
            source_id: source.as_ref().map(|s| s.id),
            spec,
        },
        source,
        retention: t.retention.map(retention_from_pb),
        datastore: t.datastore.map(datastore_from_pb),
    })
}

pub fn export_to_pb(e: ExportSpec) -> pb::ExportSpec {
    let protocol = match e.protocol.parse::<ExportProtocol>() {
        Ok(ExportProtocol::Nbd) => pb::ExportProtocol::Nbd,
        Ok(ExportProtocol::Iscsi) => pb::ExportProtocol::Iscsi,
        Err(_) => pb::ExportProtocol::Unspecified,
    };
    let state = match e.state.parse::<ExportState>() {
        Ok(ExportState::Starting) => pb::ExportState::Starting,
        Ok(ExportState::Active) => pb::ExportState::Active,
        Ok(ExportState::Failed) => pb::ExportState::Failed,
        Ok(ExportState::Stopped) => pb::ExportState::Stopped,
        Ok(ExportState::Expired) => pb::ExportState::Expired,
        Err(_) => pb::ExportState::Unspecified,
    };
    let on_stop = match e.on_stop.parse::<ExportOnStop>() {
        Ok(ExportOnStop::Discard) => pb::ExportOnStop::Discard,
        Ok(ExportOnStop::Commit) => pb::ExportOnStop::Commit,
        Err(_) => pb::ExportOnStop::Unspecified,
    };
    pb::ExportSpec {
        id: e.id,
        restore_point: e.restore_point,
        datastore: Some(datastore_to_pb(&e.datastore)),
        protocol: protocol as i32,
        writable: e.writable,
        name: e.name,
        state: state as i32,
        on_stop: on_stop as i32,
        secret: e.secret,
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
        id: e.id,
        restore_point: e.restore_point,
        datastore: datastore_from_pb(d),
        protocol: protocol.as_str().to_string(),
        writable: e.writable,
        name: e.name,
        state: state.as_str().to_string(),
        on_stop: on_stop.as_str().to_string(),
        secret: e.secret,
    })
}

/// A task's end as the node sends it, for the lease of `attempt`.
pub fn finished_to_pb(task_id: i64, attempt: i64, f: Finished) -> pb::FinishRequest {
    let (ok, result, error) = match f.outcome {
        Ok(r) => (true, Some(result_to_pb(&r)), String::new()),
        Err(e) => (false, None, e),
    };
    let fx = f.effects;
    pb::FinishRequest {
        task_id,
        ok,
        result,
        error,
        cancelled: f.cancelled,
        restore_point: fx.restore_point.map(|rp| pb::RestorePoint {
            id: rp.id,
            datastore_id: rp.datastore_id,
            source_id: rp.source_id,
            source_name: rp.source_name,
            project_id: rp.project_id,
            kind: source_kind_to_pb(&rp.kind),
            time: rp.time,
            bytes_total: rp.bytes_total,
            bytes_added: rp.bytes_added,
            files: rp.files,
            hostname: rp.hostname,
        }),
        removed_restore_points: fx.removed_restore_points,
        verify: fx.verify.map(|v| pb::VerifyEffects {
            checked: v.checked,
            damaged: v
                .damaged
                .into_iter()
                .map(|(id, damage)| pb::DamagedRestorePoint { id, damage })
                .collect(),
        }),
        datastore_id: fx.datastore_bytes_used.map(|(d, _)| d),
        datastore_bytes_used: fx.datastore_bytes_used.map(|(_, b)| b),
        attempt,
    }
}

/// A reported restore point as the catalog lists it, made by `task_id`
/// (the server checks its datastore and id first).
pub fn restore_point_from_pb(
    rp: pb::RestorePoint,
    task_id: i64,
) -> Result<catalog::RestorePoint, String> {
    Ok(catalog::RestorePoint {
        kind: source_kind_from_pb(rp.kind).map_err(|e| format!("restore point: {e}"))?,
        id: rp.id,
        datastore_id: rp.datastore_id,
        source_id: rp.source_id,
        source_name: rp.source_name,
        project_id: rp.project_id,
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

pub fn verify_from_pb(v: pb::VerifyEffects) -> VerifyEffects {
    VerifyEffects {
        checked: v.checked,
        damaged: v.damaged.into_iter().map(|d| (d.id, d.damage)).collect(),
    }
}

#[cfg(test)]
mod tests;
