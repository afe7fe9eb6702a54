//! Helpers shared by the end-to-end tests: run the real `arca` binary
//! against a datastore in a temporary directory.
#![allow(dead_code, clippy::unwrap_used)]

pub mod daemon;
pub mod ext4;
pub mod images;
pub mod ntfs;
pub mod terminal;
pub mod ui;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const PASS: &str = "correct horse battery staple";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub ds: PathBuf,
    pub pass: String,
}

impl Env {
    /// A fresh encrypted datastore with small packs and 64 KiB image blocks.
    pub fn new() -> Env {
        Self::with_init(&[
            "--encryption",
            "repokey",
            "--pack-size-mib",
            "1",
            "--image-chunk-kib",
            "64",
        ])
    }

    pub fn with_init(args: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ds = dir.path().join("ds");
        let env = Env {
            dir,
            ds,
            pass: PASS.to_string(),
        };
        let mut a = vec!["datastore", "init", env.ds.to_str().unwrap()];
        a.extend_from_slice(args);
        env.ok(&a);
        env
    }

    /// An existing datastore at `ds` (inside `dir`) with its passphrase.
    pub fn at(dir: tempfile::TempDir, ds: PathBuf, passphrase: &str) -> Env {
        Env {
            dir,
            ds,
            pass: passphrase.to_string(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.env("ARCA_PASSPHRASE", &self.pass)
            .env("ARCA_DATASTORE", &self.ds)
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run, require exit 0, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "arca {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    pub fn backup_files(&self, dir: &Path, source: &str) -> serde_json::Value {
        self.json(&["backup", "files", dir.to_str().unwrap(), "--source", source])
    }

    pub fn snapshot_ids(&self) -> Vec<String> {
        self.json(&["snapshots"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every file of the datastore except the index, with size and mtime.
    pub fn listing(&self) -> BTreeMap<PathBuf, (u64, i64)> {
        let mut out = BTreeMap::new();
        walk(&self.ds, &mut |p, md| {
            if !p.starts_with(self.ds.join("index")) {
                out.insert(
                    p.to_path_buf(),
                    (md.len(), md.mtime_nsec() + md.mtime() * 1_000_000_000),
                );
            }
        });
        out
    }

    pub fn packs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        walk(&self.ds.join("packs"), &mut |p, md| {
            if md.is_file() && !p.file_name().unwrap().to_str().unwrap().starts_with('.') {
                v.push(p.to_path_buf());
            }
        });
        v.sort();
        v
    }
}

impl Env {
    /// `arca serve <protocol> --listen 127.0.0.1:0 <extra>` on this
    /// datastore, running until the [`Proc`] is dropped, and the address
    /// its first line announces (`nbd://127.0.0.1:PORT/`,
    /// `iscsi://127.0.0.1:PORT/`).
    pub fn serve(&self, protocol: &str, extra: &[&str]) -> (Proc, String) {
        let mut cmd = self.cmd(&["serve", protocol, "--listen", "127.0.0.1:0"]);
        let (child, l) = spawn_first_line(cmd.args(extra));
        let url = l
            .rsplit(" on ")
            .next()
            .unwrap_or_else(|| panic!("no address in {l:?}"))
            .trim()
            .to_string();
        (Proc(child), url)
    }
}

/// A child process, killed (and waited for) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` with its stdout piped (stderr inherited): the child and
/// the first line it printed. The rest of its output is read on a thread
/// (so that it never blocks on a full pipe) and dropped.
pub fn spawn_first_line(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    std::thread::spawn(move || for _ in out.lines() {});
    (child, l)
}

/// Run a client program (qemu-img, nbdinfo, iscsi-ls...), whatever its
/// exit status.
pub fn run_tool(name: &str, args: &[&str]) -> Output {
    Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e} (the README's test command installs it)"))
}

/// Run a client program that must succeed; its output.
pub fn tool(name: &str, args: &[&str]) -> Output {
    let out = run_tool(name, args);
    assert!(
        out.status.success(),
        "{name} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// [`tool`]'s standard output, as text.
pub fn tool_stdout(name: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&tool(name, args).stdout).into_owned()
}

/// `qemu-img convert` of the raw image at `url` (an NBD address) into
/// the raw file `out`, which must succeed.
pub fn qemu_img_to_raw(url: &str, out: &Path) {
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            url,
            out.to_str().unwrap(),
        ],
    );
}

/// Damage a file in place: the byte at `at` XOR `mask`.
pub fn flip_bits(path: &Path, at: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ mask], at).unwrap();
}

/// The checkout the tests run in, found at run time: cargo sets
/// `CARGO_MANIFEST_DIR` for the test process. The compile-time value would
/// do only as long as the binary was built in this checkout; a target
/// directory shared with another checkout (CI's clone) may hand over a
/// binary built there, whose compile-time path no longer exists.
pub fn source_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
}

