//! Statuses across the cluster: each node publishes, for the connectors it
//! owns, a status when it changes (not at every check), under its lease;
//! every node shows the others' published statuses for the connectors it
//! does not own, so that every node's API answers alike.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandport_cluster::{
    Cluster, ClusterError, ConnectorStatus, Membership, NodeId, StatusEvent, StatusPublisher, Store,
};
use sandport_core::service::Service;
use sandport_core::{HealthEvent, HealthSnapshot, HealthStatus, RemoteHealth};
use tokio::sync::broadcast;

use super::{Outage, RETRY};

/// How often the health changes of the owned connectors are published:
/// what the others see lags by at most this (plus etcd's round trip).
const SWEEP: Duration = Duration::from_secs(1);
/// How often every owned connector is looked over all the same, besides
/// after an ownership change, a new lease, a failed publish, or a burst of
/// changes too large to follow one by one: a safety net, and what keeps
/// the owned-connectors gauge current after a registration.
const FULL_SWEEP: Duration = Duration::from_secs(15);

/// The publisher of the current membership (none while it is lost), with
/// a count of replacements so that a new lease republishes everything.
#[derive(Clone, Default)]
pub(super) struct PublisherSlot(Arc<tokio::sync::Mutex<(u64, Option<StatusPublisher>)>>);

impl PublisherSlot {
    pub(super) async fn replace(&self, cluster: &Cluster, membership: &Membership) {
        let mut slot = self.0.lock().await;
        slot.0 += 1;
        slot.1 = Some(StatusPublisher::new(cluster, membership));
    }

    pub(super) async fn clear(&self) {
        self.0.lock().await.1 = None;
    }
}

/// What a published status is told apart by: its status and since when.
type Shown = (HealthStatus, Option<SystemTime>);

/// What was last published for one connector, and the sweep that last saw
/// it owned.
type Published = (Shown, u64);

/// Whether `health` has something to publish over `last` (what was
/// published for the connector, if anything): nothing before this node's
/// first check of it, nor what `last` already says.
fn is_news(health: &HealthSnapshot, last: Option<&Shown>) -> bool {
    health.checked_at.is_some() && last != Some(&shown(health))
}

fn shown(health: &HealthSnapshot) -> Shown {
    (health.status, health.since)
}

pub(super) struct Publisher {
    outage: Outage,
    me: String,
    service: Arc<Service>,
    slot: PublisherSlot,
    counts: Arc<super::metrics::Counts>,
    /// The sweeps so far.
    round: u64,
}

impl Publisher {
    pub(super) fn new(
        me: &NodeId,
        service: Arc<Service>,
        counts: Arc<super::metrics::Counts>,
    ) -> Publisher {
        Publisher {
            outage: Outage::default(),
            me: me.to_string(),
            service,
            slot: PublisherSlot::default(),
            counts,
            round: 0,
        }
    }

    pub(super) fn slot(&self) -> PublisherSlot {
        self.slot.clone()
    }

    /// Publishes, once a second, the statuses that changed: those the
    /// runtime announced as changed, looked up one by one (no walk over
    /// every connector while nothing happens), or, when a full sweep is
    /// due, every owned connector's.
    pub(super) async fn run(mut self) {
        let mut published: HashMap<String, Published> = HashMap::new();
        let mut generation = 0;
        let mut events = self.service.runtime().subscribe();
        // Ownership generation and time of the last full sweep that
        // published all it had to.
        let mut swept: Option<(u64, tokio::time::Instant)> = None;
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            sweep.tick().await;
            let (changed, lagged) = drain(&mut events);
            let ownership = self.service.runtime().ownership_generation();
            let shared = self.slot.0.clone();
            let mut slot = shared.lock().await;
            let (now, publisher) = &mut *slot;
            let Some(publisher) = publisher else {
                continue;
            };
            if *now != generation {
                // A new lease: its keys are empty.
                generation = *now;
                published.clear();
                swept = None;
            }
            let full = lagged
                || swept.is_none_or(|(seen, at)| seen != ownership || at.elapsed() >= FULL_SWEEP);
            let done = if full {
                self.sweep(publisher, &mut published).await
            } else {
                self.publish_changed(publisher, &mut published, changed)
                    .await
            };
            if done {
                self.outage.ok("statuses are published");
                if full {
                    swept = Some((ownership, tokio::time::Instant::now()));
                }
            } else {
                // The next tick sweeps everything again.
                swept = None;
            }
        }
    }

    /// Publishes the statuses of `changed` that this node owns and that
    /// differ from what it published. Returns whether all went out.
    async fn publish_changed(
        &mut self,
        publisher: &mut StatusPublisher,
        published: &mut HashMap<String, Published>,
        changed: HashSet<String>,
    ) -> bool {
        let service = Arc::clone(&self.service);
        let runtime = service.runtime();
        for id in changed {
            if !runtime.owns(&id) {
                continue;
            }
            let Ok(health) = runtime.health(&id) else {
                continue;
            };
            if !is_news(&health, published.get(&id).map(|(last, _)| last)) {
                continue;
            }
            if !self.publish(publisher, &id, &health).await {
                return false;
            }
            published.insert(id, (shown(&health), self.round));
        }
        true
    }

    /// Writes one status; false (logged once per outage) if it failed.
    async fn publish(
        &mut self,
        publisher: &mut StatusPublisher,
        id: &str,
        health: &HealthSnapshot,
    ) -> bool {
        let status = ConnectorStatus {
            status: health.status.as_str().to_string(),
            message: health.message.clone(),
            since_ms: health.since.map_or(0, millis),
            checked_by: self.me.clone(),
        };
        match publisher.publish(id, &status).await {
            Ok(_) => true,
            Err(e) => {
                self.outage
                    .failed("cannot publish statuses to the cluster", &e);
                false
            }
        }
    }

    /// Publishes the owned connectors' changed statuses; stops at the
    /// first failure (the next sweep tries again). Returns whether it
    /// published all it had to.
    async fn sweep(
        &mut self,
        publisher: &mut StatusPublisher,
        published: &mut HashMap<String, Published>,
    ) -> bool {
        let runtime = self.service.runtime();
        // Each sweep marks what it sees, so that what it did not see (no
        // longer owned, or gone) can be let go without a set of the ids.
        self.round = self.round.wrapping_add(1);
        let round = self.round;
        // Only the owned connectors are looked at, under the registry's
        // lock, and only changed ones are copied out: at 30,000
        // connectors a copy of every one each second was most of an idle
        // node's CPU.
        let (owned, changed) = runtime.owned_health_where(|id, health| {
            // Nothing to tell before this node's first check, and such a
            // connector is not marked seen: its status is written anew.
            if health.checked_at.is_none() {
                return false;
            }
            let last = published.get_mut(id).map(|(last, seen)| {
                *seen = round;
                &*last
            });
            is_news(health, last)
        });
        self.counts.owned(owned);
        for (id, health) in changed {
            if !self.publish(publisher, &id, &health).await {
                return false;
            }
            published.insert(id, (shown(&health), round));
        }
        // Connectors this node no longer owns (or that are gone): if one
        // comes back, its status is written again.
        published.retain(|id, (_, seen)| {
            let keep = *seen == round;
            if !keep {
                publisher.forget(id);
            }
            keep
        });
        true
    }
}

