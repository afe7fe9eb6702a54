//! The hypervisor pages of the web UI with a real libvirt host (issue
//! 17's control plane in the browser): the server, an sshd on loopback
//! and a running KVM guest, driven by headless Chromium through
//! tests/ui/hypervisors.mjs (add over SSH with the key from a file, sync,
//! a failing sync's reason, an agent hypervisor, remove refused and done,
//! pre/post commands on the guest's source, import of its restore point
//! under a new name). Here: the scenario's effects on the host.

use serde_json::Value;

use crate::common::daemon::api_ok;
use crate::lab::{remove_domain, unique, virsh};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

#[test]
fn hypervisors_sync_hooks_and_import_in_the_browser() {
    if crate::skip() {
        return;
    }
    let lab = crate::control::ServerLab::start("ui");
    let (dir, srv, password, ssh, dom) = (&lab.dir, &lab.srv, &lab.password, &lab.ssh, &lab.dom);
    let mark = dir.path().join("pre-ran");
    let images = dir.path().join("imported");
    std::fs::create_dir_all(&images).unwrap();
    let copy = unique("uicopy");
    crate::common::ui::run_scenario(
        "hypervisors",
        srv,
        password,
        dir.path(),
        &[
            ("ARCA_SSH_ADDR", ssh.addr()),
            ("ARCA_SSH_KEY", ssh.key.display().to_string()),
            ("ARCA_DOMAIN", dom.name.clone()),
            ("ARCA_HOOK_MARK", mark.display().to_string()),
            ("ARCA_IMPORT_DIR", images.display().to_string()),
            ("ARCA_IMPORT_NAME", copy.clone()),
        ],
    );
    // The sync through the page pinned this sshd's host key.
    let hvs = api_ok(
        &srv.url,
        &lab.token,
        "GET",
        "/api/v1/hypervisors",
        None,
        200,
    );
    let kvm1 = hvs
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "kvm1")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(kvm1["host_key"], ssh.fingerprint.as_str(), "{hvs}");
    // The pre command set in the page ran on the host.
    assert!(mark.exists(), "the pre command did not run");
    // The VM imported through the dialog: defined, its disk the guest's.
    let disk = images.join(format!("{copy}-vda.qcow2"));
    let xml = virsh(&["dumpxml", &copy]);
    assert!(xml.contains(disk.to_str().unwrap()), "{xml}");
    let got = crate::read_at(disk.to_str().unwrap(), "qcow2", MIB, 64 * KIB);
    assert!(
        got.iter().all(|b| *b == 0x5a),
        "the imported disk lacks the guest's write"
    );
    remove_domain(&copy);
}
