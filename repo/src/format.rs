//! Structured blobs, encoded with protobuf (prost). Field numbers are frozen:
//! new fields get new numbers, old ones are never reused. The byte-level
//! description and the version history live in docs/formats.md.
//!
//! Every decoder here takes untrusted bytes: prost rejects malformed input
//! without panicking, and the callers bound the input size before decoding.

use prost::Message;

use crate::error::{Error, Result};

/// Version written into every structured blob's `version` field.
pub const STRUCT_VERSION: u32 = 1;

/// Decode a message, mapping errors to `Corrupt`, and refuse newer versions.
pub fn decode<M: Message + Default + Versioned>(what: &'static str, bytes: &[u8]) -> Result<M> {
    let m = M::decode(bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))?;
    if m.version() > STRUCT_VERSION {
        // Not damage: a newer arca wrote it. gc must never take a newer
        // manifest for a damaged one and collect what it references.
        return Err(Error::UnsupportedVersion {
            what,
            found: m.version(),
            supported: STRUCT_VERSION,
        });
    }
    Ok(m)
}

pub trait Versioned {
    fn version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn version(&self) -> u32 { self.version }
        }
    )*};
}
versioned!(PackHeader, Tree, Manifest, CatalogChunk);

/// The encrypted header at the end of every pack.
#[derive(Clone, PartialEq, Message)]
pub struct PackHeader {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<PackEntry>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PackEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(uint32, tag = "4")]
    pub length: u32,
    #[prost(uint32, tag = "5")]
    pub raw_length: u32,
}

/// Node kinds in a tree.
pub mod node_kind {
    pub const FILE: u32 = 1;
    pub const DIR: u32 = 2;
    pub const SYMLINK: u32 = 3;
    pub const FIFO: u32 = 4;
    pub const CHARDEV: u32 = 5;
    pub const BLOCKDEV: u32 = 6;
    pub const SOCKET: u32 = 7;
}

