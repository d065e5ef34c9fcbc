//! How a node finds the cluster: `--cluster etcd://host:port[,host:port]`
//! (`etcds://` for TLS), `--node-id`, and the TLS files.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::OptionsError;
use crate::keys::{DEFAULT_PREFIX, Keys, NodeId};

/// etcd's client port, for an endpoint written without one.
const DEFAULT_PORT: u16 = 2379;

/// Where the cluster is and how this node joins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `host:port` of each etcd endpoint.
    pub endpoints: Vec<String>,
    pub node_id: NodeId,
    /// Every key lives under it; see [`DEFAULT_PREFIX`].
    pub prefix: String,
    /// How long a node stays a member without a keep-alive: a killed
    /// node's connectors move to the survivors after about this long.
    pub lease_ttl: Duration,
    /// The longest any one call to etcd may take before it fails as
    /// unavailable (connecting included).
    pub call_timeout: Duration,
    /// Set for `etcds://`.
    pub tls: Option<TlsFiles>,
    /// Whether the address was `etcds://`.
    pub use_tls: bool,
}

/// The PEM files for TLS to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed etcd's server certificate.
    pub ca: PathBuf,
    /// This node's client certificate and key, for an etcd that asks for
    /// one (`--client-cert-auth`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClusterOptions {
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

    /// Options from a `--cluster` address and a `--node-id`, with the
    /// default prefix, lease TTL and call timeout.
    pub fn parse(url: &str, node_id: &str) -> Result<ClusterOptions, OptionsError> {
        let (use_tls, rest) = if let Some(rest) = url.strip_prefix("etcds://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("etcd://") {
            (false, rest)
        } else {
            return Err(OptionsError::Scheme { url: url.into() });
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(OptionsError::Extra { url: url.into() });
        }
        let mut endpoints = Vec::new();
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            endpoints.push(endpoint(url, part)?);
        }
        if endpoints.is_empty() {
            return Err(OptionsError::NoEndpoints { url: url.into() });
        }
        Ok(ClusterOptions {
            endpoints,
            node_id: NodeId::new(node_id)?,
            prefix: DEFAULT_PREFIX.to_string(),
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            tls: None,
            use_tls,
        })
    }

    /// Checks the options that were set field by field; [`crate::Cluster::connect`]
    /// calls it.
    pub fn validate(&self) -> Result<(), OptionsError> {
        Keys::new(&self.prefix)?;
        let ttl = self.lease_ttl.as_secs();
        // etcd grants whole seconds; under 2 s a keep-alive every TTL/3
        // leaves no room for one slow answer.
        if !(2..=3600).contains(&ttl) || self.lease_ttl.subsec_nanos() != 0 {
            return Err(OptionsError::LeaseTtl { secs: ttl });
        }
        if self.call_timeout < Duration::from_millis(100)
            || self.call_timeout > Duration::from_secs(60)
        {
            return Err(OptionsError::CallTimeout);
        }
        match (&self.tls, self.use_tls) {
            (None, true) => return Err(OptionsError::TlsWithoutCa),
            (Some(_), false) => return Err(OptionsError::TlsWithPlainScheme),
            (Some(tls), true) if tls.cert.is_some() != tls.key.is_some() => {
                return Err(OptionsError::HalfIdentity);
            }
            _ => {}
        }
        Ok(())
    }

    /// The endpoints as URLs for the client.
    pub(crate) fn urls(&self) -> Vec<String> {
        let scheme = if self.use_tls { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect()
    }
}

