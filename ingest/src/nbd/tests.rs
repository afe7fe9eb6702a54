use std::io::{Cursor, Read, Write};
use std::process::Command;

use super::wire::*;
use super::*;
use crate::image::qcow2::{add_bitmap, QemuNbd};

/// A server that says what a test scripted, and swallows requests.
struct Script {
    input: Cursor<Vec<u8>>,
    sent: Vec<u8>,
}

impl Read for Script {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(b)
    }
}

impl Write for Script {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.sent.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn option_reply(v: &mut Vec<u8>, opt: u32, kind: u32, data: &[u8]) {
    v.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&opt.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
}

/// A server greeting and a successful OPT_GO for an export of `size`.
fn handshake(size: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&NBDMAGIC.to_be_bytes());
    v.extend_from_slice(&IHAVEOPT.to_be_bytes());
    v.extend_from_slice(&3u16.to_be_bytes());
    let mut info = INFO_EXPORT.to_be_bytes().to_vec();
    info.extend_from_slice(&size.to_be_bytes());
    info.extend_from_slice(&1u16.to_be_bytes());
    option_reply(&mut v, OPT_GO, REP_INFO, &info);
    option_reply(&mut v, OPT_GO, REP_ACK, &[]);
    v
}

fn client(script: Vec<u8>) -> Result<NbdClient<Script>> {
    NbdClient::connect(
        Script {
            input: Cursor::new(script),
            sent: Vec::new(),
        },
        "disk",
        &[],
    )
}

fn structured(v: &mut Vec<u8>, flags: u16, kind: u16, cookie: u64, payload: &[u8]) {
    v.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&cookie.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
}

#[test]
fn a_scripted_read_returns_data_and_holes_at_their_offsets() {
    let mut s = handshake(1 << 20);
    let mut data = 100u64.to_be_bytes().to_vec();
    data.extend_from_slice(&[7u8; 4]);
    structured(&mut s, 0, REPLY_TYPE_OFFSET_DATA, 1, &data);
    let mut hole = 104u64.to_be_bytes().to_vec();
    hole.extend_from_slice(&4u32.to_be_bytes());
    structured(&mut s, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_HOLE, 1, &hole);
    let mut c = client(s).unwrap();
    assert_eq!(c.size(), 1 << 20);
    let mut buf = [9u8; 8];
    c.read(100, &mut buf).unwrap();
    assert_eq!(buf, [7, 7, 7, 7, 0, 0, 0, 0]);
}

#[test]
fn hostile_replies_are_errors_not_panics() {
    // Data outside the request.
    let mut s = handshake(1 << 20);
    let mut data = 0u64.to_be_bytes().to_vec();
    data.extend_from_slice(&[7u8; 4]);
    structured(&mut s, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, 1, &data);
    let e = client(s).unwrap().read(100, &mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("outside the read request"), "{e}");
    // A reply to another request.
    let mut s = handshake(1 << 20);
    structured(&mut s, REPLY_FLAG_DONE, REPLY_TYPE_NONE, 99, &[]);
    let e = client(s).unwrap().read(0, &mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("never sent"), "{e}");
    // A read that does not cover the request.
    let mut s = handshake(1 << 20);
    structured(&mut s, REPLY_FLAG_DONE, REPLY_TYPE_NONE, 1, &[]);
    let e = client(s).unwrap().read(0, &mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("does not cover"), "{e}");
    // The server hangs up mid-reply.
    let mut s = handshake(1 << 20);
    s.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    let e = client(s).unwrap().read(0, &mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("closed the connection"), "{e}");
    // A read past the end is refused before anything is sent.
    let e = client(handshake(10))
        .unwrap()
        .read(8, &mut [0u8; 4])
        .unwrap_err();
    assert!(e.to_string().contains("beyond the export"), "{e}");
    // An error reply to the export's name.
    let mut s = handshake(0)[..18].to_vec();
    option_reply(&mut s, OPT_GO, (1 << 31) | 6, b"no such export");
    let e = client(s).err().unwrap();
    assert!(
        e.to_string().contains("unknown export (no such export)"),
        "{e}"
    );
    // Not an NBD server.
    let e = client(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec())
        .err()
        .unwrap();
    assert!(e.to_string().contains("not an NBD server"), "{e}");
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Against the real qemu-nbd: allocation and dirty-bitmap extents are
/// where qemu-io wrote, and reads return what it wrote.
#[test]
fn qemu_nbd_reports_allocation_and_dirty_extents() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.qcow2");
    let p = img.to_str().unwrap();
    sh("qemu-img", &["create", "-q", "-f", "qcow2", p, "64M"]);
    sh(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x11 1M 64k",
            "-c",
            "write -P 0x22 10M 1M",
            p,
        ],
    );
    add_bitmap(&img, "b0").unwrap();
    sh(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x33 20M 128k",
            "-c",
            "write -P 0x44 10M 64k",
            p,
        ],
    );
    let srv = QemuNbd::start(&img, "qcow2", Some("b0")).unwrap();
    let mut c = srv
        .connect(&["base:allocation", "qemu:dirty-bitmap:b0"])
        .unwrap();
    assert_eq!(c.size(), 64 << 20);
    let alloc = c
        .extents_where("base:allocation", |f| f & STATE_ZERO == 0)
        .unwrap();
    let m = 1u64 << 20;
    assert_eq!(alloc, vec![(m, 64 << 10), (10 * m, m), (20 * m, 128 << 10)]);
    let dirty = c
        .extents_where("qemu:dirty-bitmap:b0", |f| f & STATE_DIRTY != 0)
        .unwrap();
    assert_eq!(dirty, vec![(10 * m, 64 << 10), (20 * m, 128 << 10)]);
    let mut buf = vec![0u8; 3 << 20];
    c.read(9 * m, &mut buf).unwrap();
    assert!(buf[..m as usize].iter().all(|b| *b == 0));
    assert!(buf[m as usize..][..64 << 10].iter().all(|b| *b == 0x44));
    assert!(
        buf[(m + (64 << 10)) as usize..][..(m - (64 << 10)) as usize]
            .iter()
            .all(|b| *b == 0x22)
    );
    // A context that was not asked for is refused.
    let e = c.block_status("qemu:dirty-bitmap:nope", 0, 1).unwrap_err();
    assert!(e.to_string().contains("not negotiated"), "{e}");
    c.disconnect();
    // A bitmap the image does not have: qemu-nbd refuses to start.
    drop(srv);
    let e = QemuNbd::start(&img, "qcow2", Some("missing"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("qemu-nbd could not serve"), "{e}");
}
