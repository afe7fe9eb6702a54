//! `arca token create|list|revoke` and `arca settings show|set|rotate-key`: API
//! tokens and the server settings that bound them, through the server's
//! API (docs/control-plane.md, "Tokens").

use anyhow::{anyhow, bail, Result};
use arca_model::api::{
    CreatedToken, KeyRotation, NewToken, Project, Settings, SettingsPatch, Token,
};
use arca_model::{ProjectId, TokenId, TokenScope, TokenState};
use arca_web::tokens::human_duration;
use serde::Serialize;

use crate::client::{show, Api};
use crate::{Cli, KeyFile, SettingKey, SettingsCmd, TokenCmd};

/// `90s`, `30m`, `12h`, `30d` (or plain seconds) as seconds.
pub(crate) fn parse_lifetime(s: &str) -> Result<i64> {
    let t = s.trim();
    let bad = || anyhow!("bad duration {s:?} (use e.g. 90s, 30m, 12h or 30d)");
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// An expiry in local time, or "never".
fn time(t: Option<i64>) -> String {
    t.map_or_else(|| "never".into(), crate::units::local_time)
}

fn projects(p: Option<&[ProjectId]>) -> String {
    match p {
        None => "all".into(),
        Some(p) => p
            .iter()
            .map(ProjectId::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// A project by id, or by name through `GET /projects`.
fn project_id(api: &Api, known: &mut Option<Vec<Project>>, p: &str) -> Result<ProjectId> {
    if let Ok(id) = p.parse::<i64>() {
        return Ok(ProjectId(id));
    }
    if known.is_none() {
        *known = Some(api.get("/projects", "a list of projects")?);
    }
    known
        .iter()
        .flatten()
        .find(|x| x.name == p)
        .map(|x| x.id)
        .ok_or_else(|| anyhow!("no project named {p:?} that you can see"))
}

/// What `arca --json token revoke` prints.
#[derive(Serialize)]
struct Revoked {
    revoked: TokenId,
}

pub fn token(cli: &Cli, c: &TokenCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        TokenCmd::Create {
            name,
            expires,
            read_only,
            metrics,
            projects: wanted,
        } => {
            let scope = if *read_only {
                Some(TokenScope::ReadOnly)
            } else if *metrics {
                Some(TokenScope::Metrics)
            } else {
                None
            };
            let projects_wanted = if wanted.is_empty() {
                None
            } else {
                let mut known = None;
                Some(
                    wanted
                        .iter()
                        .map(|p| project_id(&api, &mut known, p))
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            let req = NewToken {
                name: name.clone(),
                expires_in_s: expires.as_deref().map(parse_lifetime).transpose()?,
                scope,
                projects: projects_wanted,
            };
            let v: CreatedToken = api.post("/tokens", &req, "a new token")?;
            if cli.json {
                return show(cli, &v, |_| String::new());
            }
            let i = &v.info;
            // The secret alone on stdout (TOKEN=$(arca token create ...)),
            // what it is on stderr.
            println!("{}", v.token);
            eprintln!(
                "token {} {:?}: scope {}, projects {}, expires {}{}; the secret is shown only now",
                i.id,
                name,
                i.scope,
                projects(i.projects.as_deref()),
                time(i.expires_at),
                i.parent_token_id
                    .map(|p| format!(", revoked with token {p}"))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        TokenCmd::List => {
            let all: Vec<Token> = api.get("/tokens", "a list of tokens")?;
            show(cli, &all, |all| {
                let mut tab = crate::table::Table::new(&[
                    "ID",
                    "NAME",
                    "SCOPE",
                    "PROJECTS",
                    "EXPIRES",
                    "LAST USED",
                    "PARENT",
                    "STATE",
                ])
                .right(&[0]);
                for t in all {
                    tab.row(vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.scope.to_string(),
                        projects(t.projects.as_deref()),
                        time(t.expires_at),
                        crate::units::local_time_opt(t.last_used_at),
                        crate::table::opt(t.parent_token_id),
                        t.state.map_or("", TokenState::as_str).into(),
                    ]);
                }
                tab.render()
            })
        }
        TokenCmd::Revoke { id } => {
            api.delete_no_content(&format!("/tokens/{id}"))?;
            show(cli, &Revoked { revoked: *id }, |_| {
                format!("token {id} revoked, and every token made with it")
            })
        }
    }
}

fn settings_text(v: &Settings) -> String {
    let max = v.token_max_lifetime_s;
    format!("token-max-lifetime {} ({max} s)", human_duration(max))
}

pub fn settings(cli: &Cli, c: &SettingsCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        SettingsCmd::Show => {
            let v: Settings = api.get("/settings", "the settings")?;
            show(cli, &v, settings_text)
        }
        SettingsCmd::Set { key, value } => {
            let req = match key {
                SettingKey::TokenMaxLifetime => {
                    let secs = parse_lifetime(value)?;
                    if secs == 0 {
                        bail!("token-max-lifetime cannot be 0: there is no unlimited lifetime (1h to 3660d)");
                    }
                    SettingsPatch {
                        token_max_lifetime_s: Some(secs),
                    }
                }
            };
            let v: Settings = api.patch("/settings", &req, "the settings")?;
            show(cli, &v, settings_text)
        }
        SettingsCmd::RotateKey { key } => {
            let name = match key {
                KeyFile::Credentials => "credentials",
                KeyFile::S3 => "s3",
            };
            let v: KeyRotation = api.post_empty(&format!("/keys/{name}/rotate"), "the key")?;
            show(cli, &v, |v| {
                format!(
                    "{} key rotated: {} secret(s) resealed under a new key",
                    v.key, v.resealed
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90d").unwrap(), 7_776_000);
        assert_eq!(parse_lifetime("12h").unwrap(), 43_200);
        assert_eq!(parse_lifetime("30m").unwrap(), 1800);
        assert_eq!(parse_lifetime("45").unwrap(), 45);
        for bad in ["", "d", "3w", "-1d", "99999999999999999999d", "1e3"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
        assert!(parse_lifetime("9999999999999999d").is_err());
    }
}
