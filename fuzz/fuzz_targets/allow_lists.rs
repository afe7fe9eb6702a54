//! The address blocks of NFS export allow lists (`arca_model::net::Cidr`),
//! parsed from API bodies (`POST /api/v1/exports` `allow`): garbage is an
//! error, never a panic; what parses prints as a block that parses to
//! itself, and membership tests never panic (any prefix, any address).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arca_model::net::{allowed, Cidr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let blocks: Vec<Cidr> = text
        .lines()
        .take(64)
        .filter_map(|l| Cidr::parse(l).ok())
        .collect();
    for c in &blocks {
        let again = Cidr::parse(&c.to_string()).expect("a printed block parses");
        assert_eq!(again.to_string(), c.to_string());
    }
    // Addresses from the raw bytes.
    let mut v4 = [0u8; 4];
    let mut v6 = [0u8; 16];
    for (i, b) in data.iter().enumerate() {
        v4[i % 4] ^= b;
        v6[i % 16] ^= b;
    }
    for ip in [
        IpAddr::V4(Ipv4Addr::from(v4)),
        IpAddr::V6(Ipv6Addr::from(v6)),
        IpAddr::V6(Ipv4Addr::from(v4).to_ipv6_mapped()),
    ] {
        let _ = allowed(&blocks, ip);
        assert!(Cidr::host(ip).contains(ip));
    }
});
