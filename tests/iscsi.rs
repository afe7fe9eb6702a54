//! `arca serve iscsi` against real iSCSI initiators on loopback: libiscsi's
//! tools (iscsi-ls, iscsi-inq, iscsi-readcapacity16, iscsi-test-cu) and a
//! small libiscsi client (tests/iscsi/lun.c, built here) that reads a whole
//! LUN and writes blocks. No kernel iSCSI is involved.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};

mod common;

use common::{lun_client, run_tool as run, tool_stdout as tool};

struct Serve {
    _proc: common::Proc,
    /// host:port
    addr: String,
}

fn serve(env: &common::Env, extra: &[&str]) -> Serve {
    let (_proc, url) = env.serve("iscsi", extra);
    let addr = url
        .trim_start_matches("iscsi://")
        .trim_end_matches('/')
        .to_string();
    Serve { _proc, addr }
}

const IQN: &str = "iqn.2026-11.io.arca:";

/// libiscsi's conformance families run here, one by one: every test must
/// pass or be one of [`EXPECTED_SKIPS`] (docs/frontends.md lists the whole
/// suite's result).
const CONFORMANCE: &[&str] = &[
    "SCSI.TestUnitReady",
    "SCSI.Inquiry",
    "SCSI.ReadCapacity10",
    "SCSI.ReadCapacity16",
    "SCSI.Read6",
    "SCSI.Read10",
    "SCSI.Read12",
    "SCSI.Read16",
    "SCSI.Verify10",
    "SCSI.Verify16",
    "SCSI.ModeSense6",
    "SCSI.GetLBAStatus",
    "SCSI.ReportSupportedOpcodes",
    "SCSI.PreventAllow",
    "SCSI.StartStopUnit",
    "SCSI.NoMedia",
    "SCSI.Mandatory",
    "SCSI.Prefetch10",
    "SCSI.Prefetch16",
];

/// Tests of the families above that libiscsi skips on this target, each
/// with why. A skip is not a pass: any other skip fails the run, and so
/// does a listed one that no longer skips (the list stays exact).
/// (test, text of the skip message, reason).
const READ_ONLY: &str =
    "the export is read-only and the test writes (it needs --dataloss and a writable export)";
const NO_RSOC_DPO: &str = "DPO/FUA support is looked up with REPORT SUPPORTED OPERATION CODES, which the target does not implement (out of scope: docs/frontends.md)";
const NO_RSOC: &str =
    "REPORT SUPPORTED OPERATION CODES is not implemented (out of scope: docs/frontends.md)";
const NOT_REMOVABLE: &str = "a restore point is a fixed disk, not removable media";
const NO_PREFETCH: &str = "PRE-FETCH is not implemented (out of scope: the reader reads ahead by itself; docs/frontends.md)";
const EXPECTED_SKIPS: &[(&str, &str, &str)] = &[
    ("Read10.Async", "--dataloss flag is not set", READ_ONLY),
    (
        "ModeSense6.Control-SWP",
        "--dataloss flag is not set",
        READ_ONLY,
    ),
    (
        "GetLBAStatus.UnmapSingle",
        "--dataloss flag is not set",
        READ_ONLY,
    ),
    (
        "Read10.DpoFua",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC_DPO,
    ),
    (
        "Read12.DpoFua",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC_DPO,
    ),
    (
        "Read16.DpoFua",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC_DPO,
    ),
    (
        "Verify10.Dpo",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC_DPO,
    ),
    (
        "Verify16.Dpo",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC_DPO,
    ),
    (
        "ReportSupportedOpcodes.Simple",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC,
    ),
    (
        "ReportSupportedOpcodes.OneCommand",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC,
    ),
    (
        "ReportSupportedOpcodes.RCTD",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC,
    ),
    (
        "ReportSupportedOpcodes.SERVACTV",
        "REPORT_SUPPORTED_OPCODES is not implemented",
        NO_RSOC,
    ),
    (
        "PreventAllow.Simple",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.Eject",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.ITNexusLoss",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.Logout",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.WarmReset",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.ColdReset",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.LUNReset",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "PreventAllow.2ITNexuses",
        "Logical unit is not removable",
        NOT_REMOVABLE,
    ),
    (
        "StartStopUnit.Simple",
        "Media is not removable",
        NOT_REMOVABLE,
    ),
    (
        "Prefetch10.Simple",
        "PREFETCH10 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch10.BeyondEol",
        "PREFETCH10 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch10.ZeroBlocks",
        "PREFETCH10 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch10.Flags",
        "PREFETCH10 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch16.Simple",
        "PREFETCH16 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch16.BeyondEol",
        "PREFETCH16 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch16.ZeroBlocks",
        "PREFETCH16 is not implemented",
        NO_PREFETCH,
    ),
    (
        "Prefetch16.Flags",
        "PREFETCH16 is not implemented",
        NO_PREFETCH,
    ),
];

