//! A running (or paused) domain: libvirt's backup job in pull mode.
//!
//! The job fixes the point in time when it starts (`backup-begin`):
//! writes the guest makes afterwards go to the disk while QEMU keeps the
//! old blocks for the export in a scratch overlay, so the guest runs on
//! while Arca reads. The export is an NBD server on the host's
//! 127.0.0.1; Arca reaches it through the SSH connection (`direct-tcpip`),
//! so only SSH crosses the network.

use super::super::xml::{self, XmlDisk};
use super::super::{virsh, Conn, Error, Result};
use super::{
    checkpoints, new_checkpoint_name, ready, replaced_checkpoint, run_all, BackupRecord,
    Consistency, DiskSink, RemoteTmp, VmBackupOptions,
};
use crate::nbd::NbdClient;

/// Where the scratch overlay of a block-device disk goes on the host
/// (libvirt's default image pool: on the VM storage, not a tmpfs, and
/// reachable by QEMU). libvirt creates the file when the job starts and
/// removes it when the job ends.
pub const SCRATCH_DIR: &str = "/var/lib/libvirt/images";

/// Ports tried for the job's NBD server on the host (loopback only).
const PORT_BASE: u16 = 10810;
const PORT_SPAN: u64 = 1000;
const PORT_TRIES: u64 = 8;

