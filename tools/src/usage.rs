//! Usage errors found after parsing (an edit that changes nothing): said
//! as any error, but the exit code is 2, as for clap's own.

use clap::CommandFactory;

/// A command line that cannot mean anything; `main` exits with 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;

/// The long options of the subcommand at `path` (`["source", "edit"]`)
/// that change something: all but the global ones, the hidden ones and
/// those in `except` (which say what to change, not how).
pub fn change_flags(path: &[&str], except: &[&str]) -> Vec<String> {
    let root = crate::Cli::command();
    let mut cmd = &root;
    for p in path {
        match cmd.find_subcommand(p) {
            Some(c) => cmd = c,
            None => return Vec::new(),
        }
    }
    cmd.get_arguments()
        .filter(|a| !a.is_global_set() && !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .filter(|l| !except.contains(l))
        .map(|l| format!("--{l}"))
        .collect()
}

/// "nothing to change; give one of --a, --b": an edit or set command
/// given no change, refused before any request is sent.
pub fn nothing_to_change(path: &[&str], except: &[&str]) -> anyhow::Error {
    UsageError(format!(
        "nothing to change; give one of {}",
        change_flags(path, except).join(", ")
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_flags_of_each_edit_command() {
        assert_eq!(
            change_flags(&["source", "edit"], &["project", "pre-failure-is-warning"]),
            [
                "--rename",
                "--path",
                "--tag",
                "--no-tags",
                "--policy",
                "--no-policy",
                "--pre",
                "--post",
                "--no-hooks"
            ]
        );
        assert_eq!(
            change_flags(&["datastore", "set"], &[]),
            [
                "--gc-schedule",
                "--verify-schedule",
                "--verify-max-age-days"
            ]
        );
        let policy = change_flags(&["policy", "edit"], &["project"]);
        for f in ["--schedule", "--no-window", "--keep-last", "--enabled"] {
            assert!(policy.contains(&f.to_string()), "{f} not in {policy:?}");
        }
        assert!(!policy.contains(&"--json".to_string()), "{policy:?}");
        let e = nothing_to_change(&["node", "set"], &[]);
        assert!(e.downcast_ref::<UsageError>().is_some());
        assert_eq!(
            e.to_string(),
            "nothing to change; give one of --source-root, --no-source-roots, --restore-root, --default-restore-roots, --allow-block-devices"
        );
    }
}
