//! The login phase: security negotiation (CHAP), operational
//! negotiation, and text requests (`SendTargets`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use super::pdu::{op, parse_text, read_pdu, text, Bhs, Pdu, PduError, MAX_RECV_DSL, MAX_TEXT};
use super::scsi::{Lun, MAX_TRANSFER};
use super::session::Session;
use crate::reader::BlockSource;
use crate::{iscsi_target_name, Chap, Exports};

/// Login status (class, detail).
mod status {
    pub const AUTH_FAILED: (u8, u8) = (0x02, 0x01);
    pub const NOT_FOUND: (u8, u8) = (0x02, 0x03);
    pub const MISSING_PARAMETER: (u8, u8) = (0x02, 0x07);
    pub const INIT_ERROR: (u8, u8) = (0x02, 0x00);
    pub const UNSUPPORTED_VERSION: (u8, u8) = (0x02, 0x05);
}

/// The export whose target name is `iqn`.
fn find_target(exports: &dyn Exports, iqn: &str) -> Option<(String, Arc<dyn BlockSource>)> {
    let name = exports.by_target_name(iqn)?;
    let disk = exports.open(&name)?;
    Some((name, disk))
}

/// What a login must present.
enum Auth {
    /// Nothing (`AuthMethod=None`).
    None,
    /// CHAP with this credential.
    Chap(Chap),
    /// CHAP as the user of any one export (discovery of a private list).
    AnyExport,
}