/// A directory: its entries sorted by name (bytewise).
#[derive(Clone, PartialEq, Message)]
pub struct Tree {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub nodes: Vec<Node>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Node {
    /// Raw file name bytes (not necessarily UTF-8).
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// Permission and special bits (st_mode & 0o7777).
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    #[prost(uint32, tag = "4")]
    pub uid: u32,
    #[prost(uint32, tag = "5")]
    pub gid: u32,
    #[prost(int64, tag = "6")]
    pub mtime_ns: i64,
    #[prost(int64, tag = "7")]
    pub atime_ns: i64,
    #[prost(int64, tag = "8")]
    pub ctime_ns: i64,
    #[prost(uint64, tag = "9")]
    pub size: u64,
    #[prost(uint64, tag = "10")]
    pub inode: u64,
    #[prost(uint64, tag = "11")]
    pub dev: u64,
    #[prost(uint32, tag = "12")]
    pub nlink: u32,
    /// Chunk ids of a file's content, in order.
    #[prost(bytes = "vec", repeated, tag = "13")]
    pub content: Vec<Vec<u8>>,
    /// Tree id of a directory.
    #[prost(bytes = "vec", tag = "14")]
    pub subtree: Vec<u8>,
    #[prost(bytes = "vec", tag = "15")]
    pub link_target: Vec<u8>,
    #[prost(message, repeated, tag = "16")]
    pub xattrs: Vec<Xattr>,
    #[prost(uint64, tag = "17")]
    pub rdev: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Xattr {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// One disk of an image snapshot.
#[derive(Clone, PartialEq, Message)]
pub struct Disk {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint64, tag = "2")]
    pub size: u64,
    #[prost(uint32, tag = "3")]
    pub chunk_size: u32,
    /// Ids of ImageTable blobs; concatenated they hold one 32-byte chunk id
    /// per block (all zero for a hole).
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub table: Vec<Vec<u8>>,
    #[prost(uint64, tag = "5")]
    pub holes: u64,
    /// The image file's mtime, ctime (ns since the epoch), inode and device
    /// when it was read; 0 when unknown (block devices, committed exports,
    /// snapshots made before these fields). The next backup of the same
    /// file skips reading it when all four and the size are unchanged.
    #[prost(int64, tag = "6")]
    pub source_mtime_ns: i64,
    #[prost(int64, tag = "7")]
    pub source_ctime_ns: i64,
    #[prost(uint64, tag = "8")]
    pub source_inode: u64,
    #[prost(uint64, tag = "9")]
    pub source_device: u64,
    /// The format the disk was read from ("raw", "qcow2"); empty: raw
    /// (snapshots made before this field).
    #[prost(string, tag = "10")]
    pub format: String,
    /// The changed-block tracking handle this backup started: a qcow2
    /// persistent dirty bitmap's name, or a libvirt checkpoint's. The next
    /// backup of the same disk reads only what it marks as changed;
    /// empty: none (raw files, or tracking not possible).
    #[prost(string, tag = "11")]
    pub cbt: String,
    /// How this disk was read: full or incremental, and why.
    #[prost(string, tag = "12")]
    pub mode: String,
    /// Bytes of this disk that were read.
    #[prost(uint64, tag = "13")]
    pub bytes_read: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Stats {
    #[prost(uint64, tag = "1")]
    pub files: u64,
    #[prost(uint64, tag = "2")]
    pub dirs: u64,
    #[prost(uint64, tag = "3")]
    pub bytes_read: u64,
    #[prost(uint64, tag = "4")]
    pub bytes_total: u64,
    #[prost(uint64, tag = "5")]
    pub bytes_added: u64,
    #[prost(uint64, tag = "6")]
    pub chunks_new: u64,
    #[prost(uint64, tag = "7")]
    pub chunks_total: u64,
    #[prost(double, tag = "8")]
    pub duration_s: f64,
}

/// A snapshot (restore point).
#[derive(Clone, PartialEq, Message)]
pub struct Manifest {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// "files" or "image".
    #[prost(string, tag = "2")]
    pub source_kind: String,
    #[prost(string, tag = "3")]
    pub source: String,
    #[prost(int64, tag = "4")]
    pub time_ns: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub parent: Vec<u8>,
    #[prost(string, repeated, tag = "6")]
    pub tags: Vec<String>,
    /// Root tree id (files).
    #[prost(bytes = "vec", tag = "7")]
    pub tree: Vec<u8>,
    #[prost(message, repeated, tag = "8")]
    pub disks: Vec<Disk>,
    #[prost(message, optional, tag = "9")]
    pub stats: Option<Stats>,
    /// Free-form JSON (VM definition, cloud metadata, ...).
    #[prost(string, tag = "10")]
    pub metadata_json: String,
    /// Catalog chunk ids (files).
    #[prost(bytes = "vec", repeated, tag = "11")]
    pub catalog: Vec<Vec<u8>>,
    #[prost(string, tag = "12")]
    pub hostname: String,
    /// "full" or "incremental", and why.
    #[prost(string, tag = "13")]
    pub backup_mode: String,
    /// The path that was backed up, for display.
    #[prost(string, tag = "14")]
    pub path: String,
    /// The backed-up directory's own metadata (mode, owner, times, xattrs;
    /// `subtree` is `tree`). Absent in image snapshots and in tree
    /// snapshots written before it existed.
    #[prost(message, optional, tag = "15")]
    pub root: Option<Node>,
}

/// A piece of the file catalog: entries in depth-first path order.
#[derive(Clone, PartialEq, Message)]
pub struct CatalogChunk {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<CatalogEntry>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CatalogEntry {
    /// Path relative to the snapshot root, '/'-separated raw bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub path: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    #[prost(uint32, tag = "3")]
    pub mode: u32,
    #[prost(uint64, tag = "4")]
    pub size: u64,
    #[prost(int64, tag = "5")]
    pub mtime_ns: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_header_roundtrip(entries in proptest::collection::vec(
            (proptest::array::uniform32(any::<u8>()), 1u32..6, any::<u64>(), any::<u32>(), any::<u32>()), 0..50)) {
            let h = PackHeader {
                version: STRUCT_VERSION,
                entries: entries.into_iter().map(|(id, kind, offset, length, raw_length)| PackEntry {
                    id: id.to_vec(), kind, offset, length, raw_length,
                }).collect(),
            };
            let back: PackHeader = decode("pack header", &h.encode_to_vec()).unwrap();
            prop_assert_eq!(back, h);
        }

        #[test]
        fn tree_roundtrip(names in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..20), mtime: i64, size: u64) {
            let t = Tree { version: STRUCT_VERSION, nodes: names.into_iter().map(|name| Node {
                name, kind: node_kind::FILE, mtime_ns: mtime, size, content: vec![vec![9; 32]], ..Default::default()
            }).collect() };
            let back: Tree = decode("tree", &t.encode_to_vec()).unwrap();
            prop_assert_eq!(back, t);
        }

        #[test]
        fn garbage_decodes_or_errors(data in proptest::collection::vec(any::<u8>(), 0..500)) {
            let _ = decode::<Tree>("tree", &data);
            let _ = decode::<Manifest>("manifest", &data);
            let _ = decode::<PackHeader>("pack header", &data);
        }
    }
}
