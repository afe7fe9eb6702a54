//! Browsing a tree restore point: `GET /api/v1/restore-points/{id}/tree`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest `limit` of a tree page.
pub const TREE_MAX_LIMIT: u32 = 10_000;
/// `limit` of a tree page when the query gives none.
pub const TREE_DEFAULT_LIMIT: u32 = 1000;

/// Query of `GET /api/v1/restore-points/{id}/tree`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    /// A directory or file inside the restore point, relative to its root
    /// ('/'-separated; a leading '/' is optional; default: the root).
    /// `..` is refused.
    #[serde(default)]
    pub path: Option<String>,
    /// Everything below `path`, depth first, rather than one level.
    #[serde(default)]
    pub recursive: bool,
    /// 1..=10000 (default 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/restore-points/{id}/files`: download a file of
/// a restore point, or a directory as an archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    /// A file or directory inside the restore point, relative to its root
    /// ('/'-separated; a leading '/' is optional; default: the root).
    /// `..` and NUL are refused.
    #[serde(default)]
    pub path: Option<String>,
    /// For a directory: the archive to send (required for directories).
    #[serde(default)]
    pub format: Option<ArchiveFormat>,
}

/// The archive a directory is downloaded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveFormat {
    /// POSIX tar with GNU long names; modes, owners, mtimes, symlinks.
    Tar,
    /// Zip of stored (uncompressed) entries, zip64 where needed.
    Zip,
}

impl ArchiveFormat {
    /// The file name extension and query value (`tar`, `zip`).
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::Zip => "zip",
        }
    }
}

/// What a tree entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TreeEntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Chardev,
    Blockdev,
    Socket,
    /// A kind this version does not know.
    Other,
}

impl TreeEntryKind {
    /// The JSON name (`file`, `dir`...).
    pub fn as_str(self) -> &'static str {
        match self {
            TreeEntryKind::File => "file",
            TreeEntryKind::Dir => "dir",
            TreeEntryKind::Symlink => "symlink",
            TreeEntryKind::Fifo => "fifo",
            TreeEntryKind::Chardev => "chardev",
            TreeEntryKind::Blockdev => "blockdev",
            TreeEntryKind::Socket => "socket",
            TreeEntryKind::Other => "other",
        }
    }
}

/// A file, directory or other entry of a tree restore point. Names that
/// are not UTF-8 are shown lossily (U+FFFD).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TreeEntry {
    /// The last component of `path`.
    pub name: String,
    /// Relative to the restore point's root, '/'-separated, no leading '/'.
    pub path: String,
    pub kind: TreeEntryKind,
    /// Bytes (files; 0 or the target's length for the others).
    pub size: u64,
    /// Permission and special bits (`st_mode & 0o7777`), as a number.
    pub mode: u32,
    /// Modification time: whole seconds since the Unix epoch, UTC.
    pub mtime: i64,
    pub uid: u32,
    pub gid: u32,
    /// A symlink's target (null for other kinds).
    pub link_target: Option<String>,
}

/// A page of `GET /api/v1/restore-points/{id}/tree`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TreePage {
    /// The path listed, normalized (no leading '/'; "" is the root).
    pub path: String,
    pub entries: Vec<TreeEntry>,
    /// The `offset` of the next page (null: this is the last one).
    pub next_offset: Option<u64>,
}
