//! Backup of a libvirt domain: the checkpoint lifecycle around libvirt's
//! pull-mode backup job, or `qemu-nbd` on the disk files of a shut-off
//! domain, with the data read over NBD through the SSH connection and
//! stored by [`crate::image::backup_disks`].
//!
//! Checkpoints: every backup of a running domain creates a checkpoint
//! `arca-<time>` (a persistent dirty bitmap in each qcow2 disk) at the
//! instant of the backup, and records its name in the restore point. The
//! next backup asks for an incremental job against it. Only after the new
//! restore point is committed are the older `arca-*` checkpoints deleted;
//! if anything fails, the new checkpoint is deleted instead, so the next
//! run is again incremental against the last good restore point.

use std::sync::{Arc, Mutex};

use arca_repo::{Datastore, Snapshot};
use serde::{Deserialize, Serialize};

use super::inventory::{domain, Domain};
use super::xml::{self, XmlDisk};
use super::{virsh, Conn, Error, Result, Stream};
use crate::image::{backup_disks, DiskInput, Header};
use crate::nbd::wire::{STATE_DIRTY, STATE_ZERO};
use crate::nbd::NbdClient;
use crate::{BackupOutcome, Progress};

/// The prefix of the checkpoints Arca makes (and deletes).
pub const CHECKPOINT_PREFIX: &str = "arca-";

/// What a backup of a domain is asked to do.
#[derive(Clone, Debug, Default)]
pub struct VmBackupOptions {
    /// The source name the restore point is filed under.
    pub source: String,
    /// The previous restore point of this domain (its checkpoint makes the
    /// backup incremental).
    pub parent: Option<Snapshot>,
    pub tags: Vec<String>,
    /// Commands (argv arrays, run on the host) before the backup job
    /// starts, e.g. `["virsh","-c","qemu:///system","domfsfreeze","DOM"]`.
    /// They run only for a running domain.
    pub pre: Vec<Vec<String>>,
    /// Commands run right after the job has fixed the point in time (the
    /// guest is thawed as early as possible), also when the start failed.
    pub post: Vec<Vec<String>>,
    /// A failing pre command makes the backup fail (default), or, with
    /// this, only a crash-consistent one with a warning saying why.
    pub pre_failure_is_warning: bool,
    /// The prefix of this datastore's checkpoints (`image::qcow2::
    /// bitmap_prefix`): a backup deletes only its own datastore's older
    /// checkpoints, so two datastores backing up one domain each keep an
    /// incremental chain. Empty: `arca-`, every Arca checkpoint.
    pub checkpoint_prefix: String,
}

impl VmBackupOptions {
    /// The prefix of the checkpoints this backup makes and replaces.
    pub fn checkpoint_prefix(&self) -> &str {
        if self.checkpoint_prefix.is_empty() {
            CHECKPOINT_PREFIX
        } else {
            &self.checkpoint_prefix
        }
    }
}

/// Is `name` a checkpoint this backup replaces once it committed: one of
/// its datastore's (`prefix`), or one Arca made before checkpoints were
/// named per datastore (`arca-<nanoseconds>`), other than `new`.
pub fn replaced_checkpoint(name: &str, prefix: &str, new: &str) -> bool {
    let legacy = name
        .strip_prefix(CHECKPOINT_PREFIX)
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    name != new && (name.starts_with(prefix) || legacy)
}

/// The consistency a restore point reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// As if the power had been cut at the backup's instant.
    Crash,
    /// Pre commands (freeze, flush) ran and succeeded.
    Application,
}

/// A disk as the restore point records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDisk {
    pub target: String,
    pub source: String,
    pub format: String,
    pub size: u64,
}

