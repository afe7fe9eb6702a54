//! The libvirt strategy end to end, with real components only: the system
//! libvirtd with the QEMU/KVM driver (libvirt 11.3, QEMU 10 from
//! bookworm-backports), a KVM guest, and an sshd of the test's own on
//! loopback. `arca backup libvirt` runs the pull-mode backup job with
//! checkpoints (full, then incremental), reads the disks over NBD through
//! the SSH connection, and `arca libvirt import` recreates the domain under
//! a new name; disks are compared with `qemu-img compare`.
//!
//! Skipped (with the reason printed) only when /dev/kvm is missing.
#![allow(clippy::unwrap_used)]

#[path = "libvirt/agent.rs"]
mod agent;
#[path = "libvirt/block.rs"]
mod block;
mod common;
#[path = "libvirt/control.rs"]
mod control;
#[path = "libvirt/hooks.rs"]
mod hooks;
#[path = "libvirt/lab.rs"]
mod lab;
#[path = "libvirt/ui.rs"]
mod ui;

use common::{run_tool, tool, Env};
use lab::{remove_domain, unique, virsh, Domain, Sshd};
use serde_json::Value;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// `Env::new()` datastores cut images into 64 KiB blocks, the qcow2
/// cluster size and the dirty bitmaps' granularity.
const CHUNK: u64 = 64 * KIB;

fn skip() -> bool {
    match lab::skip_reason() {
        Some(why) => {
            eprintln!("SKIPPED: {why}");
            true
        }
        None => {
            lab::libvirtd();
            false
        }
    }
}

fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    v.extend(base.iter().cloned());
    v
}

fn json(env: &Env, args: &[String]) -> Value {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    env.json(&a)
}

