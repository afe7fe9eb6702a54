//! The agent on a libvirt host (docs/vm-ingest.md, "Agent-fed sources"):
//! a domain backed up by arca-ingest's libvirt module on *this* host
//! (`libvirt::local()`: virsh run here, the backup job's NBD export on
//! loopback), with the disks pushed to the server as the agent pushes
//! disk files: only the chunks the datastore lacks. The checkpoint
//! lifecycle is the module's: the older checkpoints go only once the
//! server has committed the restore point.
//!
//! Also the agent's side of the schedule: [`sync`] sends the host's
//! inventory, [`next`] claims the next queued backup of its sources.

use arca_ingest::libvirt::{self, BackupRecord, DiskSink, ReadyDisk, VmBackupOptions};
use arca_ingest::Progress;
use arca_model::api::VmHooks;
use arca_proto::agent_pb as pb;
use arca_repo::Snapshot;

use super::{client, disk, open, status_msg, AgentOptions, AgentOutcome, Opened, Upload};

/// Back up `domain` of this host as one restore point of `opts.source`
/// (a libvirt source), with `vm`'s pre and post commands.
pub fn backup_libvirt(
    opts: &AgentOptions,
    domain: &str,
    vm: &VmBackupOptions,
    progress: &Progress,
) -> Result<AgentOutcome, String> {
    let conn = libvirt::local();
    // The disks as the backup will read them, for Begin.
    let dom = libvirt::domain(&conn, domain).map_err(|e| e.to_string())?;
    let parsed = libvirt::xml::parse_domain(&dom.xml).map_err(|e| e.to_string())?;
    let info: Vec<pb::DiskInfo> = parsed
        .disks
        .iter()
        .filter(|d| d.backed_up())
        .map(|d| pb::DiskInfo {
            name: d.target.clone(),
            size: dom
                .disks
                .iter()
                .find(|x| x.target == d.target)
                .map_or(0, |x| x.size),
        })
        .collect();
    let Opened { rt, c, b, sent } = open(opts, info)?;
    // The parent's record carries the checkpoint to be incremental against.
    let parent = (!b.parent_metadata_json.is_empty()).then(|| Snapshot {
        id: Default::default(),
        manifest: arca_repo::format::Manifest {
            metadata_json: b.parent_metadata_json.clone(),
            ..Default::default()
        },
    });
    let vm = hooks(opts, &b).map(|h| {
        crate::vm::with_hooks(
            VmBackupOptions {
                source: opts.source.clone(),
                parent,
                // The server's datastore's prefix, as for qcow2 bitmaps.
                checkpoint_prefix: b.bitmap_prefix.clone(),
                ..vm.clone()
            },
            h.as_ref(),
        )
    });
    let mut sink = ToServer {
        up: Some(Upload {
            rt: &rt,
            c: &c,
            b: &b,
            sent: &sent,
            path: String::new(),
            metadata_json: String::new(),
        }),
        domain,
        progress,
        out: None,
    };
    let r = vm
        .and_then(|vm| libvirt::backup_to(&conn, domain, &vm, &mut sink).map_err(|e| e.to_string()))
        .and_then(|warnings| {
            let mut o = sink
                .out
                .take()
                .ok_or_else(|| "the backup sent nothing".to_string())?;
            o.warnings.extend(warnings);
            Ok(o)
        });
    if let Err(e) = &r {
        // Ends the session (and its task) at once; a refused commit has
        // ended it already.
        let _ = rt.block_on(c.clone().abort(pb::AbortRequest {
            session: b.session.clone(),
            reason: e.clone(),
        }));
    }
    r
}

/// The source's pre/post commands the server sent, if any: refused
/// unless this agent was started with `--allow-hooks` (the server's
/// admins would otherwise run commands on this host).
fn hooks(opts: &AgentOptions, b: &pb::BeginReply) -> Result<Option<VmHooks>, String> {
    let Some(h) = &b.hooks else { return Ok(None) };
    let h = arca_proto::convert::hooks_from_parts(
        h.pre.iter().map(|a| a.args.clone()).collect(),
        h.post.iter().map(|a| a.args.clone()).collect(),
        h.pre_failure_is_warning,
    )
    .map_err(|e| format!("the server sent pre/post commands this agent cannot run: {e}"))?;
    if h.is_empty() {
        return Ok(None);
    }
    if !opts.allow_hooks {
        return Err(format!(
            "source {} has pre/post commands (hooks) set on the server, and this agent does not run commands it is sent: start it with --allow-hooks, or remove the hooks (arca source edit {} --no-hooks)",
            opts.source, opts.source
        ));
    }
    Ok(Some(h))
}

