//! Import: recreate a domain on a host from a libvirt restore point.
//!
//! Each disk is written to a new file on the host over SFTP, block by
//! block at its offset: holes are never sent and stay holes in the file
//! (sftp-server writes with `pwrite`, so a raw file is sparse). For qcow2
//! the raw upload is converted on the host with `qemu-img convert`, which
//! skips zeros, and then removed. The saved definition is defined under
//! the new name with the new disk paths, no UUID and no MAC addresses.
//! Nothing existing is ever overwritten: an existing domain name or disk
//! file is refused before anything is written.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use arca_repo::image::read_table;
use arca_repo::{Datastore, Snapshot};
use serde::Serialize;

use super::backup::{BackupRecord, RemoteTmp};
use super::inventory::names;
use super::xml::{import_xml, NewDisk};
use super::{virsh, Conn, Error, Result};
use crate::Progress;

/// The format of the imported disk files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    Raw,
    #[default]
    Qcow2,
}

impl DiskFormat {
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

impl std::str::FromStr for DiskFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "raw" => Ok(DiskFormat::Raw),
            "qcow2" => Ok(DiskFormat::Qcow2),
            _ => Err(Error::InvalidInput(format!(
                "disk format {s:?}: expected raw or qcow2"
            ))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The new domain's name; by default the original's (refused if that
    /// domain still exists).
    pub new_name: Option<String>,
    /// Absolute directory on the host for the disk files
    /// (`<dir>/<name>-<target>.<format>`).
    pub dir: String,
    pub format: DiskFormat,
    /// Start the domain once defined.
    pub start: bool,
}

/// What an import made.
#[derive(Clone, Debug, Serialize)]
pub struct Imported {
    pub name: String,
    pub uuid: String,
    /// (target, file on the host)
    pub disks: Vec<(String, String)>,
    pub started: bool,
}

/// A domain name libvirt and our file names can both take.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 200
        || name.contains('/')
        || name.starts_with('.')
        || name.chars().any(|c| c.is_control())
    {
        return Err(Error::InvalidInput(format!(
            "{name:?} cannot be a domain name (empty, too long, or with '/' or control characters)"
        )));
    }
    Ok(())
}

/// Upload one disk of the restore point to `path` (raw, sparse).
fn upload_disk(
    ds: &Datastore,
    conn: &Conn,
    disk: &arca_repo::format::Disk,
    path: &str,
    progress: &Progress,
) -> Result<()> {
    let ids = if disk.size == 0 {
        Vec::new()
    } else {
        read_table(ds, disk)?
    };
    let mut f = conn.create_file(path)?;
    let e = |x: std::io::Error| Error::Ssh(format!("write {path} on {}: {x}", conn.addr()));
    let cs = disk.chunk_size as u64;
    let block = |i: usize| {
        let off = i as u64 * cs;
        (off, (disk.size - off).min(cs))
    };
    let holes: u64 = (0..ids.len())
        .filter(|&i| ids[i].is_zero())
        .map(|i| block(i).1)
        .sum();
    progress.add(holes);
    // Readers fetch, decrypt, decompress and verify blocks in parallel;
    // this thread alone writes them to the one SFTP handle. Returning
    // early drops the receiver, which stops the readers.
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    let (next, ids, block) = (&next, &ids, &block);
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<Result<(u64, Vec<u8>)>>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                if id.is_zero() {
                    continue;
                }
                let (off, want) = block(i);
                let r = progress
                    .check_cancel()
                    .and_then(|()| ds.read_blob(id))
                    .map_err(Error::Repo)
                    .and_then(|data| {
                        if data.len() as u64 == want {
                            Ok((off, data))
                        } else {
                            Err(Error::Repo(arca_repo::Error::Corrupt(format!(
                                "block {i} of disk {} has {} bytes, expected {want}",
                                disk.name,
                                data.len()
                            ))))
                        }
                    });
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break;
                }
            });
        }
        drop(tx);
        for r in &rx {
            let (off, data) = r?;
            f.seek(SeekFrom::Start(off)).map_err(e)?;
            f.write_all(&data).map_err(e)?;
            progress.add(data.len() as u64);
        }
        Ok(())
    })?;
    // The length, whatever holes it ends with.
    f.setstat(ssh2::FileStat {
        size: Some(disk.size),
        uid: None,
        gid: None,
        perm: None,
        atime: None,
        mtime: None,
    })
    .map_err(|x| {
        Error::Ssh(format!(
            "set the size of {path} on {}: {}",
            conn.addr(),
            x.message()
        ))
    })?;
    f.fsync()
        .map_err(|x| Error::Ssh(format!("fsync {path} on {}: {}", conn.addr(), x.message())))?;
    Ok(())
}

