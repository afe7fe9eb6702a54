//! The S3 gateway (`arca serve s3`) against real clients on loopback:
//! awscli, boto3 (tests/s3/client.py) and rclone. Listings must match the
//! backed-up tree, downloads be byte-identical, and every write or bad
//! request be an S3 error (never a 500).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const AK: &str = "AKIAARCATESTKEY00001";
const SK: &str = "arcatestsecretkey0000000000000000000000x";

/// A source tree with nested directories, odd names, an empty file, a
/// symlink and a directory of several files for paging.
fn make_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut add = |rel: &str, data: Vec<u8>| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        files.insert(rel.to_string(), data);
    };
    add("a.txt", b"hello, restore point\n".to_vec());
    add("sub/b.bin", common::random_bytes(300 << 10, 1));
    add("sub/deeper/c.txt", common::text_bytes(5000, 2));
    add("name with space.txt", b"space".to_vec());
    add("plus+percent%.txt", b"odd".to_vec());
    add("empty", Vec::new());
    for i in 0..5 {
        add(&format!("many/f{i}"), format!("file {i}").into_bytes());
    }
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    std::fs::create_dir_all(dir.join("emptydir")).unwrap();
    files
}

struct Served {
    _proc: common::Proc,
    url: String,
}

fn serve(env: &common::Env) -> Served {
    let mut cmd = env.cmd(&["serve", "s3", "--listen", "127.0.0.1:0"]);
    cmd.env("ARCA_S3_ACCESS_KEY", AK)
        .env("ARCA_S3_SECRET_KEY", SK);
    let (child, line) = common::spawn_first_line(&mut cmd);
    let url = line
        .rsplit(" on ")
        .next()
        .unwrap()
        .trim()
        .trim_end_matches('/')
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Served {
        _proc: common::Proc(child),
        url,
    }
}

fn aws(url: &str, args: &[&str]) -> Output {
    common::aws(url, (AK, SK), args)
}

fn aws_ok(url: &str, args: &[&str]) -> String {
    let o = aws(url, args);
    assert!(
        o.status.success(),
        "aws {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn rclone(url: &str, args: &[&str]) -> Output {
    let remote =
        format!(":s3,provider=Other,endpoint='{url}',access_key_id={AK},secret_access_key={SK}:");
    let args: Vec<String> = args.iter().map(|a| a.replace(":R:", &remote)).collect();
    Command::new("rclone")
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("rclone: {e} (scripts/test.sh installs rclone)"))
}

fn rclone_ok(url: &str, args: &[&str]) -> String {
    let o = rclone(url, args);
    assert!(
        o.status.success(),
        "rclone {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Every regular file under `dir`, by relative path.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    common::walk(dir, &mut |p, md| {
        if md.is_file() {
            let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
            out.insert(rel, std::fs::read(p).unwrap());
        }
    });
    out
}

struct Setup {
    env: common::Env,
    first: String,
    second: String,
    /// The files of the first and second restore point.
    v1: BTreeMap<String, Vec<u8>>,
    v2: BTreeMap<String, Vec<u8>>,
    src: PathBuf,
}

