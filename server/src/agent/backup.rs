//! An agent's backup session opened and committed (`Begin`, `Commit`):
//! the source and datastore checked, the backup task made or claimed,
//! the parent's tables and metadata (and a libvirt source's hooks)
//! handed to the agent; at the end the restore point listed, the task
//! finished with its result and the retention queued (schedule.rs).

use super::*;

impl AgentService {
    pub(super) fn begin_blocking(
        &self,
        p: Principal,
        remote: String,
        r: pb::BeginRequest,
    ) -> Result<pb::BeginReply, Status> {
        let src = self.source(&p, &r.source)?;
        // A task the agent claimed with Next: it is failed with the reason
        // if the session cannot open (else it would wait for its lease).
        let claimed = match r.task_id {
            0 => None,
            id => Some(self.claimed(&src, id)?),
        };
        // A libvirt source's pre/post commands, which the agent runs.
        let hooks = match src.kind {
            SourceKind::Libvirt => arca_model::api::VmHooks::of_settings(&src.settings)
                .map_err(|e| Status::failed_precondition(format!("source {}: {e}", src.name))),
            _ => Ok(None),
        };
        let opened = hooks.and_then(|h| self.datastore(&src).map(|d| (d, h)));
        let opened = opened.and_then(|(d, hooks)| {
            let ds = self
                .runner
                .datastore(&DatastoreRef {
                    id: d.id,
                    name: d.name.clone(),
                    path: d.path.clone(),
                })
                .map_err(Status::internal)?;
            Ok((d, ds, hooks))
        });
        let (d, ds, hooks) = match (opened, &claimed) {
            (Ok(x), _) => x,
            (Err(e), Some(t)) => {
                self.fail_claimed(t, e.message());
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        };
        // The parent: the newest of the source's restore points there.
        let parent = self
            .catalog
            .restore_points_in(src.id, d.id)
            .map_err(internal)?
            .into_iter()
            .rev()
            .find_map(|rp| ds.resolve_snapshot(&rp.id.to_hex(), None).ok())
            .filter(|s| s.is_image());
        let task = if let Some(t) = claimed {
            t
        } else {
            self.catalog
                .start_task(
                    &NewTask {
                        spec: TaskSpec::Backup(Default::default()),
                        project_id: src.project_id,
                        source_id: Some(src.id),
                        datastore_id: Some(d.id),
                        node_id: Some(self.node_id),
                        priority: 10,
                        max_attempts: 1,
                        not_before: catalog::now(),
                        created_by: p.name().to_string(),
                        ..Default::default()
                    },
                    self.node_id,
                    LEASE_SECS,
                )
                .map_err(|e| match e {
                    catalog::Error::State(m) => Status::failed_precondition(m),
                    e => internal(e),
                })?
        };
        let meta = Meta {
            task_id: task.id,
            lease: Lease {
                node_id: self.node_id,
                attempt: task.attempt,
            },
            user_id: p.user.id,
            user: p.name().to_string(),
            source: src.clone(),
            datastore_id: d.id,
            remote: remote.clone(),
            hostname: r.hostname.clone(),
        };
        let disks: Vec<DiskSpec> = r
            .disks
            .iter()
            .map(|d| DiskSpec {
                name: d.name.clone(),
                size: d.size,
            })
            .collect();
        let parent_id = parent.as_ref().map(|p| p.id.to_hex()).unwrap_or_default();
        let parent_metadata_json = parent
            .as_ref()
            .map(|p| p.manifest.metadata_json.clone())
            .unwrap_or_default();
        // The rule of `arca backup image` (arca-ingest's qcow2 module):
        // bitmaps are named after the datastore, so that backups into
        // another datastore keep theirs.
        let bitmap_prefix = arca_ingest::image::qcow2::bitmap_prefix(&ds);
        let (s, b) = match self.sessions.begin(ds, &src.name, disks, parent, meta) {
            Ok(x) => x,
            Err(e) => {
                let msg = e.to_string();
                let _ = self.catalog.add_task_log(task.id, LogLevel::Error, &msg);
                let _ = self.catalog.finish_task_leased(
                    task.id,
                    Some(&Lease {
                        node_id: self.node_id,
                        attempt: task.attempt,
                    }),
                    Err(msg),
                    false,
                    None,
                    &TaskEffects::default(),
                );
                return Err(ingest_status(e));
            }
        };
        let line = format!(
            "agent backup from {} ({remote}) by {}: {} disk(s) of {} bytes, parent {}",
            r.hostname,
            p.name(),
            r.disks.len(),
            r.disks.iter().map(|d| d.size).sum::<u64>(),
            if parent_id.is_empty() {
                "none"
            } else {
                &parent_id[..12]
            }
        );
        let _ = self.catalog.add_task_log(task.id, LogLevel::Info, &line);
        let _ = self.catalog.audit(
            p.name(),
            "source.backup",
            &src.id.to_string(),
            &remote,
            AuditResult::Ok,
            &format!("agent on {}, task {}", r.hostname, task.id),
        );
        tracing::info!(
            target: "arca::agent",
            session = %s.id,
            task = task.id.get(),
            source = %src.name,
            user = %p.name(),
            remote = %remote,
            host = %r.hostname,
            parent = %parent_id,
            "agent session opened"
        );
        Ok(pb::BeginReply {
            session: b.session,
            chunk_size: b.chunk_size,
            id_key: b.id_key.to_vec(),
            parent: parent_id,
            parent_disks: b
                .parent_tables
                .into_iter()
                .map(|t| pb::ParentDisk {
                    name: t.name,
                    size: t.size,
                    chunk_size: t.chunk_size,
                    ids: arca_repo::image::encode_table_blob(&t.ids),
                    cbt: t.cbt,
                })
                .collect(),
            tables_omitted: b.tables_omitted,
            task_id: task.id.get(),
            bitmap_prefix,
            parent_metadata_json,
            hooks: hooks.map(|h| {
                let (pre, post, pre_failure_is_warning) = arca_proto::convert::hooks_to_parts(&h);
                pb::VmHooks {
                    pre: pre.into_iter().map(|args| pb::Argv { args }).collect(),
                    post: post.into_iter().map(|args| pb::Argv { args }).collect(),
                    pre_failure_is_warning,
                }
            }),
        })
    }

    pub(super) fn commit_blocking(
        &self,
        p: Principal,
        r: pb::CommitRequest,
    ) -> Result<pb::CommitReply, Status> {
        let s = self.session(&p, &r.session)?;
        // No other call finds it from here on.
        self.sessions.remove(&s.id);
        // A cancel asked for since the keeper's last look wins.
        if self
            .catalog
            .task(s.meta.task_id)
            .map_err(internal)?
            .cancel_requested
        {
            self.fail(&s, "cancelled".into(), true);
            return Err(Status::cancelled(format!(
                "backup task {} was cancelled",
                s.meta.task_id
            )));
        }
        let tables = r
            .disks
            .iter()
            .map(|d| {
                Ok(DiskTable {
                    spec: DiskSpec {
                        name: d.name.clone(),
                        size: d.size,
                    },
                    ids: table(&d.ids)?,
                    format: d.format.clone(),
                    cbt: d.cbt.clone(),
                    mode: d.mode.clone(),
                    bytes_read: d.bytes_read,
                })
            })
            .collect::<Result<Vec<_>, Status>>();
        let tables = match tables {
            Ok(t) => t,
            Err(e) => {
                self.fail(&s, format!("commit: {}", e.message()), false);
                return Err(e);
            }
        };
        let m = &s.meta;
        let libvirt = m.source.kind == SourceKind::Libvirt;
        let metadata_json = match check_metadata(libvirt, &r.metadata_json) {
            Ok(j) => j,
            Err(e) => {
                self.fail(&s, format!("commit: {}", e.message()), false);
                return Err(e);
            }
        };
        let info = CommitInfo {
            backup_mode: r.backup_mode.chars().take(1024).collect(),
            bytes_read: r.bytes_read,
            path: r.path.chars().take(4096).collect(),
            hostname: m.hostname.clone(),
            tags: m.source.tags.clone(),
            source_kind: if libvirt { "libvirt" } else { "image" },
            metadata_json,
        };
        let c = match s.commit(tables, &info) {
            Ok(c) => c,
            Err(e) => {
                self.fail(&s, format!("commit: {e}"), false);
                return Err(ingest_status(e));
            }
        };
        let fx = TaskEffects {
            restore_point: Some(RestorePoint {
                id: c.snapshot.into(),
                datastore_id: m.datastore_id,
                source_id: Some(m.source.id),
                source_name: m.source.name.clone(),
                project_id: m.source.project_id,
                kind: m.source.kind,
                time: RestorePoint::time_from_ns(c.time_ns),
                bytes_total: c.bytes_total as i64,
                bytes_added: c.bytes_added as i64,
                files: s.disks.len() as i64,
                hostname: m.hostname.clone(),
                task_id: Some(m.task_id),
                created_at: catalog::now(),
                ..Default::default()
            }),
            datastore_bytes_used: Some((m.datastore_id, bytes_used(&s.ds))),
            ..Default::default()
        };
        let received = s.bytes_received.load(Ordering::Relaxed);
        let line = format!(
            "restore point {}: {} chunk(s), {received} bytes received (the agent sent {} bytes), {} bytes added; {}",
            c.snapshot.short(),
            s.chunks_received.load(Ordering::Relaxed),
            r.bytes_sent,
            c.bytes_added,
            info.backup_mode
        );
        let _ = self.catalog.add_task_log(m.task_id, LogLevel::Info, &line);
        self.finish(
            &s,
            Ok(TaskResult::Backup(BackupResult {
                snapshot: c.snapshot.into(),
                bytes_read: r.bytes_read,
                pruned: 0,
                bytes_total: c.bytes_total,
                bytes_added: c.bytes_added,
                files: s.disks.len() as u64,
                duration_s: c.duration_s,
                mode: info.backup_mode.clone(),
                warnings: 0,
                // What the agent's libvirt record says.
                consistency: serde_json::from_str::<serde_json::Value>(&info.metadata_json)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["libvirt"]["consistency"].clone()).ok()),
            })),
            false,
            &fx,
        );
        self.retention_after(&s);
        tracing::info!(
            target: "arca::agent",
            session = %s.id,
            task = m.task_id.get(),
            source = %m.source.name,
            restore_point = %c.snapshot.to_hex(),
            bytes_received = received,
            chunks_received = s.chunks_received.load(Ordering::Relaxed),
            bytes_sent = r.bytes_sent,
            bytes_added = c.bytes_added,
            "agent backup committed"
        );
        Ok(pb::CommitReply {
            restore_point: c.snapshot.to_hex(),
            task_id: m.task_id.get(),
            bytes_added: c.bytes_added,
            bytes_total: c.bytes_total,
        })
    }
}

/// A commit's metadata: for a libvirt source, the record of the backup
/// (a JSON object with the key `libvirt`, at most 1 MiB: the domain's
/// XML, disks and checkpoint); nothing for an image source.
fn check_metadata(libvirt: bool, json: &str) -> Result<String, Status> {
    if !libvirt {
        return Ok(String::new());
    }
    let ok = json.len() <= 1 << 20
        && serde_json::from_str::<serde_json::Value>(json)
            .is_ok_and(|v| v.get("libvirt").is_some_and(|r| r.is_object()));
    if ok {
        Ok(json.to_string())
    } else {
        Err(Status::invalid_argument(
            "a libvirt source's commit needs the backup's record (metadata_json, a JSON object with \"libvirt\", at most 1 MiB)",
        ))
    }
}

/// Bytes of the datastore's packs on disk.
fn bytes_used(ds: &arca_repo::Datastore) -> i64 {
    ds.backend()
        .list(arca_repo::datastore::PACKS)
        .map(|l| l.iter().map(|o| o.size).sum::<u64>())
        .unwrap_or(0) as i64
}
