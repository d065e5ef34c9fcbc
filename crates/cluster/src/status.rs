//! Published statuses: the owner of a connector writes `status/<id>` when
//! the connector's status changes, so that every node answers
//! ListConnectors, HealthCheckAll and WatchHealth alike.
//!
//! [`StatusPublisher`] remembers what it last wrote per connector and
//! skips a status equal to it: a check that changes nothing writes
//! nothing. [`ConnectorStatus`] therefore holds only what changes with
//! the status (not the latency or the time of the check).
//!
//! Statuses are put under the owner's lease. When an owner dies, its
//! statuses vanish with its lease, and a reader sees "not yet checked"
//! until the new owner's first check (within one interval) rather than a
//! dead node's last word presented as current. The cost is that gap, and
//! a publisher is tied to one membership: after a rejoin, make a new one
//! (its memory of what it wrote would be wrong for the new lease).

use std::collections::{BTreeMap, HashMap};

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::connect::Cluster;
use crate::error::ClusterError;
use crate::keys::validate_connector_id;
use crate::membership::Membership;
use crate::store::Store;
use crate::watch::PrefixWatch;

/// A connector's status as its owner publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    /// The status word (`healthy`, `degraded`, `unhealthy`, ...).
    pub status: String,
    /// Why, as stable as the status itself (an error's kind, not a
    /// latency), or every check would write.
    pub message: String,
    /// Since when the connector has had this status, in milliseconds
    /// since the Unix epoch.
    pub since_ms: u64,
    /// The node that checked it.
    pub checked_by: String,
}

/// Writes statuses of the connectors this node owns, only when they
/// change.
#[derive(Debug)]
pub struct StatusPublisher {
    cluster: Cluster,
    lease_id: i64,
    last: HashMap<String, ConnectorStatus>,
    writes: u64,
}

impl StatusPublisher {
    /// A publisher for statuses under `membership`'s lease.
    pub fn new(cluster: &Cluster, membership: &Membership) -> StatusPublisher {
        StatusPublisher {
            cluster: cluster.clone(),
            lease_id: membership.lease_id(),
            last: HashMap::new(),
            writes: 0,
        }
    }

    /// Publishes `status` for connector `id` unless it equals the last
    /// one published; returns whether it wrote. A connector removed in the
    /// meantime gets no status (and `false`).
    /// [`ClusterError::LeaseExpired`] means this node is no longer a
    /// member.
    pub async fn publish(
        &mut self,
        id: &str,
        status: &ConnectorStatus,
    ) -> Result<bool, ClusterError> {
        if self.last.get(id) == Some(status) {
            return Ok(false);
        }
        validate_connector_id(id)?;
        let value = serde_json::to_vec(status).map_err(|e| ClusterError::Refused {
            during: "publishing a status",
            reason: e.to_string(),
        })?;
        let connector = self.cluster.keys.connector(id);
        // Only while the connector exists: a removal's txn deletes the
        // status, and a check that was under way must not bring it back.
        let txn = Txn::new()
            .when([Compare::create_revision(connector, CompareOp::Greater, 0)])
            .and_then([TxnOp::put(
                self.cluster.keys.status(id),
                value,
                Some(PutOptions::new().with_lease(self.lease_id)),
            )]);
        let mut kv = self.cluster.client.kv_client();
        self.writes += 1;
        let response = self
            .cluster
            .call("publishing a status", kv.txn(txn))
            .await?;
        if !response.succeeded() {
            self.last.remove(id);
            return Ok(false);
        }
        self.last.insert(id.to_string(), status.clone());
        Ok(true)
    }

    /// Forgets what was published for `id`: call it when this node stops
    /// owning it, so that if it comes back its first status is written.
    pub fn forget(&mut self, id: &str) {
        self.last.remove(id);
    }

    /// Writes sent to etcd so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

/// A change of a published status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusEvent {
    Published {
        id: String,
        status: ConnectorStatus,
    },
    /// Its owner's lease ended, or the connector was removed.
    Cleared {
        id: String,
    },
}

impl Store {
    /// Every published status, and the revision to watch from (+1).
    pub async fn statuses(&self) -> Result<(BTreeMap<String, ConnectorStatus>, i64), ClusterError> {
        let prefix = self.cluster.keys.statuses();
        let mut kv = self.cluster.client.kv_client();
        let response = self
            .cluster
            .call(
                "listing the statuses",
                kv.get(prefix.clone(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let mut statuses = BTreeMap::new();
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            let Some(id) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(status) = read_status(&key, kv.value()) {
                statuses.insert(id.to_string(), status);
            }
        }
        Ok((statuses, response.header().map_or(0, |h| h.revision())))
    }

    /// Status changes from `from_revision` on.
    pub fn watch_statuses(&self, from_revision: i64) -> StatusWatch {
        let prefix = self.cluster.keys.statuses();
        StatusWatch {
            watch: PrefixWatch::new(self.cluster.clone(), prefix.clone(), from_revision),
            prefix,
        }
    }
}

/// Status changes, resumable after errors like [`crate::RegistryWatch`].
pub struct StatusWatch {
    watch: PrefixWatch,
    prefix: String,
}

impl StatusWatch {
    pub async fn next(&mut self) -> Result<Vec<StatusEvent>, ClusterError> {
        let changes = self.watch.next().await?;
        Ok(changes
            .into_iter()
            .filter_map(|change| match change.value {
                None => Some(StatusEvent::Cleared { id: change.name }),
                Some(value) => {
                    let key = format!("{}{}", self.prefix, change.name);
                    read_status(&key, &value).map(|status| StatusEvent::Published {
                        id: change.name,
                        status,
                    })
                }
            })
            .collect())
    }
}

/// A status no node of this version can read is left out (the connector
/// reads as not yet checked) rather than failing the whole list.
fn read_status(key: &str, value: &[u8]) -> Option<ConnectorStatus> {
    serde_json::from_slice(value)
        .inspect_err(|e| tracing::warn!(%key, error = %e, "unreadable status"))
        .ok()
}
