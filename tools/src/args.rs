//! The arguments of the long-running commands (`arca server`, `arca
//! node`, `arca serve`): where they listen, serve exports and notify.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the built-in node of `arca server` may read sources and write
/// restores. Given, they replace the node's roots at every start (the
/// ones set through the API otherwise stay); see docs/control-plane.md.
#[derive(Args, Debug, Clone, Default)]
pub struct RootArgs {
    /// A directory under which sources may live (repeatable). Without any,
    /// no source can be added until an admin sets roots.
    #[arg(long = "source-root", value_name = "DIR")]
    pub source_roots: Vec<PathBuf>,
    /// A directory under which restores may write (repeatable; default
    /// <data-dir>/restores).
    #[arg(long = "restore-root", value_name = "DIR")]
    pub restore_roots: Vec<PathBuf>,
}

/// Where the server sends notifications (task failed, RPO missed).
#[derive(Args, Debug, Clone)]
pub struct NotifyArgs {
    /// POST a JSON event to this URL.
    #[arg(long, env = "ARCA_WEBHOOK")]
    pub webhook: Option<String>,
    /// SMTP relay, host:port (plain SMTP, e.g. the local MTA).
    #[arg(long, env = "ARCA_SMTP_SERVER")]
    pub smtp_server: Option<String>,
    /// Sender address of notification mails.
    #[arg(long, env = "ARCA_SMTP_FROM", default_value = "arca@localhost")]
    pub smtp_from: String,
    /// Recipient of notification mails (repeatable).
    #[arg(long = "notify-email")]
    pub notify_email: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ServeCmd {
    /// Every image restore point as a read-only NBD export named by its
    /// full snapshot id; `<SOURCE>/latest` names the newest of a source.
    Nbd {
        #[arg(long, default_value = "127.0.0.1:10809")]
        listen: String,
        /// Require TLS (STARTTLS) with this PEM certificate chain.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        exports: ExportArgs,
    },
    /// Every image restore point as an iSCSI target (one LUN), named
    /// iqn.2026-11.io.arca:<snapshot id> and iqn.2026-11.io.arca:<source>.latest;
    /// discoverable with SendTargets.
    Iscsi {
        #[arg(long, default_value = "127.0.0.1:3260")]
        listen: String,
        /// Require CHAP with this user name (and --chap-secret-file).
        #[arg(long, requires = "chap_secret_file")]
        chap_user: Option<String>,
        /// File holding the CHAP secret (12 to 16 characters are usual).
        #[arg(long, requires = "chap_user")]
        chap_secret_file: Option<PathBuf>,
        #[command(flatten)]
        exports: ExportArgs,
    },
    /// Every restore point's files over a read-only S3 API: one bucket
    /// per source, keys <restore point id>/<path> and latest/<path>.
    /// The one access key pair comes from ARCA_S3_ACCESS_KEY and
    /// ARCA_S3_SECRET_KEY (required).
    S3 {
        #[arg(long, default_value = "127.0.0.1:8444")]
        listen: String,
        /// Decoded chunks kept in memory, shared by all restore points.
        #[arg(long, default_value_t = 512)]
        cache_mib: u64,
    },
    /// Every restore point's files over NFSv3, read-only:
    /// /<SOURCE>/<RESTORE-POINT-ID>/... and /<SOURCE>/latest/... (NFS,
    /// MOUNT and portmap on one TCP port).
    Nfs {
        #[arg(long, default_value = "127.0.0.1:2049")]
        listen: String,
        /// Clients allowed, as an address or address block (repeatable;
        /// default: 127.0.0.1/32 and ::1). Others are disconnected.
        #[arg(long = "allow", value_name = "CIDR")]
        allow: Vec<String>,
        /// Where the ids behind NFS file handles are kept, so that handles
        /// stay valid when the server restarts (default:
        /// $XDG_STATE_HOME/arca/nfs, else ~/.local/state/arca/nfs).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Decoded chunks kept in memory, shared by all restore points.
        #[arg(long, default_value_t = 512)]
        cache_mib: u64,
    },
}

/// Where a server or node serves its exports (`arca mount`).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct MountArgs {
    /// Address of the NBD server for exports ("off": none).
    #[arg(long, default_value = "127.0.0.1:10809")]
    pub(crate) nbd_listen: String,
    /// Address of the iSCSI target for exports ("off": none).
    #[arg(long, default_value = "127.0.0.1:3260")]
    pub(crate) iscsi_listen: String,
    /// Address of the NFS server for exports (`arca mount --nfs`; "off":
    /// none). One server for all of the node's NFS exports, each with its
    /// own allow list.
    #[arg(long, default_value = "127.0.0.1:2049")]
    pub(crate) nfs_listen: String,
    /// Host name put in export addresses (default: the listening
    /// address, or this host's name when listening on all addresses).
    #[arg(long)]
    pub(crate) export_host: Option<String>,
    /// Require TLS on the NBD server for exports, with this PEM
    /// certificate chain (addresses become nbds://).
    #[arg(long, requires = "nbd_tls_key")]
    pub(crate) nbd_tls_cert: Option<PathBuf>,
    /// The PEM private key of --nbd-tls-cert.
    #[arg(long, requires = "nbd_tls_cert")]
    pub(crate) nbd_tls_key: Option<PathBuf>,
    /// INSECURE: serve NBD exports without TLS on an address other than
    /// loopback. Anyone on the network path then sees the disks' data and
    /// the export secrets (in the export names), and can alter writes.
    /// Without it, such an --nbd-listen needs --nbd-tls-cert/--nbd-tls-key.
    #[arg(long, conflicts_with = "nbd_tls_cert")]
    pub(crate) nbd_plain: bool,
    /// Decoded chunks kept in memory for exports, shared by all of them.
    #[arg(long, default_value_t = 256)]
    pub(crate) export_cache_mib: u64,
}

/// How `arca serve` exports image restore points.
#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Decoded chunks kept in memory, shared by all exports.
    #[arg(long, default_value_t = 512)]
    pub(crate) cache_mib: u64,
    /// Accept writes into an overlay per restore point (instant
    /// restore); the restore points never change. Overlays live in
    /// --overlay-dir and last as long as this process.
    #[arg(long)]
    pub(crate) writable: bool,
    /// Where overlays are kept (default: a directory in $TMPDIR).
    #[arg(long, requires = "writable")]
    pub(crate) overlay_dir: Option<PathBuf>,
}
