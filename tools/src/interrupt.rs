//! What Ctrl-C says. A command that can be interrupted mid-way (a local
//! backup, following a task through the server) first says what an
//! interruption leaves behind; on SIGINT or SIGTERM that sentence is
//! printed and the command dies of the signal (the shell's status 130 for
//! SIGINT, 143 for SIGTERM), as a kill would end it: the datastore is safe
//! against that at any point. Commands that never call
//! [`explain`] keep the default: the signal ends them at once.

use std::sync::{Mutex, Once};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static SAYING: Mutex<Option<String>> = Mutex::new(None);
static LISTEN: Once = Once::new();

/// From now on, an interrupt prints `message` (on a line of its own, after
/// any progress bar) and ends the process.
pub fn explain(message: impl Into<String>) {
    *SAYING.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.into());
    LISTEN.call_once(|| {
        let mut signals = match Signals::new([SIGINT, SIGTERM]) {
            Ok(s) => s,
            // Then the default stays: the signal ends the command silently.
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch for Ctrl-C");
                return;
            }
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let msg = SAYING.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(m) = msg {
                    eprintln!("\n{m}");
                }
                // Die of the signal, as without this watch (no exit
                // handlers run under the threads still writing).
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
    });
}
