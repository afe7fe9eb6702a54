//! What the API shows of an export, and to whom.
//!
//! An export's `address` carries its credentials (the NBD name ends with
//! the export's secret; the iSCSI URL is `iscsi://<user>%<secret>@…`), so
//! the address, the `secret` and the ready-to-paste `commands` are shown
//! only to users who may restore in the export's project (admins,
//! operators, restore-only users of that project). Users who may only
//! read the project (auditors) see the export without them; users of
//! other projects get 404, as if it did not exist.
//!
//! Restore-only users may make read-only exports; a writable export, and
//! committing one as a new restore point, need the right to change the
//! project (operators and admins).
//!
//! NFS exports (`"protocol": "nfs"`) serve any restore point's files,
//! read-only, to the address blocks of `allow` (default: the caller's
//! address as this API sees it, as /32 or /128). NFSv3 has no user
//! authentication, so that list and the project scope of this API are
//! the access control; the list, like the address, is shown only to users
//! who may restore in the export's project.

use arca_catalog::{
    self as catalog, Export, ExportId, ExportProtocol, NewTask, ProjectId, TaskSpec,
};
use arca_model::net::Cidr;
use arca_model::{api, CommitExportParams};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::{Action, Principal};
use crate::convert::ToApi;
use crate::error::{ApiError, ApiResult};
use crate::routes::{audited, audited_patch, invalid, no_change, Body, Id, Remote};
use crate::AppState;

/// 404 unless the caller may read the export's project (an export of
/// another project answers exactly as one that does not exist).
pub fn visible(p: &Principal, e: &Export) -> ApiResult<()> {
    if p.can(Action::Read, Some(e.project_id)) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("export {} not found", e.id)))
    }
}

/// 403 unless the caller may make or commit writable exports in `project`.
pub fn require_writable(p: &Principal, project: ProjectId) -> ApiResult<()> {
    if p.can(Action::Manage, Some(project)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may export restore points of project {project} read-only only: writable exports and committing them need the operator or admin role",
            p.name()
        )))
    }
}

/// The export as `p` may see it: with its credentials (address, secret,
/// CHAP user, commands) only for users who may restore in its project.
pub fn view(p: &Principal, e: Export) -> api::Export {
    let may_restore = p.can(Action::Restore, Some(e.project_id));
    let mut v = e.to_api();
    if !may_restore {
        v.address = None;
        v.secret = None;
        v.allow = Vec::new();
        return v;
    }
    if v.protocol == ExportProtocol::Nfs {
        // NFS has no use for the secret.
        v.secret = None;
    }
    if v.protocol == ExportProtocol::Iscsi {
        v.chap_user = Some(v.name.clone());
    }
    if let Some(Some(a)) = &v.address {
        v.commands = Some(commands(v.protocol, a));
    }
    v
}

/// Exports as `p` may see them.
pub fn view_all(p: &Principal, list: Vec<Export>) -> Vec<api::Export> {
    list.into_iter().map(|e| view(p, e)).collect()
}

/// `(host, port, path)` of `scheme://[user@]host:port/path`.
fn split_url(address: &str) -> Option<(&str, &str, &str)> {
    let rest = address.split_once("://")?.1;
    let (authority, path) = rest.split_once('/')?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = hostport.rsplit_once(':')?;
    Some((host, port, path))
}

