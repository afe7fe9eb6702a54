//! `arca serve nfs` against a real NFS client on loopback: libnfs's
//! nfs-ls, nfs-cat and nfs-cp (no kernel mount). Listings and contents
//! are compared with the backed-up directory.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

mod common;

use common::{run_tool, tool};

/// The libnfs URL of `path` on the server at `addr` (host:port); the
/// export is `/`, so a path is written after a second `/`.
fn url(addr: &str, path: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    format!("nfs://{host}/{path}?nfsport={port}&mountport={port}&version=3")
}

/// host:port of the server from the address it announced.
fn addr_of(announced: &str) -> String {
    announced
        .strip_prefix("nfs://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// `nfs-ls` of a directory (`MODE NLINK UID GID SIZE NAME` lines):
/// (name, mode string, size), sorted by name. (This nfs-ls shows no
/// times; the file system's unit tests check them.)
fn ls(addr: &str, path: &str) -> Vec<(String, String, u64)> {
    let out = tool("nfs-ls", &[&url(addr, path)]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.last().unwrap().to_string();
            let size = f[f.len() - 2].parse().unwrap_or(u64::MAX);
            (name, f[0].to_string(), size)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn mode_string(m: u32, dir: bool) -> String {
    let mut s = String::from(if dir { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let b = (m >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn write(p: &Path, data: &[u8], mode: u32) {
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn file_restore_points_over_nfs_with_a_real_client() {
    let env = common::Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let multi = common::random_bytes(3 << 20, 5);
    let huge = common::random_bytes(64 << 20, 6);
    write(&src.join("small.txt"), b"hello over nfs\n", 0o640);
    write(&src.join("empty"), b"", 0o600);
    write(&src.join("multi.bin"), &multi, 0o644);
    write(&src.join("huge.bin"), &huge, 0o444);
    for i in 0..300 {
        write(
            &src.join(format!("sub/f{i:03}")),
            format!("{i}").as_bytes(),
            0o644,
        );
    }
    symlink("../small.txt", src.join("sub/link")).unwrap();
    let b = env.backup_files(&src, "web01");
    let id = b["snapshot"].as_str().unwrap().to_string();

    let state = env.path("nfs-state");
    let state_s = state.to_str().unwrap();
    let (proc1, announced) = env.serve("nfs", &["--state-dir", state_s]);
    let addr = addr_of(&announced);

    // The root lists the source, the source its restore point and latest.
    let root = ls(&addr, "");
    assert_eq!(
        root.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["web01"]
    );
    let points: Vec<String> = ls(&addr, "/web01").into_iter().map(|e| e.0).collect();
    let mut want = vec![id.clone(), "latest".to_string()];
    want.sort();
    assert_eq!(points, want);

    // Names, modes and sizes match the source, by id and through latest.
    for base in [format!("/web01/{id}"), "/web01/latest".to_string()] {
        let mut got = ls(&addr, &base);
        got.sort();
        let mut want: Vec<(String, String, u64)> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                let size = if m.is_dir() { u64::MAX } else { m.len() };
                (
                    e.file_name().into_string().unwrap(),
                    mode_string(m.mode() & 0o777, m.is_dir()),
                    size,
                )
            })
            .collect();
        want.sort();
        // Directory sizes are the file system's own: compare names and
        // modes only for them.
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.0, &g.1), (&w.0, &w.1), "{base}");
            if w.2 != u64::MAX {
                assert_eq!(g.2, w.2, "{base}: size of {}", g.0);
            }
        }
        assert_eq!(got.len(), want.len(), "{base}: {got:?}");
    }

    // A 301-entry directory lists whole (READDIRPLUS pages).
    let sub = ls(&addr, "/web01/latest/sub");
    assert_eq!(sub.len(), 301, "{sub:?}");
    assert!(sub.iter().any(|e| e.0 == "f299" && e.2 == 3));
    assert!(sub.iter().any(|e| e.0 == "link" && e.1.starts_with('l')));

    // Contents are byte-identical: small, empty, multi-chunk, 64 MiB.
    let cat = tool("nfs-cat", &[&url(&addr, "/web01/latest/small.txt")]);
    assert_eq!(cat.stdout, b"hello over nfs\n");
    for (name, data) in [
        ("empty", &b""[..]),
        ("multi.bin", &multi[..]),
        ("huge.bin", &huge[..]),
    ] {
        let out = env.path(&format!("copy-{name}"));
        tool(
            "nfs-cp",
            &[
                &url(&addr, &format!("/web01/{id}/{name}")),
                out.to_str().unwrap(),
            ],
        );
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got.len(), data.len(), "{name}");
        assert!(got == data, "{name}: bytes differ");
    }

    // A missing path is an error, not an empty file.
    let missing = run_tool("nfs-cat", &[&url(&addr, "/web01/latest/nope")]);
    assert!(!missing.status.success());

    // After a restart on the same state directory the tree is the same.
    drop(proc1);
    let (_proc2, announced) = env.serve("nfs", &["--state-dir", state_s]);
    let addr2 = addr_of(&announced);
    let cat = tool(
        "nfs-cat",
        &[&url(&addr2, &format!("/web01/{id}/small.txt"))],
    );
    assert_eq!(cat.stdout, b"hello over nfs\n");

    // A client outside --allow is disconnected: nothing lists or reads.
    let (_proc3, announced) = env.serve("nfs", &["--state-dir", state_s, "--allow", "10.0.0.0/8"]);
    let addr3 = addr_of(&announced);
    let refused = run_tool("nfs-ls", &[&url(&addr3, "")]);
    assert!(!refused.status.success() || refused.stdout.is_empty());
    let refused = run_tool("nfs-cat", &[&url(&addr3, "/web01/latest/small.txt")]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
}
