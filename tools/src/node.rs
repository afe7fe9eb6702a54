//! `arca node`: arguments in, arca-node's loop run, its banner out.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use arca_node::exports::Listeners;
use arca_node::run::{Announce, NodeConfig};
use arca_proto::pb;

struct Banner<'a> {
    url: &'a str,
    data_dir: &'a Path,
}

impl Announce for Banner<'_> {
    fn registered(&self, reg: &pb::RegisterReply) {
        let passphrases_dir = self.data_dir.join("datastores");
        if crate::logs::json() {
            tracing::info!(
                node = %reg.node_name,
                node_id = reg.node_id,
                server = %self.url,
                version = env!("CARGO_PKG_VERSION"),
                "Arca node registered"
            );
            for d in &reg.datastores {
                tracing::info!(datastore = %d.name, path = %d.path, "datastore");
            }
            tracing::info!(
                passphrases_dir = %passphrases_dir.display(),
                "the datastores' passphrases are in *.passphrase files of this directory: keep a copy elsewhere"
            );
        } else {
            println!(
                "Arca node {} ({}) registered with {} as node {}",
                reg.node_name,
                env!("CARGO_PKG_VERSION"),
                self.url,
                reg.node_id
            );
            for d in &reg.datastores {
                println!("datastore {} at {}", d.name, d.path);
            }
            println!(
                "the datastores' passphrases are in {}/*.passphrase: keep a copy elsewhere",
                passphrases_dir.display()
            );
        }
    }

    fn exports(&self, listeners: &Listeners) {
        crate::mounts::announce(listeners);
    }
}

pub fn run(
    cli: &crate::Cli,
    data_dir: &Path,
    max_tasks: i64,
    mounts: &crate::MountArgs,
    shutdown_timeout: u64,
) -> Result<u8> {
    if !(1..=64).contains(&max_tasks) {
        anyhow::bail!("--max-tasks must be between 1 and 64");
    }
    let url = cli
        .server
        .as_deref()
        .context("give the server with --server (or ARCA_SERVER)")?;
    let token = cli
        .token
        .as_deref()
        .context("give the node token with --token (or ARCA_TOKEN); an admin makes one with POST /api/v1/nodes")?;
    let ca_pem = match &cli.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    // tonic's TLS uses rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = NodeConfig {
        server: url.to_string(),
        token: token.to_string(),
        ca_pem,
        data_dir: data_dir.to_path_buf(),
        max_tasks,
        shutdown_timeout: Duration::from_secs(shutdown_timeout),
        mounts: crate::mounts::config(mounts),
    };
    arca_node::run::run(&cfg, &Banner { url, data_dir })?;
    Ok(0)
}
