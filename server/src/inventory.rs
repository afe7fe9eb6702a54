//! Hypervisor inventories for `POST /hypervisors/{id}/sync`, with
//! `arca_ingest::libvirt` over SSH from the server's own host. (A remote
//! node's hypervisors are listed from here too; their backups run on the
//! node, which must reach the same address.)

use arca_ingest::libvirt::{self, Error, Host, HostKey, SshKey};
use arca_model::api::InventoryDomain;
use arca_web::inventory::{Inventory, InventoryError, InventoryTarget};

/// Lists libvirt domains over SSH.
pub struct LibvirtInventory;

/// The libvirt connection parameters of a lease or a sync.
pub fn host(address: &str, user: &str, key: &[u8], host_key: Option<&str>) -> Result<Host, Error> {
    Ok(Host {
        addr: address.to_string(),
        user: user.to_string(),
        key: SshKey {
            private_pem: key.to_vec(),
            passphrase: None,
        },
        known_host: host_key
            .filter(|k| !k.is_empty())
            .map(HostKey::parse_fingerprint)
            .transpose()?,
    })
}

impl Inventory for LibvirtInventory {
    fn list(&self, t: &InventoryTarget) -> Result<(String, Vec<InventoryDomain>), InventoryError> {
        let map = |e: Error| match e {
            Error::HostKeyChanged { .. } => InventoryError::HostKeyChanged(e.to_string()),
            Error::InvalidInput(_) | Error::AuthFailed(_) => InventoryError::Invalid(e.to_string()),
            _ => InventoryError::Unreachable(e.to_string()),
        };
        let h = host(&t.address, &t.user, &t.private_key, t.host_key.as_deref()).map_err(map)?;
        let conn = libvirt::connect(&h).map_err(map)?;
        let seen = conn.host_key().fingerprint.clone();
        let domains = libvirt::inventory(&conn).map_err(map)?;
        Ok((
            seen,
            domains
                .into_iter()
                .map(|d| InventoryDomain {
                    name: d.name,
                    uuid: d.uuid,
                    state: d.state,
                    disks: d.disks.into_iter().map(|x| x.target).collect(),
                })
                .collect(),
        ))
    }
}
