//! `arca restore --server`: a restore task on the restore point's node.

use anyhow::Result;
use arca_model::api::{RestoreRequest, Task};

use super::{show, tasks::follow, Api};
use crate::Cli;

/// How `arca restore --server` asks for a restore.
pub struct RestoreTo<'a> {
    pub path: Option<&'a str>,
    pub node: Option<&'a str>,
    pub overwrite: bool,
    pub special_files: bool,
    pub wait: bool,
}

/// Restore `rp` (an id or a unique prefix of one) to `to` on its node.
pub fn restore(cli: &Cli, rp: &str, to: &str, o: &RestoreTo) -> Result<u8> {
    let api = Api::new(cli)?;
    let req = RestoreRequest {
        target: to.to_string(),
        path: o.path.map(str::to_string),
        node: o.node.map(str::to_string),
        overwrite: o.overwrite,
        special_files: o.special_files,
    };
    let t: Task = api.post(&format!("/restore-points/{rp}/restore"), &req, "a task")?;
    if o.wait {
        return follow(cli, &api, t.id);
    }
    show(cli, &t, |t| {
        format!(
            "restore queued as task {} (follow it with `arca task show {}`)",
            t.id, t.id
        )
    })
}
