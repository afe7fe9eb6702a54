//! The one tracing subscriber of the `arca` binary.
//!
//! `--log-format text` (default) writes human lines to stderr;
//! `--log-format json` writes one JSON object a line to stdout, each with
//! `timestamp`, `level`, `target`, `message`, the event's fields and
//! (where there is one) its `span` (e.g. an export client's `peer`), and
//! the server's and node's start banner becomes records too (so every
//! stdout line of `arca server --log-format json` parses). The filter is
//! `ARCA_LOG`, else `RUST_LOG`, else `info,s3s=off,nfsserve=warn` (e.g.
//! `ARCA_LOG=arca_web=debug`): the S3 library logs every client error
//! (a wrong signature, a missing key) at ERROR, while the gateway's own
//! record of each request already says how it ended.
//! nfsserve's own per-connection records are kept at `warn` (the NFS
//! export logs each connection itself).

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether log records are JSON lines on stdout (then a command prints its
/// banner as records, not as plain lines).
pub fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

fn filter() -> EnvFilter {
    let spec = std::env::var("ARCA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let spec = if spec.trim().is_empty() {
        "info,s3s=off,nfsserve=warn".to_string()
    } else {
        spec
    };
    EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: ignoring the log filter {spec:?}: {e}");
        EnvFilter::new("info")
    })
}

/// Install the subscriber once, before any command runs.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let builder = tracing_subscriber::fmt().with_env_filter(filter());
    let _ = match format {
        LogFormat::Text => builder
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .try_init(),
    };
}