/// What a libvirt restore point records in its manifest's `metadata_json`
/// (under the key `libvirt`), so that an import can recreate the domain
/// and the next backup can continue the checkpoint chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupRecord {
    pub host: String,
    pub domain: String,
    pub uuid: String,
    /// `running`, `shut off`, … at the backup.
    pub state: String,
    /// The persistent definition (`dumpxml --inactive`).
    pub xml: String,
    pub disks: Vec<RecordedDisk>,
    /// Disks not read, with why (CD-ROMs, network disks).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// The checkpoint the next backup can be incremental against.
    pub checkpoint: Option<String>,
    /// Full or incremental, and why.
    pub mode: String,
    pub consistency: Consistency,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    libvirt: BackupRecord,
}

impl BackupRecord {
    /// The record of a libvirt restore point; None for other kinds.
    pub fn of(s: &Snapshot) -> Option<BackupRecord> {
        serde_json::from_str::<Metadata>(&s.manifest.metadata_json)
            .ok()
            .map(|m| m.libvirt)
    }

    /// The manifest's `metadata_json` of a restore point with this record.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Metadata {
            libvirt: self.clone(),
        })
        .unwrap_or_default()
    }
}

/// A temp directory on the host (`mktemp -d`), removed when dropped; a
/// `qemu-nbd` whose pid file lies in it is stopped first.
pub(super) struct RemoteTmp<'c> {
    conn: &'c Conn,
    path: String,
}

impl<'c> RemoteTmp<'c> {
    pub(super) fn new(conn: &'c Conn) -> Result<Self> {
        let out = conn.run(&["mktemp", "-d", "-t", "arca-libvirt.XXXXXXXX"])?;
        let path = out.stdout.trim().to_string();
        if !path.starts_with('/') || path.contains('\n') {
            return Err(Error::Ssh(format!(
                "mktemp -d on the host printed {path:?}"
            )));
        }
        Ok(RemoteTmp { conn, path })
    }

    pub(super) fn file(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }
}

impl Drop for RemoteTmp<'_> {
    fn drop(&mut self) {
        // A constant script; the directory is its argument, never spliced
        // into the script text. A pid is killed only while it is still a
        // qemu-nbd (it may have exited and the number been reused).
        let script = "for p in \"$1\"/*.pid; do [ -f \"$p\" ] || continue; pid=$(cat \"$p\"); \
                      grep -qs qemu-nbd \"/proc/$pid/cmdline\" && kill \"$pid\"; done; rm -rf -- \"$1\"";
        let _ = self.conn.run(&["sh", "-c", script, "sh", &self.path]);
    }
}

/// Run the pre (or post) commands; the first failure stops the list.
fn run_all(conn: &Conn, cmds: &[Vec<String>], what: &str) -> Result<()> {
    for c in cmds {
        if c.is_empty() {
            return Err(Error::InvalidInput(format!("an empty {what} command")));
        }
        conn.run(c)?;
    }
    Ok(())
}

