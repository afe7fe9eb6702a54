//! An NTFS file system of an image, read with the `ntfs` crate through a
//! [`Volume`] of its partition.
//!
//! Shown: the files and directories of the volume, under their Win32 or
//! POSIX names (a DOS 8.3 name beside a long one is a duplicate and is
//! not listed); at the root, the system files (`$MFT`, `$Bitmap`,
//! `$Extend`, ...: every name starting with `$`) and the root's own `.`
//! entry are hidden. Sizes are those of the unnamed data stream;
//! alternate data streams are not shown. Times come from
//! `$STANDARD_INFORMATION` (100 ns since 1601, converted to the Unix
//! epoch): modification, access, and the MFT record's change time as
//! ctime. NTFS has no Unix owners or modes: uid and gid are 0, modes are
//! made up (directories 0755, files 0644, 0444 with the read-only
//! attribute). `ino` is the file record number, so the names of a hard
//! link share it; `nlink` counts a file's names (DOS names not counted).
//!
//! Reparse points: symbolic links (`IO_REPARSE_TAG_SYMLINK`), junctions
//! (`IO_REPARSE_TAG_MOUNT_POINT`) and WSL symlinks
//! (`IO_REPARSE_TAG_LX_SYMLINK`) are shown as symlinks to their target
//! ('\' turned into '/'; absolute Windows targets keep their drive, e.g.
//! `C:/Users`), as are the Interix symlinks ntfs-3g writes (system files
//! starting with `IntxLNK\1`). Other reparse points are shown as files
//! holding their unnamed data stream (often empty).
//!
//! Data: resident and non-resident streams, sparse runs read as zeros.
//! Compressed and encrypted streams are not decoded: reading such a file
//! fails with `Io` naming why (its size and times are still shown).

use std::cell::RefCell;
use std::io::SeekFrom;
use std::rc::Rc;
use std::sync::Arc;

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileName, NtfsFileNamespace};
use ntfs::{
    Ntfs, NtfsAttributeFlags, NtfsAttributeType, NtfsError, NtfsFile, NtfsReadSeek, UpcaseOrd,
};

use super::super::{Attr, Entry, FileReader, FileTree, Kind, Result, TreeError, TreePath};
use super::local;
use super::volume::{guard, Volume};

/// Difference between the NTFS epoch (1601-01-01) and the Unix epoch, in
/// 100 ns intervals.
const EPOCH_DIFFERENCE: i128 = 116_444_736_000_000_000;

/// Longest reparse point or Interix symlink read (a reparse point holds
/// at most 16 KiB).
const MAX_LINK_DATA: u64 = 16 << 10;

const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
const IO_REPARSE_TAG_LX_SYMLINK: u32 = 0xA000_001D;

/// Reads one step of an index walk may make (an entry of a listing, a
/// name looked up). The crate descends a directory's B-tree without a
/// depth limit: an index whose subnode points back up would loop (and
/// allocate) forever; this makes it an error. A sound index needs a few
/// reads per level.
const INDEX_STEP_READS: u32 = 4096;

/// A reader that refuses after [`INDEX_STEP_READS`] reads.
struct Budget<'a> {
    vol: &'a mut Volume,
    left: u32,
}

impl<'a> Budget<'a> {
    fn new(vol: &'a mut Volume) -> Budget<'a> {
        Budget {
            vol,
            left: INDEX_STEP_READS,
        }
    }
}

impl std::io::Read for Budget<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(
                "the directory index loops or is too deep",
            ));
        }
        self.left -= 1;
        self.vol.read(buf)
    }
}

impl std::io::Seek for Budget<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.vol.seek(to)
    }
}

/// The order of a directory index's entries: ascending by their upper
/// case, as NTFS sorts them. A damaged index can send the crate's
/// iterator back into a node it has walked (a subnode pointing up),
/// which would list the same entries again and again; an entry out of
/// order (or an exact repeat among names equal in upper case) ends the
/// listing with an error instead.
#[derive(Default)]
struct Order {
    /// The names since the last one that sorted strictly greater.
    run: Vec<NtfsFileName>,
}

