//! Restore points exported through the server with `arca mount` (NBD,
//! iSCSI, writable exports and commits), over TLS too.

use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::common::{self, tool};
use crate::helpers::*;

/// `arca mount` through the server: the embedded node exports an image
/// restore point over NBD within moments and real clients read it; a
/// writable export takes qemu-io's writes, and `arca unmount --commit`
/// keeps them as a new restore point while the old one never changes;
/// exports expire after their TTL; bad requests get clear errors.
#[test]
fn mount_exports_restore_points_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 6 MiB: data, a 2 MiB hole, data.
    let mut img = common::random_bytes(6 << 20, 77);
    img[(2 << 20)..(4 << 20)].fill(0);
    let image = dir.path().join("disk.raw");
    std::fs::write(&image, &img).unwrap();
    let (srv, lines) = Server::start(&data);
    let pw = first_password(&lines);
    let token = login(&srv.url, &pw);
    let cfg = dir.path().join("cfg");
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(args)
            .env("ARCA_SERVER", &srv.url)
            .env("ARCA_TOKEN", &token)
            .env("XDG_CONFIG_HOME", &cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = arca(&["source", "add", "image", "vm1", image.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = arca(&["backup", "now", "vm1", "--wait"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rp = restore_points(&srv.url, &token, "vm1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Read-only over NBD: the address comes back once the node serves it.
    let t0 = Instant::now();
    let (code, out, err) = arca(&["--json", "mount", &rp[..12], "--ttl", "10m"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    let url = e["address"].as_str().unwrap().to_string();
    let size = tool("nbdinfo", &["--size", &url]);
    eprintln!("arca mount to first byte: {:?}", t0.elapsed());
    assert_eq!(
        String::from_utf8_lossy(&size.stdout).trim(),
        img.len().to_string()
    );
    assert!(
        url.starts_with("nbd://127.0.0.1:")
            && url.ends_with(&format!(
                "/export-{}-{}",
                e["id"],
                e["secret"].as_str().unwrap()
            )),
        "{url}"
    );
    let copy = dir.path().join("copy.raw");
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &url,
            copy.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&copy).unwrap() == img,
        "the export differs from the image"
    );
    let map = tool("nbdinfo", &["--map", &url]);
    assert!(
        String::from_utf8_lossy(&map.stdout).contains("hole"),
        "no hole in the map"
    );
    let (s, live) = call(&srv.url, &token, "GET", "/api/v1/exports", None);
    assert_eq!(s, 200);
    assert!(live
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == e["id"] && x["state"] == "active"));
    let (code, out, _) = arca(&["mounts"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("active") && out.contains(&url), "{out}");
    let (code, out, err) = arca(&[
        "--json",
        "mounts",
        "--extend",
        &e["id"].to_string(),
        "--ttl",
        "3h",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let ext: Value = serde_json::from_str(&out).unwrap();
    assert!(ext["expires_at"].as_i64().unwrap() > e["expires_at"].as_i64().unwrap() + 3600);

    // The same restore point as an iSCSI target on the node's portal.
    let (code, out, err) = arca(&["--json", "mount", &rp, "--iscsi"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let i: Value = serde_json::from_str(&out).unwrap();
    let iurl = i["address"].as_str().unwrap().to_string();
    assert!(
        iurl.starts_with(&format!("iscsi://export-{}%", i["id"]))
            && iurl.ends_with(&format!("iqn.2026-11.io.arca:export-{}/0", i["id"])),
        "{iurl}"
    );
    let cap = tool("iscsi-readcapacity16", &[&iurl]);
    assert!(String::from_utf8_lossy(&cap.stdout).contains(&format!("Total size:{}", img.len())));
    let (code, _, err) = arca(&["unmount", &i["id"].to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let gone = Command::new("iscsi-readcapacity16")
        .arg(&iurl)
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "a stopped iSCSI export still answers"
    );

    // Writable: writes land in the overlay; committing makes a new
    // restore point with them; the exported one restores unchanged.
    let (code, out, err) = arca(&["--json", "mount", &rp, "--writable"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let w: Value = serde_json::from_str(&out).unwrap();
    let wurl = w["address"].as_str().unwrap().to_string();
    assert_ne!(wurl, url, "a writable export has its own name");
    tool(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xab 3M 64k",
            "-c",
            "write -P 0xcd 1000 10",
            "-c",
            "flush",
            &wurl,
        ],
    );
    let wid = w["id"].as_i64().unwrap().to_string();
    let (code, out, err) = arca(&["unmount", &wid, "--commit", "--wait"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let after = restore_points(&srv.url, &token, "vm1");
    assert_eq!(after.len(), 2, "{after:?}");
    let new_rp = after[0]["id"].as_str().unwrap().to_string();
    assert_ne!(new_rp, rp);
    let mut want = img.clone();
    want[(3 << 20)..(3 << 20) + 65536].fill(0xab);
    want[1000..1010].fill(0xcd);
    for (id, expect) in [(&new_rp, &want), (&rp, &img)] {
        let target = dir.path().join(format!("r-{}.raw", &id[..8]));
        let (code, out, err) = arca(&["restore", id, "--to", target.to_str().unwrap(), "--wait"]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(
            &std::fs::read(&target).unwrap() == expect,
            "restore point {id} has the wrong bytes"
        );
    }
    // The commit removed the overlay.
    let overlays: Vec<_> = std::fs::read_dir(data.join("overlays")).unwrap().collect();
    assert!(overlays.is_empty(), "{overlays:?}");
    // A stopped export cannot be stopped again.
    let (s, v) = call(
        &srv.url,
        &token,
        "DELETE",
        &format!("/api/v1/exports/{wid}"),
        None,
    );
    assert_eq!(s, 409, "{v}");

    // A TTL ends the export: its address stops answering.
    let (code, out, err) = arca(&["--json", "mount", &new_rp, "--ttl", "2s"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let short: Value = serde_json::from_str(&out).unwrap();
    let sid = short["id"].as_i64().unwrap();
    wait_for("the export to expire", 30, || {
        call(
            &srv.url,
            &token,
            "GET",
            &format!("/api/v1/exports/{sid}"),
            None,
        )
        .1["state"]
            == "expired"
    });
    let gone = Command::new("nbdinfo")
        .arg(short["address"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(!gone.status.success(), "an expired export still answers");

    // Bad requests: clear errors, no 500.
    let (code, _, err) = arca(&["mount", "ffffffffffff"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not found") && err.contains("422"), "{err}");
    for body in [
        json!({"restore_point": rp, "protocol": "smb"}),
        json!({"restore_point": rp, "ttl": "forever"}),
        json!({"restore_point": rp, "ttl": "400d"}),
    ] {
        let (s, v) = call(&srv.url, &token, "POST", "/api/v1/exports", Some(body));
        assert_eq!(s, 422, "{v}");
    }
    let (s, _) = call(&srv.url, &token, "GET", "/api/v1/exports/999", None);
    assert_eq!(s, 404);
    // The first export is still served.
    tool("nbdinfo", &["--size", &url]);
}

/// `--nbd-tls-cert/--nbd-tls-key`: exports made with `arca mount` are
/// served over TLS only, and their addresses say nbds://.
#[test]
fn mount_exports_over_nbd_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let img = common::random_bytes(1 << 20, 51);
    let image = dir.path().join("disk.raw");
    std::fs::write(&image, &img).unwrap();
    let (cert, key, ca) = common::tls_files(dir.path());
    let (srv, lines) = Server::start_with(&data, &["--nbd-tls-cert", &cert, "--nbd-tls-key", &key]);
    let token = login(&srv.url, &first_password(&lines));
    let arca = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arca"))
            .args(["--server", &srv.url, "--token", &token, "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    arca(&["source", "add", "image", "vm", image.to_str().unwrap()]);
    arca(&["backup", "now", "vm", "--wait"]);
    let rp = restore_points(&srv.url, &token, "vm")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = arca(&["mount", &rp]);
    let addr = e["address"].as_str().unwrap();
    assert!(addr.starts_with("nbds://127.0.0.1:"), "{addr}");
    let copy = dir.path().join("copy.raw");
    tool(
        "nbdcopy",
        &[
            &format!("{addr}?tls-certificates={ca}"),
            copy.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&copy).unwrap() == img);
    let plain = Command::new("nbdinfo")
        .arg("--size")
        .arg(addr.replace("nbds://", "nbd://"))
        .output()
        .unwrap();
    assert!(!plain.status.success(), "a plain client was served");
}
