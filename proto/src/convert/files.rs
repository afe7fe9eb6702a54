//! The file queries (stat, list, read, read a link) and their answers to
//! and from their messages. What the other side sent may be anything: a
//! query without its `FileRef`, an attribute of an unknown kind, a name
//! that is not one component is an error naming it.

use arca_model::api::TreeEntryKind;

use super::parse;
use super::query::{kind_from_pb, kind_to_pb};
use crate::pb;
use crate::query::{
    DirEntry, DirPage, FileAttr, FileRef, ListQuery, ReadQuery, LIST_MAX_LIMIT, READ_MAX_LENGTH,
};

pub(super) fn file_ref_to_pb(f: &FileRef) -> pb::FileRef {
    pb::FileRef {
        restore_point: f.restore_point.to_hex(),
        datastore: f.datastore.clone(),
        path: f.path.clone(),
    }
}

pub(super) fn file_ref_from_pb(f: Option<pb::FileRef>) -> Result<FileRef, String> {
    let f = f.ok_or("a file query without its file")?;
    Ok(FileRef {
        restore_point: parse("restore point id", &f.restore_point)?,
        datastore: f.datastore,
        path: f.path,
    })
}

pub(super) fn list_to_pb(q: &ListQuery) -> pb::ListQuery {
    pb::ListQuery {
        dir: Some(file_ref_to_pb(&q.dir)),
        start: q.start,
        limit: q.limit,
    }
}

pub(super) fn list_from_pb(q: pb::ListQuery) -> Result<ListQuery, String> {
    Ok(ListQuery {
        dir: file_ref_from_pb(q.dir)?,
        start: q.start,
        limit: q.limit,
    })
}

pub(super) fn read_to_pb(q: &ReadQuery) -> pb::ReadQuery {
    pb::ReadQuery {
        file: Some(file_ref_to_pb(&q.file)),
        offset: q.offset,
        length: q.length,
    }
}

pub(super) fn read_from_pb(q: pb::ReadQuery) -> Result<ReadQuery, String> {
    Ok(ReadQuery {
        file: file_ref_from_pb(q.file)?,
        offset: q.offset,
        length: q.length,
    })
}

pub(super) fn attr_to_pb(a: &FileAttr) -> pb::FileAttr {
    pb::FileAttr {
        kind: kind_to_pb(a.kind) as i32,
        size: a.size,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        mtime_ns: a.mtime_ns,
        atime_ns: a.atime_ns,
        ctime_ns: a.ctime_ns,
        ino: a.ino,
        rdev: a.rdev,
    }
}

pub(super) fn attr_from_pb(a: pb::FileAttr) -> Result<FileAttr, String> {
    let kind = match kind_from_pb(a.kind)? {
        TreeEntryKind::Other => return Err("a file attribute of kind \"other\"".into()),
        k => k,
    };
    Ok(FileAttr {
        kind,
        size: a.size,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        mtime_ns: a.mtime_ns,
        atime_ns: a.atime_ns,
        ctime_ns: a.ctime_ns,
        ino: a.ino,
        rdev: a.rdev,
    })
}

pub(super) fn dir_page_to_pb(p: &DirPage) -> pb::DirPage {
    pb::DirPage {
        entries: p
            .entries
            .iter()
            .map(|e| pb::DirEntry {
                name: e.name.clone(),
                attr: Some(attr_to_pb(&e.attr)),
            })
            .collect(),
        end: p.end,
    }
}

/// A page as the server receives it: at most [`LIST_MAX_LIMIT`] entries,
/// each name one component (not empty, `.` or `..`, no '/' or NUL).
pub(super) fn dir_page_from_pb(p: pb::DirPage) -> Result<DirPage, String> {
    if p.entries.len() > LIST_MAX_LIMIT as usize {
        return Err(format!(
            "a directory page of {} entries (at most {LIST_MAX_LIMIT})",
            p.entries.len()
        ));
    }
    let entries = p
        .entries
        .into_iter()
        .map(|e| {
            if !is_name(&e.name) {
                return Err(format!(
                    "an entry named {:?} (not a file name)",
                    String::from_utf8_lossy(&e.name)
                ));
            }
            Ok(DirEntry {
                name: e.name,
                attr: attr_from_pb(e.attr.ok_or("an entry without attributes")?)?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(DirPage {
        entries,
        end: p.end,
    })
}

/// One path component.
fn is_name(n: &[u8]) -> bool {
    !n.is_empty() && n != b"." && n != b".." && !n.contains(&b'/') && !n.contains(&0)
}

/// Read data as the server receives it: at most [`READ_MAX_LENGTH`]
/// bytes (whether it is at most what was asked is the asker's check).
pub(super) fn data_from_pb(d: pb::FileData) -> Result<Vec<u8>, String> {
    if d.data.len() > READ_MAX_LENGTH as usize {
        return Err(format!(
            "{} bytes read (at most {READ_MAX_LENGTH})",
            d.data.len()
        ));
    }
    Ok(d.data)
}
