//! Live checks of a connector another node owns, asked of that node.
//!
//! In cluster mode only a connector's owner holds its instance. A live
//! check asked of another node would otherwise build an instance there
//! for one call (memory, a cold start, a second set of requests to the
//! target). With a [`Forwarder`] the server plugs in, [`Service::check`]
//! asks the owner instead, and checks here only when the forwarder says
//! so or cannot reach the owner, so that a live check always answers.
//!
//! A failed forward is logged once per peer outage (and again at most
//! every [`REPEAT_WARNING`] while it lasts), not once per call: a dead
//! owner under a busy API would otherwise flood the log until its lease
//! runs out.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use sandport_config::ConnectorType;

use super::recorded::{Recorded, RecordedAsk};
use super::status::{Found, HistoryRange};
use super::{Service, ServiceError};
use crate::HealthSnapshot;
use crate::registry::{CheckAll, RemoteHealth};

/// What a [`Forwarder`] returns.
pub type ForwardFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Forwarded, ForwardError>> + Send + 'a>>;

/// What [`Forwarder::check_all`] returns: one answer per live peer.
pub type RoundsFuture<'a> =
    Pin<Box<dyn Future<Output = Vec<Result<PeerRound, ForwardError>>> + Send + 'a>>;

/// What [`Forwarder`]'s reads return: each other live member's answer,
/// with its name.
pub type ReadsFuture<'a, T> =
    Pin<Box<dyn Future<Output = Vec<Result<(String, T), ForwardError>>> + Send + 'a>>;

/// Asks a connector's owner for a live check, and the other members for
/// what they recorded: the cluster's peer client.
pub trait Forwarder: Send + Sync + 'static {
    /// A live check of `id` by its owner. `check_timeout` is the
    /// connector's own check timeout: the forwarder bounds the whole call
    /// (connecting included) by it plus a margin of its own, so that a
    /// silent owner cannot hold the caller.
    fn check<'a>(&'a self, id: &'a str, check_timeout: Duration) -> ForwardFuture<'a>;

    /// Every other live member's round of live checks over the connectors
    /// it owns (of `connector_type`, if given), each call bounded by
    /// `limit`, asked of all at once.
    fn check_all<'a>(
        &'a self,
        connector_type: Option<ConnectorType>,
        limit: Duration,
    ) -> RoundsFuture<'a>;

    /// Every other live member's recorded checks of `id` over `range`
    /// (whose `since` and `until` are set), asked of all at once.
    fn history<'a>(&'a self, id: &'a str, range: HistoryRange) -> ReadsFuture<'a, Found>;

    /// Every other live member's [`Recorded`] for `ask`, asked of all at
    /// once.
    fn recorded<'a>(&'a self, ask: &'a RecordedAsk) -> ReadsFuture<'a, Recorded>;
}

/// One peer's answer to [`Forwarder::check_all`].
#[derive(Debug, Clone)]
pub struct PeerRound {
    pub peer: String,
    /// What it owns and checked, as its `CheckAll`.
    pub round: CheckAll,
}

/// A forwarder's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Forwarded {
    /// The owner checked: its snapshot.
    Owner {
        peer: String,
        health: HealthSnapshot,
    },
    /// Check on this node: no live owner is known, or this node is the
    /// owner by the forwarder's view of the members.
    CheckHere,
}

/// Why the owner did not answer; the check then runs here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    #[error("cannot reach {peer}: {message}")]
    Unreachable { peer: String, message: String },
    #[error("{peer} did not answer within {after:?}")]
    TimedOut { peer: String, after: Duration },
    #[error("{peer} refused: {message}")]
    Refused { peer: String, message: String },
}

impl ForwardError {
    /// The node that did not answer.
    pub fn peer(&self) -> &str {
        match self {
            ForwardError::Unreachable { peer, .. }
            | ForwardError::TimedOut { peer, .. }
            | ForwardError::Refused { peer, .. } => peer,
        }
    }
}

/// How often a peer that keeps failing is warned about again.
pub const REPEAT_WARNING: Duration = Duration::from_secs(60);

