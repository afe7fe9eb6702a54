//! `--nbd-listen` and friends of `arca server` and `arca node`, and the
//! lines that say where exports are served.

use arca_node::exports::Listeners;
use arca_node::serve::MountConfig;

pub fn config(a: &crate::MountArgs) -> MountConfig {
    MountConfig {
        nbd_listen: a.nbd_listen.clone(),
        iscsi_listen: a.iscsi_listen.clone(),
        nfs_listen: a.nfs_listen.clone(),
        export_host: a.export_host.clone(),
        nbd_tls_cert: a.nbd_tls_cert.clone(),
        nbd_tls_key: a.nbd_tls_key.clone(),
        nbd_plain: a.nbd_plain,
        export_cache_mib: a.export_cache_mib,
    }
}

/// Say where the export servers listen.
pub fn announce(listeners: &Listeners) {
    for (what, a) in [
        ("NBD", listeners.nbd),
        ("iSCSI", listeners.iscsi),
        ("NFS", listeners.nfs),
    ] {
        if let Some(a) = a {
            if crate::logs::json() {
                tracing::info!(protocol = what, listen = %a, "serving exports");
            } else {
                println!("exports over {what} on {a}");
            }
        }
    }
}
