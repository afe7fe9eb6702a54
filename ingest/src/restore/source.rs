//! Where a restore reads what it writes: the directories and file contents
//! of a restore point as stored ([`Stored`]), or any other tree of
//! [`Node`]s (the file systems inside an image restore point, read through
//! `arca_frontends::tree` by the node). Everything else of a restore, the
//! confinement beneath the target, `overwrite`, special files, resuming,
//! is the same for all sources.

use arca_repo::format::{Node, Tree};
use arca_repo::{ChunkId, Datastore, Result};

/// The directories and file contents a restore reads.
pub trait Source: Sync {
    /// The entries of the directory `dir` (a node of kind DIR), sorted by
    /// name or in the order they are to be restored.
    fn children(&self, dir: &Node) -> Result<Tree>;

    /// Hand the content of the file `file` to `f`, in order, a piece at
    /// a time; an error of `f` stops it and is returned.
    fn content(&self, file: &Node, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>;
}

/// A restore point as stored in a datastore: directories are tree blobs
/// (`subtree`), files their chunks (`content`).
pub struct Stored<'a>(pub &'a Datastore);

impl Source for Stored<'_> {
    fn children(&self, dir: &Node) -> Result<Tree> {
        self.0.read_tree(&ChunkId::from_slice(&dir.subtree)?)
    }

    fn content(&self, file: &Node, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        for c in &file.content {
            let data = self.0.read_blob(&ChunkId::from_slice(c)?)?;
            f(&data)?;
        }
        Ok(())
    }
}

/// What a restore writes: a directory's entries or one entry, and the
/// name of the restore (its marker: a rerun of the same restore into a
/// partial target resumes it).
pub struct Selection {
    /// The restore point's id (hex).
    pub restore_point: String,
    /// The path restored inside it (None: all of it).
    pub path: Option<String>,
    /// The entry restored: a file, link or special file is restored as
    /// `target/<name>`; a directory's own metadata is set on the target.
    /// None for a root without metadata of its own.
    pub node: Option<Node>,
    /// For a directory, its entries: restored into the target.
    pub tree: Option<Tree>,
}
