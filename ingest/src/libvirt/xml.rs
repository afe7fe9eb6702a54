//! The XML documents of libvirt this module reads and writes: a domain's
//! definition, a checkpoint, a backup job, and the definition rewritten
//! for an import.
//!
//! What comes from the host is untrusted input: it is parsed with
//! `roxmltree` (no DTDs, so no entity expansion), bounded in size, and
//! every missing piece is an error, never a panic. Documents we write are
//! built from escaped strings. The import rewrite edits the saved
//! definition *in place* (byte ranges of the parsed nodes), so every
//! element Arca does not know about (devices, CPU model, firmware
//! settings of a newer libvirt) survives unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// The largest XML document accepted from a host. Real domain
/// definitions are a few KiB; a limit keeps a hostile host from making us
/// build a huge tree.
pub const MAX_XML: usize = 4 << 20;

/// One `<disk>` of a domain definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlDisk {
    /// `<target dev=…>`: `vda`, `sdb`.
    pub target: String,
    /// `device=`: `disk`, `cdrom`, `floppy`, `lun`.
    pub device: String,
    /// `type=`: `file`, `block`, `network`, `volume`.
    pub kind: String,
    /// The file or device path (`<source file=…>` or `dev=`), if any.
    pub source: Option<String>,
    /// `<driver type=…>`: `qcow2`, `raw`.
    pub format: Option<String>,
    pub readonly: bool,
}

impl XmlDisk {
    /// Can Arca back this disk up? A disk (not a CD-ROM), writable, with
    /// a local file or block device behind it.
    pub fn backed_up(&self) -> bool {
        self.device == "disk"
            && !self.readonly
            && self.source.is_some()
            && matches!(self.kind.as_str(), "file" | "block")
    }

    /// Why not, when [`XmlDisk::backed_up`] says no.
    pub fn skip_reason(&self) -> String {
        if self.device != "disk" {
            format!("{} is a {}", self.target, self.device)
        } else if self.readonly {
            format!("{} is read-only", self.target)
        } else if self.source.is_none() {
            format!("{} has no source", self.target)
        } else {
            format!(
                "{} is a {} disk (only file and block disks are read)",
                self.target, self.kind
            )
        }
    }
}

