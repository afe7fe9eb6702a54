//! A guest whose second disk is a block device (a loop device here, as an
//! LVM volume or a SAN LUN would be on a production host): the pull-mode
//! backup job keeps its scratch overlay in libvirt's own directory, not
//! next to the disk, so a running guest's block device backs up like a
//! raw file; a shut-off guest's is read with qemu-nbd on the host; the
//! import writes it as a file and the copy equals the device.

use std::path::{Path, PathBuf};

use crate::common::{tool, Env};
use crate::lab::{unique, virsh, Domain, Sshd};
use crate::{json, with, KIB, MIB};

/// A loop device over a file, detached when dropped.
struct Loop {
    dev: PathBuf,
}

impl Loop {
    fn attach(file: &Path) -> Option<Loop> {
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show", file.to_str().unwrap()])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: no loop device: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Loop {
            dev: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .arg("-d")
            .arg(&self.dev)
            .status();
    }
}

#[test]
fn a_guest_with_a_block_device_disk() {
    if crate::skip() {
        return;
    }
    let env = Env::new();
    let backing = env.path("lv.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(16 * MIB)
        .unwrap();
    let Some(lo) = Loop::attach(&backing) else {
        return;
    };
    let ssh = Sshd::start(env.dir.path());
    let devices = format!(
        "<disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/>\
         <source dev='{}'/><target dev='vdb' bus='virtio'/></disk>\n",
        lo.dev.display()
    );
    let dom = Domain::define_with(env.dir.path(), &unique("blk"), 32, &devices);
    dom.start();
    dom.write_disk(1, 0x61, 2 * MIB, 64 * KIB);
    dom.write_disk(1, 0x62, 9 * MIB, 128 * KIB);
    let backup = with(&ssh.args(), &["backup", "libvirt", &dom.name]);

    // Running: through the pull-mode job.
    let full = json(&env, &backup);
    let vdb = &full["disks"][1];
    assert_eq!(vdb["target"], "vdb", "{full}");
    assert_eq!(vdb["format"], "raw", "{full}");
    assert_eq!(full["consistency"], "crash", "{full}");
    // The job's scratch overlay went to libvirt's image directory and
    // is gone with the job.
    let stray: Vec<String> = std::fs::read_dir("/var/lib/libvirt/images")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&dom.name))
        .collect();
    assert!(stray.is_empty(), "scratch files left: {stray:?}");
    // Incremental: the qcow2 disk through its checkpoint, the device
    // (no bitmap) read whole again, and both still right.
    dom.write_disk(1, 0x63, 4 * MIB, 64 * KIB);
    let inc = json(&env, &backup);
    assert!(
        inc["disks"][0]["mode"]
            .as_str()
            .unwrap()
            .starts_with("incremental"),
        "{inc}"
    );
    assert!(inc["mode"].as_str().unwrap().contains("vdb"), "{inc}");

    // Shut off: read from the host with qemu-nbd.
    dom.destroy();
    let off = json(&env, &backup);
    assert_eq!(off["disks"][1]["target"], "vdb", "{off}");
    let vda = off["disks"][0]["mode"].as_str().unwrap();
    assert!(
        vda.starts_with("incremental") && vda.contains("shut off"),
        "{off}"
    );
    // The device has no bitmap and is allocated throughout: read whole.
    assert_eq!(off["disks"][1]["bytes_read"], 16 * MIB, "{off}");

    // Imported as files: the device's copy equals the device.
    let (imp, copy) = crate::import_copy(&env, &ssh, off["snapshot"].as_str().unwrap(), "blkcopy");
    let vdb_copy = imp["disks"][1]["path"].as_str().unwrap().to_string();
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            lo.dev.to_str().unwrap(),
            &vdb_copy,
        ],
    );
    // The copy is a file disk of the new domain.
    let xml = virsh(&["dumpxml", "--inactive", &copy.0]);
    assert!(xml.contains(&vdb_copy), "{xml}");
}
