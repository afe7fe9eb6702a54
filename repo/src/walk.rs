//! What a snapshot references: the graph walked by GC's mark and by verify.

use crate::blob::BlobKind;
use crate::datastore::Datastore;
use crate::error::{Error, Result};
use crate::format::{node_kind, Manifest};
use crate::id::ChunkId;
use crate::image;

/// The blobs a manifest points to directly.
pub fn manifest_roots(m: &Manifest) -> Result<Vec<(ChunkId, BlobKind)>> {
    let mut out = Vec::new();
    if !m.tree.is_empty() {
        out.push((ChunkId::from_slice(&m.tree)?, BlobKind::Tree));
    }
    for c in &m.catalog {
        out.push((ChunkId::from_slice(c)?, BlobKind::Catalog));
    }
    for d in &m.disks {
        for t in &d.table {
            out.push((ChunkId::from_slice(t)?, BlobKind::ImageTable));
        }
    }
    Ok(out)
}

/// The blobs one blob points to (reads it if it is a tree or a table).
pub fn children(ds: &Datastore, id: &ChunkId, kind: BlobKind) -> Result<Vec<(ChunkId, BlobKind)>> {
    match kind {
        BlobKind::Tree => {
            let tree = ds.read_tree(id)?;
            let mut out = Vec::new();
            for n in tree.nodes {
                if n.kind == node_kind::DIR {
                    out.push((ChunkId::from_slice(&n.subtree)?, BlobKind::Tree));
                }
                for c in &n.content {
                    out.push((ChunkId::from_slice(c)?, BlobKind::Data));
                }
            }
            Ok(out)
        }
        BlobKind::ImageTable => Ok(image::decode_table_blob(&ds.read_blob(id)?)?
            .into_iter()
            .filter(|c| !c.is_zero())
            .map(|c| (c, BlobKind::Data))
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// Blob kind of a root id registered by a session, from the index.
pub fn kind_of(ds: &Datastore, id: &ChunkId) -> Result<BlobKind> {
    Ok(ds
        .index()
        .get(id)?
        .ok_or_else(|| Error::NotFound(format!("chunk {id}")))?
        .kind)
}
