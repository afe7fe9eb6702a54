//! `arca passwd` and `arca user passwd NAME`: password changes through the
//! server's API. Passwords are read from the terminal without echo (or
//! from files for scripts), never from the command line.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::client::{call, show};
use crate::{Cli, UserCmd};

/// A password from a file (one line; the newline is not part of it).
fn from_file(f: &Path) -> Result<String> {
    let s = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
    Ok(s.strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&s)
        .to_string())
}

/// Ask on the terminal, without echo.
fn prompt(what: &str) -> Result<String> {
    rpassword::prompt_password(format!("{what}: ")).map_err(|e| {
        anyhow!("cannot ask for the {what} on a terminal ({e}); give it in a file instead")
    })
}

fn not_empty(what: &str, p: String) -> Result<String> {
    if p.is_empty() {
        bail!("the {what} is empty; nothing was changed");
    }
    Ok(p)
}

/// The new password: from the file, or asked twice.
fn new_password(file: Option<&Path>) -> Result<String> {
    if let Some(f) = file {
        return not_empty("new password", from_file(f)?);
    }
    let a = not_empty("new password", prompt("new password")?)?;
    let b = prompt("new password again")?;
    if a != b {
        bail!("the two new passwords differ; nothing was changed");
    }
    Ok(a)
}

fn signed_out(v: &Value) -> String {
    let s = &v["signed_out"];
    format!(
        "{} session(s) signed out{}",
        s["sessions"].as_u64().unwrap_or(0),
        match s["api_tokens"].as_u64().unwrap_or(0) {
            0 => String::new(),
            n => format!(", {n} API token(s) revoked"),
        }
    )
}

pub fn passwd(
    cli: &Cli,
    password_file: Option<&Path>,
    new_password_file: Option<&Path>,
    revoke_api_tokens: bool,
) -> Result<u8> {
    let current = match password_file {
        Some(f) => from_file(f)?,
        None => prompt("current password")?,
    };
    let current = not_empty("current password", current)?;
    let new = new_password(new_password_file)?;
    let v = call(
        cli,
        "POST",
        "/auth/password",
        Some(json!({
            "current_password": current,
            "new_password": new,
            "revoke_api_tokens": revoke_api_tokens,
        })),
    )?;
    show(cli, &v, |v| {
        format!(
            "password of {} changed; {}",
            v["user"]["name"].as_str().unwrap_or("?"),
            signed_out(v)
        )
    })
}

pub fn user(cli: &Cli, c: &UserCmd) -> Result<u8> {
    match c {
        UserCmd::Passwd {
            name,
            new_password_file,
            generate,
            revoke_api_tokens,
        } => {
            let users = call(cli, "GET", "/users", None)?;
            let id = users
                .as_array()
                .into_iter()
                .flatten()
                .find(|u| u["name"].as_str() == Some(name))
                .and_then(|u| u["id"].as_i64())
                .ok_or_else(|| anyhow!("no user {name:?} on the server"))?;
            let mut body = json!({"revoke_api_tokens": revoke_api_tokens});
            if !generate {
                body["new_password"] = json!(new_password(new_password_file.as_deref())?);
            }
            let v = call(cli, "POST", &format!("/users/{id}/password"), Some(body))?;
            show(cli, &v, |v| {
                let mut out = format!("password of {name} set; {}", signed_out(v));
                if let Some(p) = v["password"].as_str() {
                    out += &format!("\nnew password: {p}");
                }
                out
            })
        }
    }
}
