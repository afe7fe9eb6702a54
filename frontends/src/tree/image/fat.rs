//! A FAT12/16/32 file system of an image, read with `fatfs` through a
//! [`Volume`] of its partition (whose `Write` refuses: nothing is ever
//! written, access times are not updated).
//!
//! Shown: long (VFAT) names, sizes, mode 0755 for directories and 0644
//! for files with the write bits cleared by the read-only attribute,
//! modification, access (a date: its midnight) and creation times, read
//! as UTC (FAT stores local time without a zone). FAT has no owners,
//! links or inode numbers: uid, gid and `ino` are 0, `nlink` 1 (2 for
//! directories).

use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;
use std::sync::Arc;

use fatfs::{Date, DateTime, FileSystem, FsOptions};

use super::super::{Attr, Entry, FileReader, FileTree, Kind, Result, TreeError, TreePath};
use super::local;
use super::volume::{guard, Volume};

type Fs = FileSystem<Volume>;

/// Code page 437 (the IBM PC's, what Linux' vfat and DOS/Windows in the
/// US use for short names), bytes 0x80 to 0xFF.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Short names (8.3 without a long name: `é.txt` written by mtools) are
/// in the OEM code page; fatfs' default shows their high bytes as U+FFFD.
#[derive(Debug)]
struct Cp437;

impl fatfs::OemCpConverter for Cp437 {
    fn decode(&self, oem_char: u8) -> char {
        if oem_char < 0x80 {
            return char::from(oem_char);
        }
        CP437_HIGH
            .chars()
            .nth(usize::from(oem_char - 0x80))
            .unwrap_or('\u{fffd}')
    }

    fn encode(&self, uni_char: char) -> Option<u8> {
        if uni_char.is_ascii() {
            return u8::try_from(uni_char).ok();
        }
        let i = CP437_HIGH.chars().position(|c| c == uni_char)?;
        u8::try_from(0x80 + i).ok()
    }
}

static CP437: Cp437 = Cp437;

/// A mounted FAT file system (shared by the readers of its files).
struct Shared {
    id: u64,
    vol: Volume,
    name: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        local::forget(self.id);
    }
}

impl Shared {
    /// This thread's instance.
    fn fs(&self) -> Result<Rc<Fs>> {
        local::get(self.id, || {
            guard(&self.name, || {
                FileSystem::new(
                    self.vol.clone(),
                    FsOptions::new()
                        .update_accessed_date(false)
                        .oem_cp_converter(&CP437),
                )
                .map_err(|e| {
                    TreeError::Io(format!(
                        "{}: the FAT file system cannot be read: {e}",
                        self.name
                    ))
                })
            })
        })
    }

    fn shown(&self, path: &TreePath) -> String {
        if path.is_root() {
            self.name.clone()
        } else {
            format!("{}/{path}", self.name)
        }
    }

    fn io(&self, path: &TreePath, e: std::io::Error) -> TreeError {
        TreeError::Io(format!("{}: {e}", self.shown(path)))
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_ns(d: Date) -> i64 {
    if !(1..=12).contains(&d.month) || d.day == 0 {
        return 0;
    }
    days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day))
        * 86_400
        * 1_000_000_000
}

fn datetime_ns(t: DateTime) -> i64 {
    let date = date_ns(t.date);
    if date == 0 {
        return 0;
    }
    let s = i64::from(t.time.hour) * 3600 + i64::from(t.time.min) * 60 + i64::from(t.time.sec);
    date + s * 1_000_000_000 + i64::from(t.time.millis) * 1_000_000
}

fn attr(e: &fatfs::DirEntry<'_, Volume>) -> Attr {
    let dir = e.is_dir();
    let mut mode = if dir { 0o755 } else { 0o644 };
    if e.attributes().contains(fatfs::FileAttributes::READ_ONLY) {
        mode &= !0o222;
    }
    Attr {
        kind: if dir { Kind::Dir } else { Kind::File },
        size: if dir { 0 } else { e.len() },
        mode,
        uid: 0,
        gid: 0,
        nlink: if dir { 2 } else { 1 },
        mtime_ns: datetime_ns(e.modified()),
        atime_ns: date_ns(e.accessed()),
        ctime_ns: datetime_ns(e.created()),
        ino: 0,
        rdev: 0,
    }
}

