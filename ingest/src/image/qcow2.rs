//! qcow2 images, read through `qemu-nbd` with the NBD client
//! ([`crate::nbd`]): only allocated extents are read (`base:allocation`),
//! and changed-block tracking uses qcow2 persistent dirty bitmaps
//! (`qemu:dirty-bitmap:NAME`).
//!
//! Bitmap lifecycle (docs/vm-ingest.md): each backup adds a new bitmap
//! before it reads, so that every later write is recorded in it, and
//! names it in the restore point's disk (`Disk::cbt`). The next backup
//! reads only the extents that bitmap marks, takes the rest from the
//! parent's chunk table, and once its own restore point is committed
//! removes the older bitmaps it made. A failed backup removes the bitmap
//! it added, so the next run is again incremental against the last good
//! restore point. Without a usable bitmap (first backup, bitmap removed,
//! inconsistent after a crash, disk replaced) the whole allocated disk is
//! read and deduplicated against the parent, and the mode says why.

use std::fs::File;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_repo::{Datastore, Error, Result};
use serde::Deserialize;

use super::{backup_disks, DiskInput, Header, ImageOptions};
use crate::nbd::wire::{STATE_DIRTY, STATE_ZERO};
use crate::nbd::NbdClient;
use crate::{BackupOutcome, Progress};

/// The first bytes of a qcow2 file.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";

