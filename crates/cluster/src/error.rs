//! What can go wrong, each variant saying what the user should change.

use std::path::PathBuf;

/// A node or connector id that cannot name an etcd key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("{what} id is empty; give it a name of letters, digits, `-`, `_` and `.`")]
    Empty { what: &'static str },
    #[error("{what} id `{id}` is {len} bytes long; use at most {max}")]
    TooLong {
        what: &'static str,
        id: String,
        len: usize,
        max: usize,
    },
    #[error("{what} id `{id}` may only hold letters, digits, `-`, `_` and `.`")]
    Characters { what: &'static str, id: String },
}

/// A `--cluster` URL or TLS setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    #[error(
        "cluster address `{url}` must start with `etcd://` (plain) or `etcds://` (TLS), e.g. etcd://127.0.0.1:2379"
    )]
    Scheme { url: String },
    #[error("cluster address `{url}` names no etcd endpoint; write etcd://host:port[,host:port]")]
    NoEndpoints { url: String },
    #[error(
        "cluster address `{url}`: endpoint `{endpoint}` is not host:port ({reason}); IPv6 goes in brackets: [::1]:2379"
    )]
    Endpoint {
        url: String,
        endpoint: String,
        reason: &'static str,
    },
    #[error(
        "cluster address `{url}` has a path, query or user part; the key prefix is set on its own (default /sandport/)"
    )]
    Extra { url: String },
    #[error("cluster key prefix `{prefix}` must start and end with `/`, e.g. /sandport/")]
    Prefix { prefix: String },
    #[error("{0}")]
    NodeId(#[from] IdError),
    #[error("lease TTL {secs} s is out of range; use 2 to 3600 seconds")]
    LeaseTtl { secs: u64 },
    #[error("the call timeout must be between 100 ms and 60 s")]
    CallTimeout,
    #[error("`etcds://` needs --cluster-ca (the CA that signed etcd's certificate)")]
    TlsWithoutCa,
    #[error("--cluster-ca, --cluster-cert and --cluster-key need an `etcds://` address")]
    TlsWithPlainScheme,
    #[error("--cluster-cert and --cluster-key go together; give both or neither")]
    HalfIdentity,
}

/// A failed cluster operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// etcd could not be reached or did not answer in time; the server
    /// answers `UNAVAILABLE` and the caller may try again later.
    #[error(
        "etcd is unavailable ({during}): {reason}; check that etcd runs and that the --cluster endpoints reach it"
    )]
    Unavailable {
        during: &'static str,
        reason: String,
    },
    #[error(
        "connector \"{id}\" is already registered in the cluster; pick another id, or update it"
    )]
    AlreadyExists { id: String },
    #[error("connector \"{id}\" is not registered in the cluster")]
    NotFound { id: String },
    #[error(
        "connector \"{id}\" was changed by another caller (now at revision {actual}, expected {expected}); read it again and retry"
    )]
    Conflict {
        id: String,
        expected: i64,
        actual: i64,
    },
    #[error(
        "node id \"{node_id}\" is held by a live node at {address}; start this node with another --node-id"
    )]
    NodeIdTaken { node_id: String, address: String },
    /// The node's lease is gone (expired or revoked): it is no longer a
    /// member and must join again before it checks or publishes.
    #[error("this node's cluster lease has expired; it is no longer a member and must join again")]
    LeaseExpired,
    #[error("{0}")]
    InvalidId(#[from] IdError),
    #[error("{0}")]
    Options(#[from] OptionsError),
    #[error(
        "connector \"{id}\" takes {size} bytes as stored, over the {limit} bytes a value may take in etcd; shorten its settings, metadata or headers"
    )]
    TooLarge {
        id: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "etcd key `{key}` holds a value this node cannot read ({reason}); delete or rewrite that key"
    )]
    Corrupt { key: String, reason: String },
    /// The watch's start revision has been compacted away: list again and
    /// watch from the listing's revision.
    #[error("etcd has compacted revisions up to {compacted}; list again and watch from there")]
    Compacted { compacted: i64 },
    #[error("cannot read the cluster's TLS {what} `{path}`: {reason}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// etcd answered, but refused (permissions, a bad request): not
    /// something a retry fixes.
    #[error("etcd refused {during}: {reason}")]
    Refused {
        during: &'static str,
        reason: String,
    },
}

impl ClusterError {
    /// Whether the server should answer `UNAVAILABLE` (try again later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ClusterError::Unavailable { .. })
    }
}
