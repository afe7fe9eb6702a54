//! The arguments of `arca task` and `arca report` through a server.

use clap::Subcommand;

use crate::{listing, model_enum};

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// The newest tasks: source, kind, state, start, duration, bytes and
    /// rate.
    List {
        /// Only tasks in this state.
        #[arg(long, value_parser = model_enum::<arca_model::TaskState>(arca_model::TaskState::NAMES))]
        state: Option<arca_model::TaskState>,
        /// Only tasks of this kind.
        #[arg(long, value_parser = model_enum::<arca_model::TaskKind>(arca_model::TaskKind::NAMES))]
        kind: Option<arca_model::TaskKind>,
        /// Only tasks of this source (its name).
        #[arg(long)]
        source: Option<String>,
        /// How many tasks, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// A task: times, duration, what it did, and its log.
    Show {
        /// The task's id (`arca task list`).
        id: arca_model::TaskId,
    },
    /// Ask the node to stop a running task, or drop a queued one.
    Cancel {
        /// The task's id (`arca task list`).
        id: arca_model::TaskId,
    },
    /// Run a failed or cancelled task again, as a new task with the same
    /// kind and parameters.
    Retry {
        /// The task's id (`arca task list --state failed`).
        id: arca_model::TaskId,
        /// Follow the new task to its end (progress bar; exit code 1 if
        /// it fails).
        #[arg(long)]
        wait: bool,
    },
}

/// The period and output of `arca report`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Start of the period (RFC 3339, YYYY-MM-DD or seconds since the
    /// epoch; UTC). Default: 7 days before --to.
    #[arg(long, value_parser = listing::parse_since)]
    pub from: Option<i64>,
    /// End of the period (as --from). Default: now.
    #[arg(long, value_parser = listing::parse_since)]
    pub to: Option<i64>,
    /// Print the report as CSV (a header row; RFC 4180); not with --json.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Per source: policy, RPO, last good restore point, next run,
    /// status and RPO compliance over the period (problems first); then
    /// per policy.
    Protection {
        #[command(flatten)]
        period: ReportArgs,
        /// Only this project (name or id).
        #[arg(long)]
        project: Option<String>,
    },
    /// Per datastore: its use now and over the period (used, logical,
    /// dedup and compression ratio).
    Storage {
        #[command(flatten)]
        period: ReportArgs,
        /// Only this datastore (name or id; `arca datastore list`).
        #[arg(value_name = "DATASTORE")]
        name: Option<String>,
    },
    /// The tasks that ended in the period, and per kind the counts,
    /// median and 95th percentile durations and mean throughput.
    Tasks {
        #[command(flatten)]
        period: ReportArgs,
        /// Only tasks of this kind.
        #[arg(long, value_parser = model_enum::<arca_model::TaskKind>(arca_model::TaskKind::NAMES))]
        kind: Option<arca_model::TaskKind>,
        /// Only tasks of this source (name or id).
        #[arg(long)]
        source: Option<String>,
    },
}
