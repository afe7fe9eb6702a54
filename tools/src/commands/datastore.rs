//! `arca datastore init` and `arca datastore info`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use arca_repo::{Datastore, Encryption};
use serde_json::json;

use super::shared::{datastore_path, human, open, passphrase, print_json};
use crate::Cli;

/// `arca datastore init`.
pub(super) fn init(
    cli: &Cli,
    path: &Option<PathBuf>,
    encryption: &str,
    pack_size_mib: &Option<u32>,
    image_chunk_kib: &Option<u32>,
    image_frame_kib: &Option<u32>,
    image_zstd_level: &Option<i32>,
) -> Result<u8> {
    let path = match path {
        Some(p) => p.clone(),
        None => datastore_path(cli)?,
    };
    let enc: Encryption = encryption.parse()?;
    let pass = passphrase(cli)?;
    let config = Datastore::init(&path, enc, pass.as_deref(), |c| {
        if let Some(m) = pack_size_mib {
            c.pack_size = m.saturating_mul(1024 * 1024);
        }
        if let Some(k) = image_chunk_kib {
            c.image_chunk_size = k.saturating_mul(1024);
        }
        match image_frame_kib {
            Some(k) => c.image_frame_size = k.saturating_mul(1024),
            // Frames no smaller than the chunk gain nothing.
            None if c.image_frame_size >= c.image_chunk_size => c.image_frame_size = 0,
            None => {}
        }
        if image_zstd_level.is_some() {
            c.image_compression_level = *image_zstd_level;
        }
    })
    .with_context(|| format!("creating datastore {}", path.display()))?;
    if cli.json {
        print_json(json!({ "path": path, "id": config.id, "encryption": encryption }));
    } else {
        println!(
            "created datastore {} (id {}, encryption {encryption})",
            path.display(),
            config.id
        );
    }
    Ok(0)
}

/// `arca datastore info`.
pub(super) fn info(cli: &Cli) -> Result<u8> {
    let ds = open(cli, true)?;
    let packs = ds.index().packs()?;
    let stored: u64 = packs.iter().map(|(_, i)| i.size).sum();
    let snaps = ds.snapshots()?;
    let c = ds.config();
    let v = json!({
        "path": ds.root(), "id": c.id, "format_version": c.format_version,
        "encryption": c.encryption, "chunker": c.chunker, "image_chunk_size": c.image_chunk_size,
        "image_frame_size": c.image_frame_size, "image_compression_level": c.image_level(),
        "pack_size": c.pack_size, "packs": packs.len(), "stored_bytes": stored, "snapshots": snaps.len(),
    });
    if cli.json {
        print_json(v);
        return Ok(0);
    }
    let enc = match c.encryption {
        Encryption::None => "none",
        Encryption::Repokey => "repokey",
    };
    let mut t = crate::table::Table::new(&["datastore", &ds.root().display().to_string()]);
    let mut kv = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    kv("id", c.id.clone());
    kv("format", c.format_version.to_string());
    kv("encryption", enc.into());
    kv(
        "chunks",
        format!(
            "{} to {}, {} on average (files); {} (images)",
            human(c.chunker.min_size.into()),
            human(c.chunker.max_size.into()),
            human(c.chunker.avg_size.into()),
            human(c.image_chunk_size.into())
        ),
    );
    kv(
        "image frames",
        match c.image_frame_size {
            0 => "none (image chunks stored whole)".into(),
            f => format!("{}, zstd level {}", human(f.into()), c.image_level()),
        },
    );
    kv("pack size", human(c.pack_size.into()));
    kv(
        "packs",
        format!("{} ({} stored)", packs.len(), human(stored)),
    );
    kv("snapshots", snaps.len().to_string());
    println!("{}", t.render());
    Ok(0)
}
