//! Sending queued messages: which are due, how many go at once, what an
//! answer means, and when to try again.
//!
//! Each provider has its own small number of sends in flight (and there is
//! a cap over all), so a slow or dead provider holds only its own slots and
//! the others go on. Each send has a timeout. A 2xx delivers; no answer, a
//! 5xx, 408 or 429 is tried again after a backoff that doubles from 1 s to
//! 5 min, with jitter, until the message is 24 h old; any other answer is
//! final. The caller (the engine) deletes settled messages from the outbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sandport_config::AlertsConfig;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::Transport;
use crate::message::{Message, random_fraction};
use crate::payload::render;

/// Limits and delays; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub give_up_after: Duration,
    pub per_provider: usize,
    pub in_flight: usize,
    /// Transitions waiting for the engine.
    pub queue: usize,
    /// Messages held at once; past it new messages are dropped (and logged),
    /// so a long outage cannot grow the outbox without end.
    pub max_pending: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timeout: Duration::from_secs(10),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            per_provider: 2,
            in_flight: 16,
            queue: 4096,
            max_pending: 100_000,
        }
    }
}

/// What an answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Retry(String),
    Refused(String),
}

pub(crate) fn outcome(result: Result<u16, String>) -> Outcome {
    match result {
        Ok(200..=299) => Outcome::Delivered,
        Ok(code @ (408 | 429 | 500..=599)) => Outcome::Retry(format!("HTTP {code}")),
        Ok(code) => Outcome::Refused(format!("HTTP {code}")),
        Err(reason) => Outcome::Retry(reason),
    }
}

/// The wait before attempt `failures + 1`: the first backoff doubled per
/// failure up to the cap, then a random part of its second half, so that
/// messages that failed together do not all come back at once.
pub(crate) fn backoff(tuning: &Tuning, failures: u32) -> Duration {
    let doubled = tuning
        .first_backoff
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let delay = doubled.min(tuning.max_backoff);
    delay / 2 + delay.mul_f64(random_fraction() / 2.0)
}

struct Pending {
    message: Message,
    queued_at: SystemTime,
    failures: u32,
    next_at: Instant,
    in_flight: bool,
}

/// A message done with, for the engine to delete and count.
#[derive(Debug)]
pub(crate) struct Settled {
    pub message: Message,
    pub outcome: Outcome,
    /// Retries were allowed but the message is too old, or its provider is
    /// gone.
    pub gave_up: bool,
}

/// What a finished send leaves: done with, or to be tried again.
pub(crate) enum Step {
    Settled(Box<Settled>),
    Retrying,
}

pub(crate) struct Queue {
    items: BTreeMap<u64, Pending>,
    next_seq: u64,
    sends: JoinSet<Result<u16, String>>,
    tasks: HashMap<Id, u64>,
    per_provider: HashMap<String, usize>,
    transport: Arc<dyn Transport>,
    tuning: Tuning,
}

impl Queue {
    pub(crate) fn new(transport: Arc<dyn Transport>, tuning: Tuning) -> Queue {
        Queue {
            items: BTreeMap::new(),
            next_seq: 0,
            sends: JoinSet::new(),
            tasks: HashMap::new(),
            per_provider: HashMap::new(),
            transport,
            tuning,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// How many more messages may be queued.
    pub(crate) fn room(&self) -> usize {
        self.tuning.max_pending.saturating_sub(self.items.len())
    }

    /// Queues `message` to be sent as soon as a slot is free.
    pub(crate) fn push(&mut self, message: Message, queued_at: SystemTime) {
        self.items.insert(
            self.next_seq,
            Pending {
                message,
                queued_at,
                failures: 0,
                next_at: Instant::now(),
                in_flight: false,
            },
        );
        self.next_seq += 1;
    }

    /// Starts every due send there is a slot for, oldest first. Messages
    /// that cannot be sent under `config` (their provider is gone, or takes
    /// no message of that kind) come back settled.
    pub(crate) fn start_due(&mut self, config: &AlertsConfig) -> Vec<Settled> {
        let now = Instant::now();
        let mut settled = Vec::new();
        let mut drop_seqs = Vec::new();
        // A provider gets an incident's messages one at a time and in
        // order: a "resolved" overtaking its "firing" would leave the
        // receiver (PagerDuty above all) with an incident open for good.
        let mut waiting: HashSet<(&str, &str)> = HashSet::new();
        for (seq, item) in &mut self.items {
            if self.sends.len() >= self.tuning.in_flight {
                break;
            }
            let incident = (
                item.message.provider.as_str(),
                item.message.incident_id.as_str(),
            );
            if !waiting.insert(incident) || item.in_flight || item.next_at > now {
                continue;
            }
            let provider_name = &item.message.provider;
            let busy = self.per_provider.get(provider_name).copied().unwrap_or(0);
            if busy >= self.tuning.per_provider {
                continue;
            }
            let Some(provider) = config.provider(provider_name) else {
                drop_seqs.push((
                    *seq,
                    Outcome::Refused("its provider is no longer configured".into()),
                ));
                continue;
            };
            let Some(request) = render(provider, &item.message, SystemTime::now()) else {
                drop_seqs.push((*seq, Outcome::Delivered));
                continue;
            };
            item.in_flight = true;
            *self.per_provider.entry(provider_name.clone()).or_default() += 1;
            let transport = Arc::clone(&self.transport);
            let timeout = self.tuning.timeout;
            let handle = self.sends.spawn(async move {
                let url = request.url.clone();
                let send = transport.post(request.url, request.headers, request.body);
                match tokio::time::timeout(timeout, send).await {
                    Ok(Ok(code)) => Ok(code),
                    // Webhook URLs are credentials, and a transport's error
                    // text often quotes the URL.
                    Ok(Err(reason)) => Err(reason.replace(&url, "<provider url>")),
                    Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f32())),
                }
            });
            self.tasks.insert(handle.id(), *seq);
        }
        for (seq, outcome) in drop_seqs {
            if let Some(item) = self.items.remove(&seq) {
                let gave_up = !matches!(outcome, Outcome::Delivered);
                settled.push(Settled {
                    message: item.message,
                    outcome,
                    gave_up,
                });
            }
        }
        settled
    }

