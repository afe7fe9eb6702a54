//! A shut-off domain: libvirt has no backup job without a QEMU process,
//! so each disk file is served by `qemu-nbd` on the host, read-only, on a
//! unix socket in the run's private temp directory, reached through the
//! SSH connection (`direct-streamlocal`).
//!
//! The checkpoints of the domain live on as persistent bitmaps inside its
//! qcow2 files (named after the checkpoint). If the parent's checkpoint is
//! still there, `qemu-nbd --bitmap` exports its bitmap and only the dirty
//! extents are read. No new checkpoint is made (libvirt cannot add one to
//! a domain that is off without QEMU); the restore point carries the
//! parent's checkpoint forward, which is correct because everything
//! written since that checkpoint is marked in its bitmap, a superset of
//! what changed since this restore point.

use super::super::{Conn, Error, Result};
use super::{ready, BackupRecord, Consistency, DiskSink, RecordedDisk, RemoteTmp, VmBackupOptions};
use crate::nbd::NbdClient;

/// Start `qemu-nbd` for one disk: it forks once its socket listens, and
/// exits when its (single) client disconnects, or when the temp dir's
/// cleanup stops it by its pid file. Its standard streams are detached
/// from the SSH channel (a daemon holding them would keep the command
/// from ever ending); its messages go to a log that is shown on failure.
fn serve(
    conn: &Conn,
    tmp: &RemoteTmp,
    name: &str,
    d: &RecordedDisk,
    bitmap: Option<&str>,
) -> Result<String> {
    let sock = tmp.file(&format!("{name}.sock"));
    let pid = tmp.file(&format!("{name}.pid"));
    let log = tmp.file(&format!("{name}.log"));
    // A constant script; the log path and the command are its arguments.
    let script =
        "log=$1; shift; \"$@\" </dev/null >/dev/null 2>\"$log\"; rc=$?; cat \"$log\" >&2; exit $rc";
    let mut argv = vec![
        "sh",
        "-c",
        script,
        "sh",
        &log,
        "qemu-nbd",
        "--fork",
        "--read-only",
        "--format",
        &d.format,
        "--export-name",
        &d.target,
        "--socket",
        &sock,
        "--pid-file",
        &pid,
    ];
    if let Some(b) = bitmap {
        argv.extend(["--bitmap", b]);
    }
    argv.push(&d.source);
    conn.run(&argv)?;
    Ok(sock)
}

/// Returns the warnings (no pre or post commands ran).
pub(super) fn backup(
    conn: &Conn,
    tmp: &RemoteTmp,
    rec: &mut BackupRecord,
    mut since: std::result::Result<String, String>,
    opts: &VmBackupOptions,
    sink: &mut dyn DiskSink,
) -> Result<Vec<String>> {
    if !opts.pre.is_empty() || !opts.post.is_empty() {
        rec.warnings
            .push("the domain is shut off: pre and post commands were not run".into());
    }
    rec.consistency = Consistency::Crash;
    // A raw disk has no bitmap: with one, an offline run reads it whole.
    let mut sockets = Vec::new();
    for d in &rec.disks {
        let bitmap = match (&since, d.format.as_str()) {
            (Ok(c), "qcow2") => Some(c.clone()),
            _ => None,
        };
        let sock = match serve(conn, tmp, &d.target, d, bitmap.as_deref()) {
            Ok(s) => s,
            Err(Error::Remote { stderr, .. }) if bitmap.is_some() => {
                // The bitmap is not in this file (the disk was replaced,
                // or the checkpoint was made without it): full read.
                since = Err(format!(
                    "the bitmap of checkpoint {} is not in {}: {stderr}",
                    bitmap.unwrap_or_default(),
                    d.source
                ));
                sockets.clear();
                break;
            }
            Err(e) => return Err(e),
        };
        sockets.push((sock, bitmap));
    }
    if sockets.is_empty() {
        // Start again without bitmaps (the loop stopped at a missing one).
        // The qemu-nbd servers started so far are stopped with the temp dir.
        for d in &rec.disks {
            let sock = serve(conn, tmp, &format!("{}-full", d.target), d, None)?;
            sockets.push((sock, None));
        }
    }
    let mut clients = Vec::new();
    for ((sock, bitmap), d) in sockets.iter().zip(&rec.disks) {
        let ctx_name = bitmap.as_ref().map(|b| format!("qemu:dirty-bitmap:{b}"));
        let mut ctx = vec!["base:allocation"];
        ctx.extend(ctx_name.as_deref());
        let ch = conn.tunnel_unix(sock)?;
        clients.push((NbdClient::connect(ch, &d.target, &ctx)?, ctx_name));
    }
    rec.checkpoint = since.as_ref().ok().cloned();
    rec.mode = match &since {
        Ok(c) => format!(
            "domain shut off: incremental against checkpoint {c} (its bitmaps read with qemu-nbd)"
        ),
        Err(why) => format!("domain shut off: full, disk files read with qemu-nbd ({why})"),
    };
    let cbt = rec.checkpoint.clone().unwrap_or_default();
    let how = "the domain is shut off, its disk files read with qemu-nbd";
    let disks = ready(rec, clients, &cbt, &since, Some(how))?;
    sink.store(rec, disks)?;
    Ok(rec.warnings.clone())
}
