//! [`Cluster`]: the etcd client, with every call bounded by the call
//! timeout, and etcd's errors sorted into [`ClusterError`]s.
//!
//! The client's channel connects lazily and, with no endpoint up, a call
//! waits for one without end; so each call here runs under
//! `tokio::time::timeout`, and a node facing a dead etcd gets
//! [`ClusterError::Unavailable`] within the call timeout instead of a hang.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::error::ClusterError;
use crate::keys::{Keys, NodeId};
use crate::options::{ClusterOptions, TlsFiles};

/// The largest PEM file read for TLS: far above any real certificate
/// chain, and a wrong path (a log, a device) cannot take the memory.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// A connection to the cluster's etcd, cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) node_id: NodeId,
    pub(crate) lease_ttl: Duration,
    pub(crate) call_timeout: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("keys", &self.keys)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects and makes one call, so that a wrong address, a wrong
    /// certificate or a dead etcd shows at start, within the call timeout.
    pub async fn connect(options: &ClusterOptions) -> Result<Cluster, ClusterError> {
        let ClusterOptions {
            endpoints: _,
            node_id,
            prefix,
            lease_ttl,
            call_timeout,
            tls,
            use_tls: _,
        } = options;
        options.validate()?;
        let keys = Keys::new(prefix)?;
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(*call_timeout)
            .with_timeout(*call_timeout)
            // HTTP/2 pings find a dead etcd on an idle connection (a watch
            // that waits for events), so the watch ends and can resync.
            .with_keep_alive(*call_timeout, *call_timeout)
            .with_keep_alive_while_idle(true);
        if let Some(files) = tls {
            connect = connect.with_tls(tls_options(files)?);
        }
        let urls = options.urls();
        let client = bounded(
            *call_timeout,
            "connecting",
            Client::connect(urls, Some(connect)),
        )
        .await?;
        let cluster = Cluster {
            client,
            keys,
            node_id: node_id.clone(),
            lease_ttl: *lease_ttl,
            call_timeout: *call_timeout,
        };
        let mut kv = cluster.client.kv_client();
        cluster
            .call(
                "reading the cluster's state",
                kv.get(cluster.keys.seeded(), None),
            )
            .await?;
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Runs one etcd call under the call timeout.
    pub(crate) async fn call<T>(
        &self,
        during: &'static str,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, ClusterError> {
        bounded(self.call_timeout, during, call).await
    }
}

async fn bounded<T>(
    timeout: Duration,
    during: &'static str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(|e| classify(during, e)),
        Err(_) => Err(ClusterError::Unavailable {
            during,
            reason: format!("no answer within {timeout:?}"),
        }),
    }
}

/// Sorts an etcd error into what the caller can do about it: wait
/// (unavailable), rejoin (lease gone), or fix something (refused).
pub(crate) fn classify(during: &'static str, error: etcd_client::Error) -> ClusterError {
    use etcd_client::Error as E;
    use tonic::Code;
    match error {
        E::GRpcStatus(status) => match status.code() {
            // etcd says "requested lease not found" for a put or keep-alive
            // on a lease that expired or was revoked.
            Code::NotFound if status.message().contains("lease not found") => {
                ClusterError::LeaseExpired
            }
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Unknown => ClusterError::Unavailable {
                during,
                reason: status.message().to_string(),
            },
            _ => ClusterError::Refused {
                during,
                reason: format!("{:?}: {}", status.code(), status.message()),
            },
        },
        E::TransportError(e) => ClusterError::Unavailable {
            during,
            reason: e.to_string(),
        },
        E::IoError(e) => ClusterError::Unavailable {
            during,
            reason: e.to_string(),
        },
        E::LeaseKeepAliveError(e) if e.contains("lease not found") => ClusterError::LeaseExpired,
        E::LeaseKeepAliveError(e) | E::WatchError(e) => {
            ClusterError::Unavailable { during, reason: e }
        }
        other => ClusterError::Refused {
            during,
            reason: other.to_string(),
        },
    }
}

fn tls_options(files: &TlsFiles) -> Result<TlsOptions, ClusterError> {
    let TlsFiles { ca, cert, key } = files;
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem("CA", ca)?));
    if let (Some(cert), Some(key)) = (cert, key) {
        tls = tls.identity(Identity::from_pem(
            read_pem("client certificate", cert)?,
            read_pem("client key", key)?,
        ));
    }
    Ok(tls)
}

fn read_pem(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ClusterError> {
    let bytes =
        sandport_config::read_bounded(path, MAX_PEM_BYTES).map_err(|e| ClusterError::TlsFile {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ClusterError::TlsFile {
            what,
            path: path.to_path_buf(),
            reason: "not a PEM file (no -----BEGIN line)".into(),
        });
    }
    Ok(bytes)
}
