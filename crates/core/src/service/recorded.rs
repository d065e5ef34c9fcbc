//! The check history read alike on every node of a cluster.
//!
//! Each node records the checks it ran (only a connector's owner runs its
//! scheduled checks), so a connector that moved has its history on more
//! than one node. A read here asks every other live member, through the
//! [`Forwarder`], for what it recorded over the same window (the reader's
//! clock decides the window) and merges the answers with this node's own:
//! raw points by time, rollups by bucket (counts added), uptime as counts
//! added before they become percentages ([`Tallies`]), incidents by time.
//! A member that does not answer is logged (once per outage) and its
//! records are left out: the read still answers.
//!
//! Latency percentiles cannot be added: a bucket checked by two nodes
//! takes its p50 and p95 from the node that ran most of its checks (its
//! max is the larger of the two).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use sandport_history::{History, HistoryError, Incident, Rollup, StatusCounts, Tallies};

use super::Service;
use super::forward::ForwardError;
use super::status::{
    DEFAULT_POINTS, Found, HistoryAnswer, HistoryQueryError, HistoryRange, MAX_POINTS,
};

/// What to read of the history besides raw points and rollups: the
/// figures the connector listings and the status page show.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAsk {
    /// One connector, or (`None`) every connector with checks in the last
    /// 92 days.
    pub id: Option<String>,
    /// Daily tallies ending today, at most 92 (0: none).
    pub days: u32,
    /// The hourly rollups of the 24 hours ending with the current one.
    pub latency: bool,
    /// The newest incidents of the last 7 days, at most this many.
    pub incidents: usize,
    /// The reader's clock: every node answers for the same windows.
    pub now: SystemTime,
}

/// What one node, or the cluster merged, recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub tallies: HashMap<String, Tallies>,
    /// By connector, oldest first; only with [`RecordedAsk::latency`].
    pub latency: HashMap<String, Vec<Rollup>>,
    /// Newest first.
    pub incidents: Vec<Incident>,
}

impl Recorded {
    /// Adds what another node recorded; `incidents` is the most to keep.
    pub fn merge(&mut self, other: Recorded, incidents: usize) {
        let Recorded {
            tallies,
            latency,
            incidents: theirs,
        } = other;
        for (id, t) in tallies {
            self.tallies.entry(id).or_default().merge(&t);
        }
        for (id, rollups) in latency {
            let mine = self.latency.remove(&id).unwrap_or_default();
            self.latency.insert(id, merge_rollups(mine, rollups));
        }
        self.incidents.extend(theirs);
        self.incidents
            .sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.connector.cmp(&b.connector)));
        self.incidents
            .dedup_by(|a, b| a.at == b.at && a.connector == b.connector);
        self.incidents.truncate(incidents);
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// The start of the latency line ([`RecordedAsk::latency`]) as of `now`:
/// the 24 whole hours ending with the one `now` is in.
pub fn latency_since(now: SystemTime) -> SystemTime {
    let epoch_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hour =
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch_secs - epoch_secs % HOUR.as_secs());
    hour.checked_sub(HOUR * 23)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// What this node recorded, read on the caller's (blocking) thread.
fn recorded_in(history: &History, ask: &RecordedAsk) -> Result<Recorded, HistoryError> {
    let RecordedAsk {
        id,
        days,
        latency,
        incidents,
        now,
    } = ask;
    let tallies = match id {
        Some(id) => HashMap::from([(id.clone(), history.tallies(id, *days, *now)?)]),
        None => history.tallies_all(*days, *now)?,
    };
    let mut lines = HashMap::new();
    if *latency {
        let since = latency_since(*now);
        for id in tallies.keys() {
            lines.insert(id.clone(), history.rollups(id, since, *now, HOUR)?);
        }
    }
    let incidents = if *incidents == 0 {
        Vec::new()
    } else {
        let since = now.checked_sub(WEEK).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut all = history.incidents(since, *incidents)?;
        if let Some(id) = id {
            all.retain(|i| &i.connector == id);
        }
        all
    };
    Ok(Recorded {
        tallies,
        latency: lines,
        incidents,
    })
}

/// Two nodes' rollups of one connector, as one list by bucket.
fn merge_rollups(a: Vec<Rollup>, b: Vec<Rollup>) -> Vec<Rollup> {
    let mut by_start: std::collections::BTreeMap<SystemTime, Rollup> =
        std::collections::BTreeMap::new();
    for r in a.into_iter().chain(b) {
        match by_start.remove(&r.start) {
            None => {
                by_start.insert(r.start, r);
            }
            Some(mine) => {
                by_start.insert(r.start, merge_rollup(mine, r));
            }
        }
    }
    by_start.into_values().collect()
}

