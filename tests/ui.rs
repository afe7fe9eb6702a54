//! The web UI end to end: `arca server` on loopback, driven by headless
//! Chromium (Debian's `chromium`) through playwright-core. Each test
//! starts its own server and runs one scenario script of tests/ui/
//! (`node tests/ui/NAME.mjs`), which signs in, clicks through pages,
//! checks what they show against the API and the files on disk, runs
//! axe-core on every page (no serious or critical violation) and keeps a
//! screenshot of each page in tests/ui/artifacts/NAME/. The npm packages
//! (playwright-core, axe-core) come from tests/ui/package-lock.json;
//! they are installed on first use.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::daemon::Daemon;

/// A server for one scenario: its admin password, a work directory
/// below its source and restore roots.
pub struct Ui {
    _dir: tempfile::TempDir,
    pub work: PathBuf,
    pub server: Daemon,
    pub password: String,
}

impl Ui {
    pub fn start() -> Ui {
        common::ui::npm_packages();
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let server = Daemon::server(&dir.path().join("data"), &[]);
        let password = server.first_password();
        Ui {
            _dir: dir,
            work,
            server,
            password,
        }
    }

    /// Run tests/ui/NAME.mjs against this server; panics with its output
    /// (and the server's log) when it fails.
    pub fn run(&self, name: &str) {
        common::ui::run_scenario(name, &self.server, &self.password, &self.work, &[]);
    }
}

#[test]
fn the_frame_sign_in_pages_session_and_password() {
    Ui::start().run("shell");
}

#[test]
fn restore_points_browse_download_restore_mount_and_search() {
    Ui::start().run("files");
}

#[test]
fn sources_policies_and_tasks_backup_cancel_retry_delete() {
    Ui::start().run("backup");
}

#[test]
fn the_ui_never_builds_markup_from_data() {
    // Names and contents from backups are untrusted: the UI writes text
    // nodes and attributes only (web/ui/lib/dom.js). No HTML parsing API
    // may appear in its sources.
    let mut bad = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/ui");
    common::walk(&root, &mut |p, m| {
        if m.is_file() && p.extension().is_some_and(|e| e == "js") {
            let s = std::fs::read_to_string(p).unwrap();
            for needle in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "createContextualFragment",
                "DOMParser",
                "eval(",
                "new Function",
            ] {
                if s.contains(needle) {
                    bad.push(format!("{}: {needle}", p.display()));
                }
            }
        }
    });
    assert!(bad.is_empty(), "HTML built from strings: {bad:?}");
}

#[test]
fn administration_dashboard_datastores_reports_audit_users_tokens() {
    Ui::start().run("admin");
}
