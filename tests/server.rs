//! `arca server` end to end on loopback: first start, sign-in, schedules
//! on the server and on remote nodes, restores through the API, the CLI
//! against a server, notifications, TLS, exports, gc and verify, deleting
//! restore points, damaged data, confinement and JSON logs. One binary; its modules say what is
//! covered (see tests/README.md).
#![allow(clippy::unwrap_used)]

mod common;

#[path = "server/browse.rs"]
mod browse;
#[path = "server/cli.rs"]
mod cli;
#[path = "server/cli_json.rs"]
mod cli_json;
#[path = "server/confine.rs"]
mod confine;
#[path = "server/damage.rs"]
mod damage;
#[path = "server/download.rs"]
mod download;
#[path = "server/edit.rs"]
mod edit;
#[path = "server/find.rs"]
mod find;
#[path = "server/forget.rs"]
mod forget;
#[path = "server/helpers.rs"]
mod helpers;
#[path = "server/image_access.rs"]
mod image_access;
#[path = "server/image_files.rs"]
mod image_files;
#[path = "server/keys.rs"]
mod keys;
#[path = "server/logs.rs"]
mod logs;
#[path = "server/maintenance.rs"]
mod maintenance;
#[path = "server/mounts.rs"]
mod mounts;
#[path = "server/nfs_mount.rs"]
mod nfs_mount;
#[path = "server/notify_tls.rs"]
mod notify_tls;
#[path = "server/preview.rs"]
mod preview;
#[path = "server/progress.rs"]
mod progress;
#[path = "server/qcow2.rs"]
mod qcow2;
#[path = "server/remote_browse.rs"]
mod remote_browse;
#[path = "server/remote_files.rs"]
mod remote_files;
#[path = "server/remote_find.rs"]
mod remote_find;
#[path = "server/reports.rs"]
mod reports;
#[path = "server/s3.rs"]
mod s3;
#[path = "server/schedule.rs"]
mod schedule;
#[path = "server/terminal.rs"]
mod terminal;