/// The sink of an agent's libvirt backup: the server's session.
struct ToServer<'a> {
    up: Option<Upload<'a>>,
    domain: &'a str,
    progress: &'a Progress,
    out: Option<AgentOutcome>,
}

impl DiskSink for ToServer<'_> {
    fn store(&mut self, rec: &BackupRecord, disks: Vec<ReadyDisk>) -> libvirt::Result<()> {
        let mut up = self
            .up
            .take()
            .ok_or_else(|| libvirt::Error::Unsupported("one store per backup".into()))?;
        let b = up.b;
        let p = &b.parent[..b.parent.len().min(12)];
        let disks: Vec<_> = disks
            .into_iter()
            .map(|d| {
                let parent = b.parent_disks.iter().find(|pd| pd.name == d.plan.target);
                disk::exported(d, self.domain, b.chunk_size, parent, p)
            })
            .collect();
        up.path = format!("{}:{}", rec.host, rec.domain);
        up.metadata_json = rec.to_json();
        let mut o = up
            .run(&disks, self.progress)
            .map_err(libvirt::Error::Unsupported)?;
        // The domain's mode (full or incremental against a checkpoint, and
        // why) before the disks' counts.
        o.mode = format!("{}; {}", rec.mode, o.mode);
        o.consistency = Some(crate::vm::consistency(rec.consistency));
        self.out = Some(o);
        Ok(())
    }
}

/// What [`sync`] did.
#[derive(Clone, Debug, Default)]
pub struct Synced {
    pub domains: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (source, domain) of every present domain.
    pub sources: Vec<(String, String)>,
}

/// Send this host's inventory for `hypervisor` (added with access
/// "agent"): its domains become sources, gone ones are marked removed.
pub fn sync(opts: &AgentOptions, hypervisor: &str) -> Result<Synced, String> {
    let conn = libvirt::local();
    let names = libvirt::inventory(&conn).map_err(|e| e.to_string())?;
    let req = pb::SyncRequest {
        hypervisor: hypervisor.to_string(),
        hostname: arca_ingest::hostname(),
        domains: names
            .iter()
            .map(|d| pb::SyncDomain {
                name: d.name.clone(),
                uuid: d.uuid.clone(),
            })
            .collect(),
    };
    let r = call(opts, |mut c| async move { c.sync(req).await })?;
    Ok(Synced {
        domains: names.len(),
        added: r.added,
        removed: r.removed,
        sources: r
            .sources
            .into_iter()
            .filter(|s| !s.removed)
            .map(|s| (s.name, s.domain))
            .collect(),
    })
}

/// A backup task the agent claimed: run it with `AgentOptions::task_id`.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    pub task_id: i64,
    pub source: String,
    /// The domain, for a libvirt source; empty for an image source.
    pub domain: String,
}

/// Claim the next queued backup of the agent's sources: those of
/// `hypervisor` (may be empty) and the image sources `sources`.
pub fn next(
    opts: &AgentOptions,
    hypervisor: &str,
    sources: &[String],
) -> Result<Option<Claimed>, String> {
    let req = pb::NextRequest {
        hypervisor: hypervisor.to_string(),
        sources: sources.to_vec(),
    };
    let r = call(opts, |mut c| async move { c.next(req).await })?;
    Ok((r.task_id != 0).then_some(Claimed {
        task_id: r.task_id,
        source: r.source,
        domain: r.domain,
    }))
}

/// One unary call on a runtime of its own.
fn call<T, F, Fut>(opts: &AgentOptions, f: F) -> Result<T, String>
where
    F: FnOnce(super::Client) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let c = {
        let _rt = rt.enter();
        client(opts)?
    };
    rt.block_on(f(c))
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("{}: {}", opts.server, status_msg(s)))
}
