//! `arca` on a pseudo-terminal, as a person runs it: util-linux `script`
//! gives it a terminal, the test reads what the terminal shows and types
//! into it (Ctrl-C included: the terminal turns it into SIGINT for the
//! foreground process, as an interactive shell's terminal does).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `arca` on a terminal.
pub struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    shown: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    /// Where in the shown text the next [`Terminal::wait_for`] looks from.
    from: usize,
}

/// `s` quoted for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Terminal {
    /// Start `arca ARGS` with `env` added to the environment. The shell
    /// `script` runs execs `arca`, so the process on the terminal is
    /// `arca` itself ([`Terminal::pid`]).
    pub fn start(env: &[(&str, &str)], args: &[&str]) -> Terminal {
        let cmd = std::iter::once(env!("CARGO_BIN_EXE_arca"))
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = Command::new("script");
        c.args(["-qefc", &format!("exec {cmd}"), "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("script(1) from util-linux");
        let shown = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = shown.clone();
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = out.read(&mut b) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&b[..n]);
            }
        });
        let stdin = child.stdin.take();
        Terminal {
            child,
            stdin,
            shown,
            reader: Some(reader),
            from: 0,
        }
    }

    /// Everything the terminal showed so far.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().unwrap()).to_string()
    }

    /// Wait until the terminal shows `text` after what earlier calls waited
    /// for.
    pub fn wait_for(&mut self, text: &str, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.shown();
            if let Some(i) = t[self.from.min(t.len())..].find(text) {
                self.from += i + text.len();
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {text:?}; the terminal shows:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.write(format!("{line}\n").as_bytes());
    }

    /// Press Ctrl-C.
    pub fn ctrl_c(&mut self) {
        self.write(&[0x03]);
    }

    fn write(&mut self, b: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
    }

    /// The process on the terminal (`arca`, the child of `script`), once
    /// it runs.
    pub fn pid(&self) -> u32 {
        let script = self.child.id();
        let path = format!("/proc/{script}/task/{script}/children");
        let mut pid = None;
        let end = Instant::now() + Duration::from_secs(30);
        while pid.is_none() {
            pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok());
            assert!(Instant::now() < end, "script(1) started no command");
            std::thread::sleep(Duration::from_millis(20));
        }
        pid.unwrap()
    }

    /// Wait until the command handles SIGINT itself (it has said what an
    /// interruption leaves behind), read from /proc.
    pub fn wait_catching_ctrl_c(&self, secs: u64) {
        let pid = self.pid();
        let end = Instant::now() + Duration::from_secs(secs);
        while !catches(pid, 2) {
            assert!(
                Instant::now() < end,
                "the command never listened for Ctrl-C; the terminal shows:\n{}",
                self.shown()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the command to end: its exit code (128 + the signal that
    /// ended it, as a shell says) and everything shown, then `script`'s own
    /// stderr.
    pub fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code().unwrap_or(-1), self.shown() + &err)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` catches `sig` (its handler is installed).
pub fn catches(pid: u32, sig: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (sig - 1)) != 0)
}

/// Run `arca ARGS` on a terminal, answering each prompt once it is shown.
/// Returns the exit code and everything the terminal showed (typed text
/// included, had it been echoed).
pub fn answering(env: &[(&str, &str)], args: &[&str], answers: &[(&str, &str)]) -> (i32, String) {
    let mut t = Terminal::start(env, args);
    for (prompt, answer) in answers {
        t.wait_for(prompt, 30);
        // Echo goes off right after the prompt is written.
        std::thread::sleep(Duration::from_millis(300));
        t.type_line(answer);
    }
    t.finish()
}