/// Recreate the domain of `snapshot` on the host behind `conn`.
pub fn import(
    ds: &Datastore,
    conn: &Conn,
    snapshot: &Snapshot,
    opts: &ImportOptions,
    progress: &Progress,
) -> Result<Imported> {
    let rec = BackupRecord::of(snapshot).ok_or_else(|| {
        Error::InvalidInput(format!(
            "restore point {} is not a libvirt backup",
            snapshot.id.short()
        ))
    })?;
    let name = opts.new_name.clone().unwrap_or_else(|| rec.domain.clone());
    check_name(&name)?;
    if !opts.dir.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "the directory on the host must be absolute, got {:?}",
            opts.dir
        )));
    }
    if names(conn)?.contains(&name) {
        return Err(Error::DomainExists(name));
    }
    let dir = opts.dir.trim_end_matches('/');
    let ext = opts.format.name();
    let mut plan = Vec::new();
    for r in &rec.disks {
        let disk = snapshot
            .manifest
            .disks
            .iter()
            .find(|d| d.name == r.target)
            .ok_or_else(|| {
                Error::Repo(arca_repo::Error::Corrupt(format!(
                    "restore point {} records disk {} but holds no such disk",
                    snapshot.id.short(),
                    r.target
                )))
            })?;
        let path = format!("{dir}/{name}-{}.{ext}", r.target);
        if conn.exists(&path)? {
            return Err(Error::InvalidInput(format!(
                "{path} already exists on the host; choose another name or directory"
            )));
        }
        plan.push((r.target.clone(), disk, path));
    }
    progress
        .total
        .store(plan.iter().map(|(_, d, _)| d.size).sum(), Ordering::Relaxed);

    let mut made: Vec<String> = Vec::new();
    let r = (|| -> Result<Imported> {
        let mut new = BTreeMap::new();
        for (target, disk, path) in &plan {
            match opts.format {
                DiskFormat::Raw => {
                    made.push(path.clone());
                    upload_disk(ds, conn, disk, path, progress)?;
                }
                DiskFormat::Qcow2 => {
                    let part = format!("{path}.arca-part");
                    made.push(part.clone());
                    upload_disk(ds, conn, disk, &part, progress)?;
                    made.push(path.clone());
                    conn.run(&[
                        "qemu-img", "convert", "-f", "raw", "-O", "qcow2", &part, path,
                    ])?;
                    conn.run(&["rm", "-f", "--", &part])?;
                }
            }
            new.insert(
                target.clone(),
                NewDisk {
                    path: path.clone(),
                    format: ext.to_string(),
                },
            );
        }
        let xml = import_xml(&rec.xml, &name, &new)?;
        let tmp = RemoteTmp::new(conn)?;
        let file = tmp.file("domain.xml");
        conn.upload(&file, xml.as_bytes())?;
        conn.run(&virsh(&["define", &file]))?;
        let uuid = conn
            .run(&virsh(&["domuuid", &name]))?
            .stdout
            .trim()
            .to_string();
        if opts.start {
            conn.run(&virsh(&["start", &name]))?;
        }
        Ok(Imported {
            name: name.clone(),
            uuid,
            disks: plan
                .iter()
                .map(|(t, _, p)| (t.clone(), p.clone()))
                .collect(),
            started: opts.start,
        })
    })();
    if r.is_err() {
        // Leave nothing half-made behind; the domain was not defined (or,
        // if only its start failed, it stays defined with its disks).
        let defined = names(conn).is_ok_and(|n| n.contains(&name));
        if !defined && !made.is_empty() {
            let mut argv = vec!["rm".to_string(), "-f".into(), "--".into()];
            argv.extend(made);
            let _ = conn.run(&argv);
        }
    }
    r
}
