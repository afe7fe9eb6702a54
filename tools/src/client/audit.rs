//! `arca audit`: the server's audit log (admins and auditors), newest
//! first, with the filters of `GET /api/v1/audit`.

use anyhow::Result;
use arca_model::api::AuditEntry;
use arca_model::AuditResult;

use super::restore_points::enc;
use super::{show, Api};
use crate::table::Table;
use crate::units::local_time;
use crate::Cli;

/// What `arca audit` asks for.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Only the entries of this user (or `arca server`), exactly.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (`user.add`), or every action starting with it
    /// when it ends with `.` (`user.`).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries with this result.
    #[arg(long, value_parser = crate::model_enum::<AuditResult>(AuditResult::NAMES))]
    pub result: Option<AuditResult>,
    /// Only entries at or after this time (RFC 3339, YYYY-MM-DD or
    /// seconds since the epoch; UTC).
    #[arg(long, value_parser = crate::listing::parse_since)]
    pub since: Option<i64>,
    /// Only entries at or before this time (same forms as --since).
    #[arg(long, value_parser = crate::listing::parse_since)]
    pub until: Option<i64>,
    /// How many entries, newest first (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

/// The query string of `GET /api/v1/audit` for these arguments.
fn query(a: &AuditArgs) -> String {
    let mut q = format!("limit={}", a.limit);
    for (k, v) in [("actor", &a.actor), ("action", &a.action)] {
        if let Some(v) = v {
            q += &format!("&{k}={}", enc(v));
        }
    }
    if let Some(r) = a.result {
        q += &format!("&result={r}");
    }
    for (k, v) in [("since", a.since), ("until", a.until)] {
        if let Some(v) = v {
            q += &format!("&{k}={v}");
        }
    }
    q
}

fn audit_table(all: &[AuditEntry]) -> String {
    let mut tab = Table::new(&[
        "TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "FROM", "DETAIL",
    ]);
    for e in all {
        tab.row(vec![
            local_time(e.time),
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            e.result.to_string(),
            e.remote.clone(),
            e.detail.clone(),
        ]);
    }
    tab.render()
}

pub fn audit(cli: &Cli, a: &AuditArgs) -> Result<u8> {
    let api = Api::new(cli)?;
    let all: Vec<AuditEntry> = api.get(&format!("/audit?{}", query(a)), "the audit log")?;
    show(cli, &all, |all| audit_table(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_has_the_filters_given_encoded() {
        let a = AuditArgs {
            actor: Some("ann b".into()),
            action: Some("user.".into()),
            result: Some(AuditResult::Denied),
            since: Some(10),
            until: None,
            limit: 5,
        };
        assert_eq!(
            query(&a),
            "limit=5&actor=ann%20b&action=user.&result=denied&since=10"
        );
    }
}
