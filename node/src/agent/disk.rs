//! The agent's disks: raw files and block devices read directly; qcow2
//! images through `qemu-nbd` with arca-ingest's NBD client, reading only
//! allocated extents and, when the parent's backup left a usable dirty
//! bitmap in the image, only the extents it marks changed (the rest of
//! the table is the parent's). The bitmap lifecycle is that of `arca
//! backup image` (docs/vm-ingest.md, "qcow2"): a new bitmap is added
//! before reading, named in the restore point (`Disk::cbt`); once the
//! restore point is committed the older bitmaps of this datastore are
//! removed, and a failed backup removes the one it added.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arca_ingest::image::qcow2::{self, QemuNbd};
use arca_ingest::libvirt::{ReadyDisk, Stream};
use arca_ingest::nbd::wire::{STATE_DIRTY, STATE_ZERO};
use arca_ingest::nbd::NbdClient;
use arca_proto::agent_pb as pb;

/// What the agent knows of a block before reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// Read it (and hash it).
    Read,
    /// Not allocated in the image: a hole, not read.
    Hole,
    /// Unchanged since the parent (its dirty bitmap says so): the
    /// parent's chunk, not read.
    Parent([u8; 32]),
}

enum Source {
    Raw(File),
    Qcow2 {
        client: Mutex<NbdClient<UnixStream>>,
        /// Serves `client`; stopped when dropped.
        _server: QemuNbd,
    },
    /// A libvirt domain's disk, exported by its backup job (or by
    /// `qemu-nbd` for a shut-off domain); its bitmaps are libvirt's
    /// checkpoints, which the libvirt module keeps.
    Export(Mutex<NbdClient<Stream>>),
}

