//! Device nodes, setuid/setgid bits and file capabilities come back from a
//! restore only with `special_files` (the server sets it for admins who
//! ask); otherwise they are skipped or cleared and the outcome says so.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use arca_ingest::restore::{self, RestoreOptions, RestoreOutcome};
use arca_ingest::Progress;
use arca_repo::Encryption;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn special_files_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (src, store) = (dir.path().join("src"), dir.path().join("ds"));
    fs::create_dir_all(src.join("shared")).unwrap();
    fs::write(src.join("tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(src.join("group-tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("group-tool"), fs::Permissions::from_mode(0o2711)).unwrap();
    fs::write(src.join("plain"), b"data\n").unwrap();
    fs::set_permissions(src.join("plain"), fs::Permissions::from_mode(0o640)).unwrap();
    // setgid on a directory only chooses the group of new entries: kept.
    fs::set_permissions(src.join("shared"), fs::Permissions::from_mode(0o2775)).unwrap();
    // A device node needs CAP_MKNOD; where the sandbox refuses it, the rest
    // of the test still runs.
    let dev = nix::sys::stat::mknod(
        &src.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .is_ok();
    if !dev {
        eprintln!("note: mknod refused here; device nodes are not part of this run");
    }
    // A file capability (needs CAP_SETFCAP): cap_net_raw+ep, version 2.
    let cap: Vec<u8> = [
        0x01u8, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]
    .to_vec();
    fs::write(src.join("pinger"), b"#!/bin/sh\n").unwrap();
    let capped = xattr::set(src.join("pinger"), "security.capability", &cap).is_ok();
    if !capped {
        eprintln!("note: setting security.capability refused here");
    }

    common::init(&store, Encryption::Repokey);
    let ds = common::open(&store).unwrap();
    common::backup(&ds, &src, "t").unwrap();
    let snap = ds.resolve_snapshot("latest", None).unwrap();

    let run = |to: &Path, special: bool| -> RestoreOutcome {
        let opts = RestoreOptions {
            special_files: special,
            ..Default::default()
        };
        restore::restore(&ds, &snap, to, None, &opts, &Progress::default()).unwrap()
    };

    // Not asked: no device, no setuid/setgid on files, no capability.
    let plain = dir.path().join("plain-restore");
    let out = run(&plain, false);
    assert_eq!(mode(&plain.join("tool")), 0o755);
    assert_eq!(mode(&plain.join("group-tool")), 0o711);
    assert_eq!(mode(&plain.join("plain")), 0o640);
    assert_eq!(mode(&plain.join("shared")), 0o2775);
    assert_eq!(fs::read(plain.join("tool")).unwrap(), b"#!/bin/sh\n");
    assert!(!plain.join("null").exists(), "a device node was made");
    assert_eq!(out.devices_skipped, u64::from(dev));
    assert_eq!(out.privileges_dropped, 2 + u64::from(capped));
    if capped {
        assert!(xattr::get(plain.join("pinger"), "security.capability")
            .unwrap()
            .is_none());
    }
    let said = out
        .warnings
        .iter()
        .filter(|w| w.contains("not asked to restore special files"))
        .count();
    assert_eq!(said, 1, "{:?}", out.warnings);

    // Asked: everything as it was.
    let full = dir.path().join("full-restore");
    let out = run(&full, true);
    assert_eq!(mode(&full.join("tool")), 0o4755);
    assert_eq!(mode(&full.join("group-tool")), 0o2711);
    assert_eq!(mode(&full.join("shared")), 0o2775);
    assert_eq!((out.devices_skipped, out.privileges_dropped), (0, 0));
    assert!(!out.warnings.iter().any(|w| w.contains("special files")));
    if dev {
        let ft = fs::symlink_metadata(full.join("null")).unwrap().file_type();
        assert!(ft.is_char_device());
    }
    if capped {
        assert_eq!(
            xattr::get(full.join("pinger"), "security.capability").unwrap(),
            Some(cap)
        );
    }
}
