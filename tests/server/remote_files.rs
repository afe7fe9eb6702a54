//! File access to restore points held by a remote node, through the
//! server: downloads (a file, ranges, a folder as tar) and the S3 gateway
//! (`aws s3 cp --recursive`, rclone) read the node's restore points
//! through file queries, and come out byte for byte as the source; so do
//! the files inside an image restore point on the node. A node that is
//! stopped or killed is a clear 503, not a hang; killed during a
//! download, the body ends early (bounded by the query timeout).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common;
use crate::common::ext4::{assert_diff_r_clean, assert_same_bytes, ext4_disk};
use crate::helpers::*;

/// curl with the token, giving up after 60 s (a hang fails the test):
/// (HTTP status, body). curl's own failure (the body cut short) is
/// status 0.
fn curl(url: &str, token: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("b");
    let out = Command::new("curl")
        .args(["-sS", "-g", "--max-time", "60", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    let code = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    } else {
        assert_ne!(
            out.status.code(),
            Some(28),
            "curl timed out: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        0
    };
    (code, std::fs::read(&body).unwrap_or_default())
}

/// An S3 key of the admin: (access key id, secret).
fn s3_key(far: &FarNode) -> (String, String) {
    let out = far.ok(&["s3-key", "create", "--description", "remote"]).0;
    let mut l = out.lines();
    (l.next().unwrap().to_string(), l.next().unwrap().to_string())
}

fn s3_endpoint(far: &FarNode) -> String {
    let status: Value = serde_json::from_str(&far.ok(&["--json", "status"]).0).unwrap();
    status["s3_endpoint"].as_str().unwrap().to_string()
}

fn aws(endpoint: &str, key: &(String, String), args: &[&str]) -> Output {
    common::aws(endpoint, (&key.0, &key.1), args)
}

fn rclone(endpoint: &str, key: &(String, String), args: &[&str]) -> Output {
    let remote = format!(
        ":s3,provider=Other,endpoint='{endpoint}',access_key_id={},secret_access_key={}:",
        key.0, key.1
    );
    let args: Vec<String> = args.iter().map(|a| a.replace(":R:", &remote)).collect();
    Command::new("rclone")
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .args(&args)
        .output()
        .expect("rclone (scripts/test.sh installs rclone)")
}

fn ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Extract the tar `body` into a new directory `dir/name`.
fn untar(dir: &Path, name: &str, body: &[u8]) -> std::path::PathBuf {
    let x = dir.join(name);
    std::fs::create_dir_all(&x).unwrap();
    let tar = dir.join(format!("{name}.tar"));
    std::fs::write(&tar, body).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    ok("tar -x", o);
    x
}

/// A source on node "far" backed up: its restore point's id.
fn far_source(far: &FarNode, name: &str, kind: &str, path: &Path) -> String {
    let (s, v) = call(
        &far.url,
        &far.admin,
        "POST",
        "/api/v1/sources",
        Some(json!({"name": name, "kind": kind, "path": path, "node": "far"})),
    );
    assert_eq!(s, 201, "{v}");
    far.ok(&["backup", "now", name, "--wait"]);
    restore_points(&far.url, &far.admin, name)[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn downloads_and_s3_read_a_remote_nodes_tree_restore_point() {
    let mut far = FarNode::start();
    let dir = far.dir.path().to_path_buf();
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("dir/sub")).unwrap();
    // 48 MiB: 48 read queries, several in flight.
    let big = common::random_bytes(48 << 20, 11);
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::write(tree.join("a.txt"), common::text_bytes(10_000, 1)).unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("dir/ü é.txt"), b"unicode").unwrap();
    std::fs::write(tree.join("dir/sub").join("l".repeat(150)), b"long").unwrap();
    std::fs::write(
        tree.join("dir/sub/mid.bin"),
        common::random_bytes(3 << 20, 12),
    )
    .unwrap();
    std::os::unix::fs::symlink("../a.txt", tree.join("dir/link")).unwrap();
    let id = far_source(&far, "fardocs", "files", &tree);
    let (url, admin) = (far.url.clone(), far.admin.clone());
    let files = |q: &str| format!("{url}/api/v1/restore-points/{id}/files?{q}");

    // A file, byte for byte; ranges inside one piece, across pieces, to
    // the end.
    let (code, body) = curl(&files("path=big.bin"), &admin, &[]);
    assert_eq!(code, 200);
    assert!(body == big, "big.bin differs ({} bytes)", body.len());
    let n = big.len();
    for (range, a, b) in [
        ("0-0", 0, 0),
        ("1000-2000", 1000, 2000),
        ("1048000-3200000", 1_048_000, 3_200_000),
        ("-1000", n - 1000, n - 1),
        ("15000000-", 15_000_000, n - 1),
    ] {
        let (code, body) = curl(&files("path=big.bin"), &admin, &["-r", range]);
        assert_eq!(code, 206, "{range}");
        assert!(body == big[a..=b], "{range}: the body differs");
    }
    for (path, want) in [
        ("a.txt", common::text_bytes(10_000, 1)),
        ("empty", Vec::new()),
        ("dir/%C3%BC%20%C3%A9.txt", b"unicode".to_vec()),
    ] {
        let (code, body) = curl(&files(&format!("path={path}")), &admin, &[]);
        assert_eq!(code, 200, "{path}");
        assert!(body == want, "{path} differs");
    }
    // The node's errors keep their status: a missing path 404, a folder
    // without a format 409, '..' 400.
    let (code, body) = curl(&files("path=dir/nope"), &admin, &[]);
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    let (code, _) = curl(&files("path=dir"), &admin, &[]);
    assert_eq!(code, 409);
    let (code, _) = curl(&files("path=dir/../.."), &admin, &[]);
    assert_eq!(code, 400);

    // The whole restore point as a tar: extracted, it is the source.
    let (code, body) = curl(&files("format=tar"), &admin, &[]);
    assert_eq!(code, 200);
    let x = untar(&dir, "x", &body);
    assert_diff_r_clean(&tree, &x.join(format!("fardocs-{}", &id[..8])));
    // A folder.
    let (code, body) = curl(&files("path=dir/sub&format=tar"), &admin, &[]);
    assert_eq!(code, 200);
    let x = untar(&dir, "sub", &body);
    let top = std::fs::read_dir(&x)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_diff_r_clean(&tree.join("dir/sub"), &top);

    // S3: the bucket of the node's source, copied with aws and rclone,
    // is the source's regular files (symlinks are not objects).
    let endpoint = s3_endpoint(&far);
    let key = s3_key(&far);
    let copy = dir.join("aws-copy");
    ok(
        "aws s3 cp",
        aws(
            &endpoint,
            &key,
            &[
                "s3",
                "cp",
                "--recursive",
                "--quiet",
                "s3://fardocs/latest/",
                copy.to_str().unwrap(),
            ],
        ),
    );
    std::os::unix::fs::symlink("../a.txt", copy.join("dir/link")).unwrap();
    std::fs::create_dir_all(copy.join("dir/sub")).unwrap();
    assert_diff_r_clean(&tree, &copy);
    let copy = dir.join("rclone-copy");
    ok(
        "rclone copy",
        rclone(
            &endpoint,
            &key,
            &["copy", &format!(":R:fardocs/{id}"), copy.to_str().unwrap()],
        ),
    );
    std::os::unix::fs::symlink("../a.txt", copy.join("dir/link")).unwrap();
    assert_diff_r_clean(&tree, &copy);
    let o = aws(
        &endpoint,
        &key,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "fardocs",
            "--key",
            "latest/nope",
            "/dev/null",
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NoSuchKey"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Killed (-9) in the middle of a download: the body ends early (curl
    // fails: it never takes a short file for the whole) once the reads
    // the node took time out (30 s), within curl's 60 s: no hang.
    let slow = {
        let (u, a) = (files("path=big.bin"), admin.clone());
        std::thread::spawn(move || curl(&u, &a, &["--limit-rate", "1M"]))
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Then the node no longer takes queries, which is a 503 within the
    // pickup time, naming it; S3 says ServiceUnavailable.
    far.node.kill9();
    let (code, body) = curl(&files("path=a.txt"), &admin, &[]);
    assert_eq!(code, 503, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "unavailable", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("node \"far\""),
        "{v}"
    );
    let o = aws(
        &endpoint,
        &key,
        &["s3", "cp", "s3://fardocs/latest/a.txt", "-"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("503") || err.contains("ServiceUnavailable"),
        "{err}"
    );

    let (code, body) = slow.join().unwrap();
    assert_eq!(code, 0, "the download did not fail");
    assert!(body.len() < big.len(), "{} bytes", body.len());
    assert!(
        body[..] == big[..body.len()],
        "what came is not the file's start"
    );

    // Stopped cleanly: offline, a 503 at once.
    far.node = NodeProc::start(&url, &far.node_token, &far.node_dir);
    let (code, _) = curl(&files("path=a.txt"), &admin, &[]);
    assert_eq!(code, 200);
    far.stop_node();
    let (code, body) = curl(&files("path=big.bin"), &admin, &[]);
    assert_eq!(code, 503, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("node \"far\" is offline"),
        "{v}"
    );
}

/// An image restore point on the node: its disk, a file of the ext4 file
/// system on its partition and a folder of it, downloaded and through S3.
#[test]
fn downloads_and_s3_read_a_remote_nodes_image_restore_point() {
    let far = FarNode::start();
    let dir = far.dir.path().to_path_buf();
    let d = ext4_disk(&dir);
    let id = far_source(&far, "farimg", "image", &d.disk);
    let files = |q: &str| format!("{}/api/v1/restore-points/{id}/files?{q}", far.url);

    let (code, body) = curl(&files("path=disk.img"), &far.admin, &[]);
    assert_eq!(code, 200);
    std::fs::write(dir.join("disk.img"), &body).unwrap();
    assert_same_bytes(&d.disk, &dir.join("disk.img"));
    let host = std::fs::read(d.tree.join("etc/hostname")).unwrap();
    let (code, body) = curl(&files("path=part1/etc/hostname"), &far.admin, &[]);
    assert_eq!(code, 200);
    assert_eq!(body, host);
    let (code, body) = curl(&files("path=part1/etc&format=tar"), &far.admin, &[]);
    assert_eq!(code, 200);
    let x = untar(&dir, "etc", &body);
    let top = std::fs::read_dir(&x)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_diff_r_clean(&d.tree.join("etc"), &top);
    let (code, _) = curl(&files("path=part1/nope"), &far.admin, &[]);
    assert_eq!(code, 404);

    let endpoint = s3_endpoint(&far);
    let key = s3_key(&far);
    let copy = dir.join("aws-etc");
    ok(
        "aws s3 cp",
        aws(
            &endpoint,
            &key,
            &[
                "s3",
                "cp",
                "--recursive",
                "--quiet",
                "s3://farimg/latest/part1/etc/",
                copy.to_str().unwrap(),
            ],
        ),
    );
    assert_diff_r_clean(&d.tree.join("etc"), &copy);
    let out = ok(
        "aws s3 cp disk.img",
        aws(
            &endpoint,
            &key,
            &[
                "s3",
                "cp",
                "--quiet",
                &format!("s3://farimg/{id}/disk.img"),
                dir.join("s3-disk.img").to_str().unwrap(),
            ],
        ),
    );
    assert!(out.is_empty(), "{out}");
    assert_same_bytes(&d.disk, &dir.join("s3-disk.img"));
}
