//! Progress of long commands on stderr (`--progress`): a bar when stderr is
//! a terminal, or JSON lines for scripts and tests, or nothing.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arca_ingest::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// How a command shows its progress (`--progress`, `ARCA_PROGRESS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A progress bar on stderr when it is a terminal, else nothing.
    #[default]
    Auto,
    /// One JSON object a line on stderr, every 200 ms and once at the end:
    /// `{"progress":"backup","bytes_done":N,"bytes_total":M,"files":F}`
    /// (`bytes_total` is 0 while unknown).
    Json,
    /// Nothing.
    None,
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Set the mode once, before any command runs.
pub fn set_mode(m: Mode) {
    let v = match m {
        Mode::Auto => 0,
        Mode::Json => 1,
        Mode::None => 2,
    };
    MODE.store(v, Ordering::Relaxed);
}

fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Json,
        2 => Mode::None,
        _ => Mode::Auto,
    }
}

/// How often the JSON lines are written.
const JSON_EVERY: Duration = Duration::from_millis(200);

/// One JSON progress line: what runs, bytes done and expected, files.
fn json_line(what: &str, p: &Progress) -> String {
    serde_json::json!({
        "progress": what,
        "bytes_done": p.bytes.load(Ordering::Relaxed),
        "bytes_total": p.total.load(Ordering::Relaxed),
        "files": p.files.load(Ordering::Relaxed),
    })
    .to_string()
}

/// Draw `p` until the returned guard is dropped.
pub struct Bar {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    pub fn start(p: &Arc<Progress>, what: &'static str) -> Bar {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = match mode() {
            Mode::Json => Some(Self::json(p.clone(), what, stop.clone())),
            Mode::Auto if std::io::stderr().is_terminal() => {
                Some(Self::bar(p.clone(), what, stop.clone()))
            }
            Mode::Auto | Mode::None => None,
        };
        Bar { stop, thread }
    }

    fn json(
        p: Arc<Progress>,
        what: &'static str,
        s: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            // A closed stderr only ends the lines, never the command.
            let line = |p: &Progress| {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{}", json_line(what, p));
            };
            while !s.load(Ordering::Relaxed) {
                line(&p);
                let mut slept = Duration::ZERO;
                while slept < JSON_EVERY && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    slept += Duration::from_millis(20);
                }
            }
            line(&p);
        })
    }

    fn bar(
        p: Arc<Progress>,
        what: &'static str,
        s: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(what);
            while !s.load(Ordering::Relaxed) {
                let total = p.total.load(Ordering::Relaxed);
                let done = p.bytes.load(Ordering::Relaxed);
                bar.set_length(total.max(done));
                bar.set_position(done);
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A simple step counter for verify, gc and rebuild (on a terminal, with
/// `--progress auto`).
pub fn steps() -> impl Fn(&str, u64, u64) + Sync {
    let tty = std::io::stderr().is_terminal() && mode() == Mode::Auto;
    move |step: &str, done: u64, total: u64| {
        if tty && total > 0 {
            eprint!(
                "\r{step}: {done}/{total} ({:.0}%)   ",
                100.0 * done as f64 / total as f64
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_carries_the_counters() {
        let p = Progress::default();
        p.add(300);
        p.total.store(1000, Ordering::Relaxed);
        p.files.store(2, Ordering::Relaxed);
        let v: serde_json::Value = serde_json::from_str(&json_line("backup", &p)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"progress": "backup", "bytes_done": 300, "bytes_total": 1000, "files": 2})
        );
    }
}
