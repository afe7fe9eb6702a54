//! `arca`: the command-line tool. Thin: parses arguments, opens the
//! datastore, calls the library crates, prints text or JSON.

mod account_args;
mod accounts;
mod agent;
mod args;
mod client;
mod commands;
mod found;
mod interrupt;
mod listing;
mod logs;
mod mounts;
mod node;
mod objects;
mod progress;
mod secrets;
mod server;
mod table;
mod task_args;
mod tokens;
mod units;
mod usage;
mod users;
mod vm_args;

use std::path::PathBuf;
use std::process::ExitCode;

pub use account_args::{KeyFile, ProjectCmd, S3KeyCmd, SettingKey, SettingsCmd, TokenCmd, UserCmd};
use clap::{Args, Parser, Subcommand};
pub use objects::{PolicyCmd, SourceCmd};
pub use task_args::{ReportArgs, ReportCmd, TaskCmd};

pub(crate) use args::{ExportArgs, MountArgs, NotifyArgs, RootArgs, ServeCmd};
pub(crate) use vm_args::{HostArgs, HypervisorCmd, LibvirtBackupArgs, LibvirtCmd};

#[derive(Parser, Debug)]
#[command(
    name = "arca",
    version,
    about = "Arca: deduplicating backup and recovery"
)]
pub struct Cli {
    /// Datastore directory.
    #[arg(long, global = true, env = "ARCA_DATASTORE")]
    datastore: Option<PathBuf>,
    /// File holding the datastore passphrase (else ARCA_PASSPHRASE).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// An Arca server (e.g. http://127.0.0.1:8080): the commands that work
    /// on restore points, sources, policies, tasks, users and tokens then go
    /// through its API instead of a local datastore.
    #[arg(long, global = true, env = "ARCA_SERVER")]
    server: Option<String>,
    /// API token (else the one `arca login` saved).
    #[arg(long, global = true, env = "ARCA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Trust this PEM certificate for an https:// server (e.g. the
    /// self-signed `<data-dir>/tls/cert.pem` of `arca server --tls`).
    #[arg(long, global = true, env = "ARCA_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Log records as human text on stderr, or as JSON lines on stdout
    /// (then a server's or node's start banner is records too). Filter
    /// with ARCA_LOG or RUST_LOG (default `info`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ARCA_LOG_FORMAT"
    )]
    log_format: logs::LogFormat,
    /// Progress of backups, restores and `--wait` on stderr: `auto` (a bar
    /// when stderr is a terminal), `json` (a line
    /// {"progress","bytes_done","bytes_total","files"} every 200 ms and at
    /// the end; bytes_total is 0 while unknown) or `none`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "ARCA_PROGRESS"
    )]
    progress: progress::Mode,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the all-in-one server: control plane, REST API, scheduler, an
    /// embedded node and a default datastore under one data directory.
    Server {
        /// Where the catalog, the default datastore and secrets live.
        #[arg(long, default_value = "./arca-data")]
        data_dir: PathBuf,
        /// Address of the HTTP API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Tasks the embedded node runs at once.
        #[arg(long, default_value_t = 2)]
        max_tasks: i64,
        /// Serve HTTPS. Without --tls-cert/--tls-key a self-signed
        /// certificate is made on first start in <data-dir>/tls/.
        #[arg(long)]
        tls: bool,
        /// PEM certificate chain for --tls.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        notify: NotifyArgs,
        /// Seconds without a heartbeat after which a remote node is
        /// offline and its running tasks are requeued or failed.
        #[arg(long, default_value_t = 30)]
        node_timeout: i64,
        #[command(flatten)]
        mounts: MountArgs,
        #[command(flatten)]
        roots: RootArgs,
        /// On SIGTERM or SIGINT: seconds to stop cleanly (running tasks
        /// are cancelled and recorded as interrupted by shutdown) before
        /// exiting anyway.
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        shutdown_timeout: u64,
        /// Address of the read-only S3 gateway over restore points
        /// (per-user keys: `arca s3-key create`); "off": none.
        #[arg(long, default_value = "127.0.0.1:8444")]
        s3_listen: String,
    },
    /// Run a node for a server (--server, --token from `POST
    /// /api/v1/nodes`): it owns the datastores under <data-dir>/datastores/
    /// (a `default` one is made on first start), leases the server's tasks
    /// for its sources and runs them. `arca node list` and `arca node set`
    /// show and change nodes through the server.
    #[command(args_conflicts_with_subcommands = true)]
    Node {
        #[command(subcommand)]
        cmd: Option<NodeCmd>,
        /// Where this node's datastores and their passphrases live.
        #[arg(long, default_value = "./arca-node")]
        data_dir: PathBuf,
        /// Tasks this node runs at once.
        #[arg(long, default_value_t = 2)]
        max_tasks: i64,
        #[command(flatten)]
        mounts: MountArgs,
        /// On SIGTERM or SIGINT: seconds to stop cleanly (running tasks
        /// are cancelled and reported to the server as interrupted by
        /// shutdown) before exiting anyway.
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        shutdown_timeout: u64,
    },
    /// On a hypervisor: push disk backups to a server (--server, --token),
    /// sending only the chunks its datastore lacks.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Manage datastores.
    #[command(subcommand)]
    Datastore(DatastoreCmd),
    /// Serve the datastore's restore points over a block protocol (NBD,
    /// iSCSI) or their files over NFS.
    #[command(subcommand)]
    Serve(ServeCmd),
    /// Back up a directory tree, a disk image or a libvirt domain.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// libvirt hosts over SSH: list domains, import a restore point.
    #[command(subcommand)]
    Libvirt(LibvirtCmd),
    /// List snapshots (restore points), oldest first. With --server, the
    /// restore points the server's catalog lists (that you may read).
    Snapshots {
        /// Only the snapshots of this source (its name, by default the
        /// absolute path it was backed up from).
        #[arg(long)]
        source: Option<String>,
        /// Only those of this kind (files or image).
        #[arg(long)]
        kind: Option<arca_model::SourceKind>,
        /// Only those taken at or after this time (RFC 3339, YYYY-MM-DD
        /// or seconds since the epoch; UTC).
        #[arg(long, value_parser = listing::parse_since)]
        since: Option<i64>,
        /// With --server: only the restore points of this project, by
        /// name or id (an unknown project, or one you may not read, is an
        /// error).
        #[arg(long)]
        project: Option<String>,
    },
    /// List the files of a snapshot: one directory level, or everything
    /// below PATH with --recursive. An image snapshot shows its file tree:
    /// `disk.img`, its partitions (`part1.img`) and their file systems
    /// (`part1/...`). With --server, through the server's API.
    Ls {
        /// A snapshot id, a unique prefix of one, or `latest`.
        snapshot: String,
        /// A directory or file in the snapshot (default: its root).
        path: Option<String>,
        /// Everything below PATH, not just one level.
        #[arg(long, short = 'r')]
        recursive: bool,
        /// With `latest`: the latest of this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// Find files across snapshots (restore points), newest first: which
    /// ones hold an entry matching PATTERN, and where. With --server, over
    /// the restore points the server lists for you (those on a remote node
    /// are searched by that node).
    Find(found::FindArgs),
    /// Restore a snapshot: a tree into a directory, an image into a file
    /// (or, with --path, a file or directory of the image's file tree).
    /// With --server, the server's node restores the restore point to --to.
    /// A tree restore that was interrupted is finished by running it again
    /// (no --overwrite needed): files already restored are skipped.
    Restore {
        /// The snapshot (restore point): an id, a unique prefix of one, or
        /// `latest` (with --source).
        snapshot: String,
        /// Where to restore here: a directory for a tree snapshot, a file
        /// or block device for an image. Not with --server (use --to).
        #[arg(required_unless_present = "to")]
        target: Option<PathBuf>,
        /// Through the server: the path on the node to restore to.
        #[arg(long)]
        to: Option<String>,
        /// Through the server: the node to run on (default: the datastore's).
        #[arg(long)]
        node: Option<String>,
        /// Through the server: follow the restore to its end (progress
        /// bar; exit code 1 if it fails).
        #[arg(long, requires = "to")]
        wait: bool,
        /// Only this file or directory of a tree snapshot, relative to the
        /// source root ("etc/hosts"); the original absolute path
        /// ("/srv/docs/etc/hosts" of the source /srv/docs) is taken too.
        /// Of an image snapshot: a path of its file tree, as `arca ls`
        /// shows it ("part1/etc/hostname", "part1/home", "disk.img");
        /// hard links inside the image come out as copies.
        #[arg(long)]
        path: Option<String>,
        /// With `latest`: the newest snapshot of this source (local only).
        #[arg(long)]
        source: Option<String>,
        /// Write into a target that holds data: a directory with entries
        /// (same names are replaced), a non-empty file, a block device.
        #[arg(long)]
        overwrite: bool,
        /// Through the server: also recreate device nodes and keep
        /// setuid/setgid bits and file capabilities (admins of all projects
        /// only; otherwise they are skipped or cleared, and the task log
        /// says so). A local restore always restores them.
        #[arg(long, requires = "to")]
        special_files: bool,
    },
    /// Through the server: download a file of a restore point (an image's
    /// disk as disk.img), or a directory as a zip or tar archive, with a
    /// progress bar. --continue resumes a partial file.
    Download {
        /// The restore point: an id or a unique prefix of one.
        restore_point: String,
        /// A file or directory in it, relative to its root.
        path: String,
        /// Where to write (`-`: stdout; default: the server's file name
        /// in the current directory).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// For a directory: the archive (zip or tar).
        #[arg(long, value_parser = ["zip", "tar"])]
        format: Option<String>,
        /// Resume: keep the bytes OUTPUT already has and fetch the rest
        /// (a file; not with stdout or archives).
        #[arg(long = "continue", short = 'c')]
        resume: bool,
    },
    /// Through the server: export a restore point on the node that owns
    /// its datastore: an image as a disk over NBD (the default) or iSCSI,
    /// or any restore point's files over NFS (--nfs, read-only, to the
    /// addresses of --allow); prints its address once it is served.
    Mount {
        restore_point: String,
        /// Export over NBD (the default).
        #[arg(long, conflicts_with_all = ["iscsi", "nfs"])]
        nbd: bool,
        /// Export as an iSCSI target.
        #[arg(long, conflicts_with = "nfs")]
        iscsi: bool,
        /// Export the files over NFSv3, read-only (any restore point: a
        /// file backup's tree, or an image's partitions and file systems).
        #[arg(long, conflicts_with = "writable")]
        nfs: bool,
        /// With --nfs: an address block (10.0.0.0/24, 192.168.1.7, ::1)
        /// whose clients may mount the export; repeat for more (at most
        /// 32). NFSv3 has no user authentication: this list is the access
        /// control. Default: the address this client has as the server
        /// sees it.
        #[arg(long, value_name = "CIDR", requires = "nfs")]
        allow: Vec<String>,
        /// Accept writes into an overlay (instant restore); the restore
        /// point never changes. `arca unmount --commit` keeps them as a
        /// new restore point.
        #[arg(long)]
        writable: bool,
        /// How long the export lives (90s, 30m, 2h, 7d; at most 30d).
        #[arg(long, default_value = "2h")]
        ttl: String,
    },
    /// Through the server: the live exports (--all: also ended ones), or
    /// give one a new end (--extend ID --ttl 4h: 4 hours from now).
    Mounts {
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "ID", requires = "ttl")]
        extend: Option<arca_model::ExportId>,
        #[arg(long, requires = "extend")]
        ttl: Option<String>,
    },
    /// Through the server: stop an export.
    Unmount {
        id: arca_model::ExportId,
        /// Keep a writable export's changes as a new restore point
        /// (otherwise they are discarded).
        #[arg(long)]
        commit: bool,
        /// With --commit: follow the commit task to its end.
        #[arg(long, requires = "commit")]
        wait: bool,
    },
    /// Re-read and check stored data; exit code 3 if anything is damaged.
    Verify {
        /// Read only this percentage of packs (structure is always checked).
        #[arg(long, value_name = "PERCENT")]
        read_data_subset: Option<String>,
    },
    /// Remove snapshots according to retention rules.
    Prune(PruneArgs),
    /// Remove the given snapshots (ids or unique id prefixes), damaged
    /// snapshot files included; `arca gc` then reclaims their data.
    /// Through a server (ARCA_SERVER or --server): each restore point is
    /// removed by a forget task on its datastore's node (refused while it
    /// is protected or exported); the datastore's next gc frees the space.
    Forget {
        /// Snapshot or restore point ids, or unique prefixes of them.
        #[arg(required = true)]
        snapshots: Vec<String>,
        /// Through a server: follow the forget tasks to their end.
        #[arg(long)]
        wait: bool,
    },
    /// Reclaim space of data no snapshot references.
    Gc {
        /// Packs younger than this are never touched (e.g. 1h, 30m, 0s).
        #[arg(long, default_value = "1h")]
        grace: String,
        /// Repack packs with at least this fraction of garbage.
        #[arg(long, default_value_t = 0.5)]
        repack_threshold: f64,
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage the index.
    #[command(subcommand)]
    Index(IndexCmd),
    /// Sign in to a server and save the session token.
    Login {
        #[arg(long, default_value = "admin")]
        user: String,
        /// Read the password from this file (else ARCA_PASSWORD or stdin).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Change your password on the server: asks for the current one and
    /// twice for the new one, without echo. Your other sessions are signed
    /// out; this one and your API tokens stay.
    Passwd {
        /// Read the current password from this file instead.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Read the new password from this file instead.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
        /// Revoke your API tokens too.
        #[arg(long)]
        revoke_api_tokens: bool,
    },
    /// Users on a server.
    #[command(subcommand)]
    User(UserCmd),
    /// Projects on a server: the unit of ownership of sources, policies
    /// and restore points, to which roles and tokens are limited.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// The server's catalog.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Sources on a server.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Libvirt hosts on a server: their domains become sources.
    #[command(subcommand)]
    Hypervisor(HypervisorCmd),
    /// Policies on a server.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Protect a restore point on a server: retention never removes it
    /// until `arca unprotect`.
    Protect {
        /// The restore point's id or a unique prefix of it.
        restore_point: String,
        /// A note on it (why it is kept, say).
        #[arg(long)]
        note: Option<String>,
    },
    /// Lift a restore point's protection (its note stays).
    Unprotect {
        /// The restore point's id or a unique prefix of it.
        restore_point: String,
    },
    /// Tasks on a server.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Reports of a server over a period (default: the last 7 days):
    /// protection (RPO compliance), storage (datastore use over time),
    /// tasks (durations and throughput). `--json` prints the API's
    /// answer, `--csv` its CSV.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Your API tokens on a server: create (the secret is shown once),
    /// list, revoke.
    #[command(subcommand)]
    Token(TokenCmd),
    /// S3 access keys for the server's read-only S3 gateway.
    #[command(subcommand, name = "s3-key")]
    S3Key(S3KeyCmd),
    /// The server's audit log (admins and auditors), newest first:
    /// who changed what, from where, with what result.
    Audit(client::AuditArgs),
    /// The server: version, API address, S3 gateway address, nodes.
    Status,
    /// Server settings (admins): the longest lifetime of API tokens.
    #[command(subcommand)]
    Settings(SettingsCmd),
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// List the restore points of the datastore given with --datastore in
    /// the catalog of the server at --data-dir (rebuilds a lost catalog).
    Import {
        #[arg(long, default_value = "./arca-data")]
        data_dir: PathBuf,
        /// Name of the datastore in the catalog (default: the directory name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Through the server: the nodes, their state and where their sources
    /// may live and their restores may write.
    List,
    /// Through the server (admin): where a node's sources may live and its
    /// restores may write. Each list given replaces the node's list.
    #[command(visible_alias = "edit")]
    Set {
        /// The node's name (`arca node list`).
        name: String,
        /// A directory under which sources may live (repeatable).
        #[arg(long = "source-root", value_name = "DIR")]
        source_roots: Vec<String>,
        /// Remove every source root: no source may be added on the node.
        #[arg(long, conflicts_with = "source_roots")]
        no_source_roots: bool,
        /// A directory under which restores may write (repeatable).
        #[arg(long = "restore-root", value_name = "DIR")]
        restore_roots: Vec<String>,
        /// Back to the default restore root, <data-dir>/restores.
        #[arg(long, conflicts_with = "restore_roots")]
        default_restore_roots: bool,
        /// May restores write onto block devices (true or false)?
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        allow_block_devices: Option<bool>,
    },
    /// Through the server (admin): remove a node and its tokens (refused
    /// while it has sources, datastores or live tasks).
    Remove {
        /// The node's name (`arca node list`).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DatastoreCmd {
    /// Create a datastore.
    Init {
        /// Where to create it (default: --datastore or ARCA_DATASTORE).
        path: Option<PathBuf>,
        /// `repokey`: data encrypted with a key kept in the datastore,
        /// itself encrypted with the passphrase (--passphrase-file or
        /// ARCA_PASSPHRASE); `none`: not encrypted.
        #[arg(long, default_value = "repokey", value_parser = clap::builder::PossibleValuesParser::new(arca_model::Encryption::NAMES))]
        encryption: String,
        /// Target pack size in MiB.
        #[arg(long)]
        pack_size_mib: Option<u32>,
        /// Image chunk size in KiB (a power of two).
        #[arg(long)]
        image_chunk_kib: Option<u32>,
        /// Frame size in KiB of image chunks (a power of two, 4 to 1024,
        /// at most the chunk size): each chunk of an image backup is stored
        /// as frames compressed and encrypted one by one, so that a random
        /// read of a restore point (NBD, iSCSI) decodes only the frames it
        /// needs. 0 stores image chunks whole. Default 64, or 0 when the
        /// image chunk size is 64 KiB or less.
        #[arg(long)]
        image_frame_kib: Option<u32>,
        /// zstd level of image frames (-7 to 22). Default 3; 9 stores
        /// images about 4% smaller for 4x the compression CPU of a backup;
        /// reads decode as fast at any level.
        #[arg(long, allow_hyphen_values = true)]
        image_zstd_level: Option<i32>,
    },
    /// Show a datastore's configuration and usage.
    Info,
    /// Through the server: list datastores with their use and their gc and
    /// verify schedules.
    List,
    /// Through the server: run gc on a datastore now, on the node that
    /// owns it, beside running backups.
    Gc {
        /// The datastore's name on the server (`arca datastore list`).
        name: String,
        /// Follow the task to its end with a progress bar.
        #[arg(long)]
        wait: bool,
        /// Packs younger than this are left alone (e.g. 1h, 0s; default 1h).
        #[arg(long)]
        grace: Option<String>,
    },
    /// Through the server: verify a datastore now. Without --all only the
    /// restore points not verified within the datastore's
    /// verify-max-age-days are read.
    Verify {
        name: String,
        #[arg(long)]
        wait: bool,
        /// Read every restore point, not only those due.
        #[arg(long)]
        all: bool,
    },
    /// Through the server: change a datastore's maintenance schedules.
    Set {
        name: String,
        /// When gc runs: daily (default), weekly, "every 6h", "Sun 03:00",
        /// or never.
        #[arg(long)]
        gc_schedule: Option<String>,
        /// When verify runs: weekly (default), daily, ..., or never.
        #[arg(long)]
        verify_schedule: Option<String>,
        /// Re-verify a restore point only when its last verification is
        /// older than this many days (default 30).
        #[arg(long)]
        verify_max_age_days: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCmd {
    /// Back up a directory tree.
    Files {
        /// The directory to back up.
        dir: PathBuf,
        #[command(flatten)]
        common: BackupArgs,
    },
    /// Through a server: back up one of its sources now.
    Now {
        /// The source's name (`arca source list`).
        source: String,
        /// The source's project (source names are unique per project;
        /// needed when the name is used in several projects you can see).
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
        /// Follow the task to its end (progress bar; exit code 1 if it
        /// fails).
        #[arg(long)]
        wait: bool,
    },
    /// Back up a raw disk image (file or block device).
    Image {
        /// The image file or block device.
        file: PathBuf,
        #[command(flatten)]
        common: BackupArgs,
        /// File of changed extents since the parent ("OFFSET LENGTH" lines).
        #[arg(long)]
        changed_extents: Option<PathBuf>,
        /// Read the whole image even if its size, mtime, ctime and inode
        /// are those of the parent's (by default such an image is taken
        /// as unchanged and not read).
        #[arg(long, conflicts_with = "changed_extents")]
        full_read: bool,
    },
    /// Back up a libvirt domain over SSH (libvirt's backup job with
    /// checkpoints: incremental after the first run).
    Libvirt {
        #[command(flatten)]
        args: LibvirtBackupArgs,
        #[command(flatten)]
        common: BackupArgs,
    },
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Source name (default: the absolute path).
    #[arg(long)]
    source: Option<String>,
    /// Parent snapshot (default: the latest of the same source).
    #[arg(long)]
    parent: Option<String>,
    /// Do not use a parent snapshot: read everything.
    #[arg(long, conflicts_with = "parent")]
    no_parent: bool,
    /// A tag on the snapshot (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    keep: KeepArgs,
    #[arg(long)]
    dry_run: bool,
}

/// Retention rules, as `prune` and `policy add` take them.
#[derive(Args, Debug, Clone)]
pub struct KeepArgs {
    /// Keep the newest N restore points (0: this rule keeps none; with no
    /// rule at all, everything is kept).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_last: u32,
    /// Keep the newest restore point of each of the last N hours.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_hourly: u32,
    /// Keep the newest restore point of each of the last N days.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_daily: u32,
    /// Keep the newest restore point of each of the last N weeks.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_weekly: u32,
    /// Keep the newest restore point of each of the last N months.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_monthly: u32,
    /// Keep the newest restore point of each of the last N years.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_yearly: u32,
}

impl KeepArgs {
    pub fn retention(&self) -> arca_repo::prune::Retention {
        arca_repo::prune::Retention {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
        }
    }
}

#[derive(Subcommand, Debug)]
enum IndexCmd {
    /// Recreate the index from the pack headers.
    Rebuild,
}

/// A parser for an enum of the model: its names are the allowed values,
/// listed in `--help`.
fn model_enum<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = arca_model::UnknownValue> + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names).try_map(|s| s.parse::<T>())
}

/// Exit code for "verify found damage".
pub const EXIT_DAMAGE: u8 = 3;

/// The error and its causes, each said once: an I/O error's text already
/// ends with its OS error, which is also its source.
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if msg.contains(&s) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s);
    }
    msg
}