fn merge_rollup(a: Rollup, b: Rollup) -> Rollup {
    let (most, fewer) = if b.counts.total() > a.counts.total() {
        (b, a)
    } else {
        (a, b)
    };
    let max = match (most.max, fewer.max) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    let (p50, p95) = if most.p50.is_some() {
        (most.p50, most.p95)
    } else {
        (fewer.p50, fewer.p95)
    };
    Rollup {
        start: most.start,
        step: most.step,
        counts: add_counts(&most.counts, &fewer.counts),
        p50,
        p95,
        max,
    }
}

fn add_counts(a: &StatusCounts, b: &StatusCounts) -> StatusCounts {
    let StatusCounts {
        healthy,
        degraded,
        unhealthy,
        unavailable,
        unknown,
    } = *b;
    StatusCounts {
        healthy: a.healthy.saturating_add(healthy),
        degraded: a.degraded.saturating_add(degraded),
        unhealthy: a.unhealthy.saturating_add(unhealthy),
        unavailable: a.unavailable.saturating_add(unavailable),
        unknown: a.unknown.saturating_add(unknown),
    }
}

/// Two nodes' answers to one history question, as one answer.
fn merge_found(a: Found, b: Found, limit: usize) -> Found {
    match (a, b) {
        (Found::Points(mut a), Found::Points(b)) => {
            a.extend(b);
            a.sort_by_key(|p| p.at);
            a.truncate(limit);
            Found::Points(a)
        }
        (Found::Rollups(a), Found::Rollups(b)) => Found::Rollups(merge_rollups(a, b)),
        // A peer answered another kind than asked: keep this node's.
        (mine, _) => mine,
    }
}

impl Service {
    /// One connector's recorded checks: in cluster mode, what every live
    /// member recorded (see the module's doc).
    pub async fn history_of(
        &self,
        id: &str,
        range: HistoryRange,
    ) -> Result<HistoryAnswer, HistoryQueryError> {
        let mut answer = self.history_here(id, range).await?;
        let Some(forwarder) = &self.forwarder else {
            return Ok(answer);
        };
        // The window this node settled on, so that every node answers for
        // the same one.
        let range = HistoryRange {
            since: Some(answer.since),
            until: Some(answer.until),
            ..range
        };
        let limit = range.limit.unwrap_or(DEFAULT_POINTS).clamp(1, MAX_POINTS);
        for theirs in forwarder.history(id, range).await {
            if let Some(found) = self.read_from_peer(theirs) {
                answer.found = merge_found(answer.found, found, limit);
            }
        }
        Ok(answer)
    }

    /// What the cluster recorded (this node's alone outside a cluster).
    pub async fn recorded(&self, ask: RecordedAsk) -> Result<Recorded, HistoryQueryError> {
        let ask = Arc::new(ask);
        let mut merged = self.recorded_here(Arc::clone(&ask)).await?;
        if let Some(forwarder) = &self.forwarder {
            for theirs in forwarder.recorded(&ask).await {
                if let Some(recorded) = self.read_from_peer(theirs) {
                    merged.merge(recorded, ask.incidents);
                }
            }
        }
        Ok(merged)
    }

    /// What this node recorded: the answer to another node's read.
    pub async fn recorded_here(
        &self,
        ask: Arc<RecordedAsk>,
    ) -> Result<Recorded, HistoryQueryError> {
        let history = self.history()?.clone();
        tokio::task::spawn_blocking(move || recorded_in(&history, &ask))
            .await
            .map_err(|e| HistoryQueryError::Thread(e.to_string()))?
            .map_err(HistoryQueryError::from)
    }

