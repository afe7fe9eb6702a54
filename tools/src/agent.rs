//! `arca agent`: arguments in, arca-node's agent run, the outcome out
//! (docs/vm-ingest.md, "Agent" and "Agent-fed sources").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arca_node::agent::{self, AgentOptions, AgentOutcome};

use crate::progress::Bar;

#[derive(clap::Subcommand, Debug)]
pub enum AgentCmd {
    /// Back up disks (raw images, block devices or qcow2 images, read
    /// through qemu-nbd with dirty bitmaps) of this host, or a libvirt
    /// domain running here (--libvirt), into the server's datastore as one
    /// restore point, sending only the chunks the datastore lacks. Needs
    /// --server and --token (an API token of an operator or admin of the
    /// source's project).
    Backup {
        /// The source's name in the server's catalog (an image source, or
        /// with --libvirt a libvirt source).
        #[arg(long)]
        source: String,
        /// A libvirt domain of this host (qemu:///system): read through
        /// libvirt's backup job with checkpoints, as over SSH.
        #[arg(long, value_name = "DOMAIN", conflicts_with = "disks")]
        libvirt: Option<String>,
        /// The disks, in order (each named by its file name).
        #[arg(required_unless_present = "libvirt")]
        disks: Vec<PathBuf>,
        /// Run the pre/post commands the server sets for a libvirt source
        /// (its hooks, e.g. domfsfreeze/domfsthaw). Without this, a backup
        /// of a source with hooks fails, saying so: the server's admins
        /// cannot run commands on this host unless you allow it here.
        #[arg(long)]
        allow_hooks: bool,
    },
    /// Serve this host's agent-fed sources: sync the hypervisor's
    /// inventory, then run the backups the server has queued for them
    /// (by a policy's schedule or on request), and again every --every
    /// seconds. The policy's retention follows each backup.
    Run {
        /// The hypervisor (added with `arca hypervisor add NAME --agent`)
        /// whose domains run here.
        #[arg(long)]
        hypervisor: Option<String>,
        /// An image source (added with --agent) and its disks on this
        /// host: NAME=PATH[,PATH…] (repeatable).
        #[arg(long = "image", value_name = "NAME=PATH[,PATH...]")]
        images: Vec<String>,
        /// Seconds between two looks for queued backups.
        #[arg(long, default_value_t = 60)]
        every: u64,
        /// Sync and run what is queued now, then exit (status 1 if a
        /// backup failed).
        #[arg(long)]
        once: bool,
        /// Run the pre/post commands the server sets for a libvirt source
        /// (its hooks, e.g. domfsfreeze/domfsthaw). Without this, a backup
        /// of a source with hooks fails, saying so: the server's admins
        /// cannot run commands on this host unless you allow it here.
        #[arg(long)]
        allow_hooks: bool,
    },
}

/// The server, token and CA of the command line.
fn options(cli: &crate::Cli, source: &str) -> Result<AgentOptions> {
    let server = cli
        .server
        .as_deref()
        .context("give the server with --server (or ARCA_SERVER)")?;
    let token = cli
        .token
        .as_deref()
        .context("give an API token with --token (or ARCA_TOKEN)")?;
    let ca_pem = match &cli.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    // tonic's TLS uses rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(AgentOptions {
        server: server.to_string(),
        token: token.to_string(),
        ca_pem,
        source: source.to_string(),
        ..Default::default()
    })
}

pub fn run(cli: &crate::Cli, cmd: &AgentCmd) -> Result<u8> {
    match cmd {
        AgentCmd::Backup {
            source,
            libvirt,
            disks,
            allow_hooks,
        } => {
            let mut opts = options(cli, source)?;
            opts.disks = disks.clone();
            opts.allow_hooks = *allow_hooks;
            crate::interrupt::explain(
                "interrupted: no restore point was made; the server ends the session (the chunks sent so far are kept for GC, or for the next backup)",
            );
            let o = one(&opts, libvirt.as_deref())?;
            print(cli, &o);
            Ok(0)
        }
        AgentCmd::Run {
            hypervisor,
            images,
            every,
            once,
            allow_hooks,
        } => serve(
            cli,
            hypervisor.as_deref(),
            images,
            (*every, *once),
            *allow_hooks,
        ),
    }
}

