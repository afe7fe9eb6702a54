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

/// host:port of the server from the address it announced
/// (`nfs://HOST/?version=3&nfsport=P&mountport=P`).
fn addr_of(announced: &str) -> String {
    let host = announced
        .strip_prefix("nfs://")
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let port = announced
        .split("nfsport=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    format!("{host}:{port}")
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

/// A bare ONC RPC client over TCP (record marking, AUTH_NULL), enough to
/// keep a file handle across a server restart.
struct Rpc {
    sock: std::net::TcpStream,
    xid: u32,
}

const MOUNT: u32 = 100_005;
const NFS: u32 = 100_003;

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_opaque(b: &mut Vec<u8>, d: &[u8]) {
    put_u32(b, d.len() as u32);
    b.extend_from_slice(d);
    b.resize(b.len() + (4 - d.len() % 4) % 4, 0);
}

/// Reads XDR from a reply body.
struct Xdr<'a>(&'a [u8]);

impl Xdr<'_> {
    fn u32(&mut self) -> u32 {
        let v = u32::from_be_bytes(self.0[..4].try_into().unwrap());
        self.0 = &self.0[4..];
        v
    }
    fn skip(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }
    fn opaque(&mut self) -> Vec<u8> {
        let n = self.u32() as usize;
        let v = self.0[..n].to_vec();
        self.skip(n + (4 - n % 4) % 4);
        v
    }
    /// post_op_attr: a flag and, if set, fattr3 (84 bytes).
    fn skip_attr(&mut self) {
        if self.u32() == 1 {
            self.skip(84);
        }
    }
}

impl Rpc {
    fn connect(addr: &str) -> Rpc {
        let sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        Rpc { sock, xid: 1 }
    }

    /// Call and return the procedure's result (after the accepted-reply
    /// header).
    fn call(&mut self, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
        use std::io::{Read, Write};
        self.xid += 1;
        let mut m = Vec::new();
        for w in [self.xid, 0, 2, prog, vers, proc_, 0, 0, 0, 0] {
            put_u32(&mut m, w);
        }
        m.extend_from_slice(args);
        let mut rec = (0x8000_0000u32 | m.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&m);
        self.sock.write_all(&rec).unwrap();
        let mut body = Vec::new();
        loop {
            let mut mark = [0u8; 4];
            self.sock.read_exact(&mut mark).unwrap();
            let mark = u32::from_be_bytes(mark);
            let mut frag = vec![0u8; (mark & 0x7fff_ffff) as usize];
            self.sock.read_exact(&mut frag).unwrap();
            body.extend_from_slice(&frag);
            if mark & 0x8000_0000 != 0 {
                break;
            }
        }
        let mut x = Xdr(&body);
        assert_eq!(x.u32(), self.xid);
        assert_eq!(x.u32(), 1, "a reply");
        assert_eq!(x.u32(), 0, "accepted");
        x.u32();
        x.opaque(); // verifier
        assert_eq!(x.u32(), 0, "success");
        x.0.to_vec()
    }

    /// MOUNT `path`: the root handle.
    fn mount(&mut self, path: &str) -> Vec<u8> {
        let mut a = Vec::new();
        put_opaque(&mut a, path.as_bytes());
        let r = self.call(MOUNT, 3, 1, &a);
        let mut x = Xdr(&r);
        assert_eq!(x.u32(), 0, "MNT3_OK");
        x.opaque()
    }

    /// LOOKUP: status and, if found, the handle.
    fn lookup(&mut self, dir: &[u8], name: &str) -> (u32, Vec<u8>) {
        let mut a = Vec::new();
        put_opaque(&mut a, dir);
        put_opaque(&mut a, name.as_bytes());
        let r = self.call(NFS, 3, 3, &a);
        let mut x = Xdr(&r);
        let status = x.u32();
        (status, if status == 0 { x.opaque() } else { Vec::new() })
    }

    /// READ: status and data.
    fn read(&mut self, fh: &[u8], offset: u64, count: u32) -> (u32, Vec<u8>) {
        let mut a = Vec::new();
        put_opaque(&mut a, fh);
        a.extend_from_slice(&offset.to_be_bytes());
        put_u32(&mut a, count);
        let r = self.call(NFS, 3, 6, &a);
        let mut x = Xdr(&r);
        let status = x.u32();
        x.skip_attr();
        if status != 0 {
            return (status, Vec::new());
        }
        x.u32(); // count
        x.u32(); // eof
        (status, x.opaque())
    }

    /// WRITE (unstable): the status.
    fn write(&mut self, fh: &[u8], data: &[u8]) -> u32 {
        let mut a = Vec::new();
        put_opaque(&mut a, fh);
        a.extend_from_slice(&0u64.to_be_bytes());
        put_u32(&mut a, data.len() as u32);
        put_u32(&mut a, 0);
        put_opaque(&mut a, data);
        Xdr(&self.call(NFS, 3, 7, &a)).u32()
    }

    /// GETATTR: the status.
    fn getattr(&mut self, fh: &[u8]) -> u32 {
        let mut a = Vec::new();
        put_opaque(&mut a, fh);
        Xdr(&self.call(NFS, 3, 1, &a)).u32()
    }
}

const NFS3ERR_NOENT: u32 = 2;
const NFS3ERR_ROFS: u32 = 30;
const NFS3ERR_BADHANDLE: u32 = 10001;

#[test]
fn handles_outlive_a_restart_and_forged_handles_and_writes_are_refused() {
    let env = common::Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a.txt"), b"kept across restarts").unwrap();
    let id = env.backup_files(&src, "web01")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let state = env.path("nfs-state");
    let state_s = state.to_str().unwrap();

    let (proc1, announced) = env.serve("nfs", &["--state-dir", state_s]);
    let mut rpc = Rpc::connect(&addr_of(&announced));
    let root = rpc.mount("/");
    let mut fh = root.clone();
    for name in ["web01", id.as_str(), "d", "a.txt"] {
        let (status, h) = rpc.lookup(&fh, name);
        assert_eq!(status, 0, "lookup {name}");
        fh = h;
    }
    assert_eq!(rpc.read(&fh, 0, 100), (0, b"kept across restarts".to_vec()));
    assert_eq!(rpc.read(&fh, 5, 6), (0, b"across".to_vec()));
    assert_eq!(rpc.lookup(&root, "nope").0, NFS3ERR_NOENT);
    assert_eq!(rpc.write(&fh, b"x"), NFS3ERR_ROFS);
    let mut forged = fh.clone();
    forged[12] ^= 0x55;
    assert_eq!(rpc.getattr(&forged), NFS3ERR_BADHANDLE);
    assert_eq!(rpc.read(&forged, 0, 10).0, NFS3ERR_BADHANDLE);
    assert_eq!(rpc.getattr(&fh[..8]), NFS3ERR_BADHANDLE);
    drop(rpc);
    drop(proc1);

    // A new server process on the same state directory: the old handle
    // reads at once, with no MOUNT or LOOKUP on the new connection.
    let (_proc2, announced) = env.serve("nfs", &["--state-dir", state_s]);
    let mut rpc = Rpc::connect(&addr_of(&announced));
    assert_eq!(rpc.getattr(&fh), 0);
    assert_eq!(rpc.read(&fh, 0, 100), (0, b"kept across restarts".to_vec()));
    assert_eq!(rpc.getattr(&root), 0);
}