impl Order {
    fn check(&mut self, ntfs: &Ntfs, k: &NtfsFileName) -> std::result::Result<(), &'static str> {
        const DAMAGED: &str = "the directory index is out of order (damaged)";
        if let Some(prev) = self.run.last() {
            match k.name().upcase_cmp(ntfs, &prev.name()) {
                std::cmp::Ordering::Less => return Err(DAMAGED),
                std::cmp::Ordering::Equal => {
                    if self.run.iter().any(|r| {
                        r.name().0 == k.name().0
                            && r.namespace() == k.namespace()
                            && r.parent_directory_reference().file_record_number()
                                == k.parent_directory_reference().file_record_number()
                    }) {
                        return Err(DAMAGED);
                    }
                }
                std::cmp::Ordering::Greater => self.run.clear(),
            }
        }
        // Bounded: names equal in upper case are few in a sound index.
        if self.run.len() >= 4096 {
            return Err(DAMAGED);
        }
        self.run.push(k.clone());
        Ok(())
    }
}

/// This thread's instance of a mounted NTFS file system.
struct Loaded {
    ntfs: Ntfs,
    /// The reader the crate is given (its window serves small reads).
    vol: RefCell<Volume>,
    /// For calls made while `vol` is in use (a listing's callback that
    /// comes back into the tree).
    base: Volume,
}

impl Loaded {
    /// Run `f` with a reader of the volume.
    fn with<R>(&self, f: impl FnOnce(&Ntfs, &mut Volume) -> R) -> R {
        match self.vol.try_borrow_mut() {
            Ok(mut v) => f(&self.ntfs, &mut v),
            Err(_) => f(&self.ntfs, &mut self.base.clone()),
        }
    }
}

/// A mounted NTFS file system (shared by the readers of its files).
struct Shared {
    id: u64,
    vol: Volume,
    /// The mount's name in the image's tree (`part4`), for messages.
    name: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        local::forget(self.id);
    }
}

