//! One connector's allowlist: its own endpoint plus its `allowed_hosts`,
//! and the TCP destinations the host resolved and vetted for it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use url::Url;

use crate::ip::{self, Grant};
use crate::rule::HostRule;

/// Where one connector may send requests.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    own: HostRule,
    extra: Vec<HostRule>,
}

impl EgressPolicy {
    /// `own` is the connector's own endpoint (see [`HostRule::origin`]),
    /// `extra` its `allowed_hosts`.
    pub fn new(own: HostRule, extra: Vec<HostRule>) -> Self {
        EgressPolicy { own, extra }
    }

    pub fn permits(&self, url: &Url) -> bool {
        self.grant_for_url(url).is_some()
    }

    fn rules(&self) -> impl Iterator<Item = &HostRule> {
        std::iter::once(&self.own).chain(&self.extra)
    }

    /// The widest grant of the rules admitting `url`, if any admits it.
    pub fn grant_for_url(&self, url: &Url) -> Option<Grant> {
        self.rules()
            .filter(|r| r.permits(url))
            .map(HostRule::grant)
            .max()
    }

    /// The widest grant of the rules opening raw TCP to `host:port` (the
    /// connector's own endpoint, and `tcp://` rules). `host` is a lower-case
    /// name or a canonical IP (IPv6 in brackets).
    pub fn tcp_grant(&self, host: &str, port: u16) -> Option<Grant> {
        let own = self
            .own
            .permits_tcp(host, port, true)
            .then(|| self.own.grant());
        let extra = self
            .extra
            .iter()
            .filter(|r| r.permits_tcp(host, port, false))
            .map(HostRule::grant);
        own.into_iter().chain(extra).max()
    }

    /// The widest grant of the rules naming `host` (in any letter case),
    /// whatever scheme or port.
    pub fn grant_for_host(&self, host: &str) -> Option<Grant> {
        self.rules()
            .filter(|r| r.matches_host(host))
            .map(HostRule::grant)
            .max()
    }

    /// Whether `url` is on the connector's own endpoint, where the host
    /// attaches its credentials.
    pub fn is_own(&self, url: &Url) -> bool {
        self.own.permits(url)
    }

    /// The rules, for messages: "http://127.0.0.1:9090, *.example.com".
    pub fn describe(&self) -> String {
        let mut rules = vec![self.own.to_string()];
        rules.extend(self.extra.iter().map(ToString::to_string));
        rules.join(", ")
    }
}

/// The socket addresses one connector may open TCP connections to.
#[derive(Debug, Default)]
pub struct TcpAllowed {
    addresses: Mutex<HashSet<SocketAddr>>,
}

impl TcpAllowed {
    /// Destinations one connector may hold.
    pub const MAX: usize = 256;

    /// The destinations `policy` names as IP literals with a port: they
    /// need no lookup.
    pub fn seeded(policy: &EgressPolicy) -> Self {
        let tcp = TcpAllowed::default();
        for rule in policy.rules() {
            if let (Grant::ExactIp(address), Some(port)) =
                (rule.grant(), rule.tcp_port(rule == &policy.own))
            {
                tcp.insert(SocketAddr::new(ip::canonical(address), port));
            }
        }
        tcp
    }

    /// Records that the connector may connect to `address`; false when it
    /// already holds [`Self::MAX`] destinations.
    pub fn insert(&self, address: SocketAddr) -> bool {
        let mut set = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        set.contains(&address) || set.len() < Self::MAX && set.insert(address)
    }

    /// Whether a connection to `address` is allowed.
    pub fn permits(&self, address: SocketAddr) -> bool {
        let address = SocketAddr::new(ip::canonical(address.ip()), address.port());
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&address)
    }
}
