//! `arca agent backup`: arguments in, arca-node's agent run, the outcome
//! out (docs/vm-ingest.md, "Agent").

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arca_node::agent::{self, AgentOptions};

use crate::progress::Bar;

#[derive(clap::Subcommand, Debug)]
pub enum AgentCmd {
    /// Back up disks (raw images, block devices or qcow2 images, read
    /// through qemu-nbd with dirty bitmaps) of this host into the
    /// server's datastore as one restore point of an image source,
    /// sending only the chunks the datastore lacks. Needs --server and
    /// --token (an API token of an operator or admin of the source's
    /// project).
    Backup {
        /// The image source's name in the server's catalog.
        #[arg(long)]
        source: String,
        /// The disks, in order (each named by its file name).
        #[arg(required = true)]
        disks: Vec<PathBuf>,
    },
}

pub fn run(cli: &crate::Cli, cmd: &AgentCmd) -> Result<u8> {
    let AgentCmd::Backup { source, disks } = cmd;
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
    let opts = AgentOptions {
        server: server.to_string(),
        token: token.to_string(),
        ca_pem,
        source: source.clone(),
        disks: disks.clone(),
    };
    crate::interrupt::explain(
        "interrupted: no restore point was made; the server ends the session (the chunks sent so far are kept for GC, or for the next backup)",
    );
    let progress = Arc::new(arca_ingest::Progress::default());
    let bar = Bar::start(&progress, "agent backup");
    let r = agent::backup(&opts, &progress);
    drop(bar);
    let o = r.map_err(anyhow::Error::msg)?;
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
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
                "warnings": o.warnings,
            })
        );
    } else {
        println!(
            "restore point {} (task {}): read {} bytes, sent {} bytes ({} chunks), {} bytes new in the datastore; {}",
            o.snapshot, o.task_id, o.bytes_read, o.bytes_sent, o.chunks_sent, o.bytes_added, o.mode
        );
    }
    Ok(0)
}