/// Run arca expecting failure: its error message.
fn fails(env: &Env, args: &[String]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = env.run(&a);
    assert!(!o.status.success(), "arca {a:?} succeeded");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The bytes of `len` at `off` of a disk image of any format.
pub(crate) fn read_at(image: &str, fmt: &str, off: u64, len: u64) -> Vec<u8> {
    // One file per call: tests of this binary run at once.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let out = std::env::temp_dir().join(format!(
        "arca-libvirt-read-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&out);
    tool(
        "qemu-img",
        &[
            "convert",
            "-U",
            "-f",
            fmt,
            "-O",
            "raw",
            image,
            out.to_str().unwrap(),
        ],
    );
    let all = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    all[off as usize..(off + len) as usize].to_vec()
}

/// A domain undefined (with its checkpoints) when dropped.
pub(crate) struct Undefine(pub String);

impl Drop for Undefine {
    fn drop(&mut self) {
        remove_domain(&self.0);
    }
}

/// `arca libvirt import SNAPSHOT --name <unique prefix> --dir
/// <env>/imported` (a new folder QEMU can reach), which must succeed: its
/// JSON, and the new domain, undefined when dropped.
fn import_copy(env: &Env, ssh: &Sshd, snapshot: &str, prefix: &str) -> (Value, Undefine) {
    let dir = env.path("imported");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let copy = unique(prefix);
    let imp = json(
        env,
        &with(
            &ssh.args(),
            &[
                "libvirt",
                "import",
                snapshot,
                "--name",
                &copy,
                "--dir",
                dir.to_str().unwrap(),
            ],
        ),
    );
    (imp, Undefine(copy))
}

#[test]
fn full_then_incremental_backup_and_import_of_a_running_kvm_guest() {
    if skip() {
        return;
    }
    let env = Env::new();
    let ssh = Sshd::start(env.dir.path());
    let dom = Domain::define(env.dir.path(), &unique("vm"), 64);
    dom.start();
    dom.write(0x5a, MIB, 64 * KIB);

    // The inventory lists the domain with its disk.
    let list = json(&env, &with(&ssh.args(), &["libvirt", "list"]));
    assert_eq!(list["host_key"]["fingerprint"], ssh.fingerprint.as_str());
    let d = list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == dom.name.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(d["state"], "running");
    assert_eq!(d["disks"][0]["target"], "vda");
    assert_eq!(d["disks"][0]["format"], "qcow2");
    assert_eq!(d["disks"][0]["size"], 64 * MIB);
    assert_eq!(d["disks"][0]["source"], dom.disk.to_str().unwrap());

    // Full: only the allocated extents are read.
    let backup = with(&ssh.args(), &["backup", "libvirt", &dom.name]);
    let full = json(&env, &backup);
    assert!(full["mode"].as_str().unwrap().contains("full"), "{full}");
    assert_eq!(full["consistency"], "crash");
    assert!(full["bytes_read"].as_u64().unwrap() < 4 * MIB, "{full}");
    assert!(full["bytes_read"].as_u64().unwrap() >= 64 * KIB, "{full}");
    let ck1 = full["checkpoint"].as_str().unwrap().to_string();
    assert_eq!(dom.checkpoints(), [ck1.as_str()]);
    // The pull-mode job is over.
    let job = run_tool("virsh", &["-c", lab::URI, "backup-dumpxml", &dom.name]);
    assert!(!job.status.success(), "a backup job is still running");

    // Incremental: 128 KiB at 8 MiB (2 blocks) and 4 KiB at 40 MiB (one
    // block, rounded up to the bitmap's and the datastore's 64 KiB).
    dom.write(0x11, 8 * MIB, 128 * KIB);
    dom.write(0x22, 40 * MIB + 4 * KIB, 4 * KIB);
    let inc = json(
        &env,
        &[backup.clone(), vec!["--tag".into(), "second".into()]].concat(),
    );
    let mode = inc["mode"].as_str().unwrap();
    assert!(mode.contains("incremental"), "{inc}");
    assert_eq!(inc["bytes_read"].as_u64().unwrap(), 3 * CHUNK, "{inc}");
    assert_eq!(inc["bytes_total"].as_u64().unwrap(), 64 * MIB);
    assert!(
        inc["disks"][0]["mode"].as_str().unwrap().contains(&ck1),
        "{inc}"
    );
    let ck2 = inc["checkpoint"].as_str().unwrap().to_string();
    assert_ne!(ck1, ck2);
    // The older checkpoint is gone once the restore point is committed.
    assert_eq!(dom.checkpoints(), [ck2.as_str()]);
    let snap = inc["snapshot"].as_str().unwrap().to_string();

    // The checkpoint's bitmap is lost inside QEMU (as after a disk was
    // swapped): libvirt cannot start the incremental job, so the backup
    // is full against the parent, says why, and starts a new checkpoint.
    let node = virsh(&["qemu-monitor-command", &dom.name, "--hmp", "info block"]);
    let node = node.split(':').next().unwrap().trim().to_string();
    let qmp = serde_json::json!({"execute": "block-dirty-bitmap-remove",
        "arguments": {"node": node, "name": ck2}});
    virsh(&["qemu-monitor-command", &dom.name, &qmp.to_string()]);
    let lost = json(&env, &backup);
    let mode = lost["mode"].as_str().unwrap();
    assert!(
        mode.contains(&format!(
            "the incremental job against checkpoint {ck2} could not start"
        )),
        "{lost}"
    );
    assert!(mode.starts_with("full"), "{lost}");
    assert!(lost["bytes_read"].as_u64().unwrap() >= 4 * CHUNK, "{lost}");
    assert_eq!(lost["bytes_added"], 0, "{lost}");
    let w = lost["warnings"].to_string();
    assert!(
        w.contains(&format!(
            "old checkpoint {ck2} removed from libvirt's metadata only"
        )),
        "{lost}"
    );
    let ck2 = lost["checkpoint"].as_str().unwrap().to_string();
    assert_eq!(dom.checkpoints(), [ck2.as_str()]);

    // Import under a new name, as qcow2, and start it.
    let new_name = unique("copy");
    let target_dir = env.path("imported");
    std::fs::create_dir(&target_dir).unwrap();
    std::fs::set_permissions(
        &target_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = target_dir.to_str().unwrap();
    let import = with(
        &ssh.args(),
        &[
            "libvirt", "import", &snap, "--name", &new_name, "--dir", dir,
        ],
    );
    let imp = json(&env, &[import, vec!["--start".into()]].concat());
    let new_disk = format!("{dir}/{new_name}-vda.qcow2");
    assert_eq!(imp["disks"][0]["path"], new_disk.as_str());
    struct Undefine(String);
    impl Drop for Undefine {
        fn drop(&mut self) {
            remove_domain(&self.0);
        }
    }
    let _undefine = Undefine(new_name.clone());
    assert_eq!(virsh(&["domstate", &new_name]).trim(), "running");
    let xml = virsh(&["dumpxml", "--inactive", &new_name]);
    assert!(xml.contains(&new_disk), "{xml}");
    assert!(
        !xml.contains("52:54:00:ab:cd:ef"),
        "the MAC was copied: {xml}"
    );
    let old_uuid = virsh(&["domuuid", &dom.name]);
    assert_ne!(virsh(&["domuuid", &new_name]).trim(), old_uuid.trim());
    assert!(!xml.contains(old_uuid.trim()));
    remove_domain(&new_name);

    // The copy holds what the guest had written by the second backup; the
    // original is stopped so that its disk is read at rest.
    dom.destroy();
    let orig = dom.disk.to_str().unwrap();
    tool(
        "qemu-img",
        &["compare", "-f", "qcow2", "-F", "qcow2", orig, &new_disk],
    );
    assert!(read_at(&new_disk, "qcow2", MIB, 64 * KIB)
        .iter()
        .all(|&b| b == 0x5a));
    assert!(read_at(&new_disk, "qcow2", 8 * MIB, 128 * KIB)
        .iter()
        .all(|&b| b == 0x11));
    assert!(read_at(&new_disk, "qcow2", 40 * MIB + 4 * KIB, 4 * KIB)
        .iter()
        .all(|&b| b == 0x22));

    // The same name again is refused, and nothing is written.
    let fresh = unique("copy");
    let again = with(
        &ssh.args(),
        &[
            "libvirt", "import", &snap, "--name", &dom.name, "--dir", dir,
        ],
    );
    let err = fails(&env, &again);
    assert!(err.contains("already exists"), "{err}");
    assert!(!std::path::Path::new(&format!("{dir}/{}-vda.qcow2", dom.name)).exists());

    // Raw import: sparse on the host, same bytes.
    let raw = json(
        &env,
        &with(
            &ssh.args(),
            &[
                "libvirt", "import", &snap, "--name", &fresh, "--dir", dir, "--format", "raw",
            ],
        ),
    );
    let _undefine_raw = Undefine(fresh.clone());
    let raw_path = raw["disks"][0]["path"].as_str().unwrap().to_string();
    let md = std::fs::metadata(&raw_path).unwrap();
    assert_eq!(md.len(), 64 * MIB);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&md) * 512 < 8 * MIB,
        "the raw import is not sparse"
    );
    tool(
        "qemu-img",
        &["compare", "-f", "qcow2", "-F", "raw", orig, &raw_path],
    );

    // Shut off: the disk file is read with qemu-nbd on the host, against
    // the checkpoint's bitmap, or whole with the reason.
    let off = json(&env, &backup);
    let mode = off["mode"].as_str().unwrap();
    assert!(
        mode.contains("shut off, its disk files read with qemu-nbd"),
        "{off}"
    );
    if mode.contains("incremental") {
        assert_eq!(off["bytes_read"], 0, "{off}");
        assert_eq!(off["checkpoint"], ck2.as_str());
    } else {
        assert!(mode.contains("full"), "{off}");
    }
    let out = env.path("offline.raw");
    env.ok(&[
        "restore",
        off["snapshot"].as_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "qcow2",
            "-F",
            "raw",
            orig,
            out.to_str().unwrap(),
        ],
    );
}