/// The ids of the health changes announced since the last call, and
/// whether some were missed (the receiver fell behind).
fn drain(events: &mut broadcast::Receiver<HealthEvent>) -> (HashSet<String>, bool) {
    let mut changed = HashSet::new();
    let mut lagged = false;
    loop {
        match events.try_recv() {
            Ok(event) => {
                changed.insert(event.id);
            }
            Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                return (changed, lagged);
            }
        }
    }
}

/// Shows the statuses other nodes publish, for the connectors this node
/// does not own, until the task is stopped.
pub(super) async fn follow(store: Store, service: Arc<Service>) {
    let mut outage = Outage::default();
    loop {
        let (statuses, revision) = match store.statuses().await {
            Ok(listed) => listed,
            Err(e) => {
                outage.failed("cannot read the cluster's statuses yet", &e);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        outage.ok("the cluster's statuses are read");
        for (id, status) in &statuses {
            show(&service, id, status);
        }
        let mut watch = store.watch_statuses(revision + 1);
        loop {
            match watch.next().await {
                Ok(events) => {
                    outage.ok("the cluster's statuses are followed");
                    for event in events {
                        // A cleared status (its owner's lease ended) stays
                        // as last seen until the new owner publishes.
                        if let StatusEvent::Published { id, status } = event {
                            show(&service, &id, &status);
                        }
                    }
                }
                Err(ClusterError::Compacted { .. }) => break,
                Err(e) => {
                    outage.failed("the cluster's statuses are out of reach", &e);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

fn show(service: &Service, id: &str, status: &ConnectorStatus) {
    let runtime = service.runtime();
    if runtime.owns(id) {
        return;
    }
    let Some(word) = parse_status(&status.status) else {
        tracing::warn!(connector = %id, "a published status `{}` is not one this node knows", status.status);
        return;
    };
    let remote = RemoteHealth {
        status: word,
        message: status.message.clone(),
        since: (status.since_ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(status.since_ms)),
        checked_at: None,
    };
    // Not (yet) registered here: the registry's watch brings it.
    let _ = runtime.record_remote_health(id, remote);
}

fn parse_status(word: &str) -> Option<HealthStatus> {
    [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Unhealthy,
        HealthStatus::Unavailable,
        HealthStatus::Unknown,
    ]
    .into_iter()
    .find(|s| s.as_str() == word)
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_reads_back() {
        for status in [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
            HealthStatus::Unavailable,
            HealthStatus::Unknown,
        ] {
            assert_eq!(parse_status(status.as_str()), Some(status));
        }
        assert_eq!(parse_status("fine"), None);
    }

    #[test]
    fn news_is_a_checked_status_or_since_that_differs_from_the_last_published() {
        let mut health = HealthSnapshot::unknown();
        assert!(!is_news(&health, None), "nothing before the first check");
        health.checked_at = Some(UNIX_EPOCH + Duration::from_secs(60));
        health.status = HealthStatus::Healthy;
        assert!(is_news(&health, None), "never published");
        let last = shown(&health);
        assert!(!is_news(&health, Some(&last)), "published as it is");
        health.checked_at = Some(UNIX_EPOCH + Duration::from_secs(90));
        health.message = "another check".into();
        assert!(
            !is_news(&health, Some(&last)),
            "a later check that says the same"
        );
        health.since = Some(UNIX_EPOCH + Duration::from_secs(90));
        assert!(is_news(&health, Some(&last)), "since moved");
    }
}
