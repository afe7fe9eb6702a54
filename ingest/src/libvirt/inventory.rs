//! Inventory: the domains of a host and their disks.
//!
//! The definition (`dumpxml --inactive`) is the source of truth for disks:
//! it has everything `domblklist --details` shows (type, device, target,
//! source) plus the format. Sizes come from `domblkinfo --all`, which
//! libvirt answers for running and shut-off domains alike.

use serde::Serialize;

use super::xml::{self, XmlDisk};
use super::{virsh, Conn, Error, Result};

/// A disk of a domain, as the inventory shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainDisk {
    pub target: String,
    pub device: String,
    /// `file`, `block`, `network`, `volume`.
    pub kind: String,
    pub source: Option<String>,
    pub format: Option<String>,
    /// Capacity in bytes (the guest's view); 0 when libvirt does not know.
    pub size: u64,
    /// Whether a backup reads this disk (a writable file or block disk).
    pub backed_up: bool,
}

/// A domain of the host.
#[derive(Clone, Debug, Serialize)]
pub struct Domain {
    pub name: String,
    pub uuid: String,
    /// As `virsh domstate` says it: `running`, `shut off`, `paused`, …
    pub state: String,
    pub disks: Vec<DomainDisk>,
    /// The persistent definition (`dumpxml --inactive`), as a restore
    /// point records it.
    #[serde(skip)]
    pub xml: String,
}

impl Domain {
    pub fn running(&self) -> bool {
        // A paused domain still has a QEMU process, so a backup job runs.
        matches!(self.state.as_str(), "running" | "paused" | "pmsuspended")
    }
}

/// Names of all domains, running or not.
pub(crate) fn names(conn: &Conn) -> Result<Vec<String>> {
    let out = conn.run(&virsh(&["list", "--all", "--name"]))?;
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Parse `virsh domblkinfo --all` (a table of target, capacity,
/// allocation, physical, in bytes): target → capacity.
pub fn parse_blkinfo(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (t, cap) = (it.next()?, it.next()?);
            Some((t.to_string(), cap.parse().ok()?))
        })
        .collect()
}

/// One domain by name; [`Error::NoSuchDomain`] if the host has none.
pub fn domain(conn: &Conn, name: &str) -> Result<Domain> {
    if !names(conn)?.iter().any(|n| n == name) {
        return Err(Error::NoSuchDomain(name.to_string()));
    }
    describe(conn, name)
}

/// Whether virsh's answer says the domain does not exist (any more).
fn is_gone(e: &Error) -> bool {
    match e {
        Error::Remote { stderr, .. } => {
            stderr.contains("failed to get domain") || stderr.contains("Domain not found")
        }
        _ => false,
    }
}

/// Run a virsh command about domain `name`; a domain undefined meanwhile
/// (another admin, a test's cleanup) is [`Error::NoSuchDomain`], not a
/// failure of the host.
fn about(conn: &Conn, name: &str, argv: &[&str]) -> Result<String> {
    match conn.run(&virsh(argv)) {
        Ok(o) => Ok(o.stdout),
        Err(e) if is_gone(&e) => Err(Error::NoSuchDomain(name.to_string())),
        Err(e) => Err(e),
    }
}

/// The definition, state and disks of a domain the host listed.
fn describe(conn: &Conn, name: &str) -> Result<Domain> {
    let xml_text = about(conn, name, &["dumpxml", "--inactive", name])?;
    let parsed = xml::parse_domain(&xml_text)?;
    let state = about(conn, name, &["domstate", name])?.trim().to_string();
    // Sizes are best effort: a disk whose file is gone has none, and the
    // backup reports that disk's own error when it reads it.
    let sizes = conn
        .run(&virsh(&["domblkinfo", "--all", name]))
        .map(|o| parse_blkinfo(&o.stdout))
        .unwrap_or_default();
    let disks = parsed
        .disks
        .iter()
        .map(|d: &XmlDisk| DomainDisk {
            target: d.target.clone(),
            device: d.device.clone(),
            kind: d.kind.clone(),
            source: d.source.clone(),
            format: d.format.clone(),
            size: sizes
                .iter()
                .find(|(t, _)| *t == d.target)
                .map_or(0, |(_, s)| *s),
            backed_up: d.backed_up(),
        })
        .collect();
    Ok(Domain {
        name: parsed.name,
        uuid: parsed.uuid,
        state,
        disks,
        xml: xml_text,
    })
}

/// All domains of the host with their disks.
pub fn inventory(conn: &Conn) -> Result<Vec<Domain>> {
    let mut out = Vec::new();
    for n in names(conn)? {
        match describe(conn, &n) {
            Ok(d) => out.push(d),
            // Undefined between the list and the lookup: not part of
            // the inventory any more.
            Err(Error::NoSuchDomain(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_undefined_meanwhile_is_recognised() {
        let remote = |stderr: &str| Error::Remote {
            command: "virsh domstate x".into(),
            status: 1,
            stderr: stderr.into(),
        };
        // What virsh 11 prints when the name is gone.
        assert!(is_gone(&remote("error: failed to get domain 'x'\n")));
        assert!(is_gone(&remote(
            "error: Domain not found: no domain with matching name 'x'"
        )));
        assert!(!is_gone(&remote(
            "error: failed to connect to the hypervisor"
        )));
        assert!(!is_gone(&Error::Unreachable("h".into())));
    }

    #[test]
    fn blkinfo_table() {
        let out = " Target   Capacity   Allocation   Physical\n\
                   --------------------------------------------\n \
                   vda      67108864   466944       524288\n \
                   sda      -          -            -\n";
        assert_eq!(parse_blkinfo(out), vec![("vda".to_string(), 67108864)]);
    }
}