#[test]
fn bad_hosts_keys_and_domains_fail_clearly_without_a_restore_point() {
    if skip() {
        return;
    }
    let env = Env::new();
    let ssh = Sshd::start(env.dir.path());
    let dom = Domain::define(env.dir.path(), &unique("bad"), 16);
    dom.start();
    let before = env.snapshot_ids();
    let key = ssh.key.display().to_string();
    let other = ssh.other_key.display().to_string();
    // Port 1 on loopback: nothing listens.
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--host".into(),
                "127.0.0.1:1".into(),
                "-i".into(),
                key.clone(),
            ],
            "cannot reach 127.0.0.1:1",
        ),
        (
            vec!["--host".into(), ssh.addr(), "-i".into(), other.clone()],
            "authentication failed",
        ),
        (
            vec![
                "--host".into(),
                ssh.addr(),
                "-i".into(),
                key.clone(),
                "--known-host".into(),
                "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into(),
            ],
            "changed: expected SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU, got",
        ),
        (
            vec![
                "--host".into(),
                ssh.addr(),
                "-i".into(),
                key.clone(),
                "--known-host".into(),
                "MD5:xx".into(),
            ],
            "must start with SHA256:",
        ),
        (
            vec![
                "--host".into(),
                ssh.addr(),
                "-i".into(),
                env.path("nope").display().to_string(),
            ],
            "reading the SSH key",
        ),
    ];
    for (args, want) in cases {
        let err = fails(&env, &with(&args, &["backup", "libvirt", &dom.name]));
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let err = fails(
        &env,
        &with(&ssh.args(), &["backup", "libvirt", "no-such-domain"]),
    );
    assert!(err.contains("no domain \"no-such-domain\""), "{err}");

    // A failing pre command fails the backup, runs the post commands, and
    // leaves no checkpoint behind.
    let marker = env.path("post-ran");
    let pre = r#"["sh","-c","echo frozen-not >&2; exit 3"]"#.to_string();
    let post = serde_json::to_string(&["touch", marker.to_str().unwrap()]).unwrap();
    let err = fails(
        &env,
        &with(
            &ssh.args(),
            &[
                "backup", "libvirt", &dom.name, "--pre", &pre, "--post", &post,
            ],
        ),
    );
    assert!(
        err.contains("pre command failed") && err.contains("frozen-not"),
        "{err}"
    );
    assert!(marker.exists(), "the post command did not run");
    assert!(dom.checkpoints().is_empty(), "{:?}", dom.checkpoints());
    // --pre must be an argv array, not a shell string.
    let err = fails(
        &env,
        &with(
            &ssh.args(),
            &[
                "backup",
                "libvirt",
                &dom.name,
                "--pre",
                "virsh domfsfreeze x",
            ],
        ),
    );
    assert!(err.contains("JSON array"), "{err}");
    assert_eq!(env.snapshot_ids(), before);

    // Pre commands that succeed make an application-consistent restore
    // point; the arguments reach the host unchanged (no shell parsing).
    let odd = env.path("it's a $(file)");
    let pre = serde_json::to_string(&["touch", odd.to_str().unwrap()]).unwrap();
    let ok = json(
        &env,
        &with(
            &ssh.args(),
            &["backup", "libvirt", &dom.name, "--pre", &pre],
        ),
    );
    assert_eq!(ok["consistency"], "application");
    assert!(odd.exists());
    assert_eq!(env.snapshot_ids().len(), before.len() + 1);
    let ck = ok["checkpoint"].as_str().unwrap().to_string();

    // The export disappears after the job started (a post command aborts
    // it): the backup fails, nothing is listed, the new checkpoint is
    // deleted and the last good one stays.
    let abort =
        serde_json::to_string(&["virsh", "-c", lab::URI, "domjobabort", &dom.name]).unwrap();
    let err = fails(
        &env,
        &with(
            &ssh.args(),
            &["backup", "libvirt", &dom.name, "--post", &abort],
        ),
    );
    assert!(err.contains("ended before its disks were read"), "{err}");
    assert_eq!(env.snapshot_ids().len(), before.len() + 1);
    assert_eq!(dom.checkpoints(), [ck.as_str()]);

    // Killed mid-run (Ctrl-C while a post command runs): the job and the
    // checkpoint it made stay on the host; the next backup aborts that
    // job, is incremental against the last good checkpoint, and leaves
    // only its own.
    let sleep = r#"["sleep","30"]"#;
    let args = with(
        &ssh.args(),
        &["backup", "libvirt", &dom.name, "--post", sleep],
    );
    let mut child = env
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .spawn()
        .unwrap();
    common::daemon::wait_until("the backup job to start", 30, || {
        run_tool("virsh", &["-c", lab::URI, "backup-dumpxml", &dom.name])
            .status
            .success()
    });
    tool("kill", &["-INT", &child.id().to_string()]);
    assert!(!child.wait().unwrap().success());
    assert_eq!(dom.checkpoints().len(), 2, "{:?}", dom.checkpoints());
    let next = json(&env, &with(&ssh.args(), &["backup", "libvirt", &dom.name]));
    assert!(next["mode"].as_str().unwrap().contains(&ck), "{next}");
    assert!(
        next["warnings"][0]
            .as_str()
            .unwrap()
            .contains("aborted the backup job an interrupted run left"),
        "{next}"
    );
    assert_eq!(dom.checkpoints(), [next["checkpoint"].as_str().unwrap()]);
    assert_eq!(env.snapshot_ids().len(), before.len() + 2);
}

