//! Who is live, and so which connectors this node checks: each connector
//! goes to the live member that rendezvous hashing ranks first for it, so
//! a node joining or leaving moves only its own share.
//!
//! A node that loses its lease (etcd did not hear from it for the TTL)
//! keeps checking what it owned, as it does whenever etcd is out of reach:
//! when etcd itself is down no node can take over, and checks must go on.
//! It joins again as soon as it can. While etcd is up and this node is not
//! among the live members, it checks nothing: the others have its share.

use std::collections::BTreeMap;
use std::sync::Arc;

use sandport_cluster::{Cluster, Liveness, MemberInfo, MemberWatch, Membership, NodeId, owner};
use sandport_core::Ownership;
use sandport_core::service::Service;
use tokio::sync::watch;

use super::statuses::PublisherSlot;
use super::{Outage, RETRY};

/// This node's membership, replaced when it joins again.
pub(super) type Shared = Arc<tokio::sync::Mutex<Option<Membership>>>;

pub(super) struct Follow {
    pub(super) cluster: Cluster,
    pub(super) me: NodeId,
    pub(super) address: String,
    pub(super) membership: Shared,
    pub(super) service: Arc<Service>,
    pub(super) publisher: PublisherSlot,
    pub(super) counts: Arc<super::metrics::Counts>,
    pub(super) peers: Arc<super::forward::Peers>,
}

impl Follow {
    pub(super) async fn run(self) {
        let mut members = MemberWatch::new(&self.cluster);
        let mut liveness = self.liveness().await;
        let mut outage = Outage::default();
        loop {
            tokio::select! {
                changed = members.changed() => match changed {
                    Ok(live) => {
                        outage.ok("the cluster's members are seen");
                        let ownership = ownership(&self.me, live);
                        self.counts.members_changed(live.len(), live.contains_key(&self.me));
                        tracing::info!(members = live.len(), "cluster members changed");
                        self.peers.set_members(live);
                        self.service.runtime().set_ownership(ownership).await;
                    }
                    Err(e) => {
                        outage.failed("cannot see the cluster's members; checking what this node owned", &e);
                        tokio::time::sleep(RETRY).await;
                    }
                },
                lost = lost(&mut liveness) => {
                    self.counts.lost_membership();
                    tracing::warn!("this node lost its cluster membership ({lost}); it keeps checking what it owned and joins again");
                    liveness = self.rejoin().await;
                }
            }
        }
    }

    async fn liveness(&self) -> Option<watch::Receiver<Liveness>> {
        self.membership
            .lock()
            .await
            .as_ref()
            .map(Membership::liveness)
    }

    /// Joins again (waiting out the old lease if etcd still holds it).
    async fn rejoin(&self) -> Option<watch::Receiver<Liveness>> {
        self.publisher.clear().await;
        let mut outage = Outage::default();
        loop {
            match Membership::join(&self.cluster, &MemberInfo::starting_now(&self.address)).await {
                Ok(membership) => {
                    tracing::info!("joined the cluster again");
                    self.publisher.replace(&self.cluster, &membership).await;
                    let liveness = membership.liveness();
                    *self.membership.lock().await = Some(membership);
                    return Some(liveness);
                }
                Err(e) => {
                    outage.failed("cannot join the cluster again yet", &e);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// Resolves when the membership `liveness` follows is lost (never, when
/// there is none).
async fn lost(liveness: &mut Option<watch::Receiver<Liveness>>) -> String {
    let Some(receiver) = liveness else {
        return std::future::pending().await;
    };
    loop {
        if let Liveness::Lost { reason } = &*receiver.borrow_and_update() {
            return reason.clone();
        }
        if receiver.changed().await.is_err() {
            return "its keep-alive stopped".into();
        }
    }
}

/// The connectors `me` checks among `members`: none unless it is one of
/// them.
fn ownership(me: &NodeId, members: &BTreeMap<NodeId, MemberInfo>) -> Ownership {
    if !members.contains_key(me) {
        return Ownership::none();
    }
    let live: Vec<NodeId> = members.keys().cloned().collect();
    let me = me.clone();
    Ownership::from_fn(move |id| owner(id, live.iter()) == Some(&me))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> BTreeMap<NodeId, MemberInfo> {
        names
            .iter()
            .map(|n| {
                (
                    NodeId::new(n).expect("a node id"),
                    MemberInfo::starting_now("127.0.0.1:1"),
                )
            })
            .collect()
    }

    #[test]
    fn every_connector_has_exactly_one_owner_among_the_live_members() {
        let live = members(&["a", "b", "c"]);
        let each: Vec<Ownership> = live.keys().map(|me| ownership(me, &live)).collect();
        for n in 0..1000 {
            let id = format!("c{n}");
            let owners = each.iter().filter(|o| o.owns(&id)).count();
            assert_eq!(owners, 1, "{id}");
        }
        // Each has a share.
        for o in &each {
            assert!((0..1000).filter(|n| o.owns(&format!("c{n}"))).count() > 200);
        }
    }

    #[test]
    fn a_node_that_is_not_live_owns_nothing() {
        let me = NodeId::new("d").expect("a node id");
        let o = ownership(&me, &members(&["a", "b"]));
        assert!((0..100).all(|n| !o.owns(&format!("c{n}"))));
    }
}