    /// When the next waiting message is due, if any waits.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.items
            .values()
            .filter(|i| !i.in_flight)
            .map(|i| i.next_at)
            .min()
    }

    pub(crate) fn sending(&self) -> bool {
        !self.sends.is_empty()
    }

    /// Waits for a send to finish and says what it means for its message.
    /// Pending forever while nothing is in flight.
    pub(crate) async fn next_finished(&mut self) -> Option<Step> {
        let (id, result) = match self.sends.join_next_with_id().await {
            None => return std::future::pending().await,
            Some(Ok((id, result))) => (id, result),
            Some(Err(e)) => (e.id(), Err(format!("the send failed: {e}"))),
        };
        let seq = self.tasks.remove(&id)?;
        let item = self.items.get_mut(&seq)?;
        item.in_flight = false;
        if let Some(busy) = self.per_provider.get_mut(&item.message.provider) {
            *busy = busy.saturating_sub(1);
        }
        let outcome = outcome(result);
        let too_old = item
            .queued_at
            .elapsed()
            .is_ok_and(|age| age >= self.tuning.give_up_after);
        if matches!(outcome, Outcome::Retry(_)) && !too_old {
            item.failures += 1;
            let wait = backoff(&self.tuning, item.failures);
            item.next_at = Instant::now() + wait;
            if let Outcome::Retry(reason) = &outcome {
                tracing::warn!(
                    provider = %item.message.provider,
                    alert_id = %item.message.alert_id,
                    kind = item.message.kind.as_str(),
                    failures = item.failures,
                    "alert not delivered ({reason}); trying again in {:.1}s",
                    wait.as_secs_f32()
                );
            }
            return Some(Step::Retrying);
        }
        let item = self.items.remove(&seq)?;
        Some(Step::Settled(Box::new(Settled {
            message: item.message,
            gave_up: too_old && matches!(outcome, Outcome::Retry(_)),
            outcome,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_delivered_retry_or_refused() {
        for code in [200, 201, 204, 299] {
            assert_eq!(outcome(Ok(code)), Outcome::Delivered, "{code}");
        }
        for code in [408, 429, 500, 502, 503, 599] {
            assert!(matches!(outcome(Ok(code)), Outcome::Retry(_)), "{code}");
        }
        for code in [100, 301, 400, 401, 403, 404, 410, 422] {
            assert!(matches!(outcome(Ok(code)), Outcome::Refused(_)), "{code}");
        }
        assert_eq!(
            outcome(Err("connection refused".into())),
            Outcome::Retry("connection refused".into())
        );
    }

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes_with_jitter() {
        let tuning = Tuning::default();
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
        for (failures, full) in (1..).zip(expected) {
            let full = Duration::from_secs(full);
            for _ in 0..20 {
                let wait = backoff(&tuning, failures);
                assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
            }
        }
        assert!(backoff(&tuning, u32::MAX) <= Duration::from_secs(300));
    }
}