/// Which peers are failing, so that each outage is warned about once (and
/// again every [`REPEAT_WARNING`] while it lasts).
#[derive(Debug, Default)]
pub(super) struct FallbackLog {
    /// Failing peers and when they were last warned about.
    failing: Mutex<HashMap<String, Instant>>,
}

impl FallbackLog {
    /// Whether this failure of `peer` is to be warned about.
    pub(super) fn failed(&self, peer: &str, now: Instant) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        match failing.get_mut(peer) {
            Some(warned) if now.saturating_duration_since(*warned) < REPEAT_WARNING => false,
            Some(warned) => {
                *warned = now;
                true
            }
            None => {
                failing.insert(peer.to_string(), now);
                true
            }
        }
    }

    /// `peer` answered: whether it had been failing (its outage is over).
    pub(super) fn answered(&self, peer: &str) -> bool {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked first: the common case takes no allocation.
        !failing.is_empty() && failing.remove(peer).is_some()
    }
}

impl Service {
    /// A live check. In cluster mode with a forwarder, a connector another
    /// node owns is checked by its owner, or here when the owner cannot be
    /// asked (see the module's doc).
    pub async fn check(self: &Arc<Self>, id: &str) -> Result<HealthSnapshot, ServiceError> {
        let id = id.to_string();
        self.on_work(|this| async move {
            if let Some(health) = this.forwarded(&id).await? {
                return Ok(health);
            }
            this.runtime
                .check(&id)
                .await
                .map_err(|e| ServiceError::NotFound(e.0))
        })
        .await
    }

    /// A live check on this node whoever owns the connector: the answer to
    /// a check another node forwarded, which must not be forwarded again.
    pub async fn check_here(self: &Arc<Self>, id: &str) -> Result<HealthSnapshot, ServiceError> {
        let id = id.to_string();
        self.on_work(|this| async move {
            this.runtime
                .check(&id)
                .await
                .map_err(|e| ServiceError::NotFound(e.0))
        })
        .await
    }

    /// The owner's answer to a live check of `id`, or `None` to check here.
    pub(super) async fn forwarded(&self, id: &str) -> Result<Option<HealthSnapshot>, ServiceError> {
        let Some(forwarder) = &self.forwarder else {
            return Ok(None);
        };
        // Ownership first: a connector this node owns (most live checks)
        // is checked here without copying its config for the timeout.
        if self.runtime.owns(id) {
            return Ok(None);
        }
        let (_, config) = self
            .runtime
            .get(id)
            .map_err(|e| ServiceError::NotFound(e.0))?;
        match forwarder.check(id, config.health_check.timeout).await {
            Ok(Forwarded::Owner { peer, health }) => {
                if self.fallbacks.answered(&peer) {
                    tracing::info!(%peer, "live checks reach their owner again");
                }
                self.remember(id, &health);
                Ok(Some(health))
            }
            Ok(Forwarded::CheckHere) => Ok(None),
            Err(error) => {
                if self.fallbacks.failed(error.peer(), Instant::now()) {
                    tracing::warn!(
                        connector = %id,
                        "a live check goes to the connector's owner, but {error}; checking on this node until it answers"
                    );
                }
                Ok(None)
            }
        }
    }

    /// Every connector's live check (of `connector_type`, if given) by the
    /// given deadline. In cluster mode each is checked by its owner: this
    /// node checks what it owns while every other live member, asked at
    /// once, checks what it owns; a connector no member answered for (its
    /// owner unreachable, or the members' views differing for a moment) is
    /// checked here, as a live check would be, so that every connector
    /// gets an answer and none is checked twice.
    pub async fn check_all(
        self: &Arc<Self>,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
    ) -> CheckAll {
        self.on_work(|this| async move {
            Ok(match &this.forwarder {
                None => this.runtime.check_all_until(connector_type, deadline).await,
                Some(forwarder) => {
                    this.check_all_with(forwarder.as_ref(), connector_type, deadline)
                        .await
                }
            })
        })
        .await
        .unwrap_or_default()
    }

    /// The round a peer forwarded: the connectors this node owns only.
    pub async fn check_all_owned(
        self: &Arc<Self>,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
    ) -> CheckAll {
        self.on_work(|this| async move {
            let runtime = &this.runtime;
            Ok(runtime
                .check_all_where(connector_type, deadline, |id| runtime.owns(id))
                .await)
        })
        .await
        .unwrap_or_default()
    }

