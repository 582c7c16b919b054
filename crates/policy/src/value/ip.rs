//! CIDR ranges for `IpAddress` / `NotIpAddress`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 range. An address written without `/n` is a single host (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Not a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACidr(pub &'static str);

impl Cidr {
    /// Whether `ip` is inside the range. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// compared as the IPv4 address it carries, since that is the client it names.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_v4(u32::from(a), self.prefix) == mask_v4(u32::from(net), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_v6(u128::from(a), self.prefix) == mask_v6(u128::from(net), self.prefix)
            }
            _ => false,
        }
    }
}

fn mask_v4(v: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        v & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask_v6(v: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        v & (u128::MAX << (128 - u32::from(prefix)))
    }
}

impl FromStr for Cidr {
    type Err = NotACidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| NotACidr("not an IPv4 or IPv6 address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NotACidr("prefix length is not a number"));
                }
                let n: u8 = p.parse().map_err(|_| NotACidr("prefix length too large"))?;
                if n > max {
                    return Err(NotACidr("prefix length too large"));
                }
                n
            }
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parses a request-side IP address (no prefix).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse::<IpAddr>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn ranges() {
        assert!(c("203.0.113.0/24").contains(ip("203.0.113.77")));
        assert!(!c("203.0.113.0/24").contains(ip("203.0.114.1")));
        assert!(c("203.0.113.9").contains(ip("203.0.113.9")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(c("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!c("2001:db8::/32").contains(ip("203.0.113.9")));
        assert!(c("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(c("10.1.2.3/8").contains(ip("10.200.0.1")));
    }

    #[test]
    fn rejects_bad_ranges() {
        for s in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "host",
        ] {
            assert!(s.parse::<Cidr>().is_err(), "{s}");
        }
    }
}