/// One test of an iscsi-test-cu run, from its CUnit output.
#[derive(Debug)]
struct CuTest {
    /// Suite.Test, as CUnit names it.
    name: String,
    /// libiscsi's "[SKIPPED] ..." message, when the test skipped.
    skipped: Option<String>,
    failed: bool,
}

/// The tests of an iscsi-test-cu run. CUnit prints "Test: X ..." and, once
/// the test is done, "passed" or "FAILED"; libiscsi's log lines go to the
/// same stdout in between. A "[SKIPPED]" line belongs to a test only
/// between those two: the ones before the first test and after an outcome
/// come from iscsi-test-cu's own probing of the device, not from a test.
fn cu_tests(out: &str) -> Vec<CuTest> {
    let mut suite = String::new();
    let mut tests: Vec<CuTest> = Vec::new();
    let mut open = false;
    for line in out.lines() {
        let mut rest = line;
        if let Some(s) = line.trim_start().strip_prefix("Suite: ") {
            suite = s.trim().to_string();
            open = false;
            continue;
        }
        if let Some(i) = line.find("Test: ") {
            let t = &line[i + 6..];
            let (name, after) = t.split_once(" ...").unwrap_or((t, ""));
            tests.push(CuTest {
                name: format!("{suite}.{}", name.trim()),
                skipped: None,
                failed: false,
            });
            open = true;
            rest = after;
        }
        let Some(cur) = tests.last_mut().filter(|_| open) else {
            continue;
        };
        // The test's own text ends at its outcome.
        let outcome = ["passed", "FAILED"]
            .iter()
            .filter_map(|w| rest.find(w).map(|i| (i, *w)))
            .min();
        let inside = outcome.map_or(rest, |(i, _)| &rest[..i]);
        for marker in ["[SKIPPED]", "[SKIPPING]"] {
            if let Some(i) = inside.find(marker) {
                let msg = inside[i + marker.len()..].trim().to_string();
                cur.skipped.get_or_insert(msg);
            }
        }
        if let Some((_, w)) = outcome {
            cur.failed = w == "FAILED";
            open = false;
        }
    }
    tests
}

/// (tests run, failed) from iscsi-test-cu's CUnit summary.
fn cu_summary(out: &str) -> (u32, u32) {
    let l = out
        .lines()
        .find(|l| l.trim_start().starts_with("tests "))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    let n: Vec<u32> = l
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[1], n[3])
}

