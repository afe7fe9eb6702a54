//! Every file of the test disk images (`tests/images/mkimages.sh`: ext4,
//! FAT32, FAT16, FAT12 and NTFS inside MBR and GPT partition tables) backed up
//! as image restore points and read back through each access path of the
//! server: `arca restore --path` (a task on the node), the download API
//! (each file, and each partition as a tar), the S3 gateway (`aws s3
//! cp --recursive`) and an NFS export (`arca mount --nfs`, read with
//! libnfs's nfs-ls and nfs-cat). Every regular file must equal the
//! original; restores and tars also keep mtimes, and on ext4 modes and
//! symlinks; nfs-ls shows sizes (and on ext4 modes).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::common::images::{percent_encode, test_images};
use crate::helpers::*;

/// The mtime mkimages.sh gives every file (2024-05-06 07:08:10 UTC).
const MTIME: i64 = 1_714_979_290;

#[derive(Clone, Copy, PartialEq)]
enum Fs {
    Ext4,
    Fat,
    Ntfs,
}

/// (image, partition, file system, what it holds under the images' dir).
const PARTITIONS: [(&str, &str, Fs, &str); 7] = [
    ("mbr", "part1", Fs::Ext4, "src"),
    ("mbr", "part2", Fs::Fat, "src-fat"),
    ("mbr", "part4", Fs::Ntfs, "src-ntfs"),
    ("mbr", "part5", Fs::Fat, "src-fat"),
    ("gpt", "part1", Fs::Fat, "src-fat"),
    ("gpt", "part2", Fs::Ext4, "src"),
    ("gpt", "part4", Fs::Ntfs, "src-ntfs"),
];

/// The regular files under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    common::walk(dir, &mut |p, m| {
        if m.is_file() {
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            out.insert(rel, std::fs::read(p).unwrap());
        }
    });
    out
}

/// How a file's path is matched: as is, or on FAT without case (mtools
/// writes `é.txt` as a short name that reads back as `É.txt`:
/// docs/file-access.md).
fn key(rel: &Path, fs: Fs) -> String {
    let s = rel.to_str().unwrap();
    match fs {
        Fs::Ext4 | Fs::Ntfs => s.to_string(),
        Fs::Fat => s.to_lowercase(),
    }
}

/// The regular files under `dir` by [`key`]: their paths there.
fn names(dir: &Path, fs: Fs) -> BTreeMap<String, PathBuf> {
    files(dir)
        .into_keys()
        .map(|rel| (key(&rel, fs), rel))
        .collect()
}

/// `got` holds every regular file of `want` with its bytes and mtime; on
/// ext4 also its mode and the symlinks with their targets.
fn assert_holds(want: &Path, got: &Path, fs: Fs, what: &str) {
    let expected = files(want);
    assert!(expected.len() >= 10, "{}", want.display());
    let shown = names(got, fs);
    for (rel, bytes) in &expected {
        let p = got.join(
            shown
                .get(&key(rel, fs))
                .unwrap_or_else(|| panic!("{what}: {rel:?} missing")),
        );
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{what}: {rel:?}: {e}"));
        assert!(data == *bytes, "{what}: {rel:?} differs");
        let (mw, mg) = (
            std::fs::metadata(want.join(rel)).unwrap(),
            std::fs::metadata(&p).unwrap(),
        );
        assert_eq!(mg.mtime(), MTIME, "{what}: {rel:?} mtime");
        if fs == Fs::Ext4 {
            assert_eq!(
                mw.permissions().mode() & 0o7777,
                mg.permissions().mode() & 0o7777,
                "{what}: {rel:?} mode"
            );
        }
    }
    if fs == Fs::Ext4 {
        for link in ["fastlink", "slowlink"] {
            assert_eq!(
                std::fs::read_link(got.join(link)).unwrap(),
                std::fs::read_link(want.join(link)).unwrap(),
                "{what}: {link}"
            );
        }
        // A hard link comes out as a second file with the same bytes
        // (ext4-view gives no inode numbers: docs/file-access.md).
        assert_eq!(
            std::fs::read(got.join("hardlink.txt")).unwrap(),
            b"hello\n",
            "{what}: hard link"
        );
    }
}

