//! The arguments of `arca source` and `arca policy` (through a server):
//! add, list, edit and remove.

use clap::{Args, Subcommand};

use crate::KeepArgs;

#[derive(Subcommand, Debug)]
pub enum SourceCmd {
    /// Add a source: `files NAME PATH` or `image NAME PATH`.
    Add {
        /// What is backed up: `files` (a directory tree) or `image` (a
        /// disk image file or block device).
        #[arg(value_parser = crate::model_enum::<arca_model::SourceKind>(arca_model::SourceKind::NAMES))]
        kind: arca_model::SourceKind,
        /// The source's name, unique in its project: 1-128 letters,
        /// digits, `.`, `_`, `-` or `@`, not starting with `.` or `-`.
        name: String,
        /// Absolute path on the node: a directory (files) or an image file
        /// or block device (image); it must be under one of the node's
        /// source roots (`arca node list`).
        path: String,
        /// The node that reads it, by name (default: the embedded node).
        #[arg(long)]
        node: Option<String>,
        /// The project, by id (default: 1, `default`).
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
        /// A tag, for policies that match tags (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Assign this policy by name (otherwise a policy whose --match or
        /// --match-tag rule fits is assigned).
        #[arg(long)]
        policy: Option<String>,
        /// An image source fed by an agent: PATH is on the agent's host,
        /// and `arca agent run --image NAME=PATH` there runs its backups.
        #[arg(long)]
        agent: bool,
    },
    /// The sources: kind, path, project, policy and tags.
    List,
    /// Change a source: only what is given changes.
    Edit(SourceEdit),
    /// Remove a source, and say what becomes of its restore points: on a
    /// terminal it asks; otherwise give --keep-restore-points or
    /// --remove-restore-points.
    Remove {
        /// The source's name.
        name: String,
        /// Its project, when the name is used in several.
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
        /// Keep its restore points: they stay listed (and restorable)
        /// under its name.
        #[arg(long, conflicts_with = "remove_restore_points")]
        keep_restore_points: bool,
        /// Remove its restore points too: forget tasks delete them from
        /// their datastores, and the next gc frees their space. Refused
        /// (and the source kept) while one of them is protected.
        #[arg(long)]
        remove_restore_points: bool,
        /// With --remove-restore-points: follow the forget tasks to their end.
        #[arg(long)]
        wait: bool,
        /// The older spelling: `keep` or `remove`.
        #[arg(long, value_enum, hide = true, conflicts_with_all = ["keep_restore_points", "remove_restore_points"])]
        restore_points: Option<RestorePoints>,
    },
}

/// `arca source edit`.
#[derive(Args, Debug)]
pub struct SourceEdit {
    /// The source's name.
    pub name: String,
    /// Its project, when the name is used in several.
    #[arg(long)]
    pub project: Option<arca_model::ProjectId>,
    /// A new name.
    #[arg(long)]
    pub rename: Option<String>,
    /// A new path on its node (under the node's source roots).
    #[arg(long)]
    pub path: Option<String>,
    /// Replaces the tags (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Remove every tag.
    #[arg(long, conflicts_with = "tags")]
    pub no_tags: bool,
    /// Assign this policy (of the source's project).
    #[arg(long)]
    pub policy: Option<String>,
    /// Back to the policies' match rules.
    #[arg(long, conflicts_with = "policy")]
    pub no_policy: bool,
    /// A libvirt source's pre/post commands (they replace its hooks).
    #[command(flatten)]
    pub hooks: crate::vm_args::HookArgs,
    /// Remove the source's pre/post commands.
    #[arg(long, conflicts_with_all = ["pre", "post", "pre_failure_is_warning"])]
    pub no_hooks: bool,
}

