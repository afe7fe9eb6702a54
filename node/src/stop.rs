//! A stop signal for background workers and the node loop: set once
//! (on SIGTERM or SIGINT), awaited by async workers and by threads alike.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Cloneable; every clone sees the same signal.
#[derive(Clone)]
pub struct Stop(Arc<Inner>);

struct Inner {
    tx: watch::Sender<bool>,
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    pub fn new() -> Stop {
        Stop(Arc::new(Inner {
            tx: watch::Sender::new(false),
            flag: Mutex::new(false),
            cv: Condvar::new(),
        }))
    }

    /// Signal every waiter. Later calls do nothing.
    pub fn stop(&self) {
        *self.0.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.cv.notify_all();
        self.0.tx.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.flag.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once [`Stop::stop`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.0.tx.subscribe();
        // The sender lives as long as `self`: this returns only on stop.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Block the thread up to `d` or until stopped; returns whether it
    /// is stopped.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let g = self.0.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .0
            .cv
            .wait_timeout_while(g, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// Wait for SIGTERM or SIGINT (handlers installed when this is called, so
/// call it before announcing readiness), then log "shutting down" and
/// signal `stop`. A second signal exits the process at once (status 1).
/// Call from within a tokio runtime.
pub fn on_signals(stop: Stop, what: &'static str, timeout: Duration) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            timeout_s = timeout.as_secs(),
            "{what} shutting down"
        );
        stop.stop();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal during the shutdown: exiting at once");
        std::process::exit(1);
    });
    Ok(())
}

/// The log records of a shutdown's end: the tasks it interrupted, those
/// it gave up waiting for, and "stopped".
pub fn log_stopped(what: &str, r: &crate::ShutdownReport, timeout: Duration) {
    // Task ids as numbers, as they were before ids were typed.
    let ids = |v: &[arca_catalog::TaskId]| v.iter().map(|t| t.get()).collect::<Vec<_>>();
    if !r.interrupted.is_empty() {
        tracing::warn!(
            tasks = ?ids(&r.interrupted),
            "{what}: {} task(s) interrupted by shutdown",
            r.interrupted.len()
        );
    }
    if !r.abandoned.is_empty() {
        tracing::error!(
            tasks = ?ids(&r.abandoned),
            timeout_s = timeout.as_secs(),
            "{what}: the shutdown timeout of {} s passed with task(s) still running; exiting anyway (they are recorded as interrupted by shutdown)",
            timeout.as_secs()
        );
    }
    tracing::info!("{what} stopped");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn threads_and_tasks_wake_on_stop() {
        let s = Stop::new();
        assert!(!s.wait_timeout(Duration::from_millis(1)));
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.wait_timeout(Duration::from_secs(600)))
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let a = {
            let s = s.clone();
            rt.spawn(async move { s.stopped().await })
        };
        s.stop();
        assert!(t.join().unwrap());
        rt.block_on(a).unwrap();
        assert!(s.is_stopped());
        // Waiting after the stop returns at once.
        rt.block_on(s.stopped());
        assert!(s.wait_timeout(Duration::from_secs(600)));
    }
}