/// The path fatfs takes ('/'-separated, relative to the root); names that
/// are not UTF-8 cannot be on a FAT file system.
fn rel(shared: &Shared, path: &TreePath) -> Result<String> {
    let mut out = String::new();
    for c in path.components() {
        let c = std::str::from_utf8(c).map_err(|_| {
            TreeError::NotFound(format!(
                "no path {:?} in the restore point",
                shared.shown(path)
            ))
        })?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(c);
    }
    Ok(out)
}

/// The FAT file system of a partition (or of the whole disk).
pub(crate) struct FatTree {
    shared: Arc<Shared>,
}

impl FatTree {
    /// Mount the FAT file system of `vol`; one that cannot be loaded is
    /// `Io`.
    pub(crate) fn open(vol: Volume, name: String) -> Result<FatTree> {
        let shared = Arc::new(Shared {
            id: local::new_id(),
            vol,
            name,
        });
        shared.fs()?;
        Ok(FatTree { shared })
    }

    /// The directory `dir` (relative path) of `fs`, or the error of a
    /// path that is not one.
    fn dir<'a>(&self, fs: &'a Fs, path: &TreePath) -> Result<fatfs::Dir<'a, Volume>> {
        let s = &self.shared;
        if path.is_root() {
            return Ok(fs.root_dir());
        }
        match self.stat_in(fs, path)?.kind {
            Kind::Dir => fs
                .root_dir()
                .open_dir(&rel(s, path)?)
                .map_err(|e| s.io(path, e)),
            _ => Err(TreeError::NotADirectory(format!(
                "{} is not a directory",
                s.shown(path)
            ))),
        }
    }

    /// The entry `path` by a scan of its parent (FAT keeps attributes in
    /// the parent's entries).
    fn stat_in(&self, fs: &Fs, path: &TreePath) -> Result<Attr> {
        let s = &self.shared;
        let Some(name) = path.name() else {
            return Ok(Attr {
                mode: 0o755,
                ..Attr::synthetic_dir(0)
            });
        };
        let parent = self.dir(fs, &path.parent())?;
        for e in parent.iter() {
            let e = e.map_err(|e| s.io(path, e))?;
            if e.file_name().as_bytes() == name {
                return Ok(attr(&e));
            }
        }
        Err(TreeError::NotFound(format!(
            "no path {:?} in the restore point",
            s.shown(path)
        )))
    }
}

impl FileTree for FatTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        let fs = self.shared.fs()?;
        guard(&self.shared.name, || self.stat_in(&fs, path))
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let s = &self.shared;
        let fs = s.fs()?;
        guard(&s.name, || {
            let dir = self.dir(&fs, path)?;
            let mut pos = 0u64;
            for e in dir.iter() {
                let e = e.map_err(|e| s.io(path, e))?;
                let name = e.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                pos += 1;
                if pos <= start {
                    continue;
                }
                if !f(Entry {
                    name: name.into_bytes(),
                    attr: attr(&e),
                }) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        let a = self.stat(path)?;
        if a.kind == Kind::Dir {
            return Err(TreeError::IsADirectory(format!(
                "{} is a directory",
                self.shared.shown(path)
            )));
        }
        Ok(Arc::new(FatFile {
            shared: self.shared.clone(),
            path: path.clone(),
            size: a.size,
        }))
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        self.stat(path)?;
        Err(TreeError::WrongKind(format!(
            "{} is not a symlink",
            self.shared.shown(path)
        )))
    }
}

/// A file of a FAT file system, opened by path in the reading thread's
/// instance at each read.
struct FatFile {
    shared: Arc<Shared>,
    path: TreePath,
    size: u64,
}

impl FileReader for FatFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let s = &self.shared;
        let fs = s.fs()?;
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        guard(&s.name, || {
            let mut file = fs
                .root_dir()
                .open_file(&rel(s, &self.path)?)
                .map_err(|e| s.io(&self.path, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| s.io(&self.path, e))?;
            let mut done = 0;
            while done < want {
                let n = file
                    .read(&mut buf[done..want])
                    .map_err(|e| s.io(&self.path, e))?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            if done < want {
                return Err(TreeError::Io(format!(
                    "{}: the file's clusters end before its size",
                    s.shown(&self.path)
                )));
            }
            Ok(done)
        })
    }
}