/// What `arca source remove` does with the restore points.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RestorePoints {
    Keep,
    Remove,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum PolicyCmd {
    /// Add a policy: when its sources are backed up, where to, and how
    /// many restore points are kept.
    Add {
        /// The policy's name.
        name: String,
        /// When backups run (UTC): `every 15m`, `every 2h`; `hourly`,
        /// `daily`, `weekly`, `monthly`, `yearly`; or calendar events such
        /// as "Mon..Fri 22:00", "*-*-* 02:30", "Sat,Sun 03:00", "*:0/15".
        #[arg(long)]
        schedule: String,
        /// Only start backups in this window (UTC), e.g. "22:00-06:00" or
        /// "Mon..Fri 20:00-23:30"; a backup due outside it waits.
        #[arg(long)]
        window: Option<String>,
        /// The datastore its backups go to, by name (default: `default`).
        #[arg(long)]
        datastore: Option<String>,
        /// Higher runs first when tasks wait for a slot.
        #[arg(long, default_value_t = 0)]
        priority: i64,
        /// Assign sources whose name matches this glob.
        #[arg(long = "match")]
        match_pattern: Option<String>,
        /// Assign sources with this tag.
        #[arg(long = "match-tag")]
        match_tags: Vec<String>,
        #[command(flatten)]
        keep: KeepArgs,
        /// Recovery point objective: a source whose newest restore point
        /// is older than this is reported (notification, /metrics), e.g.
        /// 26h, 90m, 8d.
        #[arg(long, value_name = "DURATION")]
        rpo: Option<String>,
        /// The project, by id (default: 1, `default`).
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
    },
    /// The policies: schedule, window, retention, RPO and priority.
    List,
    /// Change a policy: only what is given changes.
    Edit(PolicyEdit),
    /// Remove a policy (refused while a task of it runs).
    Remove {
        name: String,
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
    },
    /// What the policy's retention would keep and remove now, and why:
    /// every restore point of every source it applies to, newest first
    /// (nothing is removed).
    Preview {
        /// The policy's name.
        name: String,
        /// Its project, when the name is used in several.
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
    },
    /// Apply the policy's retention now, without waiting for a backup: a
    /// prune task per source it applies to removes what `arca policy
    /// preview` shows as "remove" (protected and exported restore points
    /// stay). Their space comes back at the datastore's next gc.
    Prune {
        /// The policy's name.
        name: String,
        /// Its project, when the name is used in several.
        #[arg(long)]
        project: Option<arca_model::ProjectId>,
        /// Follow the prune tasks to their end and say what each removed
        /// (exit code 1 if one fails).
        #[arg(long)]
        wait: bool,
    },
}

/// `arca policy edit`.
#[derive(Args, Debug)]
pub struct PolicyEdit {
    /// The policy's name.
    pub name: String,
    /// Its project, when the name is used in several.
    #[arg(long)]
    pub project: Option<arca_model::ProjectId>,
    #[arg(long)]
    pub schedule: Option<String>,
    #[arg(long)]
    pub window: Option<String>,
    /// Backups may start at any time.
    #[arg(long, conflicts_with = "window")]
    pub no_window: bool,
    #[arg(long)]
    pub datastore: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Assign sources whose name matches this glob.
    #[arg(long = "match")]
    pub match_pattern: Option<String>,
    /// Replaces the tags whose sources take it (repeatable).
    #[arg(long = "match-tag")]
    pub match_tags: Vec<String>,
    /// Any --keep-* replaces the whole retention (the others become 0).
    #[command(flatten)]
    pub keep: KeepEdit,
    /// Recovery point objective in seconds.
    #[arg(long)]
    pub rpo_s: Option<i64>,
    /// Schedule backups (true) or not (false).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub enabled: Option<bool>,
}

/// Retention rules for `policy edit`: any given replaces the retention.
#[derive(Args, Debug, Clone, Default)]
pub struct KeepEdit {
    #[arg(long)]
    pub keep_last: Option<u32>,
    #[arg(long)]
    pub keep_hourly: Option<u32>,
    #[arg(long)]
    pub keep_daily: Option<u32>,
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    #[arg(long)]
    pub keep_monthly: Option<u32>,
    #[arg(long)]
    pub keep_yearly: Option<u32>,
}

impl KeepEdit {
    /// The new retention, if any rule was given.
    pub fn retention(&self) -> Option<arca_repo::prune::Retention> {
        let all = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        all.iter()
            .any(Option::is_some)
            .then(|| arca_repo::prune::Retention {
                keep_last: self.keep_last.unwrap_or(0),
                keep_hourly: self.keep_hourly.unwrap_or(0),
                keep_daily: self.keep_daily.unwrap_or(0),
                keep_weekly: self.keep_weekly.unwrap_or(0),
                keep_monthly: self.keep_monthly.unwrap_or(0),
                keep_yearly: self.keep_yearly.unwrap_or(0),
            })
    }
}
