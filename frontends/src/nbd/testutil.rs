//! What the unit tests of the NBD server share: one export, options and
//! requests a client sends, and a session run on them.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::Arc;

use super::proto::*;
use super::session;
use crate::reader::{BlockSource, MemDisk};
use crate::Exports;

pub(super) struct One(pub(super) Arc<MemDisk>);

impl Exports for One {
    fn names(&self) -> Vec<String> {
        vec!["disk".into()]
    }
    fn open(&self, name: &str) -> Option<Arc<dyn BlockSource>> {
        (name == "disk").then(|| self.0.clone() as Arc<dyn BlockSource>)
    }
}

pub(super) fn opt(o: u32, data: &[u8]) -> Vec<u8> {
    let mut v = IHAVEOPT.to_be_bytes().to_vec();
    v.extend_from_slice(&o.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

pub(super) fn go(name: &str) -> Vec<u8> {
    let mut d = (name.len() as u32).to_be_bytes().to_vec();
    d.extend_from_slice(name.as_bytes());
    d.extend_from_slice(&0u16.to_be_bytes());
    opt(OPT_GO, &d)
}

pub(super) fn req(kind: u16, cookie: u64, offset: u64, len: u32) -> Vec<u8> {
    let mut v = REQUEST_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&cookie.to_be_bytes());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// Option replies' types, in order, from the server's output after
/// the 18-byte greeting (stops at the first non-reply).
pub(super) fn reply_types(out: &[u8]) -> Vec<u32> {
    let mut p = &out[18..];
    let mut v = Vec::new();
    while p.len() >= 20 && p[..8] == OPT_REPLY_MAGIC.to_be_bytes() {
        let kind = u32::from_be_bytes(p[12..16].try_into().unwrap());
        let len = u32::from_be_bytes(p[16..20].try_into().unwrap()) as usize;
        v.push(kind);
        p = &p[20 + len..];
    }
    v
}

pub(super) fn run(input: &[u8]) -> (io::Result<()>, Vec<u8>) {
    let mut data = vec![1u8; 8192];
    data[4096..].fill(0);
    let e = One(Arc::new(MemDisk { data }));
    let mut out = Vec::new();
    let r = session(input, &mut out, &e);
    (r, out)
}

/// The server's output after the greeting and the option replies.
pub(super) fn transmission(out: &[u8]) -> &[u8] {
    let mut p = &out[18..];
    while p.len() >= 20 && p[..8] == OPT_REPLY_MAGIC.to_be_bytes() {
        let len = u32::from_be_bytes(p[16..20].try_into().unwrap()) as usize;
        p = &p[20 + len..];
    }
    p
}

/// Simple replies by cookie: (error, data). `read_len(cookie)` is the
/// length of the data a successful reply to that cookie carries (0 for
/// anything but a read). Panics on a cookie answered twice.
pub(super) fn simple_replies(
    mut p: &[u8],
    read_len: impl Fn(u64) -> usize,
) -> std::collections::HashMap<u64, (u32, Vec<u8>)> {
    let mut m = std::collections::HashMap::new();
    while !p.is_empty() {
        assert_eq!(p[..4], SIMPLE_REPLY_MAGIC.to_be_bytes());
        let err = u32::from_be_bytes(p[4..8].try_into().unwrap());
        let cookie = u64::from_be_bytes(p[8..16].try_into().unwrap());
        let n = if err == 0 { read_len(cookie) } else { 0 };
        let old = m.insert(cookie, (err, p[16..16 + n].to_vec()));
        assert!(old.is_none(), "cookie {cookie} answered twice");
        p = &p[16 + n..];
    }
    m
}
