//! Bad input: a clear message, exit 1, nothing changed.

use std::fs;

use crate::common::*;

fn fails_cleanly(env: &Env, cmd: &mut std::process::Command, expect: &str) {
    let before = env.listing();
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(expect), "expected {expect:?} in {err:?}");
    assert_eq!(before, env.listing(), "the datastore changed");
}

#[test]
fn bad_inputs() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    env.backup_files(&src, "s");
    let s = src.to_str().unwrap();

    fails_cleanly(
        &env,
        env.cmd(&["backup", "files", s])
            .env("ARCA_PASSPHRASE", "wrong"),
        "wrong passphrase",
    );
    fails_cleanly(
        &env,
        env.cmd(&["snapshots"]).env_remove("ARCA_PASSPHRASE"),
        "passphrase",
    );
    let pf = env.path("pass");
    fs::write(&pf, "also wrong\n").unwrap();
    fails_cleanly(
        &env,
        &mut env.cmd(&["verify", "--passphrase-file", pf.to_str().unwrap()]),
        "wrong passphrase",
    );
    fails_cleanly(
        &env,
        &mut env.cmd(&["restore", "0123abcd", env.path("x").to_str().unwrap()]),
        "not found",
    );
    fails_cleanly(&env, &mut env.cmd(&["ls", "zzz"]), "not a snapshot id");
    fails_cleanly(
        &env,
        &mut env.cmd(&["backup", "files", env.path("missing").to_str().unwrap()]),
        "missing",
    );
    fails_cleanly(
        &env,
        &mut env.cmd(&["prune", "--dry-run"]),
        "no --keep-* rule",
    );
    fails_cleanly(
        &env,
        &mut env.cmd(&["verify", "--read-data-subset", "150"]),
        "percentage",
    );
    fails_cleanly(
        &env,
        &mut env.cmd(&["datastore", "init", env.ds.to_str().unwrap()]),
        "already exists",
    );

    // Not a datastore.
    let not = env.path("not-a-datastore");
    fs::create_dir_all(&not).unwrap();
    let o = env
        .cmd(&["snapshots"])
        .env("ARCA_DATASTORE", &not)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an Arca datastore"));
    assert_eq!(fs::read_dir(&not).unwrap().count(), 0, "nothing created");

    // A datastore of a newer format version.
    let cfg = env.ds.join("config");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"format_version\": 1", "\"format_version\": 99");
    fs::write(&cfg, &text).unwrap();
    fails_cleanly(
        &env,
        &mut env.cmd(&["snapshots"]),
        "newer than this arca supports",
    );
    fails_cleanly(
        &env,
        &mut env.cmd(&["backup", "files", s]),
        "newer than this arca supports",
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), text);
}

/// `arca ls latest | head -1`: the reader goes away after one line; arca
/// ends as a Unix tool does (SIGPIPE), without a panic or a stack trace.
#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    // Far more than a pipe buffer (64 KiB) of listing.
    for i in 0..3000 {
        fs::write(
            src.join(format!("a-rather-long-file-name-to-fill-the-pipe-{i:05}")),
            b"x",
        )
        .unwrap();
    }
    env.backup_files(&src, "s");
    let mut child = env
        .cmd(&["ls", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    let n = child.stdout.take().unwrap().read(&mut first).unwrap();
    assert!(n > 0, "no listing at all");
    // The pipe's reader is dropped here, as `head` exits.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "a panic: {err}");
    assert!(err.is_empty(), "stderr: {err}");
    // Killed by SIGPIPE (13 on Linux), as `head`'s other writers are.
    assert_eq!(status.signal(), Some(13), "{status:?}");
}

/// `arca server` on a port that is taken fails at once, says which
/// address, and creates nothing (no data directory with secrets in it).
#[test]
fn a_server_on_a_busy_port_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_arca"))
        .args(["server", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("listening on {addr}")), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!data.exists(), "the data directory was created");
}
