//! Cluster mode: this node's [`Service`] kept in step with a registry in
//! etcd (`sandport-cluster`), checking only the connectors rendezvous
//! hashing gives it among the live members.
//!
//! - `changes`: API changes (Register, Update, Remove) written to etcd
//!   with compare-and-swap, as the service's [`ChangeStore`];
//! - `registry`: the file's entries seeded once, then every node's runtime
//!   follows the registry (list, then watch);
//! - `members`: membership and ownership: who is live, which connectors
//!   this node checks, rejoining after the lease was lost;
//! - `statuses`: the owner publishes status changes; the other nodes show
//!   them;
//! - `forward`: a live check of a connector another node owns is asked of
//!   that node;
//! - `reads`: history reads ask every node for what it recorded;
//! - `metrics`: the cluster's gauges on `/metrics`.
//!
//! While etcd is unreachable the node keeps checking what it owned with
//! the registry it last saw, refuses changes (`UNAVAILABLE`), and catches
//! up when etcd is back.

mod changes;
mod forward;
mod members;
mod metrics;
mod peer_tls;
mod quiet;
mod reads;
mod registry;
mod statuses;

pub use forward::{
    ApiProtection, ApiTlsFiles, ForwardingOff, PeerAccess, PeerCredentials, peer_access,
};
pub use metrics::ClusterCollector;
pub use reads::PeerApi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandport_cluster::{
    Cluster, ClusterError, ClusterOptions, MemberInfo, Membership, NodeId, Store,
};
use sandport_core::service::{ChangeStore, Forwarder, Service};
use tokio::task::JoinSet;

use changes::{EtcdChanges, Revisions};

/// How long to wait before trying etcd again after a failed call.
const RETRY: Duration = Duration::from_secs(1);

/// One loop's view of etcd's reachability, so that an outage is logged
/// when it begins and when it ends, not at every retry.
#[derive(Default)]
struct Outage {
    since: Option<tokio::time::Instant>,
}

impl Outage {
    fn failed(&mut self, what: &str, error: &ClusterError) {
        if self.since.is_none() {
            self.since = Some(tokio::time::Instant::now());
            tracing::warn!("{what}: {error}; retrying every {}s", RETRY.as_secs());
        } else {
            tracing::debug!("{what}: {error}");
        }
    }

    fn ok(&mut self, what: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!("{what} again after {:.1}s", since.elapsed().as_secs_f64());
        }
    }
}

/// This node's membership of a cluster, before and while it serves.
pub struct ClusterNode {
    cluster: Cluster,
    store: Store,
    me: NodeId,
    /// Where other nodes reach this node's gRPC API.
    address: String,
    /// Relative component paths of the seed file's entries are read
    /// against this directory, as in single-node mode.
    config_dir: PathBuf,
    revisions: Arc<Revisions>,
    /// Replaced when the node joins again after losing its lease.
    membership: members::Shared,
    counts: Arc<metrics::Counts>,
    /// The live members' addresses, for forwarded checks.
    peers: Arc<forward::Peers>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node", &self.me)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    /// Connects to etcd and joins as a member (refused while another live
    /// node holds the same node id).
    pub async fn join(
        options: &ClusterOptions,
        address: &str,
        config_dir: PathBuf,
    ) -> Result<ClusterNode, ClusterError> {
        let cluster = Cluster::connect(options).await?;
        let membership = Membership::join(&cluster, &MemberInfo::starting_now(address)).await?;
        tracing::info!(node = %options.node_id, %address, "joined the cluster");
        Ok(ClusterNode {
            store: Store::new(&cluster),
            me: options.node_id.clone(),
            address: address.to_string(),
            config_dir,
            revisions: Arc::default(),
            membership: Arc::new(tokio::sync::Mutex::new(Some(membership))),
            cluster,
            counts: Arc::default(),
            peers: Arc::default(),
            tasks: JoinSet::new(),
        })
    }

    /// The cluster's gauges, for `/metrics`.
    pub fn collector(&self) -> ClusterCollector {
        ClusterCollector(self.counts.clone())
    }

    /// Where the service keeps API changes in cluster mode.
    pub fn changes(&self) -> Arc<dyn ChangeStore> {
        Arc::new(EtcdChanges::new(self.store.clone(), self.revisions.clone()))
    }

    /// What asks a connector's owner for its live checks, calling the
    /// peers as `access` says.
    pub fn forwarder(&self, access: &PeerAccess) -> Result<Arc<dyn Forwarder>, ForwardingOff> {
        let forwarder = forward::PeerForwarder::new(self.me.clone(), self.peers.clone(), access)?;
        Ok(Arc::new(forwarder))
    }

    /// Seeds the registry with the file's entries (once per cluster),
    /// loads it into `service`, then keeps the service in step until
    /// [`ClusterNode::leave`]. Returns once the registry is loaded, so
    /// that a node is ready only with its connectors.
    pub async fn run(&mut self, service: Arc<Service>) {
        let sync = registry::Sync {
            store: self.store.clone(),
            service: service.clone(),
            revisions: self.revisions.clone(),
            config_dir: self.config_dir.clone(),
        };
        let watch_from = sync.load().await;
        self.tasks.spawn(sync.follow(watch_from));
        let publisher = statuses::Publisher::new(&self.me, service.clone(), self.counts.clone());
        let slot = publisher.slot();
        if let Some(membership) = &*self.membership.lock().await {
            slot.replace(&self.cluster, membership).await;
        }
        self.tasks.spawn(publisher.run());
        self.tasks
            .spawn(statuses::follow(self.store.clone(), service.clone()));
        self.tasks.spawn(
            members::Follow {
                cluster: self.cluster.clone(),
                me: self.me.clone(),
                address: self.address.clone(),
                membership: self.membership.clone(),
                service,
                publisher: slot,
                counts: self.counts.clone(),
                peers: self.peers.clone(),
            }
            .run(),
        );
    }

    /// Stops following the cluster and gives the lease back, so that the
    /// others take this node's connectors at once rather than after the
    /// lease's TTL.
    pub async fn leave(mut self) {
        self.tasks.shutdown().await;
        let membership = self.membership.lock().await.take();
        if let Some(membership) = membership
            && let Err(e) = membership.leave().await
        {
            tracing::warn!("leaving the cluster: {e}; the others take over when the lease ends");
        }
    }
}