/// One `host:port` (or `host`, or `[v6]:port`) of a cluster address.
fn endpoint(url: &str, part: &str) -> Result<String, OptionsError> {
    let bad = |reason| OptionsError::Endpoint {
        url: url.into(),
        endpoint: part.into(),
        reason,
    };
    let (host, port) = if let Some(rest) = part.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(bad("an unclosed `[`"))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address in the brackets"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(bad("expected `:port` after `]`"))?,
            ),
        };
        (format!("[{host}]"), port)
    } else {
        match part.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host.to_string(), Some(port)),
            Some(_) => return Err(bad("an IPv6 address must be in brackets")),
            None => (part.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("an empty host"));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(bad("the host has characters a host name cannot have"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
            Ok(p) => p,
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(url: &str) -> Vec<String> {
        ClusterOptions::parse(url, "n1").unwrap().endpoints
    }

    #[test]
    fn addresses_parse_to_endpoints() {
        assert_eq!(endpoints("etcd://127.0.0.1:2379"), ["127.0.0.1:2379"]);
        assert_eq!(endpoints("etcd://a:1,b:2, c"), ["a:1", "b:2", "c:2379"]);
        assert_eq!(endpoints("etcd://[::1]:23790"), ["[::1]:23790"]);
        assert_eq!(endpoints("etcd://[::1]"), ["[::1]:2379"]);
        let o = ClusterOptions::parse("etcds://etcd.internal:2379", "n1").unwrap();
        assert!(o.use_tls);
        assert_eq!(o.urls(), ["https://etcd.internal:2379"]);
        let o = ClusterOptions::parse("etcd://h:1", "n1").unwrap();
        assert_eq!(o.urls(), ["http://h:1"]);
        assert_eq!(o.prefix, "/sandport/");
        assert_eq!(o.lease_ttl, Duration::from_secs(10));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn bad_addresses_say_what_to_write() {
        let cases = [
            ("http://h:2379", "must start with `etcd://`"),
            ("etcd://", "names no etcd endpoint"),
            ("etcd://,", "names no etcd endpoint"),
            ("etcd://h:0", "from 1 to 65535"),
            ("etcd://h:x", "from 1 to 65535"),
            ("etcd://h:99999", "from 1 to 65535"),
            ("etcd://::1:2379", "in brackets"),
            ("etcd://[::1", "unclosed"),
            ("etcd://[nope]:1", "IPv6"),
            ("etcd://:2379", "empty host"),
            ("etcd://h:2379/prefix", "path"),
            ("etcd://user@h:2379", "path"),
            ("etcd://h a:1", "host name"),
        ];
        for (url, expected) in cases {
            let err = ClusterOptions::parse(url, "n1").unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
        let err = ClusterOptions::parse("etcd://h", "a/b").unwrap_err();
        assert!(err.to_string().contains("node id"), "{err}");
    }

    #[test]
    fn tls_files_and_scheme_must_agree() {
        let files = TlsFiles {
            ca: "ca.pem".into(),
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
        };
        let plain = ClusterOptions::parse("etcd://h", "n1").unwrap();
        let tls = ClusterOptions::parse("etcds://h", "n1").unwrap();
        assert_eq!(tls.validate(), Err(OptionsError::TlsWithoutCa));
        let with = |mut o: ClusterOptions, files: TlsFiles| {
            o.tls = Some(files);
            o.validate()
        };
        assert_eq!(
            with(plain, files.clone()),
            Err(OptionsError::TlsWithPlainScheme)
        );
        assert_eq!(with(tls.clone(), files.clone()), Ok(()));
        let half = TlsFiles {
            key: None,
            ..files.clone()
        };
        assert_eq!(with(tls.clone(), half), Err(OptionsError::HalfIdentity));
        let ca_only = TlsFiles {
            cert: None,
            key: None,
            ..files
        };
        assert_eq!(with(tls, ca_only), Ok(()));
    }

    #[test]
    fn out_of_range_timing_is_refused() {
        let mut o = ClusterOptions::parse("etcd://h", "n1").unwrap();
        o.lease_ttl = Duration::from_secs(1);
        assert_eq!(o.validate(), Err(OptionsError::LeaseTtl { secs: 1 }));
        o.lease_ttl = Duration::from_millis(2500);
        assert!(o.validate().is_err());
        o.lease_ttl = Duration::from_secs(2);
        o.call_timeout = Duration::from_millis(10);
        assert_eq!(o.validate(), Err(OptionsError::CallTimeout));
        o.call_timeout = Duration::from_secs(1);
        o.prefix = "/sandport".into();
        assert!(matches!(o.validate(), Err(OptionsError::Prefix { .. })));
    }
}