impl<W: Write> Session<'_, W> {
    fn login_reply(
        &mut self,
        req: &Bhs,
        flags: u8,
        st: (u8, u8),
        tsih: u16,
        pairs: &[(String, String)],
    ) -> io::Result<()> {
        let mut b = Bhs::new(op::LOGIN_RSP);
        b.0[1] = flags;
        b.0[8..14].copy_from_slice(&req.0[8..14]); // ISID
        b.0[14..16].copy_from_slice(&tsih.to_be_bytes());
        b.set_u32(16, req.itt());
        self.seq(&mut b, true);
        b.0[36] = st.0;
        b.0[37] = st.1;
        self.send(b, &text(pairs))?;
        self.w.flush()
    }

    /// Run the login phase; Ok(true) when full feature phase begins.
    pub(super) fn login<R: Read>(&mut self, r: &mut R) -> io::Result<bool> {
        let mut target: Option<(String, Arc<dyn BlockSource>)> = None;
        let mut keys: HashMap<String, String> = HashMap::new();
        let mut chap: Option<(u8, [u8; 16])> = None;
        let mut auth = Auth::None;
        let mut authed = false;
        let mut first = true;
        loop {
            let pdu = match read_pdu(r, MAX_TEXT) {
                Ok(p) => p,
                Err(PduError::Io(e)) => return Err(e),
                Err(PduError::TooLong(n)) => {
                    return Err(io::Error::other(format!("login data of {n} bytes")))
                }
            };
            let req = pdu.bhs;
            if req.opcode() != op::LOGIN_REQ {
                // Only logins before the full feature phase.
                let fail = status::INIT_ERROR;
                self.login_reply(&req, 0, fail, 0, &[])?;
                return Ok(false);
            }
            if first {
                // StatSN starts where the initiator expects it.
                self.stat_sn = req.u32(28);
                self.exp_cmd_sn = req.u32(24);
                if req.0[3] > 0 {
                    self.login_reply(&req, 0, status::UNSUPPORTED_VERSION, 0, &[])?;
                    return Ok(false);
                }
            }
            let transit = req.flags() & 0x80 != 0;
            let csg = (req.flags() >> 2) & 3;
            let nsg = req.flags() & 3;
            let pairs = parse_text(&pdu.data);
            for (k, v) in &pairs {
                keys.insert(k.clone(), v.clone());
            }
            let mut out: Vec<(String, String)> = Vec::new();
            if first {
                first = false;
                self.discovery = keys.get("SessionType").map(String::as_str) == Some("Discovery");
                if !keys.contains_key("InitiatorName") {
                    self.login_reply(&req, 0, status::MISSING_PARAMETER, 0, &[])?;
                    return Ok(false);
                }
                let cfg = self.cfg;
                let global = || cfg.chap.clone().map(|(user, secret)| Chap { user, secret });
                if !self.discovery {
                    let Some(name) = keys.get("TargetName") else {
                        self.login_reply(&req, 0, status::MISSING_PARAMETER, 0, &[])?;
                        return Ok(false);
                    };
                    match find_target(self.exports, name) {
                        Some(t) => {
                            auth = match self.exports.chap(&t.0).or_else(global) {
                                Some(c) => Auth::Chap(c),
                                None => Auth::None,
                            };
                            target = Some(t);
                        }
                        None => {
                            self.login_reply(&req, 0, status::NOT_FOUND, 0, &[])?;
                            return Ok(false);
                        }
                    }
                    out.push(("TargetPortalGroupTag".into(), "1".into()));
                } else if self.exports.private() {
                    auth = Auth::AnyExport;
                } else if let Some(c) = global() {
                    auth = Auth::Chap(c);
                }
                authed = matches!(auth, Auth::None);
            }
            if csg == 0 {
                // Security negotiation.
                if let Some(m) = keys.get("AuthMethod").filter(|_| chap.is_none()) {
                    let offered: Vec<&str> = m.split(',').collect();
                    let pick = if !matches!(auth, Auth::None) {
                        offered.contains(&"CHAP").then_some("CHAP")
                    } else {
                        offered.contains(&"None").then_some("None")
                    };
                    match pick {
                        Some(p) => out.push(("AuthMethod".into(), p.into())),
                        None => {
                            self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                            return Ok(false);
                        }
                    }
                }
                if let (false, Some(a)) = (matches!(auth, Auth::None), keys.get("CHAP_A")) {
                    if chap.is_none() {
                        if !a.split(',').any(|x| x == "5") {
                            self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                            return Ok(false);
                        }
                        let mut c = [0u8; 17];
                        getrandom::fill(&mut c).map_err(|e| io::Error::other(e.to_string()))?;
                        let challenge: [u8; 16] = c[1..].try_into().unwrap_or_default();
                        chap = Some((c[0], challenge));
                        out.push(("CHAP_A".into(), "5".into()));
                        out.push(("CHAP_I".into(), c[0].to_string()));
                        out.push(("CHAP_C".into(), format!("0x{}", hex(&challenge))));
                        keys.remove("CHAP_A");
                    }
                }
                if let (Some((id, challenge)), Some(n), Some(resp)) =
                    (chap, keys.get("CHAP_N"), keys.get("CHAP_R"))
                {
                    // The credential the user name stands for.
                    let (cred, export) = match &auth {
                        Auth::None => (None, None),
                        Auth::Chap(c) => (Some(c.clone()), None),
                        Auth::AnyExport => match self.exports.by_chap_user(n) {
                            Some(e) => (self.exports.chap(&e), Some(e)),
                            None => (None, None),
                        },
                    };
                    // Mutual CHAP (the initiator challenging us) is not offered.
                    let mutual = keys.contains_key("CHAP_I") || keys.contains_key("CHAP_C");
                    let ok = cred.is_some_and(|c| {
                        c.user == *n && chap_response_ok(id, &c.secret, &challenge, resp)
                    });
                    if !ok || mutual {
                        tracing::info!(
                            "iscsi: CHAP authentication of {n:?} failed (initiator {:?})",
                            keys.get("InitiatorName").map(String::as_str).unwrap_or("")
                        );
                        self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                        return Ok(false);
                    }
                    self.discovered = export;
                    authed = true;
                }
            } else if !authed {
                // Operational negotiation before CHAP succeeded.
                self.login_reply(&req, 0, status::AUTH_FAILED, 0, &[])?;
                return Ok(false);
            } else {
                out.extend(self.negotiate(&pairs));
            }
            let can_transit = transit && (csg != 0 || authed);
            let flags = if can_transit {
                0x80 | (csg << 2) | nsg
            } else {
                csg << 2 | csg
            };
            let full = can_transit && nsg == 3;
            let tsih = if full { 1 } else { 0 };
            self.login_reply(&req, flags, (0, 0), tsih, &out)?;
            if full {
                if let Some((name, disk)) = target.take() {
                    self.lun = Some(Lun { disk, name });
                }
                return Ok(true);
            }
        }
    }

    /// Answers to operational keys, and the session's limits.
    fn negotiate(&mut self, pairs: &[(String, String)]) -> Vec<(String, String)> {
        let num = |v: &str| v.parse::<u64>().ok();
        let mut out = Vec::new();
        let mut said_dsl = false;
        for (k, v) in pairs {
            let answer: Option<String> = match k.as_str() {
                "HeaderDigest" | "DataDigest" => Some(if v.split(',').any(|x| x == "None") {
                    "None".into()
                } else {
                    "Reject".into()
                }),
                "MaxRecvDataSegmentLength" => {
                    if let Some(n) = num(v) {
                        self.send_dsl = n.clamp(512, 16 << 20) as usize;
                    }
                    said_dsl = true;
                    Some(MAX_RECV_DSL.to_string())
                }
                "MaxBurstLength" => num(v).map(|n| {
                    self.max_burst = n.clamp(512, MAX_TRANSFER) as usize;
                    self.max_burst.to_string()
                }),
                "FirstBurstLength" => num(v).map(|n| {
                    self.first_burst = n.clamp(512, MAX_RECV_DSL as u64) as usize;
                    self.first_burst.to_string()
                }),
                "InitialR2T" => Some("Yes".into()),
                "ImmediateData" => Some(v.clone()),
                "MaxOutstandingR2T" => Some("1".into()),
                "DataPDUInOrder" | "DataSequenceInOrder" => Some("Yes".into()),
                "ErrorRecoveryLevel" => Some("0".into()),
                "MaxConnections" => Some("1".into()),
                "DefaultTime2Wait" => num(v).map(|n| n.max(2).to_string()),
                "DefaultTime2Retain" => Some("0".into()),
                "IFMarker" | "OFMarker" => Some("No".into()),
                "InitiatorName" | "InitiatorAlias" | "TargetName" | "SessionType"
                | "AuthMethod" | "TargetAlias" => None,
                k if k.starts_with("X-") || k.starts_with("X#") => Some("NotUnderstood".into()),
                _ => Some("NotUnderstood".into()),
            };
            if let Some(a) = answer {
                out.push((k.clone(), a));
            }
        }
        if !said_dsl && !pairs.is_empty() {
            out.push(("MaxRecvDataSegmentLength".into(), MAX_RECV_DSL.to_string()));
        }
        self.first_burst = self.first_burst.min(self.max_burst);
        out
    }
    pub(super) fn text_request(&mut self, pdu: &Pdu) -> io::Result<()> {
        let pairs = parse_text(&pdu.data);
        let mut out = Vec::new();
        for (k, v) in &pairs {
            if k == "SendTargets" {
                let names: Vec<String> = match (&self.lun, v.as_str()) {
                    (Some(l), _) => vec![l.name.clone()],
                    (None, _) if self.exports.private() => self
                        .discovered
                        .iter()
                        .filter(|n| v == "All" || iscsi_target_name(n) == v.to_ascii_lowercase())
                        .cloned()
                        .collect(),
                    (None, "All") => self.exports.names(),
                    (None, iqn) => find_target(self.exports, iqn)
                        .map(|(n, _)| vec![n])
                        .unwrap_or_default(),
                };
                for n in names {
                    out.push(("TargetName".to_string(), iscsi_target_name(&n)));
                    out.push(("TargetAddress".to_string(), format!("{},1", self.portal)));
                }
            } else {
                out.push((k.clone(), "NotUnderstood".into()));
            }
        }
        let mut data = text(&out);
        // One PDU (with a larger list than the initiator takes, the rest is cut).
        data.truncate(self.send_dsl);
        let mut b = Bhs::new(op::TEXT_RSP);
        b.0[1] = 0x80;
        b.0[8..16].copy_from_slice(&pdu.bhs.0[8..16]);
        b.set_u32(16, pdu.bhs.itt());
        b.set_u32(20, 0xffff_ffff);
        self.took(&pdu.bhs);
        self.seq(&mut b, true);
        self.send(b, &data)?;
        self.w.flush()
    }
}