/// Commands that use the export, to paste into a shell.
pub fn commands(protocol: ExportProtocol, address: &str) -> Vec<String> {
    let q = |s: &str| format!("'{s}'");
    match protocol {
        ExportProtocol::Nfs => {
            let mut out = vec![
                format!("nfs-ls -R {}", q(address)),
                format!("nfs-cp {} ./FILE", q(&nfs_file_url(address, "FILE"))),
            ];
            if let Some(m) = nfs_mount_line(address) {
                out.push(m);
            }
            out
        }
        ExportProtocol::Iscsi => {
            let portal = address.rsplit_once('/').map_or(address, |(a, _)| a);
            let portal = portal.rsplit_once('/').map_or(portal, |(a, _)| a);
            vec![
                format!("iscsi-inq {}", q(address)),
                format!("iscsi-ls -s {}", q(&format!("{portal}/"))),
                format!("qemu-img convert -p -O qcow2 {} disk.qcow2", q(address)),
            ]
        }
        _ if address.starts_with("nbds://") => {
            // qemu takes TLS settings only through options; libnbd checks
            // the certificate against the system's CAs (or add
            // ?tls-certificates=DIR with DIR/ca-cert.pem).
            let mut out = vec![
                format!("nbdinfo {}", q(address)),
                format!("nbdcopy {} disk.raw", q(address)),
            ];
            if let Some((host, port, name)) = split_url(address) {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                out.push(format!(
                    "qemu-img convert -p -O qcow2 --object tls-creds-x509,id=tls0,endpoint=client,dir=/etc/pki/qemu --image-opts 'driver=nbd,host={host},port={port},export={name},tls-creds=tls0' disk.qcow2"
                ));
            }
            out
        }
        _ => vec![
            format!("nbdinfo {}", q(address)),
            format!("nbdcopy {} disk.raw", q(address)),
            format!("qemu-img convert -p -O qcow2 {} disk.qcow2", q(address)),
        ],
    }
}

/// The libnfs URL of `file` inside the NFS export at `address`
/// (`nfs://host/path?options`).
fn nfs_file_url(address: &str, file: &str) -> String {
    match address.split_once('?') {
        Some((path, opts)) => format!("{}/{file}?{opts}", path.trim_end_matches('/')),
        None => format!("{}/{file}", address.trim_end_matches('/')),
    }
}

