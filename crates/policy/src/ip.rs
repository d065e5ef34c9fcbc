//! Which IP addresses a guest may reach, judged after the host resolved the
//! name itself (so a name that resolves to an internal address is caught).
//!
//! Threat model: an allowlist entry names *hosts*; an attacker who controls
//! DNS for an allowed name (or an allowed wildcard) can point it anywhere.
//! So every resolved address is vetted, and connections go only to vetted
//! addresses (the vetting resolver hands reqwest nothing else):
//!
//! - link-local (169.254.0.0/16, fe80::/10, cloud metadata such as
//!   169.254.169.254 and fd00:ec2::254), unspecified, broadcast and multicast
//!   addresses are refused unless the rule is that exact IP;
//! - loopback and private ranges (127.0.0.0/8, ::1, 10/8, 172.16/12,
//!   192.168/16, 100.64/10, fc00::/7) are allowed only when a rule names the
//!   host explicitly (an exact name or IP, not a `*.` wildcard);
//! - everything else is allowed for any matching rule.
//!
//! IPv6 addresses that carry an IPv4 address (mapped, compatible, NAT64
//! 64:ff9b::/96, 6to4 2002::/16) are judged as that IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How much a matching rule vouches for the addresses of its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// A `*.` wildcard: public addresses only.
    Wildcard,
    /// An exact name or IP: private and loopback addresses too.
    Named,
    /// An exact IP literal: that address, whatever its range.
    ExactIp(IpAddr),
}

/// The address as the network will see it: mapped IPv6 becomes IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let v4 = |hi: u16, lo: u16| {
                    IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
                };
                match v6.segments() {
                    // IPv4-compatible (::a.b.c.d), deprecated but still routed by some stacks.
                    // Only `::` and `::1` are IPv6's own (unspecified, loopback): `::2` is
                    // 0.0.0.2, in "this network" like any `::0.0.x.y`.
                    [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => v4(hi, lo),
                    // NAT64: the gateway connects to the embedded IPv4 address.
                    [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4(hi, lo),
                    // 6to4: the relay forwards to the embedded IPv4 address.
                    [0x2002, hi, lo, ..] => v4(hi, lo),
                    _ => IpAddr::V6(v6),
                }
            }
        },
        v4 => v4,
    }
}

fn always_refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_unspecified() || v4.octets()[0] == 0 {
                Some("unspecified (\"this network\")")
            } else if v4.is_link_local() {
                Some("link-local or cloud metadata")
            } else if v4.is_broadcast() {
                Some("broadcast")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.octets()[0] >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if a == 198 && (b == 18 || b == 19) {
                Some("benchmarking")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("loopback")
            } else if (v6.segments()[0] & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else {
                None
            }
        }
    }
}

/// Whether `ip` may be reached under `grant`; the reason when not.
pub fn vet(ip: IpAddr, grant: Grant) -> Result<(), String> {
    let ip = canonical(ip);
    if let Grant::ExactIp(exact) = grant
        && canonical(exact) == ip
    {
        return Ok(());
    }
    if let Some(kind) = always_refused(ip) {
        return Err(format!(
            "{ip} is a {kind} address, reachable only through a rule naming that exact IP"
        ));
    }
    if let Some(kind) = internal(ip)
        && grant == Grant::Wildcard
    {
        return Err(format!(
            "{ip} is a {kind} address, reachable only through a rule naming its host exactly, not a wildcard"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn metadata_link_local_unspecified_and_multicast_need_an_exact_ip_rule() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "0.1.2.3",
            "240.0.0.1",
        ] {
            assert!(
                vet(ip(bad), Grant::Named).is_err(),
                "{bad} must be refused for a named host"
            );
            assert!(
                vet(ip(bad), Grant::Wildcard).is_err(),
                "{bad} must be refused for a wildcard"
            );
        }
        assert!(vet(ip("169.254.169.254"), Grant::ExactIp(ip("169.254.169.254"))).is_ok());
        assert!(
            vet(
                ip("::ffff:169.254.169.254"),
                Grant::ExactIp(ip("169.254.169.254"))
            )
            .is_ok()
        );
        assert!(vet(ip("169.254.169.253"), Grant::ExactIp(ip("169.254.169.254"))).is_err());
    }

    #[test]
    fn loopback_and_private_need_an_explicitly_named_host() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "198.18.0.1",
            "64:ff9b::7f00:1",
            "2002:0a00:0001::",
        ] {
            assert!(
                vet(ip(internal), Grant::Wildcard).is_err(),
                "{internal} via a wildcard"
            );
            assert!(
                vet(ip(internal), Grant::Named).is_ok(),
                "{internal} via a named host"
            );
        }
    }

    #[test]
    fn ipv4_compatible_forms_of_this_network_are_judged_as_it() {
        // Found by the property tests: `::2` was judged as an IPv6 address
        // and passed through a wildcard.
        for bad in ["::2", "::0.0.1.2", "::ffff", "::0.0.255.255"] {
            assert!(vet(ip(bad), Grant::Wildcard).is_err(), "{bad}");
            assert!(vet(ip(bad), Grant::Named).is_err(), "{bad}");
            assert!(vet(ip(bad), Grant::ExactIp(ip(bad))).is_ok(), "{bad}");
        }
        assert_eq!(canonical(ip("::2")), ip("0.0.0.2"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        assert_eq!(canonical(ip("::")), ip("::"));
    }

    #[test]
    fn public_addresses_pass_any_matching_rule() {
        for public in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(vet(ip(public), Grant::Wildcard).is_ok(), "{public}");
        }
    }

    #[test]
    fn refusals_name_the_address_and_why() {
        let err = vet(ip("::ffff:169.254.169.254"), Grant::Named).unwrap_err();
        assert!(
            err.contains("169.254.169.254") && err.contains("link-local"),
            "{err}"
        );
    }
}