/// The libiscsi client of tests/iscsi/lun.c (reads a whole LUN, writes
/// blocks), compiled into `dir`.
pub fn lun_client(dir: &Path) -> PathBuf {
    let src = source_dir().join("tests/iscsi/lun.c");
    let bin = dir.join("lun");
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .arg("-liscsi")
        .output()
        .expect("cc (and libiscsi-dev, installed by the README's test command)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Every entry below `dir`. An entry that vanishes while it is walked (a
/// temporary a running backup renames) is passed over.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.unwrap();
        let Ok(md) = e.metadata() else { continue };
        f(&e.path(), &md);
        if md.is_dir() {
            walk(&e.path(), f);
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Compressible text-like bytes.
pub fn text_bytes(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma ", "delta\n", "backup ", "restore ", "chunk ", "pack ",
    ];
    let r = random_bytes(n / 4 + 1, seed);
    let mut v = Vec::with_capacity(n + 16);
    let mut i = 0;
    while v.len() < n {
        v.extend_from_slice(words[(r[i % r.len()] % 8) as usize].as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

/// Compare two trees: kinds, contents, modes, mtimes, symlink targets,
/// xattrs and hard-link structure. Panics with the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let mut la = BTreeMap::new();
    let mut lb = BTreeMap::new();
    collect(a, a, &mut la);
    collect(b, b, &mut lb);
    assert_eq!(
        la.keys().collect::<Vec<_>>(),
        lb.keys().collect::<Vec<_>>(),
        "different entries"
    );
    let mut links_a: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut links_b: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for (rel, ma) in &la {
        let mb = &lb[rel];
        let (pa, pb) = (a.join(rel), b.join(rel));
        assert_eq!(ma.file_type(), mb.file_type(), "{rel:?}: kind");
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&pa).unwrap(),
                fs::read_link(&pb).unwrap(),
                "{rel:?}: target"
            );
            continue;
        }
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{rel:?}: mode");
        if !ma.is_dir() {
            assert_eq!(ma.mtime(), mb.mtime(), "{rel:?}: mtime");
            assert_eq!(ma.mtime_nsec(), mb.mtime_nsec(), "{rel:?}: mtime ns");
        }
        if ma.is_file() {
            assert_eq!(
                fs::read(&pa).unwrap(),
                fs::read(&pb).unwrap(),
                "{rel:?}: content"
            );
            if ma.nlink() > 1 {
                links_a.entry(ma.ino()).or_default().push(rel.clone());
                links_b.entry(mb.ino()).or_default().push(rel.clone());
            }
        }
        let xa: Vec<_> = xattr::list(&pa)
            .unwrap()
            .map(|n| (n.as_bytes().to_vec(), xattr::get(&pa, &n).unwrap()))
            .collect();
        let xb: Vec<_> = xattr::list(&pb)
            .unwrap()
            .map(|n| (n.as_bytes().to_vec(), xattr::get(&pb, &n).unwrap()))
            .collect();
        assert_eq!(xa, xb, "{rel:?}: xattrs");
    }
    let groups = |m: BTreeMap<u64, Vec<PathBuf>>| {
        let mut g: Vec<_> = m.into_values().collect();
        g.sort();
        g
    };
    assert_eq!(groups(links_a), groups(links_b), "hard link groups");
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, fs::Metadata>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        out.insert(
            e.path().strip_prefix(root).unwrap().to_path_buf(),
            md.clone(),
        );
        if md.is_dir() {
            collect(root, &e.path(), out);
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 (rcgen), in GnuTLS's
/// layout for clients: `<dir>/ca/ca-cert.pem`. Returns (cert, key, ca dir).
pub fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "arca test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("ca-cert.pem"), ca.pem()).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (s(c), s(k), s(ca_dir))
}

/// awscli against an S3 endpoint with the key `(access key id, secret)`
/// and nothing from the environment or the user's files; one attempt (a
/// 503 is reported, not retried for minutes), reads time out after 60 s.
pub fn aws(endpoint: &str, key: (&str, &str), args: &[&str]) -> std::process::Output {
    Command::new("aws")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["--endpoint-url", endpoint, "--cli-read-timeout", "60"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("aws: {e} (scripts/test.sh installs awscli)"))
}