/// Whether the file at `path` starts like a qcow2 image.
pub fn is_qcow2(path: &Path) -> Result<bool> {
    let mut f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut m = [0u8; 4];
    match f.read_exact(&mut m) {
        Ok(()) => Ok(&m == MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// What `qemu-img info` says of a qcow2 image (the fields used here).
#[derive(Clone, Debug, Deserialize)]
pub struct Info {
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(rename = "format-specific", default)]
    format_specific: Option<FormatSpecific>,
}

#[derive(Clone, Debug, Deserialize)]
struct FormatSpecific {
    #[serde(default)]
    data: Option<Qcow2Data>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Qcow2Data {
    #[serde(default)]
    bitmaps: Vec<Bitmap>,
    #[serde(default)]
    corrupt: bool,
}

/// A persistent dirty bitmap of the image.
#[derive(Clone, Debug, Deserialize)]
pub struct Bitmap {
    pub name: String,
    /// "auto" (enabled: records writes), "in-use" (not stored cleanly:
    /// inconsistent).
    #[serde(default)]
    pub flags: Vec<String>,
}

impl Info {
    fn data(&self) -> Qcow2Data {
        self.format_specific
            .as_ref()
            .and_then(|f| f.data.clone())
            .unwrap_or_default()
    }
    pub fn bitmaps(&self) -> Vec<Bitmap> {
        self.data().bitmaps
    }
    pub fn corrupt(&self) -> bool {
        self.data().corrupt
    }
}

/// Run a QEMU tool; its stderr becomes the error.
fn run(tool: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("run {tool} (is qemu-utils installed?)"), e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err
            .trim()
            .trim_start_matches(&format!("{tool}: "))
            .to_string();
        let hint = if err.contains("lock") {
            "; the image is in use (a running VM?): back it up through the libvirt strategy, or stop its VM"
        } else {
            ""
        };
        return Err(Error::InvalidInput(format!(
            "{tool} {}: {err}{hint}",
            args[0]
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn arg(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::InvalidInput(format!("{} is not UTF-8", path.display())))
}

/// `qemu-img info` of the image.
pub fn info(path: &Path) -> Result<Info> {
    let out = run(
        "qemu-img",
        &["info", "--output=json", "-f", "qcow2", arg(path)?],
    )?;
    serde_json::from_str(&out)
        .map_err(|e| Error::Corrupt(format!("qemu-img info of {}: {e}", path.display())))
}

/// Add an enabled persistent dirty bitmap called `name`.
pub fn add_bitmap(path: &Path, name: &str) -> Result<()> {
    run(
        "qemu-img",
        &["bitmap", "--add", "-f", "qcow2", arg(path)?, name],
    )
    .map(drop)
}

/// Remove the persistent dirty bitmap `name`.
pub fn remove_bitmap(path: &Path, name: &str) -> Result<()> {
    run(
        "qemu-img",
        &["bitmap", "--remove", "-f", "qcow2", arg(path)?, name],
    )
    .map(drop)
}

/// A `qemu-nbd` serving an image read-only on a private Unix socket,
/// stopped when dropped.
pub struct QemuNbd {
    pid: nix::unistd::Pid,
    pub socket: PathBuf,
    dir: tempfile::TempDir,
}

impl QemuNbd {
    /// Serve `path` (of `format`) as export "disk", with the dirty bitmap
    /// `bitmap` as the `qemu:dirty-bitmap:NAME` context. `--fork` makes
    /// qemu-nbd return only once it serves (or has failed, e.g. for a
    /// bitmap the image lacks), so there is no race with its socket.
    pub fn start(path: &Path, format: &str, bitmap: Option<&str>) -> Result<QemuNbd> {
        let dir = tempfile::Builder::new()
            .prefix("arca-qemu-nbd-")
            .tempdir()
            .map_err(|e| Error::io("temporary directory for qemu-nbd", e))?;
        let socket = dir.path().join("nbd.sock");
        let pid_file = dir.path().join("pid");
        let log = dir.path().join("stderr");
        let stderr = File::create(&log).map_err(|e| Error::io("qemu-nbd's log file", e))?;
        let mut cmd = Command::new("qemu-nbd");
        cmd.arg("--read-only")
            .arg(format!("--format={format}"))
            .arg("--export-name=disk")
            .arg("--socket")
            .arg(&socket)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--fork")
            .arg("--persistent")
            .arg("--shared=2");
        if let Some(b) = bitmap {
            cmd.arg(format!("--bitmap={b}"));
        }
        cmd.arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let status = cmd
            .status()
            .map_err(|e| Error::io("run qemu-nbd (is qemu-utils installed?)", e))?;
        if !status.success() {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            let err = err.trim().trim_start_matches("qemu-nbd: ");
            return Err(Error::InvalidInput(format!(
                "qemu-nbd could not serve {} ({status}): {err}",
                path.display()
            )));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .ok_or_else(|| Error::InvalidInput("qemu-nbd wrote no pid file".into()))?;
        Ok(QemuNbd {
            pid: nix::unistd::Pid::from_raw(pid),
            socket,
            dir,
        })
    }

    /// A new connection, negotiated with `contexts`.
    pub fn connect(&self, contexts: &[&str]) -> Result<NbdClient<UnixStream>> {
        let s = UnixStream::connect(&self.socket).map_err(|e| {
            Error::io(
                format!("connect to qemu-nbd at {}", self.socket.display()),
                e,
            )
        })?;
        NbdClient::connect(s, "disk", contexts)
    }

    /// The directory of its socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for QemuNbd {
    /// Stop it and wait (up to 5 s) until it is gone, so that the image's
    /// lock is released for the `qemu-img bitmap` calls that follow.
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let _ = kill(self.pid, Signal::SIGTERM);
        let start = Instant::now();
        while kill(self.pid, None).is_ok() && start.elapsed() < Duration::from_secs(5) {
            // Forked away from us: once it exits, init reaps it; a zombie
            // holds no lock.
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The prefix of the bitmaps this datastore adds: another datastore's
/// bitmaps on the same image are never touched.
pub fn bitmap_prefix(ds: &Datastore) -> String {
    let id = &ds.config().id;
    format!("arca-{}-", &id[..id.len().min(8)])
}

/// Back up a qcow2 image (see the module's doc).
pub fn backup(
    ds: &Arc<Datastore>,
    path: &Path,
    opts: &ImageOptions,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let info = info(path)?;
    if info.corrupt() {
        return Err(Error::Corrupt(format!(
            "qemu-img marks {} corrupt; `qemu-img check -r all` may repair it",
            path.display()
        )));
    }
    let parent_disk = opts
        .parent
        .as_ref()
        .and_then(|p| p.manifest.disks.first().cloned());
    let p = opts
        .parent
        .as_ref()
        .map(|p| p.id.short())
        .unwrap_or_default();
    let bitmaps = info.bitmaps();
    // Which bitmap holds the changes since the parent, or why none does.
    let (since, why_not): (Option<String>, Option<String>) = match &parent_disk {
        None => (None, None),
        Some(_) if opts.full_read => (None, Some("--full-read".into())),
        Some(pd) if pd.cbt.is_empty() => {
            (None, Some(format!("{p} recorded no dirty bitmap")))
        }
        Some(pd) => match bitmaps.iter().find(|b| b.name == pd.cbt) {
            None => (None, Some(format!(
                "dirty bitmap {} of {p} is not in the image: removed, or the disk was replaced or restored",
                pd.cbt
            ))),
            Some(b) if b.flags.iter().any(|f| f == "in-use") => (None, Some(format!(
                "dirty bitmap {} is inconsistent: the image was not closed cleanly",
                pd.cbt
            ))),
            Some(b) if !b.flags.iter().any(|f| f == "auto") => (None, Some(format!(
                "dirty bitmap {} is disabled: it did not record every write",
                pd.cbt
            ))),
            Some(_) => (Some(pd.cbt.clone()), None),
        },
    };
    // The next backup's bitmap, started before anything is read.
    let next = format!("{}{}", bitmap_prefix(ds), crate::now_ns() / 1_000_000);
    let mut warnings = Vec::new();
    let cbt = match add_bitmap(path, &next) {
        Ok(()) => next,
        Err(e) => {
            warnings.push(format!(
                "no dirty bitmap could be added ({e}): the next backup reads the whole disk"
            ));
            String::new()
        }
    };
    let r = read_and_store(
        ds,
        path,
        &info,
        opts,
        parent_disk,
        since.as_deref(),
        why_not,
        &cbt,
        progress,
    );
    match r {
        Ok(mut out) => {
            // Committed: older bitmaps of this datastore are no longer
            // needed (the parent's, and any left by a killed run).
            for b in bitmaps
                .iter()
                .filter(|b| b.name.starts_with(&bitmap_prefix(ds)) && b.name != cbt)
            {
                if let Err(e) = remove_bitmap(path, &b.name) {
                    warnings.push(format!("old dirty bitmap {} not removed: {e}", b.name));
                }
            }
            out.warnings.extend(warnings);
            Ok(out)
        }
        Err(e) => {
            if !cbt.is_empty() {
                let _ = remove_bitmap(path, &cbt);
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn read_and_store(
    ds: &Arc<Datastore>,
    path: &Path,
    info: &Info,
    opts: &ImageOptions,
    parent_disk: Option<arca_repo::format::Disk>,
    since: Option<&str>,
    why_not: Option<String>,
    cbt: &str,
    progress: &Progress,
) -> Result<BackupOutcome> {
    let server = QemuNbd::start(path, "qcow2", since)?;
    let dirty_ctx = since.map(|b| format!("qemu:dirty-bitmap:{b}"));
    let mut contexts = vec!["base:allocation"];
    contexts.extend(dirty_ctx.as_deref());
    let mut client = server.connect(&contexts)?;
    if client.size() != info.virtual_size {
        return Err(Error::Corrupt(format!(
            "qemu-nbd serves {} bytes of {}, qemu-img reports {}",
            client.size(),
            path.display(),
            info.virtual_size
        )));
    }
    let allocated = client.extents_where("base:allocation", |f| f & STATE_ZERO == 0)?;
    let changed = match &dirty_ctx {
        Some(c) => Some(client.extents_where(c, |f| f & STATE_DIRTY != 0)?),
        None => None,
    };
    let client = Mutex::new(client);
    let read = |off: u64, buf: &mut [u8]| {
        client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read(off, buf)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut d = DiskInput::new(&name, info.virtual_size, &read);
    d.format = "qcow2".into();
    d.cbt = cbt.to_string();
    d.allocated = Some(allocated);
    d.changed = changed;
    d.changed_from = format!("dirty bitmap {}", since.unwrap_or_default());
    d.no_changes_because = why_not;
    d.parent = parent_disk;
    d.full_read = opts.full_read;
    let shown = std::fs::canonicalize(path)
        .unwrap_or(path.to_path_buf())
        .display()
        .to_string();
    let header = Header {
        source_kind: "image",
        source: &opts.source,
        path: &shown,
        tags: &opts.tags,
        parent: opts.parent.as_ref(),
        metadata_json: String::new(),
    };
    let out = backup_disks(ds, &header, vec![d], progress);
    client
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .disconnect();
    out
}