/// What Arca needs from a domain definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainXml {
    pub name: String,
    pub uuid: String,
    pub disks: Vec<XmlDisk>,
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>> {
    if xml.len() > MAX_XML {
        return Err(Error::Xml(format!(
            "document of {} bytes (at most {MAX_XML})",
            xml.len()
        )));
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1 << 20,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(xml, opts).map_err(|e| Error::Xml(e.to_string()))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn disks_of<'a, 'i>(root: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    child(root, "devices")
        .map(|d| d.children().filter(|c| c.has_tag_name("disk")).collect())
        .unwrap_or_default()
}

/// Parse a domain definition (`virsh dumpxml`).
pub fn parse_domain(xml: &str) -> Result<DomainXml> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("domain") {
        return Err(Error::Xml(format!(
            "expected <domain>, got <{}>",
            root.tag_name().name()
        )));
    }
    let text = |name: &str| {
        child(root, name)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    let name = text("name").ok_or_else(|| Error::Xml("the domain has no <name>".into()))?;
    let uuid = text("uuid").unwrap_or_default();
    let mut disks = Vec::new();
    for d in disks_of(root) {
        let target = child(d, "target")
            .and_then(|t| t.attribute("dev"))
            .ok_or_else(|| Error::Xml(format!("a disk of {name} has no <target dev=…>")))?;
        let source = child(d, "source").and_then(|s| {
            s.attribute("file")
                .or_else(|| s.attribute("dev"))
                .map(str::to_string)
        });
        disks.push(XmlDisk {
            target: target.to_string(),
            device: d.attribute("device").unwrap_or("disk").to_string(),
            kind: d.attribute("type").unwrap_or("file").to_string(),
            source,
            format: child(d, "driver")
                .and_then(|v| v.attribute("type"))
                .map(str::to_string),
            readonly: child(d, "readonly").is_some(),
        });
    }
    Ok(DomainXml { name, uuid, disks })
}

/// Escape text for an XML attribute value or element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A checkpoint of the disks in `bitmaps` (each gets a persistent dirty
/// bitmap named after the checkpoint); the domain's other disks are listed
/// with `checkpoint='no'`, since libvirt otherwise adds them by default
/// and fails on raw ones.
pub fn checkpoint_xml(name: &str, bitmaps: &[&str], others: &[&str]) -> String {
    let mut s = format!(
        "<domaincheckpoint>\n  <name>{}</name>\n  <description>made by Arca for incremental backups</description>\n  <disks>\n",
        escape(name)
    );
    for t in bitmaps {
        s.push_str(&format!(
            "    <disk name='{}' checkpoint='bitmap'/>\n",
            escape(t)
        ));
    }
    for t in others {
        s.push_str(&format!(
            "    <disk name='{}' checkpoint='no'/>\n",
            escape(t)
        ));
    }
    s.push_str("  </disks>\n</domaincheckpoint>\n");
    s
}

/// A pull-mode backup job serving `disks` over NBD on the host's
/// 127.0.0.1:`port`. With `incremental`, the disks in `full` are still
/// exported whole (they have no bitmap in that checkpoint). The disks in
/// `scratch` get their scratch overlay at the path given (block devices:
/// libvirt puts a file disk's next to its image, and refuses to choose
/// one for a device).
pub fn backup_xml(
    incremental: Option<&str>,
    port: u16,
    disks: &[&str],
    full: &[&str],
    skipped: &[&str],
    scratch: &[(&str, String)],
) -> String {
    let mut s = String::from("<domainbackup mode='pull'>\n");
    if let Some(c) = incremental {
        s.push_str(&format!("  <incremental>{}</incremental>\n", escape(c)));
    }
    s.push_str(&format!(
        "  <server transport='tcp' name='127.0.0.1' port='{port}'/>\n  <disks>\n"
    ));
    for t in disks {
        let mode = if incremental.is_some() && full.contains(t) {
            " backupmode='full'"
        } else {
            ""
        };
        // type='file': the scratch overlay QEMU keeps the point-in-time
        // blocks in is a file (libvirt's schema requires the type; without
        // a <scratch> element libvirt puts it next to the disk image).
        match scratch.iter().find(|(d, _)| d == t) {
            Some((_, path)) => s.push_str(&format!(
                "    <disk name='{}' backup='yes' type='file'{mode}>\n      <scratch file='{}'/>\n    </disk>\n",
                escape(t),
                escape(path)
            )),
            None => s.push_str(&format!(
                "    <disk name='{}' backup='yes' type='file'{mode}/>\n",
                escape(t)
            )),
        }
    }
    for t in skipped {
        s.push_str(&format!("    <disk name='{}' backup='no'/>\n", escape(t)));
    }
    s.push_str("  </disks>\n</domainbackup>\n");
    s
}

/// One disk of a running pull-mode backup job (`virsh backup-dumpxml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedDisk {
    pub target: String,
    /// The NBD export name.
    pub export: String,
    /// The dirty bitmap exported beside it (incremental only); read as the
    /// NBD meta context `qemu:dirty-bitmap:<bitmap>`.
    pub bitmap: Option<String>,
    /// `full` or `incremental`, as libvirt decided for this disk.
    pub mode: String,
}

/// Parse `virsh backup-dumpxml` of a pull-mode job.
pub fn parse_backup_job(xml: &str) -> Result<Vec<ExportedDisk>> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if !root.has_tag_name("domainbackup") {
        return Err(Error::Xml(format!(
            "expected <domainbackup>, got <{}>",
            root.tag_name().name()
        )));
    }
    let mut out = Vec::new();
    for d in child(root, "disks")
        .into_iter()
        .flat_map(|d| d.children().filter(|c| c.has_tag_name("disk")))
    {
        if d.attribute("backup") == Some("no") {
            continue;
        }
        let target = d
            .attribute("name")
            .ok_or_else(|| Error::Xml("a backup disk has no name".into()))?;
        out.push(ExportedDisk {
            target: target.to_string(),
            export: d.attribute("exportname").unwrap_or(target).to_string(),
            bitmap: d.attribute("exportbitmap").map(str::to_string),
            mode: d.attribute("backupmode").unwrap_or("full").to_string(),
        });
    }
    Ok(out)
}

