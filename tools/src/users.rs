//! `arca user list|add|edit|remove|passwd` and `arca project list|add`:
//! the server's users and projects through its API (`/api/v1/users`,
//! `/api/v1/projects`). Passwords never come from the command line (see
//! [`crate::accounts`]).

use anyhow::{anyhow, Result};
use arca_model::api::{
    CreatedUser, NewProject, NewUser, Project, RoleBinding, RoleRequest, User, UserChange,
};
use arca_model::Role;
use serde::Serialize;

use crate::client::{show, Api};
use crate::{Cli, ProjectCmd, UserCmd};

/// A user by name.
pub(crate) fn by_name(api: &Api, name: &str) -> Result<User> {
    let users: Vec<User> = api.get("/users", "a list of users")?;
    users
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| anyhow!("no user {name:?} on the server"))
}

/// `ROLE` or `ROLE@PROJECT` (a project name or id).
fn parse_roles(api: &Api, specs: &[String]) -> Result<Vec<RoleRequest>> {
    let mut projects: Option<Vec<Project>> = None;
    specs
        .iter()
        .map(|spec| {
            let (role, project) = match spec.split_once('@') {
                Some((r, p)) => (r, Some(p)),
                None => (spec.as_str(), None),
            };
            let role: Role = role
                .parse()
                .map_err(|e| anyhow!("in --role {spec:?}: {e}"))?;
            let project = match project {
                None => None,
                Some(p) => {
                    if projects.is_none() {
                        projects = Some(api.get("/projects", "a list of projects")?);
                    }
                    let found = projects
                        .iter()
                        .flatten()
                        .find(|x| x.name == p || x.id.to_string() == p);
                    Some(
                        found
                            .map(|x| x.id)
                            .ok_or_else(|| anyhow!("in --role {spec:?}: no project {p:?}"))?,
                    )
                }
            };
            Ok(RoleRequest { role, project })
        })
        .collect()
}

/// Roles as `ROLE` / `ROLE@PROJECT`, with project names where known.
fn roles_text(roles: &[RoleBinding], projects: &[Project]) -> String {
    roles
        .iter()
        .map(|b| match b.project_id {
            None => b.role.to_string(),
            Some(id) => match projects.iter().find(|p| p.id == id) {
                Some(p) => format!("{}@{}", b.role, p.name),
                None => format!("{}@{id}", b.role),
            },
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn state(u: &User) -> &'static str {
    if u.disabled {
        "disabled"
    } else {
        "active"
    }
}

/// What `arca --json user remove` prints.
#[derive(Serialize)]
struct Removed<'a> {
    removed: &'a str,
}

pub fn user(cli: &Cli, c: &UserCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        UserCmd::List => {
            let users: Vec<User> = api.get("/users", "a list of users")?;
            let projects: Vec<Project> = if cli.json {
                Vec::new()
            } else {
                api.get("/projects", "a list of projects")?
            };
            show(cli, &users, |users| {
                let mut tab =
                    crate::table::Table::new(&["ID", "NAME", "ROLES", "STATE", "CREATED"])
                        .right(&[0]);
                for u in users {
                    tab.row(vec![
                        u.id.to_string(),
                        u.name.clone(),
                        roles_text(&u.roles, &projects),
                        state(u).into(),
                        crate::units::local_time(u.created_at),
                    ]);
                }
                tab.render()
            })
        }
        UserCmd::Add {
            name,
            roles,
            password_file,
            generate,
        } => {
            let roles = parse_roles(&api, roles)?;
            let password = if *generate {
                None
            } else {
                Some(crate::accounts::new_password(password_file.as_deref())?)
            };
            let req = NewUser {
                name: name.clone(),
                password,
                roles,
            };
            let v: CreatedUser = api.post("/users", &req, "a new user")?;
            show(cli, &v, |v| {
                let mut out = format!("user {} {:?} added", v.user.id, v.user.name);
                if let Some(p) = &v.password {
                    out += &format!("\npassword (shown only now): {p}");
                }
                out
            })
        }
        UserCmd::Edit {
            name,
            roles,
            no_roles,
            disable,
            enable,
        } => {
            if roles.is_empty() && !no_roles && !disable && !enable {
                return Err(crate::usage::nothing_to_change(&["user", "edit"], &[]));
            }
            let u = by_name(&api, name)?;
            let req = UserChange {
                roles: if *no_roles {
                    Some(Vec::new())
                } else if roles.is_empty() {
                    None
                } else {
                    Some(parse_roles(&api, roles)?)
                },
                disabled: (*disable || *enable).then_some(*disable),
            };
            let v: User = api.patch(&format!("/users/{}", u.id), &req, "the user")?;
            let projects: Vec<Project> = if cli.json {
                Vec::new()
            } else {
                api.get("/projects", "a list of projects")?
            };
            show(cli, &v, |v| {
                format!(
                    "user {:?}: roles {}, {}",
                    v.name,
                    match roles_text(&v.roles, &projects) {
                        r if r.is_empty() => "none".into(),
                        r => r,
                    },
                    state(v)
                )
            })
        }
        UserCmd::Remove { name } => {
            let u = by_name(&api, name)?;
            api.delete_no_content(&format!("/users/{}", u.id))?;
            show(cli, &Removed { removed: name }, |_| {
                format!("user {name:?} removed, with its sessions and API tokens")
            })
        }
        UserCmd::Passwd {
            name,
            new_password_file,
            generate,
            revoke_api_tokens,
        } => crate::accounts::reset_password(
            cli,
            &api,
            name,
            new_password_file.as_deref(),
            *generate,
            *revoke_api_tokens,
        ),
    }
}

pub fn project(cli: &Cli, c: &ProjectCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        ProjectCmd::List => {
            let all: Vec<Project> = api.get("/projects", "a list of projects")?;
            show(cli, &all, |all| {
                let mut tab = crate::table::Table::new(&["ID", "NAME"]).right(&[0]);
                for p in all {
                    tab.row(vec![p.id.to_string(), p.name.clone()]);
                }
                tab.render()
            })
        }
        ProjectCmd::Add { name } => {
            let req = NewProject { name: name.clone() };
            let v: Project = api.post("/projects", &req, "a new project")?;
            show(cli, &v, |v| format!("project {} {:?} added", v.id, v.name))
        }
    }
}
