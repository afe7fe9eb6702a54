//! `arca node list|set` through the server: nodes and their confinement.

use anyhow::{anyhow, Result};
use arca_model::api::{Node, NodeSettings};
use arca_model::NodeId;

use super::{show, Api};
use crate::table::Table;
use crate::{Cli, NodeCmd};

fn roots(r: &[String]) -> String {
    if r.is_empty() {
        "none".into()
    } else {
        r.join(",")
    }
}

/// The restore roots in force, "(default)" when none are set.
fn roots_in_force(n: &Node) -> String {
    format!(
        "{}{}",
        roots(n.effective_restore_roots.as_deref().unwrap_or_default()),
        if n.restore_roots.is_empty() {
            " (default)"
        } else {
            ""
        }
    )
}

fn block_devices(n: &Node) -> &'static str {
    if n.allow_block_devices {
        "allowed"
    } else {
        "refused"
    }
}

fn node_line(n: &Node) -> String {
    format!(
        "{:>4}  {:<16} {:<8} sources: {}  restores: {}  block devices: {}",
        n.id,
        n.name,
        n.state,
        roots(&n.source_roots),
        roots_in_force(n),
        block_devices(n)
    )
}

/// The rows of `arca node list`.
fn node_table(all: &[Node]) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "STATE",
        "HEARTBEAT",
        "SOURCE ROOTS",
        "RESTORE ROOTS",
        "BLOCK DEVICES",
    ])
    .right(&[0]);
    for n in all {
        t.row(vec![
            n.id.to_string(),
            n.name.clone(),
            n.state.to_string(),
            crate::units::local_time_opt(n.last_heartbeat),
            roots(&n.source_roots),
            roots_in_force(n),
            block_devices(n).into(),
        ]);
    }
    t.render()
}

/// The id of the node `name`.
fn node_id(api: &Api, name: &str) -> Result<NodeId> {
    let all: Vec<Node> = api.get("/nodes", "a list of nodes")?;
    all.iter()
        .find(|n| n.name == name)
        .map(|n| n.id)
        .ok_or_else(|| anyhow!("no node named {name:?} on the server (`arca node list`)"))
}

pub fn node(cli: &Cli, c: &NodeCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        NodeCmd::List => {
            let all: Vec<Node> = api.get("/nodes", "a list of nodes")?;
            show(cli, &all, |all| node_table(all))
        }
        NodeCmd::Set {
            name,
            source_roots,
            no_source_roots,
            restore_roots,
            default_restore_roots,
            allow_block_devices,
        } => {
            let req = NodeSettings {
                source_roots: (!source_roots.is_empty() || *no_source_roots)
                    .then(|| source_roots.clone()),
                restore_roots: (!restore_roots.is_empty() || *default_restore_roots)
                    .then(|| restore_roots.clone()),
                allow_block_devices: *allow_block_devices,
            };
            if req == NodeSettings::default() {
                return Err(crate::usage::nothing_to_change(&["node", "set"], &[]));
            }
            let id = node_id(&api, name)?;
            let n: Node = api.patch(&format!("/nodes/{id}"), &req, "a node")?;
            show(cli, &n, node_line)
        }
        NodeCmd::Remove { name } => {
            let id = node_id(&api, name)?;
            api.delete_no_content(&format!("/nodes/{id}"))?;
            show(cli, &serde_json::json!({"removed": id}), |_| {
                format!("node {name:?} removed (id {id})")
            })
        }
    }
}
