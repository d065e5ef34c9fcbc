//! Allowlist rules, parsed once at config load time.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::ip::{self, Grant};

/// One entry of `sandbox.allowed_hosts`:
/// `[scheme://]host[:port][/path-prefix]`, where host may start with `*.`.
///
/// Without a scheme both `http` and `https` match; without a port the
/// scheme's default port is meant (80 or 443). `tcp://host:port` opens raw
/// TCP (through wasi:sockets) and needs a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    text: String,
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
    path_prefix: String,
}

/// Kept in the form a URL's host is compared in, so that judging a request
/// (twice per request: the allowlist, then the own-endpoint credentials)
/// neither formats nor parses anything.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A name in canonical lower case (as `url` prints it), no trailing dot.
    Name(String),
    /// An IP literal, as the network sees it ([`ip::canonical`]).
    Ip(IpAddr),
    /// `*.example.com`: any name ending in `.example.com`.
    Suffix(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{rule}` is not a host rule ({why}); write it like https://api.example.com, http://10.0.0.5:9090 or *.example.com:443"
)]
pub struct RuleError {
    rule: String,
    why: String,
}

impl HostRule {
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let fail = |why: &str| RuleError {
            rule: text.to_string(),
            why: why.to_string(),
        };
        let trimmed = text.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if !matches!(scheme.as_str(), "http" | "https" | "tcp") {
                    return Err(fail("the scheme must be http, https or tcp"));
                }
                (Some(scheme), rest)
            }
            None => (None, trimmed),
        };
        let (authority, path_prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        if authority.contains('@') {
            return Err(fail("user info is not allowed"));
        }
        let (host_text, wildcard) = match authority.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (authority, false),
        };
        if host_text.contains('*') {
            return Err(fail("`*` is only allowed as a leading `*.`"));
        }
        // Let the URL parser canonicalise the host and port, exactly as it
        // will canonicalise the URLs the guest sends.
        let probe =
            Url::parse(&format!("http://{host_text}/")).map_err(|e| fail(&e.to_string()))?;
        let host = match probe.host() {
            Some(Host::Domain(d)) => {
                let name = d.trim_end_matches('.');
                if name.is_empty() {
                    return Err(fail("no host"));
                }
                if wildcard {
                    HostPattern::Suffix(name.to_string())
                } else {
                    HostPattern::Name(name.to_string())
                }
            }
            Some(Host::Ipv4(v4)) if !wildcard => HostPattern::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) if !wildcard => HostPattern::Ip(ip::canonical(IpAddr::V6(v6))),
            Some(_) => return Err(fail("`*.` needs a domain name after it")),
            None => return Err(fail("no host")),
        };
        let port = if host_text
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            // `url` drops a port equal to the default of http (80).
            Some(probe.port().unwrap_or(80))
        } else {
            None
        };
        if scheme.as_deref() == Some("tcp") && port.is_none() {
            return Err(fail("a tcp:// rule needs a port"));
        }
        if scheme.as_deref() == Some("tcp") && !path_prefix.is_empty() {
            return Err(fail("a tcp:// rule has no path"));
        }
        Ok(HostRule {
            text: trimmed.to_string(),
            scheme,
            host,
            port,
            path_prefix,
        })
    }

    /// The rule that admits exactly `scheme://host:port`.
    pub fn origin(scheme: &str, host: &str, port: u16) -> Result<Self, RuleError> {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Self::parse(&format!("{scheme}://{host}:{port}"))
    }

    /// How far this rule vouches for the addresses its host resolves to.
    pub fn grant(&self) -> Grant {
        match &self.host {
            HostPattern::Suffix(_) => Grant::Wildcard,
            HostPattern::Name(_) => Grant::Named,
            HostPattern::Ip(ip) => Grant::ExactIp(*ip),
        }
    }

    /// Whether the rule's host pattern matches `host` (a name, or an IP
    /// with IPv6 in brackets), whatever the scheme and port.
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match &self.host {
            HostPattern::Name(name) => name.eq_ignore_ascii_case(host),
            HostPattern::Ip(_) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .is_ok_and(|ip| self.matches_ip(ip)),
            HostPattern::Suffix(suffix) => {
                let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }

    fn matches_ip(&self, address: IpAddr) -> bool {
        matches!(self.host, HostPattern::Ip(ip) if ip == ip::canonical(address))
    }

    /// Whether this rule opens raw TCP to `host:port`. `own` rules (the
    /// connector's endpoint) do so whatever their scheme.
    pub fn permits_tcp(&self, host: &str, port: u16, own: bool) -> bool {
        (own || self.scheme.as_deref() == Some("tcp"))
            && self.port == Some(port)
            && self.matches_host(host)
    }

    /// The port this rule opens to TCP, if it opens any.
    pub fn tcp_port(&self, own: bool) -> Option<u16> {
        (own || self.scheme.as_deref() == Some("tcp"))
            .then_some(self.port)
            .flatten()
    }

    pub fn permits(&self, url: &Url) -> bool {
        let scheme = url.scheme();
        if let Some(rule_scheme) = &self.scheme {
            if rule_scheme != scheme {
                return false;
            }
        } else if scheme != "http" && scheme != "https" {
            return false;
        }
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        let wanted_port = self.port.unwrap_or(match scheme {
            "https" => 443,
            _ => 80,
        });
        if port != wanted_port {
            return false;
        }
        let host_matches = match url.host() {
            Some(Host::Domain(name)) => self.matches_host(name),
            Some(Host::Ipv4(v4)) => self.matches_ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.matches_ip(IpAddr::V6(v6)),
            None => false,
        };
        host_matches
            && (self.path_prefix.is_empty()
                || url.path() == self.path_prefix
                || url
                    .path()
                    .strip_prefix(self.path_prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(rule: &str, url: &str) -> bool {
        HostRule::parse(rule)
            .unwrap()
            .permits(&Url::parse(url).unwrap())
    }

    #[test]
    fn exact_origin_admits_only_its_scheme_host_and_port() {
        let rule = "http://127.0.0.1:9090";
        assert!(permits(rule, "http://127.0.0.1:9090/-/healthy"));
        assert!(!permits(rule, "https://127.0.0.1:9090/"));
        assert!(!permits(rule, "http://127.0.0.1:9091/"));
        assert!(!permits(rule, "http://127.0.0.2:9090/"));
    }

    #[test]
    fn missing_port_means_the_default_port_of_the_scheme() {
        assert!(permits(
            "https://api.example.com",
            "https://api.example.com/x"
        ));
        assert!(!permits(
            "https://api.example.com",
            "https://api.example.com:8443/"
        ));
        assert!(permits("api.example.com", "http://api.example.com/"));
        assert!(permits("api.example.com", "https://api.example.com/"));
        assert!(permits("http://example.com:80", "http://example.com/"));
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_the_bare_domain_or_lookalikes() {
        let rule = "*.internal.example.com:443";
        assert!(permits(rule, "https://a.internal.example.com/"));
        assert!(permits(rule, "https://a.b.internal.example.com/"));
        assert!(!permits(rule, "https://internal.example.com/"));
        assert!(!permits(rule, "https://evilinternal.example.com/"));
        assert!(!permits(rule, "https://a.internal.example.com:444/"));
    }

    #[test]
    fn ip_spellings_are_compared_in_canonical_form() {
        assert!(permits("http://127.0.0.1:80", "http://0x7f.0.0.1/"));
        assert!(permits("http://127.0.0.1:80", "http://2130706433/"));
        assert!(permits("http://[::1]:8080", "http://[0:0::1]:8080/"));
        assert!(permits("http://example.com", "http://EXAMPLE.com./"));
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_that_address() {
        // Mapped and NAT64 forms reach the IPv4 address: judged as it.
        assert!(permits("http://10.0.0.5:80", "http://[::ffff:10.0.0.5]/"));
        assert!(permits("http://[::ffff:10.0.0.5]:80", "http://10.0.0.5/"));
        assert!(permits("http://10.0.0.5:80", "http://[64:ff9b::a00:5]/"));
        assert!(!permits("http://10.0.0.5:80", "http://[::ffff:10.0.0.6]/"));
        assert!(!permits("http://[::1]:80", "http://127.0.0.1/"));
        let rule = HostRule::parse("http://[::ffff:10.0.0.5]:80").unwrap();
        assert_eq!(rule.grant(), Grant::ExactIp("10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn hosts_given_as_text_match_as_urls_do() {
        let ip = HostRule::parse("tcp://[::1]:5432").unwrap();
        assert!(ip.matches_host("[::1]"));
        assert!(ip.matches_host("[0:0::1]"));
        assert!(!ip.matches_host("[::2]"));
        assert!(!ip.matches_host("localhost"));
        let v4 = HostRule::parse("tcp://10.0.0.5:5432").unwrap();
        assert!(v4.matches_host("10.0.0.5"));
        assert!(v4.matches_host("[::ffff:10.0.0.5]"));
        assert!(!v4.matches_host("10.0.0.50"));
        let name = HostRule::parse("db.example.com").unwrap();
        assert!(name.matches_host("DB.Example.com."));
        assert!(!name.matches_host("db.example.co"));
        let wildcard = HostRule::parse("*.example.com").unwrap();
        assert!(wildcard.matches_host("A.EXAMPLE.COM"));
        assert!(!wildcard.matches_host("example.com"));
        assert!(!wildcard.matches_host("aexample.com"));
        assert_eq!(name.grant(), Grant::Named);
        assert_eq!(wildcard.grant(), Grant::Wildcard);
    }

    #[test]
    fn userinfo_does_not_change_the_host_that_is_checked() {
        assert!(!permits(
            "http://allowed.example",
            "http://allowed.example@evil.example/"
        ));
    }

    #[test]
    fn path_prefix_matches_whole_segments() {
        let rule = "https://api.example.com/v1";
        assert!(permits(rule, "https://api.example.com/v1"));
        assert!(permits(rule, "https://api.example.com/v1/users"));
        assert!(!permits(rule, "https://api.example.com/v10"));
        assert!(!permits(rule, "https://api.example.com/"));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for bad in [
            "ftp://x",
            "*",
            "a*.example.com",
            "user@host",
            "http://",
            "*.1.2.3.4",
        ] {
            let err = HostRule::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
