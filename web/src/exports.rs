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

use arca_catalog::Export;
use serde_json::{json, Value};

use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};

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
pub fn require_writable(p: &Principal, project: i64) -> ApiResult<()> {
    if p.can(Action::Manage, Some(project)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may export restore points of project {project} read-only only: writable exports and committing them need the operator or admin role",
            p.name()
        )))
    }
}

/// The export as `p` may see it.
pub fn view(p: &Principal, e: &Export) -> Value {
    let mut v = json!(e);
    if p.can(Action::Restore, Some(e.project_id)) {
        if e.protocol == "iscsi" {
            v["chap_user"] = json!(e.name);
        }
        if let Some(a) = &e.address {
            v["commands"] = json!(commands(&e.protocol, a));
        }
    } else if let Some(o) = v.as_object_mut() {
        o.remove("address");
        o.remove("secret");
    }
    v
}

/// Exports as `p` may see them.
pub fn view_all(p: &Principal, list: &[Export]) -> Value {
    Value::Array(list.iter().map(|e| view(p, e)).collect())
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
pub fn commands(protocol: &str, address: &str) -> Vec<String> {
    let q = |s: &str| format!("'{s}'");
    match protocol {
        "iscsi" => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_export_with_its_credentials() {
        let c = commands("nbd", "nbd://h:10809/export-1-abc");
        assert_eq!(c[0], "nbdinfo 'nbd://h:10809/export-1-abc'");
        let c = commands("nbd", "nbds://[::1]:10809/export-1-abc");
        assert!(c[2].contains("host=::1,port=10809,export=export-1-abc,tls-creds=tls0"));
        let c = commands(
            "iscsi",
            "iscsi://export-1%abc@h:3260/iqn.2026-11.io.arca:export-1/0",
        );
        assert_eq!(c[1], "iscsi-ls -s 'iscsi://export-1%abc@h:3260/'");
    }
}
