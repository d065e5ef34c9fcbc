//! The flags of `serve` that join a cluster (docs/cluster.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sandport_cluster::{ClusterOptions, TlsFiles};
use sandport_server::cluster::PeerCredentials;

#[derive(Args)]
pub struct ClusterFlags {
    /// Join a cluster of nodes coordinated through etcd, e.g.
    /// etcd://10.0.0.5:2379,10.0.0.6:2379 (etcds:// for TLS): the
    /// connectors live in etcd and each is checked by one live node
    #[arg(long, value_name = "URL", env = "SANDPORT_CLUSTER")]
    cluster: Option<String>,
    /// This node's name in the cluster, unique among the live nodes
    /// [default: the host name]
    #[arg(
        long,
        value_name = "NAME",
        env = "SANDPORT_NODE_ID",
        requires = "cluster"
    )]
    node_id: Option<String>,
    /// Where the other nodes reach this node's gRPC API [default: the gRPC
    /// listen address]
    #[arg(
        long,
        value_name = "ADDR",
        env = "SANDPORT_ADVERTISE_ADDR",
        requires = "cluster"
    )]
    advertise_addr: Option<String>,
    /// How long a node that stopped answering stays a member: its
    /// connectors move to the other nodes about this long after it died
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    cluster_lease_ttl: Duration,
    /// The CA that signed etcd's certificate (with an etcds:// address)
    #[arg(long, value_name = "FILE", requires = "cluster")]
    cluster_ca: Option<PathBuf>,
    /// This node's client certificate for etcd (with --cluster-key)
    #[arg(long, value_name = "FILE", requires = "cluster_key")]
    cluster_cert: Option<PathBuf>,
    /// The key of --cluster-cert
    #[arg(long, value_name = "FILE", requires = "cluster_cert")]
    cluster_key: Option<PathBuf>,
    /// The CA that signed the other nodes' API certificates, for live
    /// checks sent to a connector's owner when the API serves TLS
    /// [default: --client-ca]
    #[arg(long, value_name = "FILE", requires = "cluster")]
    cluster_peer_ca: Option<PathBuf>,
    /// A file holding one bearer token the other nodes accept (role read
    /// or admin), for live checks sent to a connector's owner when the API
    /// takes tokens
    #[arg(long, value_name = "FILE", requires = "cluster")]
    cluster_token_file: Option<PathBuf>,
}

/// The largest token file read: one token and a newline.
const MAX_TOKEN_FILE: u64 = 4096;

impl ClusterFlags {
    /// The cluster to join, if any, and the address to give the others.
    pub fn options(
        &self,
        grpc_addr: std::net::SocketAddr,
    ) -> anyhow::Result<Option<(ClusterOptions, String)>> {
        let ClusterFlags {
            cluster,
            node_id,
            advertise_addr,
            cluster_lease_ttl,
            cluster_ca,
            cluster_cert,
            cluster_key,
            // Read by `peer_credentials`.
            cluster_peer_ca: _,
            cluster_token_file: _,
        } = self;
        let Some(url) = cluster else {
            return Ok(None);
        };
        let node_id = match node_id {
            Some(id) => id.clone(),
            None => host_name().context("give this node a name with --node-id")?,
        };
        let mut options = ClusterOptions::parse(url, &node_id).context("--cluster / --node-id")?;
        options.lease_ttl = *cluster_lease_ttl;
        options.tls = cluster_ca.as_ref().map(|ca| TlsFiles {
            ca: ca.clone(),
            cert: cluster_cert.clone(),
            key: cluster_key.clone(),
        });
        options.validate().context("the cluster flags")?;
        let address = advertise_addr
            .clone()
            .unwrap_or_else(|| grpc_addr.to_string());
        Ok(Some((options, address)))
    }
}

impl ClusterFlags {
    /// What this node calls its peers with; the token file is read once,
    /// here.
    pub fn peer_credentials(&self) -> anyhow::Result<PeerCredentials> {
        let token = match &self.cluster_token_file {
            Some(path) => {
                let text = sandport_config::read_bounded_text(path, MAX_TOKEN_FILE).with_context(
                    || format!("--cluster-token-file: cannot read {}", path.display()),
                )?;
                let token = text.trim();
                anyhow::ensure!(
                    !token.is_empty(),
                    "--cluster-token-file: {} holds no token",
                    path.display()
                );
                anyhow::ensure!(
                    !token.contains(char::is_whitespace),
                    "--cluster-token-file: {} must hold one token and nothing else",
                    path.display()
                );
                Some(token.to_string())
            }
            None => None,
        };
        Ok(PeerCredentials {
            ca: self.cluster_peer_ca.clone(),
            token,
        })
    }
}

/// The host's name, the default node id (a Kubernetes StatefulSet's pods
/// are named so).
fn host_name() -> anyhow::Result<String> {
    let name =
        sandport_config::read_bounded_text(std::path::Path::new("/proc/sys/kernel/hostname"), 256)
            .map_err(|e| anyhow::anyhow!("cannot read the host name: {e}"))?;
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the host has no name");
    Ok(name.to_string())
}
