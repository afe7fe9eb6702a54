//! `arca token create|list|revoke` and `arca settings show|set`: API
//! tokens and the server settings that bound them, through the server's
//! API (docs/control-plane.md, "Tokens").

use anyhow::{anyhow, bail, Result};
use arca_web::tokens::human_duration;
use serde_json::{json, Value};

use crate::client::{call, show};
use crate::{Cli, SettingKey, SettingsCmd, TokenCmd};

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

fn time(v: &Value) -> String {
    v.as_i64()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "never".into())
}

fn projects(v: &Value) -> String {
    match v.as_array() {
        None => "all".into(),
        Some(p) => p
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// A project by id, or by name through `GET /projects`.
fn project_id(cli: &Cli, known: &mut Option<Value>, p: &str) -> Result<i64> {
    if let Ok(id) = p.parse::<i64>() {
        return Ok(id);
    }
    if known.is_none() {
        *known = Some(call(cli, "GET", "/projects", None)?);
    }
    known
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|x| x["name"] == p)
        .and_then(|x| x["id"].as_i64())
        .ok_or_else(|| anyhow!("no project named {p:?} that you can see"))
}

fn token_line(t: &Value) -> String {
    format!(
        "{:>5}  {:<20} {:<9} {:<10} {:<16}  {:<6} {}",
        t["id"],
        t["name"].as_str().unwrap_or(""),
        t["scope"].as_str().unwrap_or(""),
        projects(&t["projects"]),
        time(&t["expires_at"]),
        t["parent_token_id"]
            .as_i64()
            .map_or("-".to_string(), |p| p.to_string()),
        t["state"].as_str().unwrap_or("")
    )
}

pub fn token(cli: &Cli, c: &TokenCmd) -> Result<u8> {
    match c {
        TokenCmd::Create {
            name,
            expires,
            read_only,
            metrics,
            projects: wanted,
        } => {
            let mut body = json!({"name": name});
            if let Some(e) = expires {
                body["expires_in_s"] = json!(parse_lifetime(e)?);
            }
            if *read_only {
                body["scope"] = json!("read-only");
            } else if *metrics {
                body["scope"] = json!("metrics");
            }
            if !wanted.is_empty() {
                let mut known = None;
                let ids = wanted
                    .iter()
                    .map(|p| project_id(cli, &mut known, p))
                    .collect::<Result<Vec<_>>>()?;
                body["projects"] = json!(ids);
            }
            let v = call(cli, "POST", "/tokens", Some(body))?;
            if cli.json {
                return show(cli, &v, |_| String::new());
            }
            let secret = v["token"]
                .as_str()
                .ok_or_else(|| anyhow!("no token in the answer"))?;
            let i = &v["info"];
            // The secret alone on stdout (TOKEN=$(arca token create ...)),
            // what it is on stderr.
            println!("{secret}");
            eprintln!(
                "token {} {:?}: scope {}, projects {}, expires {} UTC{}; the secret is shown only now",
                i["id"],
                name,
                i["scope"].as_str().unwrap_or(""),
                projects(&i["projects"]),
                time(&i["expires_at"]),
                i["parent_token_id"]
                    .as_i64()
                    .map(|p| format!(", revoked with token {p}"))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        TokenCmd::List => {
            let v = call(cli, "GET", "/tokens", None)?;
            show(cli, &v, |v| {
                let mut out = format!(
                    "{:>5}  {:<20} {:<9} {:<10} {:<16}  {:<6} STATE",
                    "ID", "NAME", "SCOPE", "PROJECTS", "EXPIRES (UTC)", "PARENT"
                );
                for t in v.as_array().into_iter().flatten() {
                    out.push('\n');
                    out.push_str(&token_line(t));
                }
                out
            })
        }
        TokenCmd::Revoke { id } => {
            call(cli, "DELETE", &format!("/tokens/{id}"), None)?;
            show(cli, &json!({"revoked": id}), |_| {
                format!("token {id} revoked, and every token made with it")
            })
        }
    }
}

fn settings_text(v: &Value) -> String {
    let max = v["token_max_lifetime_s"].as_i64().unwrap_or(0);
    format!("token-max-lifetime {} ({max} s)", human_duration(max))
}

pub fn settings(cli: &Cli, c: &SettingsCmd) -> Result<u8> {
    match c {
        SettingsCmd::Show => {
            let v = call(cli, "GET", "/settings", None)?;
            show(cli, &v, settings_text)
        }
        SettingsCmd::Set { key, value } => {
            let body = match key {
                SettingKey::TokenMaxLifetime => {
                    let secs = parse_lifetime(value)?;
                    if secs == 0 {
                        bail!("token-max-lifetime cannot be 0: there is no unlimited lifetime (1h to 3660d)");
                    }
                    json!({"token_max_lifetime_s": secs})
                }
            };
            let v = call(cli, "PATCH", "/settings", Some(body))?;
            show(cli, &v, settings_text)
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