/// Run the conformance families: every test must pass, and a skip counts
/// as not passed unless [`EXPECTED_SKIPS`] lists it.
fn conformance(url: &str) {
    let mut problems = Vec::new();
    let mut skipped_as_expected = Vec::new();
    let mut passed = 0;
    for t in CONFORMANCE {
        let out = run("iscsi-test-cu", &["--verbose", &format!("--test={t}"), url]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let (ran, failed) = cu_summary(&text);
        let tests = cu_tests(&text);
        if ran == 0 || failed > 0 || tests.len() != ran as usize {
            problems.push(format!(
                "{t}: {ran} run, {failed} failed, {} parsed\n{text}",
                tests.len()
            ));
            continue;
        }
        for c in tests {
            match (&c.skipped, c.failed) {
                (_, true) => problems.push(format!("{}: FAILED", c.name)),
                (None, false) => passed += 1,
                (Some(msg), false) => match EXPECTED_SKIPS
                    .iter()
                    .find(|(n, m, _)| *n == c.name && msg.contains(m))
                {
                    Some(_) => skipped_as_expected.push(c.name),
                    None => problems.push(format!("{}: skipped ({msg}): not passed", c.name)),
                },
            }
        }
    }
    for (name, _, why) in EXPECTED_SKIPS {
        if !skipped_as_expected.iter().any(|s| s == name) {
            problems.push(format!(
                "{name} is listed as an expected skip ({why}) but did not skip: remove it from EXPECTED_SKIPS"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "iscsi-test-cu: {passed} passed; {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(passed > 0);
}

#[test]
fn cunit_output_is_parsed_with_skips() {
    // As iscsi-test-cu 1.19 prints it: probe messages before the first
    // test and after the last outcome belong to no test.
    let out = "    [SKIPPED] PERSISTENT RESERVE IN is not implemented.\n\nSuite: Read10\n  Test: Simple ...passed\n  Test: DpoFua ...    [SKIPPED] REPORT_SUPPORTED_OPCODES is not implemented.\n    [SKIPPED] again\npassed\n  Test: Beyond ...FAILED\n    1. test.c:12 - oops\n  Test: Async ...passed    [SKIPPED] PERSISTENT RESERVE IN is not implemented.\n\nRun Summary:\n";
    let t = cu_tests(out);
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[0].name, "Read10.Simple");
    assert!(t[0].skipped.is_none() && !t[0].failed);
    assert_eq!(
        t[1].skipped.as_deref(),
        Some("REPORT_SUPPORTED_OPCODES is not implemented.")
    );
    assert!(!t[1].failed);
    assert!(t[2].failed && t[2].skipped.is_none());
    assert!(t[3].skipped.is_none() && !t[3].failed, "{:?}", t[3]);
}

#[test]
fn image_restore_points_over_iscsi_with_libiscsi() {
    let env = common::Env::new();
    // 2 MiB data, 1 MiB hole, 1 MiB data.
    let mut img = common::random_bytes(2 << 20, 21);
    img.extend(vec![0u8; 1 << 20]);
    img.extend(common::random_bytes(1 << 20, 22));
    let path = env.path("vm1.raw");
    std::fs::write(&path, &img).unwrap();
    let b = env.json(&["backup", "image", path.to_str().unwrap(), "--source", "vm1"]);
    let id = b["snapshot"].as_str().unwrap().to_string();
    let lun = lun_client(&env.path(""));
    let lun = lun.to_str().unwrap();
    let srv = serve(&env, &[]);
    let portal = format!("iscsi://{}", srv.addr);

    // Discovery lists the restore point and vm1/latest, with their sizes.
    let ls = tool("iscsi-ls", &["-s", &format!("{portal}/")]);
    assert!(
        ls.contains(&format!("Target:{IQN}{id} Portal:{},1", srv.addr)),
        "{ls}"
    );
    assert!(ls.contains(&format!("Target:{IQN}vm1.latest")), "{ls}");
    assert!(ls.contains("Type:DIRECT_ACCESS"), "{ls}");
    let url = format!("{portal}/{IQN}vm1.latest/0");

    let inq = tool("iscsi-inq", &[&url]);
    assert!(
        inq.contains("Vendor:ARCA") && inq.contains("Peripheral Device Type:DIRECT_ACCESS"),
        "{inq}"
    );
    let cap = tool("iscsi-readcapacity16", &[&url]);
    assert!(cap.contains(&format!("Total size:{}", img.len())), "{cap}");
    assert!(cap.contains("LBPME:1"), "{cap}");

    // The whole LUN, read through libiscsi, is the image.
    let out = run(lun, &["read", &format!("{portal}/{IQN}{id}/0")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == img, "the LUN differs from the image");

    // Read-only: a write is refused with DATA PROTECT.
    let out = run(lun, &["write", &url, "0", "1", "0xab"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WRITE_PROTECTED"),
        "{out:?}"
    );

    // An unknown target: the login fails, the server serves on.
    let out = run("iscsi-inq", &[&format!("{portal}/{IQN}nope/0")]);
    assert!(!out.status.success(), "{out:?}");
    // Garbage instead of a login PDU, and a huge data segment length.
    for bad in [vec![0xffu8; 48], {
        let mut b = vec![0u8; 48];
        b[0] = 0x03;
        b[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        b
    }] {
        let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(&bad).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        // Either a login reject or a closed connection, never a hang.
        assert!(rest.len() <= 48 + 512, "{}", rest.len());
    }
    tool("iscsi-inq", &[&url]);

    // libiscsi's conformance tests for what this target implements; a
    // skipped test is not a passed one.
    conformance(&url);
}

#[test]
fn chap_and_writable_targets() {
    let env = common::Env::new();
    let img = common::random_bytes(1 << 20, 31);
    let path = env.path("db.raw");
    std::fs::write(&path, &img).unwrap();
    let b = env.json(&["backup", "image", path.to_str().unwrap(), "--source", "db"]);
    let id = b["snapshot"].as_str().unwrap().to_string();
    let lun = lun_client(&env.path(""));
    let lun = lun.to_str().unwrap();
    let secret = env.path("chap.secret");
    std::fs::write(&secret, "s3cret-s3cret\n").unwrap();
    let srv = serve(
        &env,
        &[
            "--chap-user",
            "alice",
            "--chap-secret-file",
            secret.to_str().unwrap(),
            "--writable",
        ],
    );
    let target = format!("{}/{IQN}db.latest/0", srv.addr);

    // Without CHAP, or with a wrong secret or user: refused.
    for creds in ["", "alice%wrong-secret@", "bob%s3cret-s3cret@"] {
        let out = run(lun, &["read", &format!("iscsi://{creds}{target}")]);
        assert!(!out.status.success(), "{creds}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("login"),
            "{out:?}"
        );
    }
    let good = format!("iscsi://alice%s3cret-s3cret@{target}");
    let out = run(lun, &["read", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == img);

    // Writable: 16 blocks of 0x5a at block 100 (R2T and Data-Out), read back.
    tool(lun, &["write", &good, "100", "16", "0x5a"]);
    let out = run(lun, &["read", &good]);
    let mut want = img.clone();
    want[100 * 512..116 * 512].fill(0x5a);
    assert!(out.stdout == want, "the write did not land");
    // A larger write than one burst.
    tool(lun, &["write", &good, "512", "1024", "0x11"]);
    want[512 * 512..1536 * 512].fill(0x11);
    assert!(run(lun, &["read", &good]).stdout == want);

    // The restore point itself never changed.
    let out = env.path("restored.raw");
    env.ok(&["restore", &id, out.to_str().unwrap()]);
    assert!(std::fs::read(&out).unwrap() == img);
}

/// One PDU of a raw initiator: header and data segment.
fn read_raw_pdu(s: &mut std::net::TcpStream) -> ([u8; 48], Vec<u8>) {
    let mut h = [0u8; 48];
    s.read_exact(&mut h).unwrap();
    let dsl = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
    let mut d = vec![0u8; dsl.div_ceil(4) * 4];
    s.read_exact(&mut d).unwrap();
    d.truncate(dsl);
    (h, d)
}

fn raw_pdu(opcode: u8, flags: u8, itt: u32, fields: &[(usize, u32)], data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 48];
    h[0] = opcode;
    h[1] = flags;
    h[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    h[16..20].copy_from_slice(&itt.to_be_bytes());
    for (at, v) in fields {
        h[*at..*at + 4].copy_from_slice(&v.to_be_bytes());
    }
    let mut v = h.to_vec();
    v.extend_from_slice(data);
    v.resize(48 + data.len().div_ceil(4) * 4, 0);
    v
}

/// A raw initiator keeps many READ(10) commands of different chunks
/// outstanding on one session while a 2 MiB chunk cache evicts: the
/// answers may come in any order, each task gets its own bytes, and the
/// target's MaxCmdSN window lets the commands in.
#[test]
fn outstanding_reads_on_one_session_get_the_right_bytes() {
    let env = common::Env::new();
    let img = common::random_bytes(16 << 20, 61);
    let path = env.path("q.raw");
    std::fs::write(&path, &img).unwrap();
    env.json(&["backup", "image", path.to_str().unwrap(), "--source", "q"]);
    let srv = serve(&env, &["--cache-mib", "2"]);
    let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let text = format!(
        "InitiatorName=iqn.2026-12.test:raw\0TargetName={IQN}q.latest\0SessionType=Normal\0\
         AuthMethod=None\0MaxRecvDataSegmentLength=65536\0"
    );
    s.write_all(&raw_pdu(0x43, 0x87, 1, &[], text.as_bytes()))
        .unwrap();
    let (h, _) = read_raw_pdu(&mut s);
    assert_eq!((h[0] & 0x3f, h[36], h[37]), (0x23, 0, 0), "login");
    let be = |h: &[u8; 48], at: usize| u32::from_be_bytes(h[at..at + 4].try_into().unwrap());
    let (mut exp_cmd_sn, mut max_cmd_sn) = (be(&h, 28), be(&h, 32));
    let blocks = img.len() as u64 / 512;
    let mut x = 7u64;
    let mut want = std::collections::HashMap::new();
    let mut got: std::collections::HashMap<u32, Vec<u8>> = Default::default();
    let mut most = 0;
    for round in 0..8u32 {
        // As many commands as the window allows, then every answer.
        let n = (max_cmd_sn.wrapping_sub(exp_cmd_sn) + 1).min(48);
        most = most.max(n);
        let mut batch = Vec::new();
        for i in 0..n {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (x >> 58) * 2; // up to 127 blocks
            let lba = (x >> 20) % (blocks - len);
            let (itt, sn) = (round * 100 + i, exp_cmd_sn.wrapping_add(i));
            let mut cmd = raw_pdu(0x01, 0xc1, itt, &[(20, len as u32 * 512), (24, sn)], &[]);
            cmd[32] = 0x28;
            cmd[34..38].copy_from_slice(&(lba as u32).to_be_bytes());
            cmd[39..41].copy_from_slice(&(len as u16).to_be_bytes());
            batch.extend(cmd);
            let at = lba as usize * 512;
            want.insert(itt, img[at..at + len as usize * 512].to_vec());
        }
        s.write_all(&batch).unwrap();
        let mut done = 0;
        while done < n {
            let (h, d) = read_raw_pdu(&mut s);
            assert_eq!(h[0] & 0x3f, 0x25, "Data-In");
            let itt = be(&h, 16);
            let buf = got.entry(itt).or_default();
            assert_eq!(be(&h, 40) as usize, buf.len(), "Data-In in order");
            buf.extend(d);
            if h[1] & 0x01 != 0 {
                assert_eq!(h[3], 0, "GOOD");
                (exp_cmd_sn, max_cmd_sn) = (be(&h, 28), be(&h, 32));
                done += 1;
            }
        }
    }
    assert!(most >= 32, "the window lets {most} commands in");
    assert_eq!(got.len(), want.len());
    for (itt, bytes) in &want {
        assert!(got[itt] == *bytes, "task {itt}: wrong bytes");
    }
    s.write_all(&raw_pdu(0x46, 0x80, 9999, &[(24, exp_cmd_sn)], &[]))
        .unwrap();
    assert_eq!(read_raw_pdu(&mut s).0[0] & 0x3f, 0x26, "logout");
}
