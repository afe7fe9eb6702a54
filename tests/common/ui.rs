//! Runs a web UI scenario (tests/ui/NAME.mjs, headless Chromium through
//! playwright-core) against a running server: used by tests/ui.rs and by
//! the tests whose scenario needs a lab of their own (tests/libvirt/ui.rs:
//! sshd and libvirtd). See tests/ui.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::daemon::Daemon;

pub fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// `npm ci` once per test run, when the packages are missing or stale.
pub fn npm_packages() {
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

/// Run tests/ui/NAME.mjs against `server` (signed in as admin with
/// `password`, files under `work`, and `extra` environment variables);
/// panics with its output and the server's log when it fails.
pub fn run_scenario(
    name: &str,
    server: &Daemon,
    password: &str,
    work: &Path,
    extra: &[(&str, String)],
) {
    npm_packages();
    let artifacts = ui_dir().join("artifacts").join(name);
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .arg(ui_dir().join(format!("{name}.mjs")))
        .env("ARCA_URL", &server.url)
        .env("ARCA_USER", "admin")
        .env("ARCA_PASSWORD", password)
        .env("ARCA_WORK", work)
        .env("ARTIFACTS", &artifacts)
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
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
        server
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
