//! `arca passwd` and `arca user passwd NAME`: password changes through the
//! server's API. Passwords are read from the terminal without echo (or
//! from files for scripts), never from the command line.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use arca_model::api::{ChangePassword, PasswordChanged, ResetPassword, SignedOut};

use crate::client::{show, Api};
use crate::Cli;

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
pub(crate) fn new_password(file: Option<&Path>) -> Result<String> {
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

fn signed_out(s: &SignedOut) -> String {
    format!(
        "{} session(s) signed out{}",
        s.sessions,
        match s.api_tokens {
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
    let req = ChangePassword {
        current_password: current,
        new_password: new,
        revoke_api_tokens,
    };
    let v: PasswordChanged = Api::new(cli)?.post("/auth/password", &req, "a password change")?;
    show(cli, &v, |v| {
        format!(
            "password of {} changed; {}",
            v.user.name,
            signed_out(&v.signed_out)
        )
    })
}

/// `arca user passwd NAME`: an admin sets a user's password.
pub fn reset_password(
    cli: &Cli,
    api: &Api,
    name: &str,
    new_password_file: Option<&Path>,
    generate: bool,
    revoke_api_tokens: bool,
) -> Result<u8> {
    let id = crate::users::by_name(api, name)?.id;
    let req = ResetPassword {
        new_password: if generate {
            None
        } else {
            Some(new_password(new_password_file)?)
        },
        revoke_api_tokens,
    };
    let v: PasswordChanged =
        api.post(&format!("/users/{id}/password"), &req, "a password change")?;
    show(cli, &v, |v| {
        let mut out = format!("password of {name} set; {}", signed_out(&v.signed_out));
        if let Some(p) = &v.password {
            out += &format!("\nnew password: {p}");
        }
        out
    })
}
