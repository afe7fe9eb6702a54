//! Committing a writable export: its overlay over the restore point it
//! was made from becomes a new restore point of the same source.

use super::*;

impl Runner {
    /// Write a stopped writable export's overlay over its restore point as
    /// a new restore point of the same source, then delete the overlay.
    /// Only the overlay's pages are read: the rest is the parent's chunks.
    pub(super) fn commit_export(
        &self,
        l: &Leased,
        p: &CommitExportParams,
        progress: &Progress,
        fx: &mut TaskEffects,
    ) -> Outcome {
        let (d, ds) = self.task_datastore(l)?;
        let export = p.export;
        let rp = p.restore_point;
        let source_name = p.source.clone();
        let host = self.exports.get().ok_or("this node serves no exports")?;
        // The node stops serving the export within moments of the stop;
        // its last writes are in the overlay once it has (the host wakes
        // this wait when it has).
        if !host.wait_unserved(export, std::time::Duration::from_secs(60)) {
            return Err(format!("export {export} is still served; not committing"));
        }
        if let Some(e) = host.flush_error(export) {
            return Err(format!(
                "the last writes to export {export} could not be saved in its overlay ({e}); not committing (free space or fix the node's overlay directory, then export and write again)"
            ));
        }
        let dir = host.overlays().to_path_buf();
        let path = crate::exports::overlay_path(&dir, export);
        if !path.exists() {
            return Err(format!(
                "the overlay of export {export} ({}) is gone",
                path.display()
            ));
        }
        let parent = ds
            .resolve_snapshot(&rp.to_hex(), None)
            .map_err(|e| format!("restore point {rp}: {e}"))?;
        let cache = arca_frontends::chunk_cache(64 << 20);
        let base = arca_frontends::ImageReader::open(ds.clone(), &parent, cache)
            .map_err(|e| e.to_string())?;
        let o = arca_frontends::overlay::Overlay::open(Arc::new(base), &path)
            .map_err(|e| e.to_string())?;
        use arca_frontends::BlockSource as _;
        let disk = parent.manifest.disks.first().ok_or("not an image")?;
        let mut tags = parent.manifest.tags.clone();
        tags.push(format!("committed-from:{}", parent.id.short()));
        let opts = arca_ingest::image::ImageOptions {
            source: parent.manifest.source.clone(),
            parent: Some(parent.clone()),
            changed_extents: Some(o.written_ranges()),
            tags,
            full_read: false,
        };
        let read = |off: u64, buf: &mut [u8]| o.read_at(off, buf);
        let out = arca_ingest::image::backup_from(
            &ds,
            o.size(),
            &read,
            &disk.name,
            &format!("export {export} of {rp}"),
            &opts,
            progress,
        )
        .map_err(|e| e.to_string())?;
        drop(o);
        // At the time the new snapshot's manifest records.
        fx.restore_point = Some(RestorePoint {
            id: out.snapshot.into(),
            datastore_id: d.id,
            source_id: l.task.source_id,
            source_name: if source_name.is_empty() {
                parent.manifest.source.clone()
            } else {
                source_name
            },
            project_id: l.task.project_id,
            kind: SourceKind::Image,
            time: snapshot_time(&ds, &out.snapshot)?,
            bytes_total: out.bytes_total as i64,
            bytes_added: out.bytes_added as i64,
            files: out.files as i64,
            hostname: arca_ingest::hostname(),
            task_id: Some(l.task.id),
            created_at: catalog::now(),
            ..Default::default()
        });
        fx.datastore_bytes_used = Some((d.id, bytes_used(&ds)));
        if let Err(e) = arca_frontends::overlay::remove(&path) {
            self.coord.log(
                l.task.id,
                LogLevel::Warn,
                &format!("removing the overlay: {e}"),
            );
        }
        Ok(TaskResult::CommitExport(CommitExportResult {
            restore_point: out.snapshot.into(),
            bytes_added: out.bytes_added,
        }))
    }
}
