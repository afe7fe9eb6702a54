//! Downloads through the real server (`GET /api/v1/restore-points/{id}/
//! files`) with stock clients: curl and Python's urllib. Files come back
//! byte for byte (small, empty, multi-chunk, 64 MiB), by ranges and
//! conditionally; folders as tar (extracted and compared with the source:
//! modes, mtimes, symlinks, long names) and zip (checked by Python's
//! zipfile and unzip); an image's tree lists its disk.img, which equals
//! the image; bad paths are 400.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common;
use crate::helpers::*;

/// curl with the token; (HTTP status, headers, body).
fn curl(url: &str, token: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("h");
    let body = dir.path().join("b");
    let out = Command::new("curl")
        .args(["-sS", "-g", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (
        code,
        std::fs::read_to_string(&headers).unwrap_or_default(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn set_mtime(p: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

#[test]
fn files_and_folders_download_with_curl_and_python() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("dir/sub")).unwrap();
    let big = common::random_bytes(64 << 20, 7);
    let multi = common::random_bytes(3 << 20, 8);
    std::fs::write(tree.join("a.txt"), common::text_bytes(10_000, 1)).unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("multi.bin"), &multi).unwrap();
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::write(tree.join("dir/ü é.txt"), b"unicode").unwrap();
    let long = "l".repeat(150);
    std::fs::write(tree.join("dir/sub").join(&long), b"long name").unwrap();
    std::fs::write(tree.join("dir/secret"), b"600").unwrap();
    std::fs::set_permissions(tree.join("dir/secret"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(tree.join("dir/sub"), PermissionsExt::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("../a.txt", tree.join("dir/link")).unwrap();
    // Whole seconds: tar keeps no more.
    let sub_long = format!("dir/sub/{long}");
    for (i, p) in [
        "a.txt",
        "empty",
        "multi.bin",
        "big.bin",
        "dir/secret",
        "dir/link",
        "dir/ü é.txt",
        &sub_long,
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&tree.join(p), 1_600_000_000 + i as i64 * 1000);
    }

    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let (code, out, err) = cli_as(
        &srv.url,
        &token,
        &["source", "add", "files", "docs", tree.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = cli_as(&srv.url, &token, &["backup", "now", "docs", "--wait"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rp = restore_points(&srv.url, &token, "docs")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let files = |q: &str| format!("{}/api/v1/restore-points/{rp}/files?{q}", srv.url);

    // Whole files, byte for byte, with their headers.
    let (code, h, body) = curl(&files("path=big.bin"), &token, &[]);
    assert_eq!(code, 200, "{h}");
    assert!(body == big, "big.bin differs");
    assert_eq!(header(&h, "content-length"), Some(&*big.len().to_string()));
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
    assert_eq!(
        header(&h, "last-modified"),
        Some("Sun, 13 Sep 2020 13:16:40 GMT")
    );
    let etag = header(&h, "etag").unwrap().to_string();
    for (path, want) in [
        ("multi.bin", multi.clone()),
        ("empty", Vec::new()),
        ("/a.txt", common::text_bytes(10_000, 1)),
        ("dir/%C3%BC%20%C3%A9.txt", b"unicode".to_vec()),
    ] {
        let (code, h, body) = curl(&files(&format!("path={path}")), &token, &[]);
        assert_eq!(code, 200, "{path}: {h}");
        assert!(body == want, "{path} differs");
    }

    // Ranges with curl: first and last byte, suffix, open-ended, outside.
    let n = big.len();
    for (range, a, b) in [
        ("0-0", 0, 0),
        (&format!("{}-{}", n - 1, n - 1)[..], n - 1, n - 1),
        ("-1000", n - 1000, n - 1),
        ("60000000-", 60_000_000, n - 1),
        ("1000-2000000", 1000, 2_000_000),
    ] {
        let (code, h, body) = curl(&files("path=big.bin"), &token, &["-r", range]);
        assert_eq!(code, 206, "{range}: {h}");
        assert_eq!(
            header(&h, "content-range"),
            Some(&*format!("bytes {a}-{b}/{n}"))
        );
        assert!(body == big[a..=b], "{range}: body differs");
    }
    let (code, h, _) = curl(&files("path=big.bin"), &token, &["-r", &format!("{n}-")]);
    assert_eq!(code, 416);
    assert_eq!(header(&h, "content-range"), Some(&*format!("bytes */{n}")));
    // HEAD.
    let (code, h, _) = curl(&files("path=multi.bin"), &token, &["-I"]);
    assert_eq!(code, 200, "{h}");
    assert_eq!(
        header(&h, "content-length"),
        Some(&*multi.len().to_string())
    );

    // Python's urllib: a range with If-Range, 304 on the tag and the date,
    // 412 on another tag, and the whole file when If-Range is stale.
    let script = r#"
import sys, urllib.request, urllib.error
url, token, etag = sys.argv[1], sys.argv[2], sys.argv[3]
def get(h):
    req = urllib.request.Request(url, headers=dict(h, Authorization='Bearer ' + token))
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
s, b = get({'Range': 'bytes=10-19', 'If-Range': etag})
print(s, len(b))
s, b = get({'Range': 'bytes=10-19', 'If-Range': '"stale"'})
print(s, len(b))
print(get({'If-None-Match': etag})[0])
print(get({'If-Modified-Since': 'Sun, 13 Sep 2020 13:33:20 GMT'})[0])
print(get({'If-Match': '"other"'})[0])
"#;
    let out = Command::new("python3")
        .args(["-c", script, &files("path=multi.bin"), &token, &etag])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // multi.bin's own tag, not big.bin's: If-Range and If-None-Match do
    // not match it.
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            &*format!("200 {}", multi.len()),
            &*format!("200 {}", multi.len()),
            "200",
            "304",
            "412"
        ],
        "{printed}"
    );
    let (_, h, _) = curl(&files("path=multi.bin"), &token, &["-I"]);
    let multi_tag = header(&h, "etag").unwrap().to_string();
    let out = Command::new("python3")
        .args(["-c", script, &files("path=multi.bin"), &token, &multi_tag])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            "206 10",
            &*format!("200 {}", multi.len()),
            "304",
            "304",
            "412"
        ],
        "{printed}"
    );

    // The whole restore point as a tar: extracted, it is the source.
    let (code, h, body) = curl(&files("format=tar"), &token, &[]);
    assert_eq!(code, 200, "{h}");
    let top = format!("docs-{}", &rp[..8]);
    assert!(
        header(&h, "content-disposition")
            .unwrap()
            .contains(&format!("filename*=UTF-8''{top}.tar")),
        "{h}"
    );
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    std::fs::write(dir.path().join("a.tar"), &body).unwrap();
    let out = Command::new("tar")
        .arg("-xpf")
        .arg(dir.path().join("a.tar"))
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(dir.path().join("a.tar"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&long), "{listing}");
    assert!(listing.contains("dir/link -> ../a.txt"), "{listing}");
    common::assert_same_tree(&tree, &x.join(&top));

    // A folder as a zip: Python's zipfile and unzip check every CRC.
    let (code, _, body) = curl(&files("path=dir&format=zip"), &token, &[]);
    assert_eq!(code, 200);
    let zip = dir.path().join("d.zip");
    std::fs::write(&zip, &body).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);assert z.testzip() is None;\
             [print(i.filename, oct(i.external_attr>>16)) for i in z.infolist()]",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{names}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = format!("{top}-dir");
    for line in [
        format!("{d}/ 0o40755"),
        format!("{d}/secret 0o100600"),
        format!("{d}/link 0o120777"),
        format!("{d}/sub/ 0o40750"),
        format!("{d}/sub/{long} 0o100644"),
        format!("{d}/ü é.txt 0o100644"),
    ] {
        assert!(names.lines().any(|l| l == line), "{line} not in {names}");
    }
    let out = Command::new("unzip").arg("-t").arg(&zip).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // `arca download`: a file to -o, to stdout, resumed with --continue
    // after a partial copy, and a folder as a zip under the server's name.
    let arca = |args: &[&str]| {
        let (code, out, err) = cli_as(&srv.url, &token, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    let out_big = dir.path().join("big.copy");
    arca(&[
        "download",
        &rp[..12],
        "big.bin",
        "-o",
        out_big.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out_big).unwrap() == big,
        "arca download: big.bin differs"
    );
    std::fs::write(&out_big, &big[..5_000_000]).unwrap();
    arca(&[
        "download",
        &rp,
        "/big.bin",
        "-o",
        out_big.to_str().unwrap(),
        "--continue",
    ]);
    assert!(
        std::fs::read(&out_big).unwrap() == big,
        "resumed big.bin differs"
    );
    // Whole already: nothing to fetch.
    arca(&[
        "download",
        &rp,
        "/big.bin",
        "-o",
        out_big.to_str().unwrap(),
        "-c",
    ]);
    assert_eq!(std::fs::metadata(&out_big).unwrap().len(), big.len() as u64);
    let printed = arca(&["download", &rp, "dir/ü é.txt", "-o", "-"]);
    assert_eq!(printed, "unicode");
    let zip2 = dir.path().join("cli.zip");
    arca(&[
        "download",
        &rp,
        "dir",
        "--format",
        "zip",
        "-o",
        zip2.to_str().unwrap(),
    ]);
    let out = Command::new("unzip").arg("-t").arg(&zip2).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (code, _, err) = cli_as(&srv.url, &token, &["download", &rp, "nope", "-o", "-"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no path"), "{err}");

    // Bad paths are 400, never 500; missing ones 404; a folder without a
    // format 409.
    let long_path = format!("path={}", "a/".repeat(2100));
    for (q, want) in [
        ("path=../etc/passwd", 400),
        ("path=dir/%2e%2e/%2e%2e/etc", 400),
        ("path=a%00b", 400),
        (&long_path[..], 400),
        ("path=nope", 404),
        ("path=dir", 409),
        ("path=dir&format=7z", 400),
    ] {
        let (code, h, body) = curl(&files(q), &token, &[]);
        assert_eq!(code, want, "{q}: {h} {}", String::from_utf8_lossy(&body));
    }
}

/// An image restore point's disk.img, whole and by ranges, is the image.
#[test]
fn an_image_disk_downloads_with_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let image = dir.path().join("vm.img");
    crate::common::daemon::slow_image(&image, 16 << 20, 5 << 20);
    let img = std::fs::read(&image).unwrap();
    let (srv, lines) = Server::start(&data);
    let token = login(&srv.url, &first_password(&lines));
    let (code, out, err) = cli_as(
        &srv.url,
        &token,
        &["source", "add", "image", "vm", image.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = cli_as(&srv.url, &token, &["backup", "now", "vm", "--wait"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rp = restore_points(&srv.url, &token, "vm")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Its tree lists the disk as a file, recursive or not, and the file.
    for q in ["", "?recursive=true", "?path=disk.img"] {
        let tree = format!("{}/api/v1/restore-points/{rp}/tree{q}", srv.url);
        let (code, _, body) = curl(&tree, &token, &[]);
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 200, "{q}: {page}");
        let e = &page["entries"][0];
        assert_eq!(
            (&e["name"], &e["path"], &e["kind"], &e["size"]),
            (
                &"disk.img".into(),
                &"disk.img".into(),
                &"file".into(),
                &img.len().into()
            ),
            "{q}: {page}"
        );
        assert!(page["next_offset"].is_null(), "{page}");
    }
    let url = format!("{}/api/v1/restore-points/{rp}/files?path=disk.img", srv.url);
    let (code, h, body) = curl(&url, &token, &[]);
    assert_eq!(code, 200, "{h}");
    assert!(body == img, "disk.img differs from the image");
    let n = img.len();
    for (range, a, b) in [
        ("0-511", 0, 511),
        ("5242000-5243000", 5_242_000, 5_243_000),
        ("-4096", n - 4096, n - 1),
    ] {
        let (code, h, body) = curl(&url, &token, &["-r", range]);
        assert_eq!(code, 206, "{range}: {h}");
        assert!(body == img[a..=b], "{range} differs");
    }
}
