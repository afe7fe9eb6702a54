//! Progress bars on stderr, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arca_ingest::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Draw `p` until the returned guard is dropped.
pub struct Bar {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    pub fn start(p: &std::sync::Arc<Progress>, what: &'static str) -> Bar {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Bar { stop, thread: None };
        }
        let (p, s) = (p.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
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
        });
        Bar {
            stop,
            thread: Some(thread),
        }
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

/// A simple step counter for verify, gc and rebuild.
pub fn steps() -> impl Fn(&str, u64, u64) + Sync {
    let tty = std::io::stderr().is_terminal();
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
