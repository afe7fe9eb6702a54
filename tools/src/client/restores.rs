//! `arca restore --server`: a restore task on the restore point's node;
//! `arca protect|unprotect`.

use anyhow::Result;
use arca_model::api::{RestorePoint, RestorePointChange, RestoreRequest, Task};

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

/// Protect `rp` (an id or a unique prefix) or lift that; `note`: set its
/// note too.
pub fn protect(cli: &Cli, rp: &str, protected: bool, note: Option<&str>) -> Result<u8> {
    let api = Api::new(cli)?;
    let req = RestorePointChange {
        protected: Some(protected),
        note: note.map(str::to_string),
    };
    let r: RestorePoint = api.patch(&format!("/restore-points/{rp}"), &req, "a restore point")?;
    show(cli, &r, |r| {
        format!(
            "restore point {} {}{}",
            r.id,
            if r.protected {
                "protected"
            } else {
                "unprotected"
            },
            r.note
                .as_deref()
                .map(|n| format!(" (note: {n})"))
                .unwrap_or_default()
        )
    })
}