    fn read_from_peer<T>(&self, answer: Result<(String, T), ForwardError>) -> Option<T> {
        match answer {
            Ok((peer, found)) => {
                if self.read_fallbacks.answered(&peer) {
                    tracing::info!(%peer, "history reads reach every node again");
                }
                Some(found)
            }
            Err(error) => {
                if self.read_fallbacks.failed(error.peer(), Instant::now()) {
                    tracing::warn!(
                        "history reads ask every node for what it recorded, but {error}; answering without its records until it answers"
                    );
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandport_history::{Passed, Status, StoredPoint};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn rollup(
        start: u64,
        healthy: u64,
        unhealthy: u64,
        p50_ms: Option<u64>,
        max_ms: u64,
    ) -> Rollup {
        Rollup {
            start: at(start),
            step: HOUR,
            counts: StatusCounts {
                healthy,
                unhealthy,
                ..StatusCounts::default()
            },
            p50: p50_ms.map(Duration::from_millis),
            p95: p50_ms.map(|ms| Duration::from_millis(ms * 2)),
            max: Some(Duration::from_millis(max_ms)),
        }
    }

    #[test]
    fn a_bucket_both_nodes_checked_adds_counts_and_keeps_the_busier_nodes_percentiles() {
        let old_owner = vec![
            rollup(0, 1, 3, Some(90), 400),
            rollup(3600, 0, 2, Some(80), 100),
        ];
        let new_owner = vec![
            rollup(3600, 10, 0, Some(5), 50),
            rollup(7200, 6, 0, Some(4), 9),
        ];
        let merged = merge_rollups(old_owner, new_owner);
        assert_eq!(
            merged.iter().map(|r| r.start).collect::<Vec<_>>(),
            vec![at(0), at(3600), at(7200)],
            "by bucket, oldest first"
        );
        let both = &merged[1];
        assert_eq!((both.counts.healthy, both.counts.unhealthy), (10, 2));
        assert_eq!(both.p50, Some(Duration::from_millis(5)), "10 checks beat 2");
        assert_eq!(both.p95, Some(Duration::from_millis(10)));
        assert_eq!(both.max, Some(Duration::from_millis(100)), "the larger max");
        assert_eq!(
            merged[0],
            rollup(0, 1, 3, Some(90), 400),
            "one node's: as it was"
        );
    }

    #[test]
    fn a_hostile_peers_counts_saturate_instead_of_overflowing() {
        let merged = merge_rollups(
            vec![rollup(0, u64::MAX, 0, None, 1)],
            vec![rollup(0, 5, 0, Some(1), 2)],
        );
        assert_eq!(merged[0].counts.healthy, u64::MAX);
        assert_eq!(
            merged[0].p50,
            Some(Duration::from_millis(1)),
            "a figure beats none"
        );
    }

    fn point(secs: u64) -> StoredPoint {
        StoredPoint {
            at: at(secs),
            status: Status::Healthy,
            reported: Status::Healthy,
            latency: Duration::from_millis(1),
            failure: None,
            message: String::new(),
        }
    }

    #[test]
    fn raw_points_from_two_nodes_interleave_by_time_and_keep_the_oldest_up_to_the_limit() {
        let mine = Found::Points(vec![point(1), point(4), point(5)]);
        let theirs = Found::Points(vec![point(2), point(3), point(6)]);
        let Found::Points(merged) = merge_found(mine, theirs, 4) else {
            panic!("points asked, points answered");
        };
        assert_eq!(
            merged.iter().map(|p| p.at).collect::<Vec<_>>(),
            vec![at(1), at(2), at(3), at(4)]
        );
        // A peer answering with another kind is ignored.
        let Found::Points(kept) = merge_found(
            Found::Points(vec![point(1)]),
            Found::Rollups(Vec::new()),
            10,
        ) else {
            panic!("this node's answer kept");
        };
        assert_eq!(kept.len(), 1);
    }

    fn incident(connector: &str, secs: u64) -> Incident {
        Incident {
            connector: connector.into(),
            status: Status::Unhealthy,
            previous: Status::Healthy,
            message: String::new(),
            at: at(secs),
        }
    }

    #[test]
    fn recorded_merges_tallies_lines_and_the_newest_incidents() {
        let tallies = |passing, total| Tallies {
            day: Passed { passing, total },
            ..Tallies::default()
        };
        let mut mine = Recorded {
            tallies: HashMap::from([("a".to_string(), tallies(1, 2))]),
            latency: HashMap::from([("a".to_string(), vec![rollup(0, 1, 1, Some(3), 3)])]),
            incidents: vec![incident("a", 30), incident("a", 10)],
        };
        let theirs = Recorded {
            tallies: HashMap::from([
                ("a".to_string(), tallies(2, 2)),
                ("b".to_string(), tallies(0, 1)),
            ]),
            latency: HashMap::from([("a".to_string(), vec![rollup(3600, 1, 0, Some(1), 1)])]),
            incidents: vec![incident("b", 20), incident("a", 30)],
        };
        mine.merge(theirs, 2);
        assert_eq!(
            mine.tallies["a"].day,
            Passed {
                passing: 3,
                total: 4
            }
        );
        assert_eq!(
            mine.tallies["b"].day,
            Passed {
                passing: 0,
                total: 1
            }
        );
        assert_eq!(mine.latency["a"].len(), 2);
        assert_eq!(
            mine.incidents
                .iter()
                .map(|i| (i.connector.as_str(), i.at))
                .collect::<Vec<_>>(),
            vec![("a", at(30)), ("b", at(20))],
            "newest first, one of a duplicate, cut to the limit"
        );
    }
}