/// `arca ls … | head`: when the reader of stdout goes away, end quietly
/// as any Unix tool does (killed by SIGPIPE, status 141), instead of a
/// panic in `println!`. Rust starts programs with SIGPIPE ignored; the
/// long-running commands (server, node, serve) keep it so: a peer that
/// goes away there is an error to handle, not a reason to stop. Sockets
/// are written with MSG_NOSIGNAL by std and tokio, so only pipes and
/// terminals are affected.
#[allow(unsafe_code)]
fn die_quietly_on_closed_pipe(command: &Command) {
    if matches!(
        command,
        Command::Server { .. } | Command::Node { .. } | Command::Serve(_)
    ) {
        return;
    }
    // SAFETY: called first thing in main, before any thread starts;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    die_quietly_on_closed_pipe(&cli.command);
    if matches!(cli.command, Command::Serve(_)) {
        commands::bound_malloc_arenas();
    }
    logs::init(cli.log_format);
    progress::set_mode(cli.progress);
    let json = cli.json;
    let outcome = commands::run(cli);
    // No background thread may be inside the datastore while the process
    // runs its exit handlers.
    arca_frontends::quiesce();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = error_message(&e);
            if json {
                println!("{}", serde_json::json!({ "error": msg }));
            }
            if logs::json() {
                tracing::error!(error = %msg, "command failed");
            } else {
                eprintln!("error: {msg}");
            }
            match e.downcast_ref::<usage::UsageError>() {
                Some(_) => ExitCode::from(usage::EXIT_USAGE),
                None => ExitCode::from(1),
            }
        }
    }
}
