//! The cluster's gauges on `/metrics`: how many members this node sees,
//! whether it is one, how many connectors it checks, and how often the
//! ownership moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

#[derive(Debug, Default)]
pub(super) struct Counts {
    members: AtomicU64,
    member: AtomicU64,
    owned: AtomicU64,
    rebalances: AtomicU64,
}

impl Counts {
    /// A new member set, and so a new ownership.
    pub(super) fn members_changed(&self, members: usize, member: bool) {
        self.members.store(members as u64, Ordering::Relaxed);
        self.member.store(u64::from(member), Ordering::Relaxed);
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn lost_membership(&self) {
        self.member.store(0, Ordering::Relaxed);
    }

    pub(super) fn owned(&self, owned: usize) {
        self.owned.store(owned as u64, Ordering::Relaxed);
    }
}

/// Reads [`Counts`] at a scrape.
#[derive(Debug)]
pub struct ClusterCollector(pub(super) Arc<Counts>);

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Counts {
            members,
            member,
            owned,
            rebalances,
        } = &*self.0;
        let gauges = [
            (
                "sandport_cluster_members",
                "Live members of the cluster, as this node last saw them",
                members,
            ),
            (
                "sandport_cluster_member",
                "Whether this node holds a live lease in the cluster (1) or not (0)",
                member,
            ),
            (
                "sandport_cluster_owned_connectors",
                "Connectors this node checks",
                owned,
            ),
        ];
        for (name, help, value) in gauges {
            let value = value.load(Ordering::Relaxed) as i64;
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        encoder
            .encode_descriptor(
                "sandport_cluster_rebalances",
                "Times the member set, and with it which connectors this node checks, changed",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&rebalances.load(Ordering::Relaxed), None)?;
        Ok(())
    }
}