fn checkpoints(conn: &Conn, dom: &str) -> Result<Vec<String>> {
    Ok(conn
        .run(&virsh(&["checkpoint-list", dom, "--name"]))?
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// A new checkpoint name, unique per domain: the datastore's prefix and
/// the time in nanoseconds.
fn new_checkpoint_name(prefix: &str) -> String {
    format!("{prefix}{}", crate::now_ns())
}

/// The parent's checkpoint if this backup can be incremental against it,
/// else why not.
fn usable_checkpoint(
    dom: &Domain,
    parent: Option<&BackupRecord>,
    present: &[String],
) -> std::result::Result<String, String> {
    let Some(p) = parent else {
        return Err("no parent restore point".into());
    };
    if !p.uuid.is_empty() && p.uuid != dom.uuid {
        return Err(format!(
            "the domain was redefined (UUID {} at the parent, {} now)",
            p.uuid, dom.uuid
        ));
    }
    let Some(c) = &p.checkpoint else {
        return Err("the parent recorded no checkpoint".into());
    };
    if !present.contains(c) {
        return Err(format!(
            "checkpoint {c} of the parent is gone from the host"
        ));
    }
    Ok(c.clone())
}

/// Back up `domain` of the host behind `conn` into `ds`.
pub fn backup(
    ds: &Arc<Datastore>,
    conn: &Conn,
    domain_name: &str,
    opts: &VmBackupOptions,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let mut sink = Here {
        ds,
        opts,
        progress,
        out: None,
    };
    let warnings = backup_to(conn, domain_name, opts, &mut sink)?;
    let mut out = sink
        .out
        .ok_or_else(|| Error::Unsupported("the backup stored nothing".into()))?;
    out.warnings.extend(warnings);
    Ok(out)
}

/// A disk of the domain, exported over NBD and ready to read: what the
/// backup job (or `qemu-nbd`) serves, and its plan.
pub struct ReadyDisk {
    pub client: NbdClient<Stream>,
    pub plan: DiskPlan,
}

/// What is known of an exported disk before reading it: which extents
/// hold data, and which changed since the parent's checkpoint when that
/// is known.
#[derive(Clone, Debug)]
pub struct DiskPlan {
    /// The disk's target (`vda`): its name in the restore point.
    pub target: String,
    /// `raw` or `qcow2` (the format of the file on the host).
    pub format: String,
    pub size: u64,
    /// Extents holding data (`base:allocation`); the rest reads as zeros.
    pub allocated: Vec<(u64, u64)>,
    /// Extents written since the parent's checkpoint; None: unknown, read
    /// every allocated extent.
    pub changed: Option<Vec<(u64, u64)>>,
    /// The changed-block tracking handle the restore point records (the
    /// checkpoint, whose bitmap the next backup reads), empty for none.
    pub cbt: String,
    /// Ok(where the changes come from) or Err(why they are not known).
    pub changes: std::result::Result<String, String>,
}

/// Where a domain's disks go once exported: a datastore on this machine
/// ([`backup`]), or an agent's upload to a server.
pub trait DiskSink {
    /// Store `disks` (in the order of `rec.disks`) as one restore point
    /// that records `rec`; the checkpoint lifecycle around it is the
    /// caller's (older checkpoints go only after this returns Ok).
    fn store(&mut self, rec: &BackupRecord, disks: Vec<ReadyDisk>) -> Result<()>;
}

/// Back up `domain` of the host behind `conn` into `sink`: the domain's
/// definition and disks, a checkpoint and the backup job (or `qemu-nbd`
/// for a shut-off domain), then `sink` stores the exported disks.
/// Returns the warnings of the job's lifecycle.
pub fn backup_to(
    conn: &Conn,
    domain_name: &str,
    opts: &VmBackupOptions,
    sink: &mut dyn DiskSink,
) -> Result<Vec<String>> {
    let dom = domain(conn, domain_name)?;
    let parsed = xml::parse_domain(&dom.xml)?;
    let (read, skip): (Vec<&XmlDisk>, Vec<&XmlDisk>) =
        parsed.disks.iter().partition(|d| d.backed_up());
    if read.is_empty() {
        let why: Vec<String> = skip.iter().map(|d| d.skip_reason()).collect();
        return Err(Error::Unsupported(format!(
            "domain {domain_name} has no disk Arca can read ({})",
            if why.is_empty() {
                "no disks".into()
            } else {
                why.join("; ")
            }
        )));
    }
    let parent_rec = opts.parent.as_ref().and_then(BackupRecord::of);
    let present = checkpoints(conn, domain_name)?;
    let since = usable_checkpoint(&dom, parent_rec.as_ref(), &present);
    let mut rec = BackupRecord {
        host: conn.addr().to_string(),
        domain: dom.name.clone(),
        uuid: dom.uuid.clone(),
        state: dom.state.clone(),
        xml: dom.xml.clone(),
        disks: read
            .iter()
            .map(|d| RecordedDisk {
                target: d.target.clone(),
                source: d.source.clone().unwrap_or_default(),
                format: d.format.clone().unwrap_or_else(|| "raw".into()),
                size: dom
                    .disks
                    .iter()
                    .find(|x| x.target == d.target)
                    .map_or(0, |x| x.size),
            })
            .collect(),
        skipped: skip.iter().map(|d| d.skip_reason()).collect(),
        checkpoint: None,
        mode: String::new(),
        consistency: Consistency::Crash,
        warnings: Vec::new(),
    };
    let tmp = RemoteTmp::new(conn)?;
    if dom.running() {
        running::backup(conn, &tmp, &mut rec, since, (&read, &skip), opts, sink)
    } else {
        offline::backup(conn, &tmp, &mut rec, since, opts, sink)
    }
}

/// Ask each disk's NBD client which extents hold data and which changed,
/// and check its size: `clients[i]` serves `rec.disks[i]`, with the
/// dirty-bitmap context when the disk is read incrementally; `how` is
/// said in each disk's mode.
fn ready(
    rec: &BackupRecord,
    clients: Vec<(Client, Option<String>)>,
    cbt: &str,
    since: &std::result::Result<String, String>,
    how: Option<&str>,
) -> Result<Vec<ReadyDisk>> {
    let mut out = Vec::with_capacity(clients.len());
    for ((mut c, bitmap), d) in clients.into_iter().zip(&rec.disks) {
        let allocated = c.extents_where("base:allocation", |f| f & STATE_ZERO == 0)?;
        let changed = match &bitmap {
            Some(ctx) => Some(c.extents_where(ctx, |f| f & STATE_DIRTY != 0)?),
            None => None,
        };
        if d.size != 0 && c.size() != d.size {
            return Err(Error::Unsupported(format!(
                "disk {} of {} is exported with {} bytes, libvirt says {}",
                d.target,
                rec.domain,
                c.size(),
                d.size
            )));
        }
        let how = how.map(|h| format!("; {h}")).unwrap_or_default();
        let plan = DiskPlan {
            target: d.target.clone(),
            format: d.format.clone(),
            size: c.size(),
            allocated,
            changed,
            cbt: if d.format == "qcow2" {
                cbt.to_string()
            } else {
                String::new()
            },
            changes: match since {
                Ok(c) => Ok(format!("the dirty bitmap of checkpoint {c}{how}")),
                Err(why) => Err(format!("{why}{how}")),
            },
        };
        out.push(ReadyDisk { client: c, plan });
    }
    Ok(out)
}

/// One disk's NBD connection to the host.
type Client = NbdClient<Stream>;

/// The sink of [`backup`]: a datastore on this machine.
struct Here<'a> {
    ds: &'a Arc<Datastore>,
    opts: &'a VmBackupOptions,
    progress: &'a Progress,
    out: Option<BackupOutcome>,
}

impl DiskSink for Here<'_> {
    fn store(&mut self, rec: &BackupRecord, disks: Vec<ReadyDisk>) -> Result<()> {
        let opts = self.opts;
        let (clients, disks): (Vec<_>, Vec<_>) = disks
            .into_iter()
            .map(|d| (Mutex::new(d.client), d.plan))
            .unzip();
        let reads: Vec<_> = clients
            .iter()
            .map(|c| {
                move |off: u64, buf: &mut [u8]| {
                    c.lock().unwrap_or_else(|e| e.into_inner()).read(off, buf)
                }
            })
            .collect();
        let parent_disks = opts
            .parent
            .as_ref()
            .map(|p| p.manifest.disks.clone())
            .unwrap_or_default();
        let mut inputs = Vec::with_capacity(reads.len());
        for (d, read) in disks.iter().zip(&reads) {
            let mut i = DiskInput::new(&d.target, d.size, read);
            i.format = d.format.clone();
            i.cbt = d.cbt.clone();
            i.allocated = Some(d.allocated.clone());
            i.changed = d.changed.clone();
            match &d.changes {
                Ok(from) => i.changed_from = from.clone(),
                Err(why) => i.no_changes_because = Some(why.clone()),
            }
            i.parent = parent_disks.iter().find(|p| p.name == d.target).cloned();
            inputs.push(i);
        }
        let path = format!("{}:{}", rec.host, rec.domain);
        let header = Header {
            source_kind: "libvirt",
            source: &opts.source,
            path: &path,
            tags: &opts.tags,
            parent: opts.parent.as_ref(),
            metadata_json: rec.to_json(),
        };
        let out = backup_disks(self.ds, &header, inputs, self.progress);
        drop(reads);
        for c in clients {
            c.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .disconnect();
        }
        let mut out = out?;
        out.consistency = Some(rec.consistency);
        self.out = Some(out);
        Ok(())
    }
}

