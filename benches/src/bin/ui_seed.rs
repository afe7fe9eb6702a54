//! `arca-ui-seed CATALOG SOURCE N`: add N restore points of SOURCE (a
//! source already in the catalog) straight to a server's catalog, for the
//! web UI benchmark (benches/ui.sh): a listing of 100k restore points
//! without making 100k backups. The restore points exist in the catalog
//! only (their snapshots are not in the datastore): listing them is what
//! is measured, not opening them.

use anyhow::{bail, Context, Result};
use arca_catalog::{Catalog, DatastoreId, RestorePoint, SourceKind};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, source, n] = args.as_slice() else {
        bail!("usage: arca-ui-seed CATALOG SOURCE N");
    };
    let n: usize = n.parse().context("N")?;
    let c = Catalog::open(std::path::Path::new(path)).context("opening the catalog")?;
    let mut named = c.sources_named(source)?;
    let Some(src) = named.pop() else {
        bail!("no source {source:?} in {path}");
    };
    let now = arca_catalog::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push(RestorePoint {
            id: format!("{:064x}", 0xd1_0000_0000u64 + i as u64)
                .parse()
                .unwrap_or_default(),
            datastore_id: DatastoreId(1),
            source_id: Some(src.id),
            source_name: src.name.clone(),
            project_id: src.project_id,
            kind: SourceKind::Files,
            time: now - 86_400 - (n - i) as i64 * 600,
            bytes_total: 1 << 30,
            bytes_added: 1 << 20,
            files: 1000,
            hostname: "bench".into(),
            created_at: now,
            ..Default::default()
        });
        if batch.len() == 1000 || i + 1 == n {
            c.add_restore_points(&batch)?;
            batch.clear();
        }
    }
    println!("{n} restore points of {source} added");
    Ok(())
}
