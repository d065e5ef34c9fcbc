//! Who is in the cluster. A node joins by granting itself a lease and
//! putting `members/<node-id>` under it; a task renews the lease every
//! TTL/3. A node that stops renewing (killed, cut off) loses the key when
//! etcd expires the lease, and every [`MemberWatch`] sees it leave.
//!
//! The node itself learns that it is no longer a member through
//! [`Membership::liveness`]: when etcd says the lease is gone, or when no
//! renewal succeeded for a whole TTL (etcd has expired it by then, or
//! will have before anyone could tell it apart from a dead node), so the
//! caller can stop checking before its connectors' new owners start.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Compare, CompareOp, GetOptions, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connect::Cluster;
use crate::error::ClusterError;
use crate::keys::NodeId;
use crate::watch::PrefixWatch;

/// What a node tells the others about itself (the member key's value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Where the other nodes reach this node's API, to forward a live
    /// health check of a connector this node owns.
    pub address: String,
    /// When the node joined, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

impl MemberInfo {
    /// Info for a node that starts now.
    pub fn starting_now(address: &str) -> MemberInfo {
        MemberInfo {
            address: address.to_string(),
            started_at_ms: now_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch (0 on a clock set before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether this node is still a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Member,
    /// The lease is gone: the node must stop checking and publishing, and
    /// may [`Membership::join`] again.
    Lost {
        reason: String,
    },
}

/// This node's place in the cluster, held while it is a member.
#[derive(Debug)]
pub struct Membership {
    cluster: Cluster,
    lease_id: i64,
    liveness: watch::Receiver<Liveness>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins as `cluster.node_id()`. A member key of the same id that is
    /// still there after one lease TTL belongs to a live node (a previous
    /// run of this node that was killed loses its key within the TTL), and
    /// the join is refused with [`ClusterError::NodeIdTaken`].
    pub async fn join(cluster: &Cluster, info: &MemberInfo) -> Result<Membership, ClusterError> {
        let key = cluster.keys.member(&cluster.node_id);
        let value = serde_json::to_vec(info).map_err(|e| ClusterError::Refused {
            during: "joining",
            reason: e.to_string(),
        })?;
        let lease_id = claim(cluster, &key, &value).await?;
        let (tx, liveness) = watch::channel(Liveness::Member);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(keep_alive(cluster.clone(), lease_id, tx, stopped));
        tracing::info!(node = %cluster.node_id, lease_id, "joined the cluster");
        Ok(Membership {
            cluster: cluster.clone(),
            lease_id,
            liveness,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The lease this membership holds; statuses are published under it.
    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    /// Changes to [`Liveness::Lost`] once, when the membership is lost.
    pub fn liveness(&self) -> watch::Receiver<Liveness> {
        self.liveness.clone()
    }

    /// Leaves at once: revokes the lease, so the member key and this
    /// node's statuses go and the others take over its connectors now
    /// rather than after the TTL.
    pub async fn leave(mut self) -> Result<(), ClusterError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut lease_client = self.cluster.client.lease_client();
        match self
            .cluster
            .call(
                "revoking the node's lease",
                lease_client.revoke(self.lease_id),
            )
            .await
        {
            Ok(_) | Err(ClusterError::LeaseExpired) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Dropped without leave(): stop renewing; the lease then expires
        // after the TTL, as if the node had died.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Grants a lease and puts the member key under it if no live node holds
/// the key, waiting up to one TTL for a previous holder's lease to expire.
/// The lease is granted only once the key looks free, so that it is
/// fresh when the keep-alive task takes it over.
async fn claim(cluster: &Cluster, key: &str, value: &[u8]) -> Result<i64, ClusterError> {
    let deadline = Instant::now() + cluster.lease_ttl + cluster.call_timeout;
    let poll = (cluster.lease_ttl / 8).max(Duration::from_millis(100));
    let ttl = i64::try_from(cluster.lease_ttl.as_secs()).unwrap_or(i64::MAX);
    let mut kv = cluster.client.kv_client();
    let mut leases = cluster.client.lease_client();
    loop {
        let holder = cluster.call("joining", kv.get(key, None)).await?;
        if let Some(held) = holder.kvs().first() {
            if Instant::now() >= deadline {
                let address = serde_json::from_slice::<MemberInfo>(held.value())
                    .map_or_else(|_| "an unknown address".into(), |m| m.address);
                return Err(ClusterError::NodeIdTaken {
                    node_id: cluster.node_id.to_string(),
                    address,
                });
            }
            tokio::time::sleep(poll).await;
            continue;
        }
        let lease_id = cluster
            .call("granting the node's lease", leases.grant(ttl, None))
            .await?
            .id();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease_id)),
            )]);
        let claimed = cluster.call("joining", kv.txn(txn)).await;
        if matches!(&claimed, Ok(response) if response.succeeded()) {
            return Ok(lease_id);
        }
        // Best effort: an unused lease expires by itself anyway.
        let _ = cluster
            .call("revoking an unused lease", leases.revoke(lease_id))
            .await;
        // Another node took the key between the read and the txn: the
        // next read sees it.
        claimed?;
    }
}

/// Renews the lease every TTL/3 until stopped, or until the lease is
/// known or presumed gone (then says so on `tx` and ends).
async fn keep_alive(
    cluster: Cluster,
    lease_id: i64,
    tx: watch::Sender<Liveness>,
    mut stop: oneshot::Receiver<()>,
) {
    let ttl = cluster.lease_ttl;
    let period = ttl / 3;
    let mut last_renewed = Instant::now();
    let mut channel: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    loop {
        // Past this, etcd has expired the lease (it renewed it no later
        // than we heard back), so the node is no longer a member.
        let expiry = last_renewed + ttl;
        let outcome = tokio::select! {
            outcome = renew(&cluster, lease_id, &mut channel) => outcome,
            () = tokio::time::sleep_until(expiry) => Err(ClusterError::Unavailable {
                during: "renewing the node's lease",
                reason: format!("no renewal for {ttl:?}"),
            }),
            _ = &mut stop => return,
        };
        match outcome {
            Ok(()) => last_renewed = Instant::now(),
            Err(ClusterError::LeaseExpired) => {
                return lost(&tx, &cluster, "etcd says the lease has expired".into());
            }
            Err(e) => {
                channel = None;
                if Instant::now() >= expiry {
                    return lost(&tx, &cluster, e.to_string());
                }
                tracing::warn!(node = %cluster.node_id, error = %e, "cannot renew the cluster lease; retrying");
            }
        }
        let next = (Instant::now() + period).min(last_renewed + ttl);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = &mut stop => return,
        }
    }
}

fn lost(tx: &watch::Sender<Liveness>, cluster: &Cluster, reason: String) {
    tracing::error!(node = %cluster.node_id, %reason, "lost cluster membership");
    let _ = tx.send(Liveness::Lost { reason });
}

/// One renewal, on the open keep-alive stream or a new one.
async fn renew(
    cluster: &Cluster,
    lease_id: i64,
    channel: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<(), ClusterError> {
    const DURING: &str = "renewing the node's lease";
    let (keeper, stream) = match channel {
        Some(open) => open,
        None => {
            // Opening the stream renews the lease once, and fails with
            // "lease not found" for an expired one.
            let mut lease_client = cluster.client.lease_client();
            let open = cluster
                .call(DURING, lease_client.keep_alive(lease_id))
                .await?;
            *channel = Some(open);
            return Ok(());
        }
    };
    cluster.call(DURING, keeper.keep_alive()).await?;
    match cluster.call(DURING, stream.message()).await? {
        Some(response) if response.ttl() > 0 => Ok(()),
        Some(_) => Err(ClusterError::LeaseExpired),
        None => Err(ClusterError::Unavailable {
            during: DURING,
            reason: "etcd closed the keep-alive stream".into(),
        }),
    }
}

/// The live members, as they change.
pub struct MemberWatch {
    cluster: Cluster,
    members: BTreeMap<NodeId, MemberInfo>,
    watch: Option<PrefixWatch>,
}

impl MemberWatch {
    pub fn new(cluster: &Cluster) -> MemberWatch {
        MemberWatch {
            cluster: cluster.clone(),
            members: BTreeMap::new(),
            watch: None,
        }
    }

    /// The first call: the members now. Then it waits for a change and
    /// returns the new set. After an error (etcd unavailable) the next
    /// call lists the members afresh.
    pub async fn changed(&mut self) -> Result<&BTreeMap<NodeId, MemberInfo>, ClusterError> {
        let Some(watch) = &mut self.watch else {
            return self.resync().await;
        };
        match watch.next().await {
            Ok(changes) => {
                for change in changes {
                    let Some(node) = node_id(&change.name) else {
                        continue;
                    };
                    match change.value {
                        Some(value) => self
                            .members
                            .insert(node, member_info(&node_key(&change.name), &value)),
                        None => self.members.remove(&node),
                    };
                }
                Ok(&self.members)
            }
            Err(e) => {
                self.watch = None;
                Err(e)
            }
        }
    }

    /// The members as last seen.
    pub fn members(&self) -> &BTreeMap<NodeId, MemberInfo> {
        &self.members
    }

    async fn resync(&mut self) -> Result<&BTreeMap<NodeId, MemberInfo>, ClusterError> {
        let prefix = self.cluster.keys.members();
        let mut kv = self.cluster.client.kv_client();
        let response = self
            .cluster
            .call(
                "listing the members",
                kv.get(prefix.clone(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        self.members.clear();
        for kv in response.kvs() {
            let Some(name) = kv.key().strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let name = String::from_utf8_lossy(name);
            if let Some(node) = node_id(&name) {
                let info = member_info(&node_key(&name), kv.value());
                self.members.insert(node, info);
            }
        }
        self.watch = Some(PrefixWatch::new(self.cluster.clone(), prefix, revision + 1));
        Ok(&self.members)
    }
}

fn node_key(name: &str) -> String {
    format!("members/{name}")
}

/// A member key's node id; a key no node could have written is skipped.
fn node_id(name: &str) -> Option<NodeId> {
    NodeId::new(name)
        .inspect_err(|e| tracing::warn!(key = %node_key(name), error = %e, "skipping a member key"))
        .ok()
}

/// A member whose value cannot be read (a newer node's format) is still a
/// member: leaving it out would make this node compute other owners than
/// the rest of the cluster.
fn member_info(key: &str, value: &[u8]) -> MemberInfo {
    serde_json::from_slice(value).unwrap_or_else(|e| {
        tracing::warn!(%key, error = %e, "unreadable member info");
        MemberInfo {
            address: String::new(),
            started_at_ms: 0,
        }
    })
}