/// A Linux mount of the NFS export at `address`
/// (`nfs://host/path?version=3&nfsport=P&mountport=P`).
fn nfs_mount_line(address: &str) -> Option<String> {
    let rest = address.strip_prefix("nfs://")?;
    let (rest, opts) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = rest.split_once('/')?;
    let opt = |k: &str| {
        opts.split('&')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    let port = opt("nfsport")?;
    let mountport = opt("mountport").unwrap_or(port);
    Some(format!(
        "mount -t nfs -o ro,vers=3,proto=tcp,port={port},mountport={mountport},mountproto=tcp,nolock '{host}:/{path}' /mnt"
    ))
}

/// The allow list of a new NFS export: the given address blocks,
/// checked and written canonically, or the caller's address.
fn nfs_allow(given: &[String], caller: &str) -> ApiResult<Vec<String>> {
    if given.len() > api::MAX_ALLOW {
        return Err(invalid(format!(
            "allow has {} address blocks; at most {} are accepted",
            given.len(),
            api::MAX_ALLOW
        )));
    }
    if given.is_empty() {
        let ip: std::net::IpAddr = caller.parse().map_err(|_| {
            invalid("the caller's address is unknown: give the address blocks of the NFS clients in allow")
        })?;
        return Ok(vec![Cidr::host(ip).to_string()]);
    }
    let mut out: Vec<String> = Vec::new();
    for a in given {
        let c = Cidr::parse(a).map_err(|e| invalid(format!("allow: {e}")))?;
        let c = c.to_string();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Longest export lifetime.
const MAX_TTL: i64 = 30 * 86_400;

const BAD_TTL: &str = "ttl must be like 90s, 30m, 2h or 7d, at most 30d";

/// `90s`, `30m`, `2h`, `7d`, or plain seconds.
pub fn parse_ttl(t: &str) -> Option<i64> {
    let t = t.trim();
    let (n, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: i64 = n.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mul).filter(|s| (1..=MAX_TTL).contains(s))
}

pub async fn add_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    body: Body<api::NewExport>,
) -> ApiResult<(StatusCode, Json<api::Export>)> {
    let Json(b) = body?;
    let caller = remote.0.clone();
    audited(
        &s,
        p.name().to_string(),
        &remote,
        "export.add",
        b.restore_point.clone(),
        move |s| {
            // A field of the body names it: an unknown one is invalid input.
            let rp = super::restore_points::restore_point(s, &p, &b.restore_point).map_err(|e| {
                if e.status == axum::http::StatusCode::NOT_FOUND {
                    invalid(e.message)
                } else {
                    e
                }
            })?;
            if p.hides(rp.project_id) {
                // Outside the token's projects: as unknown as a missing one.
                return Err(invalid(format!(
                    "restore point {} not found",
                    b.restore_point
                )));
            }
            p.require(Action::Restore, Some(rp.project_id))?;
            let nfs = b.protocol == ExportProtocol::Nfs;
            if nfs && b.writable {
                return Err(invalid("NFS exports are read-only"));
            }
            if !nfs && !b.allow.is_empty() {
                return Err(invalid(format!(
                    "allow is for NFS exports only ({} exports use the export's secret)",
                    b.protocol
                )));
            }
            if b.writable {
                require_writable(&p, rp.project_id)?;
            }
            if !nfs && !rp.kind.has_disks() {
                return Err(invalid(
                "only image restore points can be exported as disks (file restore points can be exported over NFS: \"protocol\": \"nfs\")",
            ));
            }
            let allow = if nfs {
                nfs_allow(&b.allow, &caller)?
            } else {
                Vec::new()
            };
            let ttl = match &b.ttl {
                None => 2 * 3600,
                Some(t) => parse_ttl(t).ok_or_else(|| invalid(BAD_TTL))?,
            };
            let ds = s.catalog.datastore(rp.datastore_id)?;
            let e = s.catalog.add_export(&catalog::NewExport {
                restore_point_id: rp.id,
                datastore_id: rp.datastore_id,
                node_id: ds.node_id,
                project_id: rp.project_id,
                protocol: b.protocol,
                writable: b.writable,
                ttl_seconds: ttl,
                created_by: p.name().to_string(),
                allow,
            })?;
            Ok((StatusCode::CREATED, Json(view(&p, e))))
        },
    )
    .await
}

pub async fn list_exports(
    State(s): State<AppState>,
    p: Principal,
    q: Result<Query<api::ExportsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<api::Export>>> {
    let Query(q) = q?;
    let projects = p.projects(Action::Read);
    let list =
        s.db.call(move |c| c.exports(!q.all, projects.as_deref()))
            .await?;
    Ok(Json(view_all(&p, list)))
}

pub async fn get_export(
    State(s): State<AppState>,
    p: Principal,
    id: Id<ExportId>,
) -> ApiResult<Json<api::Export>> {
    let Path(id) = id?;
    let e = s.db.call(move |c| c.export(id)).await?;
    visible(&p, &e)?;
    Ok(Json(view(&p, e)))
}

pub async fn extend_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<ExportId>,
    body: Body<api::ExtendExport>,
) -> ApiResult<Json<api::Export>> {
    let Path(id) = id?;
    let Json(b) = body?;
    let unchanged = no_change(&b);
    audited_patch(
        &s,
        p.name().to_string(),
        &remote,
        "export.extend",
        id.to_string(),
        unchanged,
        move |s| {
            let e = s.catalog.export(id)?;
            visible(&p, &e)?;
            p.require(Action::Restore, Some(e.project_id))?;
            let Some(ttl) = &b.ttl else {
                return Ok(Json(view(&p, e)));
            };
            let ttl = parse_ttl(ttl).ok_or_else(|| invalid(BAD_TTL))?;
            let e = s.catalog.extend_export(id, ttl)?;
            Ok(Json(view(&p, e)))
        },
    )
    .await
}

pub async fn stop_export(
    State(s): State<AppState>,
    p: Principal,
    remote: Remote,
    id: Id<ExportId>,
    q: Result<Query<api::StopExportQuery>, QueryRejection>,
) -> ApiResult<Json<api::Export>> {
    let Path(id) = id?;
    let Query(q) = q?;
    let action = if q.commit {
        "export.commit"
    } else {
        "export.stop"
    };
    audited(
        &s,
        p.name().to_string(),
        &remote,
        action,
        id.to_string(),
        move |s| {
            let e = s.catalog.export(id)?;
            visible(&p, &e)?;
            p.require(Action::Restore, Some(e.project_id))?;
            if q.commit {
                require_writable(&p, e.project_id)?;
            }
            if !e.is_live() {
                return Err(ApiError::conflict(format!(
                    "export {id} is already {}",
                    e.state
                )));
            }
            let mut commit_task = None;
            if q.commit {
                if !e.writable {
                    return Err(invalid("only a writable export has changes to commit"));
                }
                // The export's restore point, in the export's project.
                let rp = s
                    .catalog
                    .restore_point(&e.restore_point_id.to_hex(), Some(&[e.project_id]))
                    .ok();
                let source_id = rp.as_ref().and_then(|rp| rp.source_id);
                let source_name = rp.map(|rp| rp.source_name).unwrap_or_default();
                let t = s.catalog.add_task(&NewTask {
                    spec: TaskSpec::CommitExport(CommitExportParams {
                        export: e.id,
                        restore_point: e.restore_point_id,
                        source: source_name,
                    }),
                    project_id: e.project_id,
                    source_id,
                    datastore_id: Some(e.datastore_id),
                    node_id: Some(e.node_id),
                    priority: 20,
                    max_attempts: 1,
                    not_before: catalog::now(),
                    created_by: p.name().to_string(),
                    ..Default::default()
                })?;
                let t =
                    t.ok_or_else(|| ApiError::conflict("the commit task could not be queued"))?;
                commit_task = Some(t.id);
            }
            let e = s.catalog.stop_export(id, commit_task)?;
            s.changed.notify_one();
            Ok(Json(view(&p, e)))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_export_with_its_credentials() {
        let c = commands(ExportProtocol::Nbd, "nbd://h:10809/export-1-abc");
        assert_eq!(c[0], "nbdinfo 'nbd://h:10809/export-1-abc'");
        let c = commands(ExportProtocol::Nbd, "nbds://[::1]:10809/export-1-abc");
        assert!(c[2].contains("host=::1,port=10809,export=export-1-abc,tls-creds=tls0"));
        let c = commands(
            ExportProtocol::Iscsi,
            "iscsi://export-1%abc@h:3260/iqn.2026-11.io.arca:export-1/0",
        );
        assert_eq!(c[1], "iscsi-ls -s 'iscsi://export-1%abc@h:3260/'");
        let a = "nfs://h/web01/abcd?version=3&nfsport=2049&mountport=2050";
        let c = commands(ExportProtocol::Nfs, a);
        assert_eq!(c[0], format!("nfs-ls -R '{a}'"));
        assert_eq!(
            c[1],
            "nfs-cp 'nfs://h/web01/abcd/FILE?version=3&nfsport=2049&mountport=2050' ./FILE"
        );
        assert_eq!(
            c[2],
            "mount -t nfs -o ro,vers=3,proto=tcp,port=2049,mountport=2050,mountproto=tcp,nolock 'h:/web01/abcd' /mnt"
        );
    }

    #[test]
    fn nfs_allow_lists_are_checked_and_default_to_the_caller() {
        assert_eq!(nfs_allow(&[], "10.1.2.3").unwrap(), ["10.1.2.3/32"]);
        assert_eq!(nfs_allow(&[], "::1").unwrap(), ["::1/128"]);
        assert_eq!(nfs_allow(&[], "::ffff:10.0.0.1").unwrap(), ["10.0.0.1/32"]);
        assert_eq!(
            nfs_allow(&[], "").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let given = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            nfs_allow(
                &given(&["10.9.9.0/24", "192.168.1.7", "10.9.9.0/24"]),
                "::1"
            )
            .unwrap(),
            ["10.9.9.0/24", "192.168.1.7/32"]
        );
        let e = nfs_allow(&given(&["10.0.0.0/8", "10.0.0.0/33"]), "::1").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("10.0.0.0/33"), "{}", e.message);
        let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(
            nfs_allow(&many, "::1").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(nfs_allow(&many[..32], "::1").unwrap().len(), 32);
    }
}