mod offline;
mod running;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_replaces_its_datastores_checkpoints_and_legacy_ones_only() {
        let p = "arca-1a2b3c4d-";
        let new = "arca-1a2b3c4d-300";
        // Its own datastore's older one, and one named before prefixes.
        assert!(replaced_checkpoint("arca-1a2b3c4d-100", p, new));
        assert!(replaced_checkpoint("arca-1796525865483100668", p, new));
        // Not the new one, another datastore's, or anyone else's.
        assert!(!replaced_checkpoint(new, p, new));
        assert!(!replaced_checkpoint("arca-99999999-200", p, new));
        assert!(!replaced_checkpoint("nightly-1", p, new));
        assert!(!replaced_checkpoint("arca-", p, new));
        // No prefix given: every Arca checkpoint, as before.
        let o = VmBackupOptions::default();
        assert_eq!(o.checkpoint_prefix(), "arca-");
        assert!(replaced_checkpoint(
            "arca-99999999-200",
            o.checkpoint_prefix(),
            "arca-5"
        ));
    }

    fn record(uuid: &str, checkpoint: Option<&str>) -> BackupRecord {
        BackupRecord {
            host: "h:22".into(),
            domain: "web1".into(),
            uuid: uuid.into(),
            state: "running".into(),
            xml: "<domain/>".into(),
            disks: vec![RecordedDisk {
                target: "vda".into(),
                source: "/v/web1.qcow2".into(),
                format: "qcow2".into(),
                size: 1 << 30,
            }],
            skipped: vec!["sda is a cdrom".into()],
            checkpoint: checkpoint.map(str::to_string),
            mode: "full (no parent restore point)".into(),
            consistency: Consistency::Application,
            warnings: Vec::new(),
        }
    }

    fn dom(uuid: &str) -> Domain {
        Domain {
            name: "web1".into(),
            uuid: uuid.into(),
            state: "running".into(),
            disks: Vec::new(),
            xml: String::new(),
        }
    }

    #[test]
    fn the_parents_checkpoint_is_used_only_when_it_still_fits() {
        let present = vec!["arca-1".to_string()];
        let d = dom("u1");
        let ok = record("u1", Some("arca-1"));
        assert_eq!(
            usable_checkpoint(&d, Some(&ok), &present),
            Ok("arca-1".into())
        );
        let why = |p: Option<&BackupRecord>, present: &[String]| {
            usable_checkpoint(&d, p, present).expect_err("not usable")
        };
        assert_eq!(why(None, &present), "no parent restore point");
        assert!(why(Some(&record("u2", Some("arca-1"))), &present).contains("redefined"));
        assert_eq!(
            why(Some(&record("u1", None)), &present),
            "the parent recorded no checkpoint"
        );
        assert!(why(Some(&ok), &[]).contains("gone from the host"));
    }

    #[test]
    fn the_record_round_trips_through_the_manifest() {
        let r = record("u1", Some("arca-1"));
        let snap = Snapshot {
            id: Default::default(),
            manifest: arca_repo::format::Manifest {
                metadata_json: r.to_json(),
                ..Default::default()
            },
        };
        let back = BackupRecord::of(&snap).expect("a libvirt record");
        assert_eq!(back.checkpoint.as_deref(), Some("arca-1"));
        assert_eq!(back.disks, r.disks);
        assert_eq!(back.consistency, Consistency::Application);
        assert!(r.to_json().contains("\"consistency\":\"application\""));
        // Other kinds of restore points have no record.
        let other = Snapshot {
            id: Default::default(),
            manifest: Default::default(),
        };
        assert!(BackupRecord::of(&other).is_none());
    }
}