/// A disk's new home for an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDisk {
    pub path: String,
    /// `raw` or `qcow2`.
    pub format: String,
}

/// The saved definition, made into a new domain: `<name>` replaced, the
/// `<uuid>` removed (libvirt makes one), every `<mac>` removed (libvirt
/// makes new ones, so the copy does not clash with the original on the
/// network), NVRAM dropped (it would be the original's file), and each
/// disk in `disks` pointed at its new file and format, as a plain file
/// without a backing chain. Disks not in `disks` (CD-ROMs) stay as they are.
pub fn import_xml(
    saved: &str,
    new_name: &str,
    disks: &BTreeMap<String, NewDisk>,
) -> Result<String> {
    let doc = parse(saved)?;
    let root = doc.root_element();
    if !root.has_tag_name("domain") {
        return Err(Error::Xml("the saved definition is not a <domain>".into()));
    }
    // (byte range, replacement), applied from the end.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let name = child(root, "name").ok_or_else(|| Error::Xml("no <name>".into()))?;
    edits.push((name.range(), format!("<name>{}</name>", escape(new_name))));
    if let Some(u) = child(root, "uuid") {
        edits.push((u.range(), String::new()));
    }
    for n in root.descendants() {
        let drop = (n.has_tag_name("mac")
            && n.parent().is_some_and(|p| p.has_tag_name("interface")))
            || (n.has_tag_name("nvram") && n.parent().is_some_and(|p| p.has_tag_name("os")));
        if drop {
            edits.push((n.range(), String::new()));
        }
    }
    let mut done = Vec::new();
    for d in disks_of(root) {
        let Some(target) = child(d, "target").and_then(|t| t.attribute("dev")) else {
            continue;
        };
        let Some(new) = disks.get(target) else {
            continue;
        };
        done.push(target.to_string());
        let ty = d
            .attributes()
            .find(|a| a.name() == "type")
            .ok_or_else(|| Error::Xml(format!("disk {target} has no type")))?;
        edits.push((ty.range_value(), "file".into()));
        let source = format!("<source file='{}'/>", escape(&new.path));
        match child(d, "source") {
            Some(s) => edits.push((s.range(), source)),
            None => {
                let t = child(d, "target")
                    .map(|t| t.range().start)
                    .unwrap_or(d.range().end);
                edits.push((t..t, source));
            }
        }
        if let Some(b) = child(d, "backingStore") {
            edits.push((b.range(), String::new()));
        }
        match child(d, "driver").and_then(|v| v.attributes().find(|a| a.name() == "type")) {
            Some(a) => edits.push((a.range_value(), escape(&new.format))),
            None => {
                let at = child(d, "source")
                    .map(|s| s.range().start)
                    .unwrap_or(d.range().end);
                edits.push((
                    at..at,
                    format!("<driver name='qemu' type='{}'/>", escape(&new.format)),
                ));
            }
        }
    }
    if let Some(missing) = disks.keys().find(|k| !done.contains(k)) {
        return Err(Error::Xml(format!(
            "the saved definition has no disk {missing}"
        )));
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse((r.start, r.end)));
    let mut out = saved.to_string();
    let mut floor = usize::MAX;
    for (r, text) in edits {
        // Edits never overlap (they are distinct nodes and attributes);
        // checked so that a surprise cannot garble the document.
        if r.end > floor {
            return Err(Error::Xml(
                "overlapping edits of the saved definition".into(),
            ));
        }
        out.replace_range(r.clone(), &text);
        floor = r.start;
    }
    // Re-parse: what we define must be well-formed.
    parse(&out)?;
    Ok(out)
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