impl Shared {
    /// This thread's instance.
    fn fs(&self) -> Result<Rc<Loaded>> {
        local::get(self.id, || {
            guard(&self.name, || {
                let mut vol = self.vol.clone();
                let mut ntfs = Ntfs::new(&mut vol).and_then(|mut n| {
                    // Needed by name lookups (NTFS indexes sort names
                    // by their upper case).
                    n.read_upcase_table(&mut vol)?;
                    Ok(n)
                });
                let ntfs = match ntfs.as_mut() {
                    Ok(_) => ntfs.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
                .map_err(|e| {
                    TreeError::Io(format!(
                        "{}: the NTFS file system cannot be read: {e}",
                        self.name
                    ))
                })?;
                Ok(Loaded {
                    ntfs,
                    vol: RefCell::new(vol),
                    base: self.vol.clone(),
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

    fn io(&self, path: &TreePath, e: impl std::fmt::Display) -> TreeError {
        TreeError::Io(format!("{}: {e}", self.shown(path)))
    }

    fn not_found(&self, path: &TreePath) -> TreeError {
        TreeError::NotFound(format!(
            "no path {:?} in the restore point",
            self.shown(path)
        ))
    }
}

/// Nanoseconds since the Unix epoch of an NTFS time (saturated).
fn ns(t: ntfs::NtfsTime) -> i64 {
    let ns = (i128::from(t.nt_timestamp()) - EPOCH_DIFFERENCE) * 100;
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// Whether a name of an index entry is listed: DOS names duplicate a
/// long one; at the root, the system files and `.` are hidden.
fn listed(name: &NtfsFileName, at_root: bool) -> bool {
    if name.namespace() == NtfsFileNamespace::Dos {
        return false;
    }
    let first = name.name().u16_iter().next();
    !(at_root && matches!(first, Some(0x24)) || name.name() == ".")
}

/// UTF-16 to '/'-separated UTF-8 (unpaired surrogates become U+FFFD).
fn unix_path(units: impl Iterator<Item = u16>) -> Vec<u8> {
    char::decode_utf16(units)
        .map(|c| match c {
            Ok('\\') => '/',
            Ok(c) => c,
            Err(_) => '\u{fffd}',
        })
        .collect::<String>()
        .into_bytes()
}

fn utf16_at(b: &[u8], off: usize, len: usize) -> Option<Vec<u16>> {
    let s = b.get(off..off.checked_add(len)?)?;
    Some(
        s.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

/// The target of a reparse point, when it is a link (see the module's
/// documentation); None for other tags and malformed data.
pub(crate) fn reparse_target(b: &[u8]) -> Option<Vec<u8>> {
    let u16_at = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]));
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let tag = u32_at(0)?;
    let data_len = usize::from(u16_at(4)?);
    let data = b.get(8..8 + data_len)?;
    let target = match tag {
        IO_REPARSE_TAG_SYMLINK | IO_REPARSE_TAG_MOUNT_POINT => {
            let (buffer, relative) = if tag == IO_REPARSE_TAG_SYMLINK {
                (12, u32_at(16)? & 1 == 1)
            } else {
                (8, false)
            };
            let field = |i: usize| u16_at(8 + i).map(usize::from);
            let (sub_off, sub_len) = (field(0)?, field(2)?);
            let (print_off, print_len) = (field(4)?, field(6)?);
            let names = data.get(buffer..)?;
            let sub = utf16_at(names, sub_off, sub_len)?;
            let print = utf16_at(names, print_off, print_len)?;
            if relative || print.is_empty() {
                // An absolute substitute name is in the NT namespace
                // (`\??\C:\x`); the print name is what users see.
                let prefix: Vec<u16> = "\\??\\".encode_utf16().collect();
                let sub = sub.strip_prefix(&prefix[..]).unwrap_or(&sub);
                unix_path(sub.iter().copied())
            } else {
                unix_path(print.into_iter())
            }
        }
        IO_REPARSE_TAG_LX_SYMLINK => data.get(4..)?.to_vec(),
        _ => return None,
    };
    (!target.is_empty() && !target.contains(&0)).then_some(target)
}

/// The target of an Interix symlink (what ntfs-3g writes): `IntxLNK\1`
/// then the target in UTF-16.
pub(crate) fn interix_target(b: &[u8]) -> Option<Vec<u8>> {
    let rest = b.strip_prefix(b"IntxLNK\x01")?;
    if rest.is_empty() || rest.len() % 2 != 0 {
        return None;
    }
    let units = utf16_at(rest, 0, rest.len())?;
    let target = unix_path(units.into_iter());
    (!target.contains(&0)).then_some(target)
}

/// What a file record says about the file.
struct Info {
    attr: Attr,
    /// The link target of a symlink.
    target: Option<Vec<u8>>,
    /// Why its data cannot be read (compressed, encrypted).
    unreadable: Option<&'static str>,
}

/// The first `max` bytes of an attribute's value.
fn read_value(
    a: &ntfs::NtfsAttribute<'_, '_>,
    fs: &mut Volume,
    max: u64,
) -> ntfs::Result<Option<Vec<u8>>> {
    let len = a.value_length();
    if len > max {
        return Ok(None);
    }
    let mut v = a.value(fs)?;
    let mut out = vec![0u8; len as usize];
    v.read_exact(fs, &mut out)?;
    Ok(Some(out))
}

/// Everything shown of `file`, from its attributes.
fn info(file: &NtfsFile<'_>, fs: &mut Volume) -> ntfs::Result<Info> {
    let si = file.info()?;
    let flags = si.file_attributes();
    let dir = file.is_directory();
    let mut names = 0u32;
    let mut size = 0u64;
    let mut unreadable = None;
    let mut reparse = None;
    let mut interix = None;
    let mut attrs = file.attributes();
    while let Some(item) = attrs.next(fs) {
        let item = item?;
        let a = item.to_attribute()?;
        match a.ty()? {
            NtfsAttributeType::FileName => {
                let n = a.structured_value::<_, NtfsFileName>(fs)?;
                if n.namespace() != NtfsFileNamespace::Dos {
                    names += 1;
                }
            }
            NtfsAttributeType::Data if a.name_length() == 0 => {
                size = a.value_length();
                let f = a.flags();
                if f.contains(NtfsAttributeFlags::ENCRYPTED) {
                    unreadable = Some("the file is encrypted (EFS): its data cannot be read");
                } else if f.contains(NtfsAttributeFlags::COMPRESSED) {
                    unreadable =
                        Some("the file is NTFS-compressed: compressed data is not decoded");
                } else if flags.contains(NtfsFileAttributeFlags::SYSTEM)
                    && !dir
                    && (10..=MAX_LINK_DATA).contains(&size)
                {
                    interix = read_value(&a, fs, MAX_LINK_DATA)?.and_then(|b| interix_target(&b));
                }
            }
            NtfsAttributeType::ReparsePoint => {
                reparse = read_value(&a, fs, MAX_LINK_DATA)?.and_then(|b| reparse_target(&b));
            }
            _ => {}
        }
    }
    let target = reparse.or(interix);
    let kind = match (dir, &target) {
        (_, Some(_)) => Kind::Symlink,
        (true, None) => Kind::Dir,
        (false, None) => Kind::File,
    };
    let mut mode = match kind {
        Kind::Dir => 0o755,
        Kind::Symlink => 0o777,
        _ => 0o644,
    };
    if kind == Kind::File && flags.contains(NtfsFileAttributeFlags::READ_ONLY) {
        mode &= !0o222;
    }
    Ok(Info {
        attr: Attr {
            kind,
            size: match (kind, &target) {
                (Kind::Symlink, Some(t)) => t.len() as u64,
                (Kind::File, _) => size,
                _ => 0,
            },
            mode,
            uid: 0,
            gid: 0,
            nlink: if kind == Kind::Dir { 2 } else { names.max(1) },
            mtime_ns: ns(si.modification_time()),
            atime_ns: ns(si.access_time()),
            ctime_ns: ns(si.mft_record_modification_time()),
            ino: file.file_record_number(),
            rdev: 0,
        },
        target,
        unreadable: if kind == Kind::File { unreadable } else { None },
    })
}

/// What an index entry's copy of a file name says of its file (sizes
/// and times that may lag behind the file record's).
fn index_attr(key: &NtfsFileName, record: u64) -> Attr {
    let dir = key.is_directory();
    let mut mode = if dir { 0o755 } else { 0o644 };
    if !dir
        && key
            .file_attributes()
            .contains(NtfsFileAttributeFlags::READ_ONLY)
    {
        mode &= !0o222;
    }
    Attr {
        kind: if dir { Kind::Dir } else { Kind::File },
        size: if dir { 0 } else { key.data_size() },
        mode,
        uid: 0,
        gid: 0,
        nlink: if dir { 2 } else { 1 },
        mtime_ns: ns(key.modification_time()),
        atime_ns: ns(key.access_time()),
        ctime_ns: ns(key.mft_record_modification_time()),
        ino: record,
        rdev: 0,
    }
}

/// The NTFS file system of a partition (or of the whole disk).
pub(crate) struct NtfsTree {
    shared: Arc<Shared>,
}

impl NtfsTree {
    /// Mount the NTFS file system of `vol`; one that cannot be loaded is
    /// `Io`.
    pub(crate) fn open(vol: Volume, name: String) -> Result<NtfsTree> {
        let shared = Arc::new(Shared {
            id: local::new_id(),
            vol,
            name,
        });
        let fs = shared.fs()?;
        // The root directory must be there.
        guard(&shared.name, || {
            fs.with(|ntfs, v| {
                ntfs.root_directory(v)
                    .map(|_| ())
                    .map_err(|e| shared.io(&TreePath::root(), e))
            })
        })?;
        Ok(NtfsTree { shared })
    }

    /// The file record of `path`.
    fn lookup<'n>(&self, ntfs: &'n Ntfs, fs: &mut Volume, path: &TreePath) -> Result<NtfsFile<'n>> {
        let s = &self.shared;
        let io = |e: NtfsError| s.io(path, e);
        let mut file = ntfs.root_directory(fs).map_err(io)?;
        for (i, c) in path.components().iter().enumerate() {
            let at_root = i == 0;
            if !file.is_directory() {
                let upto =
                    TreePath::parse_bytes(&path.components()[..i].join(&b'/')).unwrap_or_default();
                return Err(TreeError::NotADirectory(format!(
                    "{} is not a directory",
                    s.shown(&upto)
                )));
            }
            let name = std::str::from_utf8(c).map_err(|_| s.not_found(path))?;
            let index = file.directory_index(fs).map_err(io)?;
            let mut finder = index.finder();
            let found = match NtfsFileNameIndex::find(&mut finder, ntfs, &mut Budget::new(fs), name)
            {
                None => None,
                Some(Err(e)) => return Err(io(e)),
                Some(Ok(entry)) => {
                    let key = entry.key().transpose().map_err(io)?;
                    match key {
                        // The index finds names without regard to case:
                        // take the entry only when it is this very name.
                        Some(k) if k.name() == name && listed(&k, at_root) => {
                            Some(entry.file_reference())
                        }
                        _ => None,
                    }
                }
            };
            let reference = match found {
                Some(r) => r,
                // Names differing in case only (POSIX names): a scan.
                None => scan(ntfs, &index, fs, name, at_root)
                    .map_err(|e| s.io(path, e))?
                    .ok_or_else(|| s.not_found(path))?,
            };
            let next = reference.to_file(ntfs, fs).map_err(io)?;
            file = next;
        }
        Ok(file)
    }

    fn stat_info(&self, path: &TreePath) -> Result<Info> {
        let s = &self.shared;
        let fs = s.fs()?;
        guard(&s.shown(path), || {
            fs.with(|ntfs, v| {
                let file = self.lookup(ntfs, v, path)?;
                let mut i = info(&file, v).map_err(|e| s.io(path, e))?;
                if path.is_root() {
                    i.attr.kind = Kind::Dir;
                    i.target = None;
                }
                Ok(i)
            })
        })
    }
}

/// The file reference of `name` in a directory, by a scan of its index.
fn scan(
    ntfs: &Ntfs,
    index: &ntfs::NtfsIndex<'_, '_, NtfsFileNameIndex>,
    fs: &mut Volume,
    name: &str,
    at_root: bool,
) -> std::result::Result<Option<ntfs::NtfsFileReference>, String> {
    let mut entries = index.entries();
    let mut order = Order::default();
    while let Some(e) = entries.next(&mut Budget::new(fs)) {
        let e = e.map_err(|e| e.to_string())?;
        if let Some(k) = e.key() {
            let k = k.map_err(|e| e.to_string())?;
            order.check(ntfs, &k)?;
            if listed(&k, at_root) && k.name() == name {
                return Ok(Some(e.file_reference()));
            }
        }
    }
    Ok(None)
}

impl FileTree for NtfsTree {
    fn stat(&self, path: &TreePath) -> Result<Attr> {
        Ok(self.stat_info(path)?.attr)
    }

    fn read_dir(
        &self,
        path: &TreePath,
        start: u64,
        f: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<()> {
        let s = &self.shared;
        let fs = s.fs()?;
        let at_root = path.is_root();
        // The reader of this listing; the callback may come back into
        // the tree, which then reads with another.
        let mut v = fs.base.clone();
        let ntfs = &fs.ntfs;
        let dir = guard(&s.shown(path), || self.lookup(ntfs, &mut v, path))?;
        // A junction is a directory shown as a symlink: not listed.
        let shown_kind = guard(&s.shown(path), || match path.is_root() {
            true => Ok(Kind::Dir),
            false => info(&dir, &mut v)
                .map(|i| i.attr.kind)
                .map_err(|e| s.io(path, e)),
        })?;
        if !dir.is_directory() || shown_kind != Kind::Dir {
            return Err(TreeError::NotADirectory(format!(
                "{} is not a directory",
                s.shown(path)
            )));
        }
        let index = guard(&s.shown(path), || {
            dir.directory_index(&mut v).map_err(|e| s.io(path, e))
        })?;
        let mut entries = index.entries();
        let mut order = Order::default();
        let mut pos = 0u64;
        loop {
            let next = guard(&s.shown(path), || {
                let Some(e) = entries.next(&mut Budget::new(&mut v)) else {
                    return Ok(None);
                };
                let e = e.map_err(|e| s.io(path, e))?;
                let Some(key) = e.key() else {
                    return Ok(Some(None));
                };
                let key = key.map_err(|e| s.io(path, e))?;
                order.check(ntfs, &key).map_err(|e| s.io(path, e))?;
                if !listed(&key, at_root) {
                    return Ok(Some(None));
                }
                pos += 1;
                if pos <= start {
                    return Ok(Some(None));
                }
                let name = key.name().to_string_lossy().into_bytes();
                let shown = path.join(&name).unwrap_or_else(|_| path.clone());
                // A damaged file record: the entry is still listed, with
                // what the index says of it (stat and reads of it fail).
                let attr = match e.to_file(ntfs, &mut v).and_then(|f| info(&f, &mut v)) {
                    Ok(i) => i.attr,
                    Err(err) => {
                        tracing::warn!(path = %s.shown(&shown), error = %err, "a damaged NTFS file record");
                        index_attr(&key, e.file_reference().file_record_number())
                    }
                };
                Ok(Some(Some(Entry { name, attr })))
            })?;
            match next {
                None => return Ok(()),
                Some(None) => {}
                Some(Some(entry)) => {
                    if !f(entry) {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn open(&self, path: &TreePath) -> Result<Arc<dyn FileReader>> {
        let i = self.stat_info(path)?;
        let s = &self.shared;
        match i.attr.kind {
            Kind::Dir => Err(TreeError::IsADirectory(format!(
                "{} is a directory",
                s.shown(path)
            ))),
            Kind::File => Ok(Arc::new(NtfsFileReader {
                shared: self.shared.clone(),
                path: path.clone(),
                record: i.attr.ino,
                size: i.attr.size,
                unreadable: i.unreadable,
            })),
            _ => Err(TreeError::WrongKind(format!(
                "{} is not a regular file",
                s.shown(path)
            ))),
        }
    }

    fn read_link(&self, path: &TreePath) -> Result<Vec<u8>> {
        let i = self.stat_info(path)?;
        i.target.ok_or_else(|| {
            TreeError::WrongKind(format!("{} is not a symlink", self.shared.shown(path)))
        })
    }
}

/// A file of an NTFS file system: its file record, read in the reading
/// thread's instance at each read.
struct NtfsFileReader {
    shared: Arc<Shared>,
    path: TreePath,
    record: u64,
    size: u64,
    unreadable: Option<&'static str>,
}

impl FileReader for NtfsFileReader {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let s = &self.shared;
        if let Some(why) = self.unreadable {
            return Err(s.io(&self.path, why));
        }
        let fs = s.fs()?;
        let want = (buf.len() as u64).min(self.size - offset) as usize;
        let io = |e: NtfsError| s.io(&self.path, e);
        guard(&s.shown(&self.path), || {
            fs.with(|ntfs, v| {
                let file = ntfs.file(v, self.record).map_err(io)?;
                let item = file
                    .data(v, "")
                    .ok_or_else(|| s.io(&self.path, "the file has no data stream"))?
                    .map_err(io)?;
                let a = item.to_attribute().map_err(io)?;
                let mut value = a.value(v).map_err(io)?;
                value.seek(v, SeekFrom::Start(offset)).map_err(io)?;
                let mut done = 0;
                while done < want {
                    let n = value.read(v, &mut buf[done..want]).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                if done < want {
                    return Err(s.io(&self.path, "the file's data ends before its size"));
                }
                Ok(done)
            })
        })
    }
}
