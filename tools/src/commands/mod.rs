//! One function per command: [`run`] dispatches, the modules here run
//! the commands that work on a datastore directly, and [`crate::client`]
//! (with `accounts`, `tokens`, `server` and `node`) the ones that go
//! through a server.

mod backup;
mod datastore;
mod find;
mod libvirt;
mod maintenance;
mod restore;
mod serve;
pub(crate) use serve::bound_malloc_arenas;
mod shared;
mod snapshots;

use anyhow::Result;

use crate::{BackupCmd, Cli, Command, DatastoreCmd, IndexCmd};

pub fn run(cli: Cli) -> Result<u8> {
    let cli = &cli;
    match &cli.command {
        Command::Datastore(DatastoreCmd::Init {
            path,
            encryption,
            pack_size_mib,
            image_chunk_kib,
            image_frame_kib,
            image_zstd_level,
        }) => datastore::init(
            cli,
            path,
            encryption,
            pack_size_mib,
            image_chunk_kib,
            image_frame_kib,
            image_zstd_level,
        ),
        Command::Datastore(DatastoreCmd::Info) => datastore::info(cli),
        Command::Backup(BackupCmd::Now {
            source,
            project,
            wait,
        }) => crate::client::backup_now(cli, source, *project, *wait),
        Command::Backup(BackupCmd::Libvirt { args, common }) => libvirt::backup(cli, args, common),
        Command::Backup(cmd) => backup::backup(cli, cmd),
        Command::Libvirt(c) => libvirt::command(cli, c),
        Command::Datastore(
            c @ (DatastoreCmd::List
            | DatastoreCmd::Gc { .. }
            | DatastoreCmd::Verify { .. }
            | DatastoreCmd::Set { .. }),
        ) => crate::client::datastore(cli, c),
        Command::Login {
            user,
            password_file,
        } => crate::client::login(cli, user, password_file.as_deref()),
        Command::Source(c) => crate::client::source(cli, c),
        Command::Hypervisor(c) => crate::client::hypervisor(cli, c),
        Command::Passwd {
            password_file,
            new_password_file,
            revoke_api_tokens,
        } => crate::accounts::passwd(
            cli,
            password_file.as_deref(),
            new_password_file.as_deref(),
            *revoke_api_tokens,
        ),
        Command::User(c) => crate::users::user(cli, c),
        Command::Project(c) => crate::users::project(cli, c),
        Command::Catalog(crate::CatalogCmd::Import { data_dir, name }) => {
            crate::server::import(cli, data_dir, name.as_deref())
        }
        Command::Policy(c) => crate::client::policy(cli, c),
        Command::Protect {
            restore_point,
            note,
        } => crate::client::protect(cli, restore_point, true, note.as_deref()),
        Command::Unprotect { restore_point } => {
            crate::client::protect(cli, restore_point, false, None)
        }
        Command::Token(c) => crate::tokens::token(cli, c),
        Command::S3Key(c) => crate::client::s3_key(cli, c),
        Command::Status => crate::client::status(cli),
        Command::Audit(a) => crate::client::audit(cli, a),
        Command::Settings(c) => crate::tokens::settings(cli, c),
        Command::Serve(crate::ServeCmd::Nbd {
            listen,
            tls_cert,
            tls_key,
            exports,
        }) => serve::nbd(cli, listen, tls_cert, tls_key, exports),
        Command::Serve(crate::ServeCmd::Iscsi {
            listen,
            chap_user,
            chap_secret_file,
            exports,
        }) => serve::iscsi(cli, listen, chap_user, chap_secret_file, exports),
        Command::Serve(crate::ServeCmd::S3 { listen, cache_mib }) => {
            serve::s3(cli, listen, *cache_mib)
        }
        Command::Serve(crate::ServeCmd::Nfs {
            listen,
            allow,
            state_dir,
            cache_mib,
        }) => serve::nfs(cli, listen, allow, state_dir.as_deref(), *cache_mib),
        Command::Node { cmd: Some(c), .. } => crate::client::node(cli, c),
        Command::Node {
            cmd: None,
            data_dir,
            max_tasks,
            mounts,
            shutdown_timeout,
        } => crate::node::run(cli, data_dir, *max_tasks, mounts, *shutdown_timeout),
        Command::Agent(c) => crate::agent::run(cli, c),
        Command::Task(c) => crate::client::task(cli, c),
        Command::Report(c) => crate::client::report(cli, c),
        Command::Mount {
            restore_point,
            nbd: _,
            iscsi,
            nfs,
            allow,
            writable,
            ttl,
        } => {
            let protocol = if *iscsi {
                arca_model::ExportProtocol::Iscsi
            } else if *nfs {
                arca_model::ExportProtocol::Nfs
            } else {
                arca_model::ExportProtocol::Nbd
            };
            crate::client::mount(cli, restore_point, protocol, allow, *writable, ttl)
        }
        Command::Download {
            restore_point,
            path,
            output,
            format,
            resume,
        } => crate::client::download(
            cli,
            &crate::client::DownloadArgs {
                restore_point,
                path,
                output: output.as_deref(),
                format: format.as_deref(),
                resume: *resume,
            },
        ),
        Command::Mounts { all, extend, ttl } => {
            crate::client::mounts(cli, *all, *extend, ttl.as_deref())
        }
        Command::Unmount { id, commit, wait } => crate::client::unmount(cli, *id, *commit, *wait),
        Command::Server {
            data_dir,
            listen,
            max_tasks,
            tls,
            tls_cert,
            tls_key,
            notify,
            node_timeout,
            mounts,
            roots,
            shutdown_timeout,
            s3_listen,
        } => {
            let tls = serve::server_tls(data_dir, *tls, tls_cert, tls_key)?;
            crate::server::run(
                data_dir,
                listen,
                *max_tasks,
                tls,
                notify,
                *node_timeout,
                mounts,
                roots,
                *shutdown_timeout,
                s3_listen,
            )
        }
        Command::Snapshots {
            source,
            kind,
            since,
            project,
        } => {
            let f = crate::listing::SnapshotFilter {
                source: source.clone(),
                kind: *kind,
                since: *since,
            };
            if cli.server.is_some() {
                crate::client::snapshots(cli, &f, project.as_deref())
            } else if project.is_some() {
                anyhow::bail!(
                    "--project needs a server (--server or ARCA_SERVER): a datastore has no projects"
                )
            } else {
                snapshots::snapshots(cli, &f)
            }
        }
        Command::Forget { snapshots, wait } if cli.server.is_some() => {
            crate::client::forget(cli, snapshots, *wait)
        }
        Command::Forget { snapshots, .. } => snapshots::forget(cli, snapshots),
        Command::Find(args) => {
            if cli.server.is_some() {
                crate::client::find(cli, args)
            } else {
                find::find(cli, args)
            }
        }
        Command::Ls {
            snapshot,
            path,
            recursive,
            source,
        } => {
            let req = crate::listing::LsRequest {
                snapshot,
                path: path.as_deref().unwrap_or(""),
                recursive: *recursive,
                source: source.as_deref(),
            };
            if cli.server.is_some() {
                crate::client::ls(cli, &req)
            } else {
                snapshots::ls(cli, &req)
            }
        }
        Command::Restore {
            snapshot,
            target,
            to,
            node,
            path,
            source: _,
            wait,
            overwrite,
            special_files,
        } if cli.server.is_some() => restore::through_server(
            cli,
            snapshot,
            target,
            to,
            node,
            path,
            *wait,
            *overwrite,
            *special_files,
        ),
        Command::Restore {
            snapshot,
            target,
            path,
            source,
            to,
            node,
            wait,
            overwrite,
            special_files: _,
        } => restore::local(
            cli, snapshot, target, path, source, to, node, *wait, *overwrite,
        ),
        Command::Verify { read_data_subset } => maintenance::verify(cli, read_data_subset),
        Command::Prune(args) => maintenance::prune(cli, args),
        Command::Gc {
            grace,
            repack_threshold,
            dry_run,
        } => maintenance::gc(cli, grace, *repack_threshold, *dry_run),
        Command::Index(IndexCmd::Rebuild) => maintenance::index_rebuild(cli),
    }
}