    async fn check_all_with(
        &self,
        forwarder: &dyn Forwarder,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
    ) -> CheckAll {
        let runtime = &self.runtime;
        let limit = deadline.map_or(ROUND_LIMIT, |d| d.saturating_duration_since(Instant::now()));
        let (mine, rounds) = tokio::join!(
            runtime.check_all_where(connector_type, deadline, |id| runtime.owns(id)),
            forwarder.check_all(connector_type, limit),
        );
        let mut answered: HashMap<String, (HealthSnapshot, bool)> = HashMap::new();
        for round in rounds {
            match round {
                Ok(PeerRound { peer, round }) => {
                    if self.fallbacks.answered(&peer) {
                        tracing::info!(%peer, "live checks reach their owner again");
                    }
                    let CheckAll {
                        results,
                        unfinished,
                    } = round;
                    for (id, health) in results {
                        let late = unfinished.contains(&id);
                        answered.insert(id, (health, late));
                    }
                }
                Err(error) => {
                    if self.fallbacks.failed(error.peer(), Instant::now()) {
                        tracing::warn!(
                            "a round of live checks asks every node for what it owns, but {error}; checking its connectors on this node until it answers"
                        );
                    }
                }
            }
        }
        // Owned elsewhere and answered by no one: checked here.
        let fallback = runtime
            .check_all_where(connector_type, deadline, |id| {
                !runtime.owns(id) && !answered.contains_key(id)
            })
            .await;
        let mut all = merge(mine, fallback);
        // The peers' answers for what this node has registered (a peer
        // may know of a registration this node has not seen yet).
        for id in runtime.ids(connector_type) {
            if runtime.owns(&id) {
                continue;
            }
            if let Some((health, late)) = answered.remove(&id) {
                self.remember(&id, &health);
                if late {
                    all.unfinished.push(id.clone());
                }
                all.results.push((id, health));
            }
        }
        all.results.sort_by(|a, b| a.0.cmp(&b.0));
        all.unfinished.sort();
        all
    }

    /// Shows the owner's fresh answer here at once, as its published
    /// status would a moment later.
    fn remember(&self, id: &str, health: &HealthSnapshot) {
        let remote = RemoteHealth {
            status: health.status,
            message: health.message.clone(),
            since: health.since,
            checked_at: health.checked_at,
        };
        // Removed meanwhile: nothing to show.
        let _ = self.runtime.record_remote_health(id, remote);
    }
}

/// How long a round waits for the other members without a deadline of
/// its caller's.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

/// Two rounds over disjoint connectors as one.
fn merge(mut a: CheckAll, b: CheckAll) -> CheckAll {
    a.results.extend(b.results);
    a.unfinished.extend(b.unfinished);
    a
}

/// By hand: a forwarder need not be `Debug`.
pub(super) fn describe(forwarder: &Option<Arc<dyn Forwarder>>) -> Option<&'static str> {
    forwarder.as_ref().map(|_| "Forwarder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_outage_is_warned_about_once_then_every_minute_and_its_end_is_noticed() {
        let log = FallbackLog::default();
        let start = Instant::now();
        assert!(log.failed("b", start), "the first failure warns");
        assert!(!log.failed("b", start + Duration::from_secs(1)));
        assert!(!log.failed("b", start + Duration::from_secs(59)));
        assert!(log.failed("b", start + REPEAT_WARNING), "a minute on");
        assert!(!log.failed("b", start + REPEAT_WARNING + Duration::from_secs(1)));
        assert!(log.failed("c", start), "another peer's outage is its own");
        assert!(log.answered("b"), "b's outage ends");
        assert!(!log.answered("b"), "and is over");
        assert!(
            log.failed("b", start + REPEAT_WARNING * 2),
            "a new outage warns"
        );
    }

    #[test]
    fn an_answer_from_a_peer_that_never_failed_is_not_news() {
        let log = FallbackLog::default();
        assert!(!log.answered("b"));
        assert!(log.failed("c", Instant::now()));
        assert!(!log.answered("b"));
    }
}
