//! A directory of a restore point as a zip or tar archive, written on the
//! blocking pool into the response's bounded channel.
//!
//! The walk is depth first and streams: each directory is read from the
//! tree in batches of [`BATCH`] entries by position, twice (its files and
//! symlinks first, then its subdirectories, each right before its
//! contents), so memory depends on the depth of the tree, not its size.
//!
//! - tar: POSIX/GNU headers (names longer than 100 bytes as GNU long
//!   names), modes, owners, mtimes; symlinks as links.
//! - zip ([`super::zipstream`]): stored entries (no compression: backups
//!   hold mostly compressed data, and the server's CPU is shared), data
//!   descriptors (the output cannot seek), zip64 where needed; Unix modes
//!   and mtimes (DOS time, 2-second steps, 1980..2107), symlinks as Unix
//!   symlink entries.
//!
//! Special files (devices, fifos, sockets) are left out of both.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use arca_frontends::tree::{Entry, FileReader, FileTree, Kind, TreePath};
use arca_model::api::ArchiveFormat;
use axum::body::Bytes;

use super::zipstream::{EntryKind, ZipStream};
use super::Sender;

/// Entries read from a directory at a time.
const BATCH: usize = 256;
/// Bytes gathered before they are sent as one body frame.
const FRAME: usize = 256 * 1024;

/// The archive's file name: `<source>-<short id>[-<dir>].<ext>`.
pub(super) fn file_name(
    rp: &arca_catalog::RestorePoint,
    path: &TreePath,
    f: ArchiveFormat,
) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c == '/' || c.is_control() { '_' } else { c })
            .collect()
    };
    let mut name = format!("{}-{}", clean(&rp.source_name), rp.id.short());
    if let Some(dir) = path.name() {
        name.push('-');
        name.push_str(&clean(&String::from_utf8_lossy(dir)));
    }
    format!("{name}.{}", f.as_str())
}

pub(super) fn content_type(f: ArchiveFormat) -> &'static str {
    match f {
        ArchiveFormat::Tar => "application/x-tar",
        ArchiveFormat::Zip => "application/zip",
    }
}

/// Write the archive of everything below `dir` into `tx`, each entry's
/// name under `top/`.
pub(super) fn write(
    f: ArchiveFormat,
    tree: &dyn FileTree,
    dir: &TreePath,
    top: &str,
    tx: &Sender,
) -> io::Result<()> {
    let mut out = ChannelWriter {
        tx,
        buf: Vec::with_capacity(FRAME),
    };
    match f {
        ArchiveFormat::Tar => {
            let mut b = tar::Builder::new(&mut out);
            b.mode(tar::HeaderMode::Complete);
            walk(tree, dir, top.as_bytes(), &mut |name, e| {
                tar_entry(&mut b, tree, name, e)
            })?;
            b.into_inner()?;
        }
        ArchiveFormat::Zip => {
            let mut z = ZipStream::new(&mut out);
            walk(tree, dir, top.as_bytes(), &mut |name, e| {
                zip_entry(&mut z, tree, name, e)
            })?;
            z.finish()?;
        }
    }
    out.flush()
}

/// What an archive writer is handed: an entry's name in the archive,
/// and the entry with its path in the tree.
type Visit<'a> = dyn FnMut(&[u8], &Item) -> io::Result<()> + 'a;

/// An entry of the walk.
pub(super) struct Item {
    entry: Entry,
    path: TreePath,
}

/// One directory being walked.
struct Frame {
    path: TreePath,
    /// Its name in the archive.
    name: Vec<u8>,
    /// Listing its subdirectories (the second pass).
    dirs: bool,
    pos: u64,
}

