//! The test bed of the libvirt suite: the system libvirtd (QEMU/KVM
//! driver, started by hand when it is not running: there is no systemd
//! here), an sshd of our own on a loopback port with a generated host key
//! and client key, and small KVM domains that are undefined when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::{run_tool, tool, tool_stdout};

pub const URI: &str = "qemu:///system";

/// `virsh -c qemu:///system ARGS`, which must succeed; its stdout.
pub fn virsh(args: &[&str]) -> String {
    let mut a = vec!["-c", URI];
    a.extend_from_slice(args);
    tool_stdout("virsh", &a)
}

/// Why this machine cannot run the suite, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !Path::new("/dev/kvm").exists() {
        return Some("/dev/kvm is missing (no KVM on this machine)".into());
    }
    None
}

static DAEMONS: Mutex<bool> = Mutex::new(false);

/// Make sure virtlogd and libvirtd run (started once per test process;
/// they stay up afterwards, as system daemons do).
pub fn libvirtd() {
    let mut started = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    if *started || run_tool("virsh", &["-c", URI, "version"]).status.success() {
        *started = true;
        return;
    }
    // What udev does on a normal host: QEMU runs as libvirt-qemu (group
    // kvm) and must open /dev/kvm. Without udev the node is root-only.
    let _ = run_tool("chgrp", &["kvm", "/dev/kvm"]);
    let _ = run_tool("chmod", &["0660", "/dev/kvm"]);
    let _ = run_tool("virtlogd", &["-d"]);
    tool("libvirtd", &["-d"]);
    let t = Instant::now();
    while !run_tool("virsh", &["-c", URI, "version"]).status.success() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "libvirtd did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    *started = true;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An sshd on 127.0.0.1 that lets root in with [`Sshd::key`] only.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub key: PathBuf,
    /// The host key's `SHA256:…` fingerprint, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// A key sshd does not accept.
    pub other_key: PathBuf,
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        let d = dir.join("ssh");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let keygen = |name: &str| {
            let p = d.join(name);
            tool(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", p.to_str().unwrap()],
            );
            p
        };
        let host = keygen("host");
        let key = keygen("id");
        let other_key = keygen("other");
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        let fp = tool_stdout("ssh-keygen", &["-lf", d.join("host.pub").to_str().unwrap()]);
        let fingerprint = fp.split_whitespace().nth(1).unwrap().to_string();
        let port = free_port();
        let conf = d.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
                 AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\nSubsystem sftp internal-sftp\n",
                host = host.display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f", conf.to_str().unwrap(), "-E"])
            .arg(d.join("log"))
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "sshd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            key,
            fingerprint,
            other_key,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `--host … --user root -i KEY --known-host FP`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.addr(),
            "--user".into(),
            "root".into(),
            "--identity".into(),
            self.key.display().to_string(),
            "--known-host".into(),
            self.fingerprint.clone(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A defined KVM domain with one qcow2 disk (no OS: the guest sits in the
/// firmware and writes nothing), undefined with its checkpoints on drop.
pub struct Domain {
    pub name: String,
    pub disk: PathBuf,
}

impl Domain {
    pub fn define(dir: &Path, name: &str, size_mib: u64) -> Domain {
        Self::define_with(dir, name, size_mib, "")
    }

    /// [`Domain::define`] with more `<devices>` (disks, CD-ROMs).
    pub fn define_with(dir: &Path, name: &str, size_mib: u64, devices: &str) -> Domain {
        // QEMU runs as libvirt-qemu: it must reach the disk file.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let disk = dir.join(format!("{name}.qcow2"));
        tool(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                disk.to_str().unwrap(),
                &format!("{size_mib}M"),
            ],
        );
        let xml = format!(
            "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n\
             <os><type arch='x86_64' machine='q35'>hvm</type></os>\n  <devices>\n\
             <disk type='file' device='disk'>\n<driver name='qemu' type='qcow2'/>\n\
             <source file='{}'/>\n<target dev='vda' bus='virtio'/>\n</disk>\n\
             <interface type='user'><mac address='52:54:00:ab:cd:ef'/><model type='virtio'/></interface>\n\
             {devices}</devices>\n</domain>\n",
            disk.display()
        );
        let path = dir.join(format!("{name}.xml"));
        std::fs::write(&path, xml).unwrap();
        virsh(&["define", path.to_str().unwrap()]);
        Domain {
            name: name.to_string(),
            disk,
        }
    }

    pub fn start(&self) {
        virsh(&["start", &self.name]);
    }

    pub fn destroy(&self) {
        virsh(&["destroy", &self.name]);
    }

    /// Write `len` bytes of `pattern` at `off` into the running guest's
    /// disk, through QEMU (so that its dirty bitmaps see the write).
    pub fn write(&self, pattern: u8, off: u64, len: u64) {
        self.write_disk(0, pattern, off, len)
    }

    /// [`Domain::write`] into the guest's virtio disk number `n` (vda = 0).
    pub fn write_disk(&self, n: u32, pattern: u8, off: u64, len: u64) {
        let out = virsh(&[
            "qemu-monitor-command",
            &self.name,
            "--hmp",
            &format!(
                "qemu-io -d /machine/peripheral/virtio-disk{n}/virtio-backend \"write -P {pattern:#x} {off} {len}\""
            ),
        ]);
        assert!(!out.to_lowercase().contains("error"), "qemu-io: {out}");
    }

    pub fn checkpoints(&self) -> Vec<String> {
        virsh(&["checkpoint-list", &self.name, "--name"])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Undefine `name` (stopping it first), with its checkpoints.
pub fn remove_domain(name: &str) {
    let _ = run_tool("virsh", &["-c", URI, "destroy", name]);
    let _ = run_tool(
        "virsh",
        &[
            "-c",
            URI,
            "undefine",
            name,
            "--checkpoints-metadata",
            "--nvram",
        ],
    );
}

impl Drop for Domain {
    fn drop(&mut self) {
        remove_domain(&self.name);
    }
}

/// A domain name no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "arca-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