/// A guest with a qcow2 disk, a raw disk and an empty CD-ROM: the CD-ROM
/// is skipped with its reason, the qcow2 disk gets the checkpoint's bitmap
/// and is read incrementally, the raw one (no bitmap possible) is read
/// whole against its parent each time; the import recreates both.
#[test]
fn a_guest_with_a_raw_disk_and_a_cdrom() {
    if skip() {
        return;
    }
    let env = Env::new();
    let ssh = Sshd::start(env.dir.path());
    let name = unique("multi");
    let raw = env.path(&format!("{name}-data.raw"));
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(16 * MIB)
        .unwrap();
    let devices = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vdb' bus='virtio'/></disk>\n\
         <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>\n",
        raw.display()
    );
    let dom = Domain::define_with(env.dir.path(), &name, 32, &devices);
    dom.start();
    dom.write_disk(0, 0x31, 2 * MIB, 64 * KIB);
    dom.write_disk(1, 0x32, 3 * MIB, 64 * KIB);
    let backup = with(&ssh.args(), &["backup", "libvirt", &dom.name]);
    let full = json(&env, &backup);
    let disks: Vec<&str> = full["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert_eq!(disks, ["vda", "vdb"], "{full}");
    assert_eq!(full["disks"][1]["format"], "raw");

    dom.write_disk(0, 0x41, 5 * MIB, 64 * KIB);
    dom.write_disk(1, 0x42, 7 * MIB, 64 * KIB);
    let inc = json(&env, &backup);
    let vda = inc["disks"][0]["mode"].as_str().unwrap();
    let vdb = inc["disks"][1]["mode"].as_str().unwrap();
    assert!(vda.starts_with("incremental"), "{inc}");
    assert_eq!(inc["disks"][0]["bytes_read"], CHUNK, "{inc}");
    assert!(!vdb.starts_with("incremental"), "{inc}");
    // The raw disk's allocated extents only (its two written blocks).
    assert_eq!(inc["disks"][1]["bytes_read"], 2 * CHUNK, "{inc}");
    assert!(inc["mode"].as_str().unwrap().contains("vdb"), "{inc}");
    let snap = ds_snapshot(&env, inc["snapshot"].as_str().unwrap());
    let rec = &snap["libvirt"];
    assert_eq!(rec["skipped"][0], "sda is a cdrom", "{snap}");

    let (imp, copy) = import_copy(&env, &ssh, inc["snapshot"].as_str().unwrap(), "multicopy");
    assert_eq!(imp["disks"].as_array().unwrap().len(), 2, "{imp}");
    dom.destroy();
    let vda_copy = imp["disks"][0]["path"].as_str().unwrap();
    let vdb_copy = imp["disks"][1]["path"].as_str().unwrap();
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            dom.disk.to_str().unwrap(),
            vda_copy,
        ],
    );
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            raw.to_str().unwrap(),
            vdb_copy,
        ],
    );
    // The CD-ROM is defined as it was.
    let xml = virsh(&["dumpxml", "--inactive", &copy.0]);
    assert!(xml.contains("device='cdrom'"), "{xml}");
}