/// Start the job on a free port; the ports are tried in a pseudo-random
/// order (there is no way to ask libvirt for "any free port").
fn begin(
    conn: &Conn,
    tmp: &RemoteTmp,
    dom: &str,
    incremental: Option<&str>,
    disks: (&[&str], &[&str], &[&str]),
    scratch: &[(&str, String)],
    checkpoint: Option<&str>,
) -> Result<u16> {
    let seed = crate::now_ns().unsigned_abs();
    let mut last = None;
    for attempt in 0..PORT_TRIES {
        let port = PORT_BASE + ((seed / 1000 + attempt * 7919) % PORT_SPAN) as u16;
        let path = tmp.file(&format!("backup-{port}.xml"));
        conn.upload(
            &path,
            xml::backup_xml(incremental, port, disks.0, disks.1, disks.2, scratch).as_bytes(),
        )?;
        let mut args = vec!["backup-begin", dom, path.as_str()];
        args.extend(checkpoint);
        match conn.run(&virsh(&args)) {
            Ok(_) => return Ok(port),
            Err(Error::Remote { stderr, .. })
                if stderr.contains("Address already in use")
                    || stderr.contains("Failed to bind") =>
            {
                last = Some(stderr);
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Ssh(format!(
        "no free port for the backup job's NBD server on the host ({})",
        last.unwrap_or_default()
    )))
}

/// A pull-mode job that an earlier, killed Arca run left running (its NBD
/// server on loopback in Arca's port range) is aborted, or no new job
/// could start. Another tool's job is left alone: then `backup-begin`
/// fails with libvirt's own message.
fn abort_leftover_job(conn: &Conn, dom: &str) -> Option<String> {
    let job = conn.run(&virsh(&["backup-dumpxml", dom])).ok()?;
    if job.stdout.len() > xml::MAX_XML {
        return None;
    }
    let doc = roxmltree::Document::parse(&job.stdout).ok()?;
    let server = doc.descendants().find(|n| n.has_tag_name("server"))?;
    let port: u16 = server.attribute("port")?.parse().ok()?;
    let ours = server.attribute("name") == Some("127.0.0.1")
        && (PORT_BASE..PORT_BASE + PORT_SPAN as u16).contains(&port);
    if !ours {
        return None;
    }
    match conn.run(&virsh(&["domjobabort", dom])) {
        Ok(_) => Some(format!(
            "aborted the backup job an interrupted run left on {dom} (NBD port {port})"
        )),
        Err(e) => Some(format!(
            "a backup job an interrupted run left on {dom}: {e}"
        )),
    }
}

/// Returns the warnings of the job's lifecycle.
pub(super) fn backup(
    conn: &Conn,
    tmp: &RemoteTmp,
    rec: &mut BackupRecord,
    mut since: std::result::Result<String, String>,
    (backed_up, skip): (&[&XmlDisk], &[&XmlDisk]),
    opts: &VmBackupOptions,
    sink: &mut dyn DiskSink,
) -> Result<Vec<String>> {
    let name = rec.domain.clone();
    let parent_targets: Vec<String> = opts
        .parent
        .as_ref()
        .and_then(BackupRecord::of)
        .map(|p| p.disks.into_iter().map(|d| d.target).collect())
        .unwrap_or_default();
    let targets: Vec<&str> = rec.disks.iter().map(|d| d.target.as_str()).collect();
    let bitmaps: Vec<&str> = rec
        .disks
        .iter()
        .filter(|d| d.format == "qcow2")
        .map(|d| d.target.as_str())
        .collect();
    // Read whole: raw disks (no bitmap), and disks the parent's checkpoint
    // does not cover (added since).
    let full: Vec<&str> = rec
        .disks
        .iter()
        .filter(|d| d.format != "qcow2" || !parent_targets.contains(&d.target))
        .map(|d| d.target.as_str())
        .collect();
    let skipped: Vec<&str> = skip.iter().map(|d| d.target.as_str()).collect();
    let incremental = since.clone().ok();
    let incremental = incremental.as_deref();

    let new_ckpt = new_checkpoint_name(opts.checkpoint_prefix());
    // Block devices: libvirt needs to be told where their scratch
    // overlay goes.
    let scratch: Vec<(&str, String)> = backed_up
        .iter()
        .filter(|d| d.kind != "file")
        .map(|d| {
            let t = d.target.as_str();
            (t, format!("{SCRATCH_DIR}/{name}.{t}.{new_ckpt}.scratch"))
        })
        .collect();
    let ck_path = tmp.file("checkpoint.xml");
    let others: Vec<&str> = targets
        .iter()
        .chain(&skipped)
        .filter(|t| !bitmaps.contains(t))
        .copied()
        .collect();
    let checkpoint = if bitmaps.is_empty() {
        None
    } else {
        conn.upload(
            &ck_path,
            xml::checkpoint_xml(&new_ckpt, &bitmaps, &others).as_bytes(),
        )?;
        Some(ck_path.as_str())
    };

    let mut warnings: Vec<String> = abort_leftover_job(conn, &name).into_iter().collect();
    rec.consistency = Consistency::Crash;
    if !opts.pre.is_empty() {
        match run_all(conn, &opts.pre, "pre") {
            Ok(()) => rec.consistency = Consistency::Application,
            Err(e) if opts.pre_failure_is_warning => {
                warnings.push(format!("pre command failed, crash-consistent only: {e}"))
            }
            Err(e) => {
                // Undo what the pre commands may have done (thaw).
                let _ = run_all(conn, &opts.post, "post");
                return Err(Error::Unsupported(format!(
                    "a pre command failed, the backup did not start: {e}"
                )));
            }
        }
    }
    let mut begun = begin(
        conn,
        tmp,
        &name,
        incremental,
        (&targets, &full, &skipped),
        &scratch,
        checkpoint,
    );
    // The checkpoint exists but libvirt cannot use it (its bitmap is gone
    // from a disk, or broken after QEMU was killed): a full job instead,
    // at once, while the pre commands' effect still holds.
    if let (Some(c), Err(Error::Remote { stderr, .. })) = (incremental, &begun) {
        since = Err(format!(
            "the incremental job against checkpoint {c} could not start: {}",
            stderr.lines().next().unwrap_or_default()
        ));
        delete_checkpoint(conn, &name, &new_ckpt);
        begun = begin(
            conn,
            tmp,
            &name,
            None,
            (&targets, &full, &skipped),
            &scratch,
            checkpoint,
        );
    }
    if let Err(e) = run_all(conn, &opts.post, "post") {
        warnings.push(format!("post command failed: {e}"));
    }
    let port = match begun {
        Ok(p) => p,
        Err(e) => {
            delete_checkpoint(conn, &name, &new_ckpt);
            return Err(e);
        }
    };
    rec.checkpoint = checkpoint.map(|_| new_ckpt.clone());
    rec.mode = match &since {
        Ok(c) if full.is_empty() => format!("incremental against checkpoint {c}"),
        Ok(c) => format!(
            "incremental against checkpoint {c}; read whole: {} (raw, or new since)",
            full.join(", ")
        ),
        Err(why) => format!("full ({why})"),
    };
    rec.warnings = warnings.clone();

    let r = read(conn, rec, port, &since, sink);
    // A pull-mode job runs until it is aborted: that is its normal end.
    let aborted = conn.run(&virsh(&["domjobabort", &name]));
    match r {
        Ok(()) => {
            let mut out = warnings;
            if let Err(e) = aborted {
                out.push(format!("ending the backup job: {e}"));
            }
            // The restore point is committed: the older checkpoints are no
            // longer needed (each one keeps a bitmap that costs the guest
            // on every write).
            match checkpoints(conn, &name) {
                Ok(all) => {
                    for c in all
                        .iter()
                        .filter(|c| replaced_checkpoint(c, opts.checkpoint_prefix(), &new_ckpt))
                    {
                        if let Some(w) = delete_old_checkpoint(conn, &name, c) {
                            out.push(w);
                        }
                    }
                }
                Err(e) => out.push(format!("listing checkpoints: {e}")),
            }
            Ok(out)
        }
        Err(e) => {
            delete_checkpoint(conn, &name, &new_ckpt);
            Err(e)
        }
    }
}

/// Delete an older checkpoint; when libvirt cannot (its bitmap is gone
/// from a disk), drop it from libvirt's metadata so that it does not
/// linger, and say so.
fn delete_old_checkpoint(conn: &Conn, dom: &str, ckpt: &str) -> Option<String> {
    let e = conn.run(&virsh(&["checkpoint-delete", dom, ckpt])).err()?;
    match conn.run(&virsh(&["checkpoint-delete", dom, ckpt, "--metadata"])) {
        Ok(_) => Some(format!(
            "old checkpoint {ckpt} removed from libvirt's metadata only ({e})"
        )),
        Err(e2) => Some(format!("deleting old checkpoint {ckpt}: {e}; {e2}")),
    }
}

/// Delete a checkpoint this run made, best effort (the run is failing
/// already; its own error is the one to report).
fn delete_checkpoint(conn: &Conn, dom: &str, ckpt: &str) {
    if checkpoints(conn, dom).is_ok_and(|all| all.iter().any(|c| c == ckpt)) {
        let _ = conn.run(&virsh(&["checkpoint-delete", dom, ckpt]));
    }
}

/// Connect to the job's exports and store the disks.
fn read(
    conn: &Conn,
    rec: &BackupRecord,
    port: u16,
    since: &std::result::Result<String, String>,
    sink: &mut dyn DiskSink,
) -> Result<()> {
    let job = conn
        .run(&virsh(&["backup-dumpxml", &rec.domain]))
        .map_err(|e| {
            Error::Unsupported(format!(
                "the backup job of {} ended before its disks were read: {e}",
                rec.domain
            ))
        })?;
    let exported = xml::parse_backup_job(&job.stdout)?;
    let mut clients = Vec::new();
    for d in &rec.disks {
        let e = exported
            .iter()
            .find(|e| e.target == d.target)
            .ok_or_else(|| {
                Error::Xml(format!("the backup job does not export disk {}", d.target))
            })?;
        let bitmap = e.bitmap.as_ref().map(|b| format!("qemu:dirty-bitmap:{b}"));
        let mut ctx = vec!["base:allocation"];
        ctx.extend(bitmap.as_deref());
        let ch = conn.tunnel_tcp("127.0.0.1", port)?;
        clients.push((NbdClient::connect(ch, &e.export, &ctx)?, bitmap));
    }
    let disks = ready(
        rec,
        clients,
        rec.checkpoint.as_deref().unwrap_or_default(),
        since,
        None,
    )?;
    sink.store(rec, disks)
}
