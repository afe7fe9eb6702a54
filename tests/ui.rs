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
use std::process::Command;
use std::sync::OnceLock;

use common::daemon::Daemon;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// `npm ci` once per test run, when the packages are missing or stale.
fn npm_packages() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = ui_dir();
        let stamp = dir.join("node_modules/.package-lock.json");
        let lock = std::fs::read(dir.join("package-lock.json")).unwrap();
        let fresh = std::fs::metadata(&stamp).is_ok()
            && std::fs::read_dir(dir.join("node_modules/playwright-core")).is_ok()
            && std::fs::read(&stamp).is_ok_and(|s| {
                // npm writes its view of the tree there; the lock file's
                // packages must all be in it.
                let s = String::from_utf8_lossy(&s).to_string();
                let l = String::from_utf8_lossy(&lock).to_string();
                ["playwright-core", "axe-core"]
                    .iter()
                    .all(|p| s.contains(&format!("node_modules/{p}")) && l.contains(p))
            });
        if !fresh {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .expect("npm (Node.js) is needed for the UI tests");
            assert!(
                out.status.success(),
                "npm ci in tests/ui failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

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
        npm_packages();
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
        let artifacts = ui_dir().join("artifacts").join(name);
        let _ = std::fs::remove_dir_all(&artifacts);
        let out = Command::new("node")
            .arg(ui_dir().join(format!("{name}.mjs")))
            .env("ARCA_URL", &self.server.url)
            .env("ARCA_USER", "admin")
            .env("ARCA_PASSWORD", &self.password)
            .env("ARCA_WORK", &self.work)
            .env("ARTIFACTS", &artifacts)
            .current_dir(ui_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "UI scenario {name} failed ({}):\n{stdout}\n{stderr}\nscreenshots: {}\nserver log (last 40 lines):\n{}",
            out.status,
            artifacts.display(),
            self.server
                .stderr()
                .iter()
                .rev()
                .take(40)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!("{stdout}");
        let shots = std::fs::read_dir(&artifacts).map_or(0, |d| d.count());
        assert!(shots > 0, "scenario {name} kept no screenshot");
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