/// Whether `resp` (hex) is MD5(id, secret, challenge), as RFC 1994 says.
fn chap_response_ok(id: u8, secret: &str, challenge: &[u8], resp: &str) -> bool {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update([id]);
    h.update(secret.as_bytes());
    h.update(challenge);
    let want = h.finalize();
    unhex(resp).is_some_and(|got| crate::same_secret(&got, want.as_slice()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `0x…` hex (CHAP values); base64 (`0b…`) is not accepted.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() % 2 != 0 || h.len() > 1024 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::iscsi::session::{session, IscsiConfig};
    use crate::iscsi::testutil::{login, pdu, run};
    use crate::reader::MemDisk;

    #[test]
    fn discovery_lists_targets_and_an_unknown_target_is_refused() {
        let mut input = pdu(
            0x43,
            0x87,
            1,
            b"InitiatorName=iqn.t\0SessionType=Discovery\0",
        );
        input.extend(pdu(op::TEXT_REQ, 0x80, 2, b"SendTargets=All\0"));
        let out = run(&input, &IscsiConfig::default());
        assert_eq!(out[0].bhs.opcode(), op::LOGIN_RSP);
        assert_eq!(out[0].bhs.0[36..38], [0, 0]);
        let keys = parse_text(&out[1].data);
        assert!(keys.contains(&("TargetName".into(), "iqn.2026-11.io.arca:vm.latest".into())));
        assert!(keys.contains(&("TargetAddress".into(), "127.0.0.1:3260,1".into())));

        let out = run(
            &login("iqn.2026-11.io.arca:nope", ""),
            &IscsiConfig::default(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bhs.0[36..38], [2, 3], "target not found");
        // No InitiatorName: missing parameter.
        let out = run(
            &pdu(0x43, 0x87, 1, b"TargetName=iqn.2026-11.io.arca:vm.latest\0"),
            &IscsiConfig::default(),
        );
        assert_eq!(out[0].bhs.0[36..38], [2, 7]);
    }

    #[test]
    fn chap_is_required_when_configured() {
        let cfg = IscsiConfig {
            chap: Some(("u".into(), "secretsecret".into())),
        };
        // Straight to operational negotiation, no authentication.
        let out = run(&login("iqn.2026-11.io.arca:vm.latest", ""), &cfg);
        assert_eq!(out[0].bhs.0[36..38], [2, 1]);
        // AuthMethod=None only.
        let mut p = login("iqn.2026-11.io.arca:vm.latest", "AuthMethod=None\0");
        p[1] = 0x81; // CSG 0 → NSG 1
        let out = run(&p, &cfg);
        assert_eq!(out[0].bhs.0[36..38], [2, 1]);
    }

    /// One export with its own CHAP credential, in a private list.
    struct Private(Arc<MemDisk>);

    const SECRET: &str = "0123456789abcdef";

    impl Exports for Private {
        fn names(&self) -> Vec<String> {
            Vec::new()
        }
        fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
            (name == "export-1").then(|| self.0.clone() as Arc<dyn BlockSource>)
        }
        fn private(&self) -> bool {
            true
        }
        fn by_target_name(&self, iqn: &str) -> Option<String> {
            (iqn == "iqn.2026-11.io.arca:export-1").then(|| "export-1".to_string())
        }
        fn chap(&self, name: &str) -> Option<Chap> {
            (name == "export-1").then(|| Chap {
                user: "export-1".into(),
                secret: SECRET.into(),
            })
        }
        fn by_chap_user(&self, user: &str) -> Option<String> {
            (user == "export-1").then(|| user.to_string())
        }
    }

    /// A login as `user` with `secret` (CHAP, answering the target's
    /// challenge) to `target`, or a discovery session when it is `None`;
    /// then `SendTargets=All`. Returns the final login status and the
    /// targets listed.
    fn chap_login(target: Option<&str>, user: &str, secret: &str) -> ((u8, u8), Vec<String>) {
        use std::os::unix::net::UnixStream;
        let (mut client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let exports = Private(Arc::new(MemDisk {
                data: vec![0; 4096],
            }));
            let w = server.try_clone().unwrap();
            let _ = session(
                server,
                w,
                &exports,
                &IscsiConfig::default(),
                "127.0.0.1:3260",
            );
        });
        let first = match target {
            Some(t) => format!(
                "InitiatorName=iqn.t\0TargetName={t}\0SessionType=Normal\0AuthMethod=CHAP,None\0"
            ),
            None => "InitiatorName=iqn.t\0SessionType=Discovery\0AuthMethod=CHAP,None\0".into(),
        };
        let mut exchange = |flags: u8, text: &str| {
            client
                .write_all(&pdu(0x43, flags, 1, text.as_bytes()))
                .unwrap();
            let p = read_pdu(&mut client, u32::MAX).unwrap();
            ((p.bhs.0[36], p.bhs.0[37]), parse_text(&p.data))
        };
        let (st, keys) = exchange(0x81, &first);
        assert_eq!(st, (0, 0));
        assert!(
            keys.contains(&("AuthMethod".into(), "CHAP".into())),
            "{keys:?}"
        );
        let (st, keys) = exchange(0x01, "CHAP_A=5\0");
        assert_eq!(st, (0, 0));
        let get = |k: &str| keys.iter().find(|(x, _)| x == k).unwrap().1.clone();
        let id: u8 = get("CHAP_I").parse().unwrap();
        let challenge = unhex(&get("CHAP_C")).unwrap();
        use md5::Digest as _;
        let mut h = md5::Md5::new();
        h.update([id]);
        h.update(secret.as_bytes());
        h.update(&challenge);
        let resp = format!("CHAP_N={user}\0CHAP_R=0x{}\0", hex(&h.finalize()));
        let (st, _) = exchange(0x81, &resp);
        if st != (0, 0) {
            t.join().unwrap();
            return (st, Vec::new());
        }
        let (st, _) = exchange(0x87, "MaxRecvDataSegmentLength=8192\0");
        assert_eq!(st, (0, 0));
        client
            .write_all(&pdu(op::TEXT_REQ, 0x80, 2, b"SendTargets=All\0"))
            .unwrap();
        let p = read_pdu(&mut client, u32::MAX).unwrap();
        drop(client);
        t.join().unwrap();
        let targets = parse_text(&p.data)
            .into_iter()
            .filter(|(k, _)| k == "TargetName")
            .map(|(_, v)| v)
            .collect();
        ((0, 0), targets)
    }

    #[test]
    fn an_export_with_its_own_credential_takes_only_chap_logins_with_it() {
        let iqn = "iqn.2026-11.io.arca:export-1";
        let disk = || {
            Private(Arc::new(MemDisk {
                data: vec![0; 4096],
            }))
        };
        let run_private = |input: &[u8]| {
            let mut out = Vec::new();
            let _ = session(input, &mut out, &disk(), &IscsiConfig::default(), "p");
            let mut r = &out[..];
            read_pdu(&mut r, u32::MAX).unwrap()
        };
        // No authentication at all, or AuthMethod=None only: refused.
        assert_eq!(run_private(&login(iqn, "")).bhs.0[36..38], [2, 1]);
        let mut p = login(iqn, "AuthMethod=None\0");
        p[1] = 0x81;
        assert_eq!(run_private(&p).bhs.0[36..38], [2, 1]);
        // Discovery without CHAP: refused too.
        let p = pdu(
            0x43,
            0x81,
            1,
            b"InitiatorName=iqn.t\0SessionType=Discovery\0AuthMethod=None\0",
        );
        assert_eq!(run_private(&p).bhs.0[36..38], [2, 1]);
        // Wrong secret, wrong user: authentication failure.
        assert_eq!(
            chap_login(Some(iqn), "export-1", "0123456789abcdeX").0,
            (2, 1)
        );
        assert_eq!(chap_login(Some(iqn), "export-2", SECRET).0, (2, 1));
        assert_eq!(chap_login(None, "export-1", "wrong").0, (2, 1));
        assert_eq!(chap_login(None, "nobody", SECRET).0, (2, 1));
        // The right credential logs in; discovery lists only that export.
        assert_eq!(chap_login(Some(iqn), "export-1", SECRET).0, (0, 0));
        assert_eq!(
            chap_login(None, "export-1", SECRET),
            ((0, 0), vec![iqn.to_string()])
        );
    }
    #[test]
    fn chap_values_decode() {
        assert_eq!(unhex("0x0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("0x0"), None);
    }
}
