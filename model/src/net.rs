//! Address blocks: who may use an NFS export (NFSv3 has no user
//! authentication, so the client's address and the export's project are
//! the access control). The NFS server checks them; the web layer
//! validates the `allow` lists of `POST /api/v1/exports` with the same
//! parser.

use std::net::IpAddr;

/// An address block (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block of one address (`/32` or `/128`).
    pub fn host(ip: IpAddr) -> Cidr {
        let ip = canonical(ip);
        Cidr {
            addr: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    /// Parse `ADDR/PREFIX` or `ADDR` (a single address).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an address block (like 192.168.1.0/24 or ::1)");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The allow list used when none is given: loopback only.
pub fn default_allow() -> Vec<Cidr> {
    vec![
        Cidr::parse("127.0.0.1/32").unwrap_or(Cidr {
            addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            prefix: 32,
        }),
        Cidr {
            addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
    ]
}

/// Whether any block of `allow` holds `ip`.
pub fn allowed(allow: &[Cidr], ip: IpAddr) -> bool {
    allow.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn address_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()), "mapped");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::2".parse().unwrap()));
        assert!(!Cidr::parse("::/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::1/129",
            "x/8",
            "10.0.0.0/-1",
            "1.2.3.4/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        let d = default_allow();
        assert!(allowed(&d, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&d, "::1".parse().unwrap()));
        assert!(!allowed(&d, "127.0.0.2".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            Cidr::host("::ffff:10.1.2.3".parse().unwrap()).to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(Cidr::host("::1".parse().unwrap()).to_string(), "::1/128");
    }
}
