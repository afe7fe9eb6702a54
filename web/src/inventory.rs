//! Hypervisor inventories: what `POST /hypervisors/{id}/sync` asks of the
//! server. The web crate knows no SSH; the server implements this trait
//! with `arca_ingest::libvirt` (server/src/inventory.rs).

use arca_model::api::InventoryDomain;
use arca_model::ProjectId;

/// What a hypervisor's sealed key is bound to (the AES-GCM associated
/// data): a sealed key copied into another hypervisor's row does not open.
pub fn key_aad(project: ProjectId, name: &str) -> Vec<u8> {
    format!("arca hypervisor {project} {name}").into_bytes()
}

/// How to reach a hypervisor, with its private key unsealed for this call.
pub struct InventoryTarget {
    pub address: String,
    pub user: String,
    pub private_key: Vec<u8>,
    /// The pinned host key (`SHA256:…`); None: first contact.
    pub host_key: Option<String>,
}

/// Why an inventory failed.
pub enum InventoryError {
    /// The host presented another key than the pinned one.
    HostKeyChanged(String),
    /// Bad input: a key that does not parse, a refused login.
    Invalid(String),
    /// The host could not be reached or answered with an error.
    Unreachable(String),
}

/// Lists a hypervisor's domains.
pub trait Inventory: Send + Sync {
    /// Connect (refusing a host key other than the pinned one) and list
    /// the domains; returns the host key seen and the domains.
    fn list(
        &self,
        target: &InventoryTarget,
    ) -> Result<(String, Vec<InventoryDomain>), InventoryError>;
}