/// The `metadata_json` of a restore point, as `arca snapshots --json`
/// does not show it: read from the manifest through the library.
fn ds_snapshot(env: &Env, id: &str) -> Value {
    let ds = arca_repo::Datastore::open(
        &env.ds,
        &arca_repo::OpenOptions {
            passphrase: Some(env.pass.clone().into_bytes()),
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let s = ds.resolve_snapshot(id, None).unwrap();
    serde_json::from_str(&s.manifest.metadata_json).unwrap()
}

/// Two datastores back up one running domain in turns (a local copy and
/// an off-site one, say): each keeps its own checkpoint (named with its
/// datastore's prefix), so both stay incremental and read only what
/// changed; a backup deletes only its own datastore's older checkpoint.
#[test]
fn two_datastores_keep_their_own_checkpoint_chains_on_one_domain() {
    if skip() {
        return;
    }
    let (a, b) = (Env::new(), Env::new());
    let ssh = Sshd::start(a.dir.path());
    let dom = Domain::define(a.dir.path(), &unique("two"), 32);
    dom.start();
    dom.write(0x5a, MIB, 64 * KIB);
    let backup = with(&ssh.args(), &["backup", "libvirt", &dom.name]);
    let full_a = json(&a, &backup);
    let full_b = json(&b, &backup);
    for f in [&full_a, &full_b] {
        assert!(f["mode"].as_str().unwrap().starts_with("full"), "{f}");
    }
    let (ca, cb) = (
        full_a["checkpoint"].as_str().unwrap().to_string(),
        full_b["checkpoint"].as_str().unwrap().to_string(),
    );
    // Different prefixes (arca-<datastore id>-): both checkpoints stay.
    assert_ne!(ca[..14], cb[..14], "{ca} {cb}");
    let mut both = dom.checkpoints();
    both.sort();
    let mut want = vec![ca.clone(), cb.clone()];
    want.sort();
    assert_eq!(both, want);

    // One 64 KiB write; each datastore's next backup reads just it.
    dom.write(0x66, 5 * MIB, 64 * KIB);
    for (env, ck) in [(&a, &ca), (&b, &cb)] {
        let inc = json(env, &backup);
        let mode = inc["mode"].as_str().unwrap();
        assert!(
            mode.starts_with("incremental") && mode.contains(ck.as_str()),
            "{inc}"
        );
        assert_eq!(inc["bytes_read"].as_u64().unwrap(), CHUNK, "{inc}");
    }
    // Each replaced only its own: two checkpoints, neither the first ones.
    let now = dom.checkpoints();
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains(&ca) && !now.contains(&cb), "{now:?}");
}