/// curl with the token: (HTTP status, body).
fn get(url: &str, token: &str) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("b");
    let out = Command::new("curl")
        .args(["-sS", "-g", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (code, std::fs::read(&body).unwrap_or_default())
}

fn aws(endpoint: &str, key: &(String, String), args: &[&str]) {
    let o = common::aws(endpoint, (&key.0, &key.1), args);
    assert!(
        o.status.success(),
        "aws {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_file_of_every_partition_comes_out_through_every_access_path() {
    let images = test_images();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (srv, lines) = Server::start(&data);
    let admin = login(&srv.url, &first_password(&lines));
    let url = srv.url.clone();
    let ok = |args: &[&str]| {
        let (code, out, err) = cli_as(&url, &admin, args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        out
    };
    let mut ids = BTreeMap::new();
    for image in ["mbr", "gpt"] {
        // The image is copied into the test's directory (the sources' root).
        let disk = dir.path().join(format!("{image}.img"));
        std::fs::copy(images.join(format!("{image}.img")), &disk).unwrap();
        ok(&["source", "add", "image", image, disk.to_str().unwrap()]);
        ok(&["backup", "now", image, "--wait"]);
        let id = restore_points(&url, &admin, image)[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        ids.insert(image, id);
    }
    // NFS: one export per restore point (`arca mount --nfs`).
    let mut nfs = BTreeMap::new();
    for (image, id) in &ids {
        let e: serde_json::Value =
            serde_json::from_str(&ok(&["--json", "mount", "--nfs", id, "--ttl", "30m"])).unwrap();
        nfs.insert(*image, e["address"].as_str().unwrap().to_string());
    }
    let status: serde_json::Value = serde_json::from_str(&ok(&["--json", "status"])).unwrap();
    let endpoint = status["s3_endpoint"].as_str().unwrap().to_string();
    let (code, out, err) = cli_as(&url, &admin, &["s3-key", "create"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut l = out.lines();
    let s3_key = (l.next().unwrap().to_string(), l.next().unwrap().to_string());

    for (image, part, fs, src) in PARTITIONS {
        let id = &ids[image];
        let want = images.join(src);
        let what = format!("{image} {part}");

        // arca restore --path: a task on the node.
        let out = dir.path().join(format!("restore-{image}-{part}"));
        ok(&[
            "restore",
            id,
            "--to",
            out.to_str().unwrap(),
            "--path",
            part,
            "--wait",
        ]);
        let root = if out.join(part).is_dir() {
            out.join(part)
        } else {
            out.clone()
        };
        assert_holds(&want, &root, fs, &format!("{what} restore"));

        // The download API, file by file.
        let shown = names(&root, fs);
        for (rel, bytes) in files(&want) {
            let path = format!("{part}/{}", shown[&key(&rel, fs)].to_str().unwrap());
            let (code, body) = get(
                &format!(
                    "{url}/api/v1/restore-points/{id}/files?path={}",
                    percent_encode(&path)
                ),
                &admin,
            );
            assert_eq!(code, 200, "{what} download {path}");
            assert!(body == bytes, "{what} download {path} differs");
        }
        // ... and the partition as a tar, extracted by GNU tar.
        let (code, tar) = get(
            &format!("{url}/api/v1/restore-points/{id}/files?path={part}&format=tar"),
            &admin,
        );
        assert_eq!(code, 200, "{what} tar");
        let x = dir.path().join(format!("tar-{image}-{part}"));
        std::fs::create_dir_all(&x).unwrap();
        let tar_file = x.with_extension("tar");
        std::fs::write(&tar_file, &tar).unwrap();
        let t = common::tool(
            "tar",
            &[
                "-xpf",
                tar_file.to_str().unwrap(),
                "-C",
                x.to_str().unwrap(),
            ],
        );
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        // One top directory, named after the folder.
        let top: Vec<_> = std::fs::read_dir(&x)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(top.len(), 1, "{what} tar: {top:?}");
        assert_holds(&want, &top[0], fs, &format!("{what} tar"));

        // The S3 gateway: bucket = source, key = <restore point>/<path>.
        let s3 = dir.path().join(format!("s3-{image}-{part}"));
        aws(
            &endpoint,
            &s3_key,
            &[
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                &format!("s3://{image}/{id}/{part}/"),
                s3.to_str().unwrap(),
            ],
        );
        let got: BTreeMap<String, Vec<u8>> = files(&s3)
            .into_iter()
            .map(|(rel, b)| (key(&rel, fs), b))
            .collect();
        for (rel, bytes) in files(&want) {
            let g = got
                .get(&key(&rel, fs))
                .unwrap_or_else(|| panic!("{what} s3: {rel:?} missing"));
            assert!(*g == bytes, "{what} s3: {rel:?} differs");
        }

        // NFS (libnfs's nfs-cat through the export's address): every file,
        // and nfs-ls -R lists it with its size (and on ext4 its mode).
        let (path, opts) = nfs[image].split_once('?').unwrap();
        let listing = String::from_utf8(
            common::tool("nfs-ls", &["-R", &format!("{path}/{part}?{opts}")]).stdout,
        )
        .unwrap();
        for (rel, bytes) in files(&want) {
            let name = shown[&key(&rel, fs)].to_str().unwrap().to_string();
            let url = format!("{path}/{part}/{name}?{opts}");
            let got = common::tool("nfs-cat", &[&url]).stdout;
            assert!(got == bytes, "{what} nfs: {rel:?} differs");
            let line = listing
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))
                .unwrap_or_else(|| panic!("{what} nfs-ls: {name} missing\n{listing}"));
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f[4], bytes.len().to_string(), "{what} nfs-ls: {line}");
            if fs == Fs::Ext4 {
                let mode = std::fs::metadata(want.join(&rel))
                    .unwrap()
                    .permissions()
                    .mode();
                let rwx: String = (0..9)
                    .map(|i| {
                        let bit = mode & (0o400 >> i) != 0;
                        match (bit, i % 3) {
                            (false, _) => '-',
                            (true, 0) => 'r',
                            (true, 1) => 'w',
                            (true, _) => 'x',
                        }
                    })
                    .collect();
                assert!(f[0].ends_with(&rwx), "{what} nfs-ls mode: {line}");
            }
        }
    }

    // FAT12 (mbr part6) holds one file.
    let (code, body) = get(
        &format!(
            "{url}/api/v1/restore-points/{}/files?path=part6/twelve.txt",
            ids["mbr"]
        ),
        &admin,
    );
    assert_eq!((code, body.as_slice()), (200, &b"twelve\n"[..]));
}