fn walk(tree: &dyn FileTree, dir: &TreePath, top: &[u8], visit: &mut Visit) -> io::Result<()> {
    let attr = tree.stat(dir).map_err(io::Error::other)?;
    visit(
        top,
        &Item {
            entry: Entry {
                name: top.to_vec(),
                attr,
            },
            path: dir.clone(),
        },
    )?;
    let mut stack = vec![Frame {
        path: dir.clone(),
        name: top.to_vec(),
        dirs: false,
        pos: 0,
    }];
    while let Some(top) = stack.last_mut() {
        let mut batch = Vec::with_capacity(BATCH);
        tree.read_dir(&top.path, top.pos, &mut |e| {
            batch.push(e);
            batch.len() < BATCH
        })
        .map_err(io::Error::other)?;
        if batch.is_empty() {
            if top.dirs {
                stack.pop();
            } else {
                top.dirs = true;
                top.pos = 0;
            }
            continue;
        }
        let mut descend = None;
        for e in batch {
            top.pos += 1;
            let is_dir = e.attr.kind == Kind::Dir;
            if is_dir != top.dirs {
                continue;
            }
            let path = top.path.join(&e.name).map_err(io::Error::other)?;
            let mut name = top.name.clone();
            name.push(b'/');
            name.extend_from_slice(&e.name);
            visit(
                &name,
                &Item {
                    entry: e,
                    path: path.clone(),
                },
            )?;
            if is_dir {
                descend = Some(Frame {
                    path,
                    name,
                    dirs: false,
                    pos: 0,
                });
                break;
            }
        }
        if let Some(f) = descend {
            stack.push(f);
        }
    }
    Ok(())
}

fn mtime_secs(e: &Entry) -> i64 {
    e.attr.mtime_ns.div_euclid(1_000_000_000)
}

fn tar_entry<W: Write>(
    b: &mut tar::Builder<W>,
    tree: &dyn FileTree,
    name: &[u8],
    it: &Item,
) -> io::Result<()> {
    let a = &it.entry.attr;
    let mut h = tar::Header::new_gnu();
    h.set_mode(a.mode & 0o7777);
    h.set_uid(a.uid.into());
    h.set_gid(a.gid.into());
    h.set_mtime(mtime_secs(&it.entry).max(0) as u64);
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
    match a.kind {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty())
        }
        Kind::Symlink => {
            let target = tree.read_link(&it.path).map_err(io::Error::other)?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = std::path::Path::new(std::ffi::OsStr::from_bytes(&target));
            b.append_link(&mut h, path, target)
        }
        Kind::File => {
            let f = tree.open(&it.path).map_err(io::Error::other)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(f.size());
            b.append_data(&mut h, path, reader(f))
        }
        _ => Ok(()),
    }
}

fn zip_entry<W: Write>(
    z: &mut ZipStream<W>,
    tree: &dyn FileTree,
    name: &[u8],
    it: &Item,
) -> io::Result<()> {
    let a = &it.entry.attr;
    let mtime = mtime_secs(&it.entry);
    match a.kind {
        Kind::Dir => z.entry(EntryKind::Dir, name, a.mode, mtime, 0, b""),
        Kind::Symlink => {
            let target = tree.read_link(&it.path).map_err(io::Error::other)?;
            z.entry(EntryKind::Symlink, name, a.mode, mtime, 0, &target)
        }
        Kind::File => {
            let f = tree.open(&it.path).map_err(io::Error::other)?;
            z.entry(EntryKind::File, name, a.mode, mtime, f.size(), b"")?;
            let mut r = reader(f);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                z.data(&buf[..n])?;
            }
            z.end_file()
        }
        _ => Ok(()),
    }
}

/// Sequential reads of a tree file, in large pieces.
fn reader(f: Arc<dyn FileReader>) -> impl Read {
    io::BufReader::with_capacity(
        1 << 20,
        ReadAt {
            size: f.size(),
            f,
            off: 0,
        },
    )
}

struct ReadAt {
    f: Arc<dyn FileReader>,
    off: u64,
    size: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.off >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = self.f.read_at(self.off, buf).map_err(io::Error::other)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file ended at {} of {} bytes", self.off, self.size),
            ));
        }
        self.off += n as u64;
        Ok(n)
    }
}

/// The archive's bytes into the body channel, in frames of [`FRAME`].
struct ChannelWriter<'a> {
    tx: &'a Sender,
    buf: Vec<u8>,
}

impl Write for ChannelWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= FRAME {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = std::mem::replace(&mut self.buf, Vec::with_capacity(FRAME));
        self.tx
            .send(Bytes::from(b))
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))
    }
}
