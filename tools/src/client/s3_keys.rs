//! `arca s3-key create|list|revoke` (S3 access keys of the server's S3
//! gateway) and `arca status`.

use anyhow::Result;
use arca_model::api::{CreatedS3Key, NewS3Key, S3Key, Status};
use serde::Serialize;

use super::{show, Api};
use crate::{Cli, S3KeyCmd};

/// What `arca --json s3-key revoke` prints.
#[derive(Serialize)]
struct Revoked {
    revoked: i64,
}

pub fn s3_key(cli: &Cli, c: &S3KeyCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        S3KeyCmd::Create { description } => {
            let req = NewS3Key {
                description: description.clone(),
            };
            let v: CreatedS3Key = api.post("/s3-keys", &req, "a new S3 key")?;
            if cli.json {
                return show(cli, &v, |_| String::new());
            }
            // The pair on stdout, one per line; what it is on stderr.
            println!("{}", v.key.access_key_id);
            println!("{}", v.secret_access_key);
            eprintln!(
                "S3 key {} for {}: access key id (first line) and secret (second line); the secret is shown only now",
                v.key.id, v.key.user
            );
            Ok(0)
        }
        S3KeyCmd::List { user } => {
            let path = match user {
                Some(u) => format!("/s3-keys?user={}", super::restore_points::enc(u)),
                None => "/s3-keys".to_string(),
            };
            let all: Vec<S3Key> = api.get(&path, "a list of S3 keys")?;
            show(cli, &all, |all| {
                let mut tab = crate::table::Table::new(&[
                    "ID",
                    "ACCESS KEY ID",
                    "USER",
                    "DESCRIPTION",
                    "CREATED",
                    "LAST USED",
                    "STATE",
                ])
                .right(&[0]);
                for k in all {
                    tab.row(vec![
                        k.id.to_string(),
                        k.access_key_id.clone(),
                        k.user.clone(),
                        k.description.clone(),
                        crate::units::local_time(k.created_at),
                        crate::units::local_time_opt(k.last_used_at),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                        .into(),
                    ]);
                }
                tab.render()
            })
        }
        S3KeyCmd::Revoke { id } => {
            api.delete_no_content(&format!("/s3-keys/{id}"))?;
            show(cli, &Revoked { revoked: *id }, |_| {
                format!("S3 key {id} revoked")
            })
        }
    }
}

/// What `arca status` shows.
#[derive(Serialize)]
struct StatusView {
    api_url: String,
    #[serde(flatten)]
    status: Status,
}

pub fn status(cli: &Cli) -> Result<u8> {
    let api = Api::new(cli)?;
    let status: Status = api.get("/status", "the server's status")?;
    let v = StatusView {
        api_url: super::server(cli)?,
        status,
    };
    show(cli, &v, |v| {
        format!(
            "server version {}\nAPI            {}\nS3 endpoint    {}\nnodes          {} ({} online)",
            v.status.version,
            v.api_url,
            v.status.s3_endpoint.as_deref().unwrap_or("off"),
            v.status.nodes,
            v.status.nodes_online
        )
    })
}