/// One backup: of disks, or of a domain.
fn one(opts: &AgentOptions, domain: Option<&str>) -> Result<AgentOutcome> {
    let progress = Arc::new(arca_ingest::Progress::default());
    let bar = Bar::start(&progress, "agent backup");
    let r = match domain {
        Some(d) => agent::backup_libvirt(opts, d, &Default::default(), &progress),
        None => agent::backup(opts, &progress),
    };
    drop(bar);
    let o = r.map_err(anyhow::Error::msg)?;
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    Ok(o)
}

fn print(cli: &crate::Cli, o: &AgentOutcome) {
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "snapshot": o.snapshot,
                "task": o.task_id,
                "bytes_read": o.bytes_read,
                "bytes_total": o.bytes_total,
                "bytes_sent": o.bytes_sent,
                "chunks_sent": o.chunks_sent,
                "bytes_added": o.bytes_added,
                "mode": o.mode,
                "consistency": o.consistency,
                "warnings": o.warnings,
            })
        );
    } else {
        println!(
            "restore point {} (task {}): read {} bytes, sent {} bytes ({} chunks), {} bytes new in the datastore; {}",
            o.snapshot, o.task_id, o.bytes_read, o.bytes_sent, o.chunks_sent, o.bytes_added, o.mode
        );
    }
}

/// `NAME=PATH[,PATH…]` → (NAME, paths).
fn parse_images(images: &[String]) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut out = BTreeMap::new();
    for i in images {
        let Some((name, paths)) = i.split_once('=') else {
            bail!("--image {i:?}: expected NAME=PATH[,PATH...]");
        };
        let paths: Vec<PathBuf> = paths
            .split(',')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if name.is_empty() || paths.is_empty() {
            bail!("--image {i:?}: expected NAME=PATH[,PATH...]");
        }
        out.insert(name.to_string(), paths);
    }
    Ok(out)
}

/// The loop of `arca agent run`: sync, then every queued backup, then
/// wait. Returns 1 with --once when a backup failed.
fn serve(
    cli: &crate::Cli,
    hypervisor: Option<&str>,
    images: &[String],
    (every, once): (u64, bool),
    allow_hooks: bool,
) -> Result<u8> {
    let images = parse_images(images)?;
    if hypervisor.is_none() && images.is_empty() {
        bail!("give --hypervisor NAME and/or --image NAME=PATH: the sources this agent serves");
    }
    let mut base = options(cli, "")?;
    base.allow_hooks = allow_hooks;
    let hv = hypervisor.unwrap_or_default();
    let names: Vec<String> = images.keys().cloned().collect();
    let mut failed = false;
    loop {
        if let Some(h) = hypervisor {
            match agent::sync(&base, h) {
                Ok(s) => eprintln!(
                    "hypervisor {h}: {} domain(s), added {:?}, removed {:?}",
                    s.domains, s.added, s.removed
                ),
                Err(e) if once => bail!("sync of hypervisor {h}: {e}"),
                Err(e) => eprintln!("error: sync of hypervisor {h}: {e}"),
            }
        }
        loop {
            let claimed = match agent::next(&base, hv, &names) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if once => bail!("asking for queued backups: {e}"),
                Err(e) => {
                    eprintln!("error: asking for queued backups: {e}");
                    break;
                }
            };
            let mut opts = base.clone();
            opts.source = claimed.source.clone();
            opts.task_id = claimed.task_id;
            opts.disks = images.get(&claimed.source).cloned().unwrap_or_default();
            let domain = (!claimed.domain.is_empty()).then_some(claimed.domain.as_str());
            match one(&opts, domain) {
                Ok(o) => print(cli, &o),
                Err(e) => {
                    failed = true;
                    eprintln!(
                        "error: backup task {} of {}: {e:#}",
                        claimed.task_id, claimed.source
                    );
                }
            }
        }
        if once {
            return Ok(u8::from(failed));
        }
        std::thread::sleep(Duration::from_secs(every.max(1)));
    }
}