/// A disk to back up.
pub(super) struct Disk {
    pub name: String,
    pub size: u64,
    /// "raw" or "qcow2".
    pub format: &'static str,
    path: PathBuf,
    /// None until [`Disk::prepare`] (qcow2 is served from then on).
    source: Option<Source>,
    /// Per block; empty: read every block.
    pub plan: Vec<Block>,
    /// The bitmap this backup added (empty: none).
    pub cbt: String,
    /// The bitmaps to remove once the restore point is committed.
    old_bitmaps: Vec<String>,
    /// How the disk is read, and why.
    pub mode: String,
    /// Warnings for the user (a bitmap that could not be added).
    pub warnings: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Open `p`: a raw file or block device, or a qcow2 image (its size is
/// the virtual size).
pub(super) fn open(p: &Path) -> Result<Disk, String> {
    let mut file = File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?;
    let md = file
        .metadata()
        .map_err(|e| format!("stat {}: {e}", p.display()))?;
    if md.is_dir() {
        return Err(format!("{} is a directory, not a disk", p.display()));
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: no file name", p.display()))?;
    let qcow2 = md.is_file() && qcow2::is_qcow2(p).map_err(err)?;
    let (size, format, source) = if qcow2 {
        let info = qcow2::info(p).map_err(err)?;
        if info.corrupt() {
            return Err(format!(
                "qemu-img marks {} corrupt; `qemu-img check -r all` may repair it",
                p.display()
            ));
        }
        (info.virtual_size, "qcow2", None)
    } else {
        // The end of a block device is its size; its metadata says 0.
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("size of {}: {e}", p.display()))?;
        (size, "raw", Some(Source::Raw(file)))
    };
    Ok(Disk {
        name,
        size,
        format,
        path: p.to_path_buf(),
        source,
        plan: Vec::new(),
        cbt: String::new(),
        old_bitmaps: Vec::new(),
        mode: String::new(),
        warnings: Vec::new(),
    })
}

/// The parent's table of a disk of `size` bytes, when it is of this
/// geometry (same size and chunk size).
fn parent_table(parent: Option<&pb::ParentDisk>, size: u64, cs: u32) -> Option<Vec<[u8; 32]>> {
    let blocks = size.div_ceil(cs as u64) as usize;
    parent
        .filter(|d| d.size == size && d.chunk_size == cs && d.ids.len() == blocks * 32)
        .map(|d| {
            d.ids
                .chunks_exact(32)
                .filter_map(|c| <[u8; 32]>::try_from(c).ok())
                .collect()
        })
}

/// Each block: a hole where nothing is allocated, the parent's chunk where
/// the bitmap says unchanged (with the parent's table), else read.
fn plan(allocated: &[bool], changed: Option<&[bool]>, table: Option<&[[u8; 32]]>) -> Vec<Block> {
    (0..allocated.len())
        .map(|i| match (changed, table) {
            _ if !allocated[i] => Block::Hole,
            (Some(ch), Some(t)) if !ch[i] => {
                if t[i] == [0; 32] {
                    Block::Hole
                } else {
                    Block::Parent(t[i])
                }
            }
            _ => Block::Read,
        })
        .collect()
}

/// A libvirt domain's exported disk as the agent reads it: its plan from
/// the export's allocation and dirty extents and the parent's table of
/// the same disk (`parent`, of restore point `p`).
pub(super) fn exported(
    d: ReadyDisk,
    domain: &str,
    cs: u32,
    parent: Option<&pb::ParentDisk>,
    p: &str,
) -> Disk {
    let ReadyDisk { client, plan: x } = d;
    let table = parent_table(parent, x.size, cs);
    let allocated = overlapping(&x.allocated, x.size, cs);
    // Changes are usable only against the parent's table of this geometry.
    let changes = match (&x.changes, parent, &table) {
        (Ok(from), Some(_), Some(_)) => Ok(from.clone()),
        (Ok(_), Some(_), None) => Err(format!("{p} is of another size or chunk size")),
        (Ok(_), None, _) => Err(format!("{p} has no disk {}", x.target)),
        (Err(why), _, _) => Err(why.clone()),
    };
    let changed = match (&changes, &x.changed) {
        (Ok(_), Some(c)) => Some(overlapping(c, x.size, cs)),
        _ => None,
    };
    let blocks = plan(&allocated, changed.as_deref(), table.as_deref());
    let read = blocks.iter().filter(|b| **b == Block::Read).count();
    let mode = match (&changes, parent) {
        (Ok(from), _) if changed.is_some() => format!(
            "incremental ({read} of {} blocks changed since {p}, from {from})",
            blocks.len()
        ),
        (_, None) if p.is_empty() => "full (no parent restore point)".into(),
        (Err(why), _) => format!("full read, dedup against {p} ({why})"),
        (Ok(_), _) => format!(
            "full read, dedup against {p} (a {} disk has no dirty bitmap)",
            x.format
        ),
    };
    Disk {
        name: x.target.clone(),
        size: x.size,
        format: if x.format == "qcow2" { "qcow2" } else { "raw" },
        path: PathBuf::from(format!("{domain}:{}", x.target)),
        source: Some(Source::Export(Mutex::new(client))),
        plan: blocks,
        cbt: x.cbt,
        old_bitmaps: Vec::new(),
        mode,
        warnings: Vec::new(),
    }
}

/// Blocks of `cs` bytes that overlap any of `extents`.
fn overlapping(extents: &[(u64, u64)], size: u64, cs: u32) -> Vec<bool> {
    let blocks = size.div_ceil(cs as u64) as usize;
    let mut out = vec![false; blocks];
    for &(off, len) in extents {
        if len == 0 || off >= size {
            continue;
        }
        let first = off / cs as u64;
        let last = (off + len - 1).min(size - 1) / cs as u64;
        for b in first..=last {
            out[b as usize] = true;
        }
    }
    out
}

impl Disk {
    /// Decide how to read the disk, given the datastore's chunk size and
    /// the parent's disk of the same name (`parent`, with its restore
    /// point's short id `p`), and start serving a qcow2 image.
    pub fn prepare(
        &mut self,
        cs: u32,
        parent: Option<&pb::ParentDisk>,
        p: &str,
        bitmap_prefix: &str,
    ) -> Result<(), String> {
        let blocks = self.size.div_ceil(cs as u64) as usize;
        let table = parent_table(parent, self.size, cs);
        if self.format == "raw" {
            self.mode = match parent {
                None => "full (no parent restore point)".into(),
                Some(_) => format!("full read, dedup against {p} (a raw disk has no dirty bitmap)"),
            };
            return Ok(());
        }
        let info = qcow2::info(&self.path).map_err(err)?;
        let bitmaps = info.bitmaps();
        // The bitmap that holds the changes since the parent, or why none.
        let since: Result<String, String> = match (parent, &table) {
            (None, _) => Err(String::new()),
            (Some(_), None) => Err(format!("{p} is of another size or chunk size")),
            (Some(d), Some(_)) if d.cbt.is_empty() => {
                Err(format!("{p} recorded no dirty bitmap"))
            }
            (Some(d), Some(_)) => match bitmaps.iter().find(|b| b.name == d.cbt) {
                None => Err(format!(
                    "dirty bitmap {} of {p} is not in the image: removed, or the disk was replaced or restored",
                    d.cbt
                )),
                Some(b) if b.flags.iter().any(|f| f == "in-use") => Err(format!(
                    "dirty bitmap {} is inconsistent: the image was not closed cleanly",
                    d.cbt
                )),
                Some(b) if !b.flags.iter().any(|f| f == "auto") => Err(format!(
                    "dirty bitmap {} is disabled: it did not record every write",
                    d.cbt
                )),
                Some(_) => Ok(d.cbt.clone()),
            },
        };
        // The next backup's bitmap, started before anything is read.
        let next = format!("{bitmap_prefix}{}", now_ms());
        match qcow2::add_bitmap(&self.path, &next) {
            Ok(()) => self.cbt = next,
            Err(e) => self.warnings.push(format!(
                "{}: no dirty bitmap could be added ({e}): the next backup reads the whole disk",
                self.name
            )),
        }
        self.old_bitmaps = bitmaps
            .iter()
            .filter(|b| b.name.starts_with(bitmap_prefix) && b.name != self.cbt)
            .map(|b| b.name.clone())
            .collect();
        let since_ok = since.as_ref().ok().cloned();
        let server = QemuNbd::start(&self.path, "qcow2", since_ok.as_deref()).map_err(err)?;
        let ctx = since_ok.as_ref().map(|b| format!("qemu:dirty-bitmap:{b}"));
        let mut contexts = vec!["base:allocation"];
        contexts.extend(ctx.as_deref());
        let mut client = server.connect(&contexts).map_err(err)?;
        if client.size() != self.size {
            return Err(format!(
                "qemu-nbd serves {} bytes of {}, qemu-img reports {}",
                client.size(),
                self.path.display(),
                self.size
            ));
        }
        let allocated = client
            .extents_where("base:allocation", |f| f & STATE_ZERO == 0)
            .map_err(err)?;
        let allocated = overlapping(&allocated, self.size, cs);
        let changed = match &ctx {
            Some(c) => Some(overlapping(
                &client
                    .extents_where(c, |f| f & STATE_DIRTY != 0)
                    .map_err(err)?,
                self.size,
                cs,
            )),
            None => None,
        };
        self.plan = plan(&allocated, changed.as_deref(), table.as_deref());
        let read = self.plan.iter().filter(|b| **b == Block::Read).count();
        self.mode = match (&since, parent) {
            (Ok(b), _) => format!(
                "incremental ({read} of {blocks} blocks changed since {p}, from dirty bitmap {b})"
            ),
            (Err(_), None) => "full (no parent restore point)".into(),
            (Err(why), Some(_)) => format!("full read, dedup against {p} ({why})"),
        };
        self.source = Some(Source::Qcow2 {
            client: Mutex::new(client),
            _server: server,
        });
        Ok(())
    }

    /// What block `i` is before reading it.
    pub fn block(&self, i: usize) -> Block {
        self.plan.get(i).copied().unwrap_or(Block::Read)
    }

    /// Bytes the plan reads (the progress bar's total).
    pub fn to_read(&self, cs: u32) -> u64 {
        let blocks = self.size.div_ceil(cs as u64);
        (0..blocks)
            .filter(|i| self.block(*i as usize) == Block::Read)
            .map(|i| (self.size - i * cs as u64).min(cs as u64))
            .sum()
    }

    /// Read `buf.len()` bytes at `off`.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), String> {
        match &self.source {
            Some(Source::Raw(f)) => f
                .read_exact_at(buf, off)
                .map_err(|e| format!("read {} at {off}: {e}", self.path.display())),
            Some(Source::Qcow2 { client, .. }) => client
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .read(off, buf)
                .map_err(|e| format!("read {} at {off}: {e}", self.path.display())),
            Some(Source::Export(client)) => client
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .read(off, buf)
                .map_err(|e| format!("read {} at {off}: {e}", self.path.display())),
            None => Err(format!("{} is not prepared", self.path.display())),
        }
    }

    /// After the backup: stop serving the image, then, when the restore
    /// point was committed, remove the bitmaps it replaces; else remove
    /// the one this backup added. Returns warnings.
    pub fn finish(&mut self, committed: bool) -> Vec<String> {
        if let Some(Source::Export(_)) = self.source.take() {
            // libvirt's checkpoints: the libvirt module's lifecycle.
            return Vec::new();
        }
        let mut out = Vec::new();
        let remove: Vec<String> = if committed {
            std::mem::take(&mut self.old_bitmaps)
        } else {
            std::iter::once(std::mem::take(&mut self.cbt))
                .filter(|b| !b.is_empty())
                .collect()
        };
        for b in remove {
            if let Err(e) = qcow2::remove_bitmap(&self.path, &b) {
                out.push(format!("{}: dirty bitmap {b} not removed: {e}", self.name));
            }
        }
        out
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