/// Two restore points of source `My_Files` (bucket `my-files`), the
/// second with a.txt changed, and one of source `other`.
fn setup() -> Setup {
    let env = common::Env::new();
    let src = env.path("src");
    let v1 = make_tree(&src);
    let first = env.backup_files(&src, "My_Files")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(src.join("a.txt"), b"hello again, second restore point\n").unwrap();
    let mut v2 = v1.clone();
    v2.insert(
        "a.txt".into(),
        b"hello again, second restore point\n".to_vec(),
    );
    let second = env.backup_files(&src, "My_Files")["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("x"), b"x").unwrap();
    env.backup_files(&other, "other");
    Setup {
        env,
        first,
        second,
        v1,
        v2,
        src,
    }
}

#[test]
fn awscli_and_rclone_list_and_download_restore_points() {
    let s = setup();
    let srv = serve(&s.env);
    let url = srv.url.as_str();

    // Buckets: one per source, the name made S3-valid.
    let ls = aws_ok(url, &["s3", "ls"]);
    assert!(ls.contains(" my-files\n"), "{ls}");
    assert!(ls.contains(" other\n"), "{ls}");

    // The bucket root: latest/ and one folder per restore point.
    let ls = aws_ok(url, &["s3", "ls", "s3://my-files/"]);
    for p in [
        "latest/",
        &format!("{}/", s.first),
        &format!("{}/", s.second),
    ] {
        assert!(ls.contains(&format!("PRE {p}\n")), "{p} missing in {ls}");
    }

    // A recursive listing of latest/ is the tree's regular files, with
    // their sizes.
    let ls = aws_ok(url, &["s3", "ls", "--recursive", "s3://my-files/latest/"]);
    let mut listed = BTreeMap::new();
    for l in ls.lines() {
        // "2026-12-03 20:00:00       1234 latest/sub/b.bin"
        let rest: Vec<&str> = l.split_whitespace().collect();
        let size: u64 = rest[2].parse().unwrap();
        let key = l.split_once(" latest/").unwrap().1.to_string();
        listed.insert(key, size);
    }
    let want: BTreeMap<String, u64> =
        s.v2.iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect();
    assert_eq!(listed, want);

    // Downloads: one file, and a whole restore point (the first one).
    let out = s.env.path("b.bin");
    aws_ok(
        url,
        &[
            "s3",
            "cp",
            "s3://my-files/latest/sub/b.bin",
            out.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&out).unwrap() == s.v2["sub/b.bin"]);
    let dir = s.env.path("aws-copy");
    aws_ok(
        url,
        &[
            "s3",
            "cp",
            "--recursive",
            &format!("s3://my-files/{}/", s.first),
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(read_tree(&dir), s.v1);

    // A range, HEAD, the bucket's location.
    let part = s.env.path("part");
    let meta = aws_ok(
        url,
        &[
            "s3api",
            "get-object",
            "--bucket",
            "my-files",
            "--key",
            "latest/sub/b.bin",
            "--range",
            "bytes=1000-1999",
            part.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&part).unwrap() == s.v2["sub/b.bin"][1000..2000]);
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        meta["ContentRange"],
        format!("bytes 1000-1999/{}", 300 << 10)
    );
    let head: serde_json::Value = serde_json::from_str(&aws_ok(
        url,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "my-files",
            "--key",
            "latest/sub/b.bin",
        ],
    ))
    .unwrap();
    assert_eq!(head["ContentLength"], 300 << 10);
    assert_eq!(head["ETag"].as_str().unwrap().len(), 42, "{head}");
    // The same file of the other restore point is another object.
    let head1: serde_json::Value = serde_json::from_str(&aws_ok(
        url,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "my-files",
            "--key",
            &format!("{}/sub/b.bin", s.first),
        ],
    ))
    .unwrap();
    assert_ne!(head1["ETag"], head["ETag"]);
    let loc: serde_json::Value = serde_json::from_str(&aws_ok(
        url,
        &["s3api", "get-bucket-location", "--bucket", "my-files"],
    ))
    .unwrap();
    assert!(loc.get("LocationConstraint").is_some(), "{loc}");

    // An image restore point: its disk is the object disk.img.
    let img = common::random_bytes(3 << 20, 5);
    let raw = s.env.path("vm1.raw");
    std::fs::write(&raw, &img).unwrap();
    s.env
        .json(&["backup", "image", raw.to_str().unwrap(), "--source", "vm1"]);
    let disk = s.env.path("disk.img");
    aws_ok(
        url,
        &[
            "s3",
            "cp",
            "s3://vm1/latest/disk.img",
            disk.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&disk).unwrap() == img, "disk.img differs");

    // Writes are refused.
    let f = s.env.path("upload");
    std::fs::write(&f, b"new").unwrap();
    for args in [
        vec!["s3", "cp", f.to_str().unwrap(), "s3://my-files/latest/new"],
        vec!["s3", "rm", "s3://my-files/latest/a.txt"],
        vec!["s3", "mb", "s3://newbucket"],
    ] {
        let o = aws(url, &args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("AccessDenied"), "{args:?}: {err}");
    }

    // rclone: the same listing, a copy, a check against the source.
    let ls = rclone_ok(url, &["ls", ":R:my-files/latest"]);
    let mut names: Vec<String> = ls
        .lines()
        .map(|l| l.trim().split_once(' ').unwrap().1.to_string())
        .collect();
    names.sort();
    assert_eq!(names, s.v2.keys().cloned().collect::<Vec<_>>());
    let dir = s.env.path("rclone-copy");
    rclone_ok(
        url,
        &[
            "copy",
            "--transfers",
            "4",
            ":R:my-files/latest",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(read_tree(&dir), s.v2);
    // The source has a symlink and an empty directory that are not
    // objects: rclone skips both on the local side too.
    rclone_ok(
        url,
        &[
            "check",
            "--download",
            s.src.to_str().unwrap(),
            ":R:my-files/latest",
        ],
    );
}

#[test]
fn boto3_pages_conditions_and_bad_requests() {
    let s = setup();
    let srv = serve(&s.env);
    let script = common::source_dir().join("tests/s3/client.py");
    let o = common::tool(
        "python3",
        &[script.to_str().unwrap(), &srv.url, AK, SK, "my-files"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let mut root: Vec<String> = serde_json::from_value(v["root_prefixes"].clone()).unwrap();
    root.sort();
    let mut want = vec![
        format!("{}/", s.first),
        format!("{}/", s.second),
        "latest/".to_string(),
    ];
    want.sort();
    assert_eq!(root, want);

    // One level of latest/, two at a time.
    let level = &v["latest_level"];
    let mut keys: Vec<String> = serde_json::from_value(level["keys"].clone()).unwrap();
    keys.sort();
    let mut want_keys: Vec<String> =
        s.v2.keys()
            .filter(|k| !k.contains('/'))
            .map(|k| format!("latest/{k}"))
            .collect();
    want_keys.sort();
    assert_eq!(keys, want_keys);
    let mut prefixes: Vec<String> = serde_json::from_value(level["prefixes"].clone()).unwrap();
    prefixes.sort();
    assert_eq!(
        prefixes,
        ["latest/emptydir/", "latest/many/", "latest/sub/"]
    );
    let entries = want_keys.len() + 3;
    assert_eq!(level["pages"], entries.div_ceil(2) as u64, "{level}");

    // The deep listing, by v2 tokens and v1 markers: every file once.
    let deep: Vec<(String, u64)> = serde_json::from_value(v["latest_deep"].clone()).unwrap();
    let got: BTreeMap<String, u64> = deep.iter().cloned().collect();
    assert_eq!(got.len(), deep.len(), "a key listed twice: {deep:?}");
    let want: BTreeMap<String, u64> =
        s.v2.iter()
            .map(|(k, d)| (format!("latest/{k}"), d.len() as u64))
            .collect();
    assert_eq!(got, want);
    let mut v1: Vec<String> = serde_json::from_value(v["latest_deep_v1"].clone()).unwrap();
    v1.sort();
    assert_eq!(v1, want.keys().cloned().collect::<Vec<_>>());
    assert_eq!(
        v["start_after"],
        serde_json::json!(["latest/many/f3", "latest/many/f4"])
    );

    // Conditional requests.
    let c = &v["cond"];
    assert_eq!(c["if_match_ok"][0], 200, "{c}");
    assert_eq!(c["if_match_bad"][0], 412, "{c}");
    assert_eq!(c["if_none_match_same"][0], 304, "{c}");
    assert_eq!(c["if_none_match_other"][0], 200, "{c}");
    assert_eq!(c["if_modified_since_later"][0], 304, "{c}");
    assert_eq!(c["if_modified_since_earlier"][0], 200, "{c}");
    assert_eq!(c["if_unmodified_since_earlier"][0], 412, "{c}");
    assert_eq!(c["head_if_none_match"][0], 304, "{c}");
    assert_eq!(v["content_type"], "text/plain");
    assert_eq!(v["range_suffix"], "oint\n");
    assert_eq!(v["range_bad"][0], 416, "{}", v["range_bad"]);
    assert_eq!(v["range_empty_file"][0], 416, "{}", v["range_empty_file"]);

    // Odd keys and listings: 4xx S3 errors, never a 500.
    for (name, r) in v["odd"]
        .as_object()
        .unwrap()
        .iter()
        .chain(v["odd_list"].as_object().unwrap())
    {
        let code = r[0].as_u64().unwrap();
        // No key starts with "latest/../": an empty listing.
        if name == "dotdot_prefix" {
            assert_eq!(code, 200, "{name}: {r}");
            continue;
        }
        assert!((400..500).contains(&code), "{name}: {r}");
    }
    assert_eq!(v["odd"]["symlink"][1], "NoSuchKey");
    assert_eq!(v["odd"]["directory"][1], "NoSuchKey");
    assert_eq!(v["odd_list"]["no_bucket"][1], "NoSuchBucket");

    // Every write is AccessDenied.
    for (name, r) in v["writes"].as_object().unwrap() {
        assert_eq!(r[0], 403, "{name}: {r}");
        assert_eq!(r[1], "AccessDenied", "{name}: {r}");
    }
    assert_eq!(v["keys"]["wrong_secret"][1], "SignatureDoesNotMatch");
    assert_eq!(v["keys"]["unknown_key"][0], 403);
    assert_eq!(v["keys"]["unknown_key"][1], "InvalidAccessKeyId");

    // Raw requests: unsigned and malformed ones are S3 errors.
    for (name, r) in v["raw"].as_object().unwrap() {
        let code = r[0].as_u64().unwrap();
        assert!((400..500).contains(&code), "{name}: {r}");
        assert!(r[1].as_str().unwrap().contains("<Error>"), "{name}: {r}");
    }
}

#[test]
fn serve_s3_needs_a_key_pair() {
    let env = common::Env::new();
    let o = env
        .cmd(&["serve", "s3", "--listen", "127.0.0.1:0"])
        .env_remove("ARCA_S3_ACCESS_KEY")
        .env_remove("ARCA_S3_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ARCA_S3_ACCESS_KEY"), "{err}");
}
