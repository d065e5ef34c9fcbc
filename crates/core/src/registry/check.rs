//! Checks: one connector's (guarded by its quarantine and the node's
//! check permits), every connector's by a deadline, each recorded in the
//! health cache and announced when its status changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use sandport_config::ConnectorType;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::start::{StartError, start_guest};
use super::{CheckAll, Entry, HealthEvent, Inner, Runtime, lock};
use crate::budget::Budget;
use crate::health::{
    CheckOutcome, FailureKind, HealthSnapshot, HealthStatus, Thresholds, one_line,
};
use crate::observe::Checked;
use crate::sandbox::Guest;

/// The most details kept from one health report.
const MAX_DETAILS: usize = 64;

impl Runtime {
    /// Checks every connector (of `connector_type`, if given) concurrently.
    /// Results are sorted by id.
    pub async fn check_all(
        &self,
        connector_type: Option<ConnectorType>,
    ) -> Vec<(String, HealthSnapshot)> {
        self.check_all_until(connector_type, None).await.results
    }

    /// Like [`Runtime::check_all`], but returns at `deadline` with what has
    /// finished; the checks still running go on and update the cache.
    pub async fn check_all_until(
        &self,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
    ) -> CheckAll {
        self.check_all_where(connector_type, deadline, |_| true)
            .await
    }

    /// Like [`Runtime::check_all_until`], over the connectors whose id
    /// `keep` accepts (in cluster mode: the ones this node owns).
    pub async fn check_all_where(
        &self,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
        keep: impl Fn(&str) -> bool,
    ) -> CheckAll {
        let entries: Vec<Arc<Entry>> = self
            .read()
            .values()
            .filter(|e| connector_type.is_none_or(|t| e.info.connector_type == t))
            .filter(|e| keep(&e.config.id))
            .cloned()
            .collect();
        let mut tasks = JoinSet::new();
        for entry in &entries {
            let inner = self.inner.clone();
            let entry = entry.clone();
            tasks.spawn(async move {
                run_check(&inner, &entry, None).await;
                (entry.config.id.clone(), entry.health())
            });
        }
        let mut done: BTreeMap<String, HealthSnapshot> = BTreeMap::new();
        let collect = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((id, snapshot)) => {
                        done.insert(id, snapshot);
                    }
                    Err(e) => tracing::error!("a health check task failed: {e}"),
                }
            }
        };
        match deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline, collect).await;
            }
            None => collect.await,
        }
        // Checks past the deadline finish in the background.
        tasks.detach_all();
        let mut result = CheckAll::default();
        for entry in entries {
            let id = entry.config.id.clone();
            match done.remove(&id) {
                Some(snapshot) => result.results.push((id, snapshot)),
                None => {
                    result.results.push((id.clone(), entry.health()));
                    result.unfinished.push(id);
                }
            }
        }
        result
    }
}

/// Runs one check of `entry` and records it in the cache. Returns nothing:
/// the scheduler, which runs most checks, reads no snapshot. `scheduled`:
/// when the schedule meant it to start, for the lateness metric; a
/// scheduled check of a connector checked less often than
/// [`KEEP_WARM_UP_TO`](super::schedule::KEEP_WARM_UP_TO) leaves nothing warm
/// behind it (see [`check_once`]).
pub(super) async fn run_check(inner: &Inner, entry: &Entry, scheduled: Option<Instant>) {
    if !entry.config.enabled || lock(&entry.quarantine).blocks(Instant::now()) {
        return;
    }
    // A schedule outlived by its connector's ownership (it stops at the
    // next tick) checks nothing.
    if scheduled.is_some() && !entry.runs_here() {
        return;
    }
    let cool =
        scheduled.is_some() && !super::schedule::keeps_warm(entry.config.health_check.interval);
    let mut outcome = match inner.permits.acquire().await {
        Ok(_permit) => {
            if let Some(scheduled) = scheduled {
                inner
                    .node
                    .lateness
                    .observe(Instant::now().saturating_duration_since(scheduled));
            }
            // Recorded only when tracing is on (the span is at debug
            // level, which only the trace exporter asks for).
            let span = tracing::debug_span!(
                "check",
                connector = %entry.config.id,
                connector.type = entry.info.connector_type.as_str(),
                status = tracing::field::Empty,
                failure = tracing::field::Empty,
            );
            let outcome =
                tracing::Instrument::instrument(check_once(inner, entry, cool), span.clone()).await;
            span.record("status", outcome.status.as_str());
            if let Some(failure) = &outcome.failure {
                span.record("failure", failure.as_str());
            }
            outcome
        }
        Err(_) => return,
    };
    let quarantined = lock(&entry.quarantine).observe(outcome.failure.as_ref(), Instant::now());
    if let Some((backoff, overruns)) = quarantined {
        outcome.failure = Some(FailureKind::Quarantined);
        outcome.message = format!(
            "{}; quarantined: not called for {} after {overruns} deadline overruns in a row",
            outcome.message,
            crate::health::format_latency(backoff)
        );
    }
    let thresholds = Thresholds {
        failure: entry.config.health_check.failure_threshold,
        success: entry.config.health_check.success_threshold,
    };
    entry.counters.record(&outcome);
    let mut health = lock(&entry.health);
    // The runs say whether the previous check passed (the reported status
    // may be held by a threshold).
    let message_changed = health.checked_at.is_none()
        || health.message != outcome.message
        || (health.consecutive_successes > 0) != outcome.status.passing();
    let failure_changed = health.failure != outcome.failure;
    let previous = health.status;
    let (status, checked_at, latency) = (outcome.status, outcome.checked_at, outcome.latency);
    let changed = health.record(outcome, thresholds);
    let now = &*health;
    // Log and announce changes of the reported status (and, while it is
    // failing, of why), not every check: thousands of connectors check often.
    if changed.is_some() || (failure_changed && !now.status.passing()) {
        tracing::info!(
            connector = %entry.config.id,
            status = %now.status,
            failure = now.failure.as_ref().map(FailureKind::as_str),
            "{}",
            now.message
        );
        // No receivers is fine.
        let _ = inner.events.send(HealthEvent {
            id: entry.config.id.clone(),
            connector_type: entry.info.connector_type,
            status: now.status,
            previous,
            message: now.message.clone(),
            failure: now.failure.clone(),
            checked_at,
        });
    }
    inner.options.observers.tell(&Checked {
        id: &entry.key,
        name: &entry.info.name,
        connector_type: entry.info.connector_type,
        tags: &entry.config.tags,
        status,
        message: &now.message,
        details: &now.details,
        failure: now.failure.as_ref(),
        latency,
        checked_at,
        reported: now.status,
        previous,
        since: now.since.unwrap_or(checked_at),
        message_changed,
    });
}

/// One check under the instance's lock. `cool`: the next check is far
/// away, so once the call is done the instance gives its stack pages back
/// and the connector lets its pooled connections go: about 16 and 30 KiB a
/// connector for the whole interval, against a few page faults and one
/// handshake at the next check.
async fn check_once(inner: &Inner, entry: &Entry, cool: bool) -> CheckOutcome {
    let started = Instant::now();
    let budget = Budget::new(entry.config.health_check.timeout);
    let fail = |kind: FailureKind, message: String| CheckOutcome {
        status: HealthStatus::Unhealthy,
        message,
        details: Vec::new(),
        failure: Some(kind),
        latency: started.elapsed(),
        checked_at: SystemTime::now(),
    };
    // Uncontended (the usual case) without arming a timer.
    let slot = match entry.instance.try_lock() {
        Ok(slot) => Ok(slot),
        Err(_) => tokio::time::timeout_at(budget.deadline, entry.instance.lock()).await,
    };
    let Ok(mut slot) = slot else {
        return fail(
            FailureKind::Deadline,
            format!(
                "{} waiting for the previous check to finish",
                budget.timed_out_message()
            ),
        );
    };
    if !slot.as_ref().is_some_and(Guest::is_usable) {
        // The last call trapped or timed out: start a fresh instance.
        *slot = None;
        // Boxed: a restart is rare, and its future (instantiating and
        // initialising, about 6 KB) held inline would make every check's
        // future that large, and every scheduled connector's task with it.
        let start = start_guest(inner, &entry.prepared, &entry.config, &entry.egress, budget);
        match Box::pin(start).await {
            Ok(guest) => *slot = Some(guest),
            Err(StartError::Refused(message)) => {
                return fail(
                    FailureKind::GuestError,
                    format!("initialize failed: {}", one_line(&message)),
                );
            }
            Err(StartError::Sandbox(e)) => return fail(e.kind, e.message),
        }
    }
    let Some(guest) = slot.as_mut() else {
        return fail(FailureKind::Instantiate, "no instance".into());
    };
    let call = tracing::debug_span!("guest call", export = "health-check");
    let result = tracing::Instrument::instrument(guest.health_check(budget), call).await;
    let (requests, bytes) = guest.last_call_egress();
    let memory = result.is_ok().then(|| guest.memory_used());
    entry.counters.record_call(requests, bytes, memory);
    if cool {
        guest.release_stack();
        entry.egress.release_connections();
    }
    let outcome = match result {
        Ok(Ok(report)) => CheckOutcome {
            failure: (report.status != crate::sandbox::WitHealthStatus::Healthy
                && report.status != crate::sandbox::WitHealthStatus::Degraded
                && guest.was_denied())
            .then_some(FailureKind::EgressDenied),
            status: crate::sandbox::status_from_wit(report.status),
            message: one_line(report.message),
            details: report
                .details
                .into_iter()
                .take(MAX_DETAILS)
                .map(|(k, v)| (one_line(k), one_line(v)))
                .collect(),
            latency: started.elapsed(),
            checked_at: SystemTime::now(),
        },
        Ok(Err(message)) => fail(FailureKind::GuestError, one_line(message)),
        Err(e) => {
            *slot = None;
            fail(e.kind, e.message)
        }
    };
    // A connector that does not run here (a live check on a node that
    // does not own it, or one whose ownership went while it ran) keeps no
    // instance. Boxed: rare, and a close's future would enlarge every
    // check's.
    if !entry.runs_here()
        && let Some(guest) = slot.take()
    {
        drop(slot);
        Box::pin(super::close_guest(&entry.config.id, guest)).await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<'a, A: 'a, B: 'a, C, F: Future>(_: impl FnOnce(&'a A, &'a B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    use crate::egress::test_server::KeepAliveServer;
    use crate::registry::RuntimeOptions;

    /// A runtime without a schedule (the test runs the scheduler's checks
    /// itself) and an `http` connector checked every `interval`.
    async fn http_connector(server: &KeepAliveServer, interval: &str) -> (Runtime, Arc<Entry>) {
        let runtime = Runtime::new(RuntimeOptions {
            schedule: false,
            cache_dir: None,
            ..RuntimeOptions::default()
        })
        .expect("a runtime");
        let config = sandport_config::parse_entry(
            &format!(
                "{{id: c, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: {interval}, path: /}}}}",
                server.port
            ),
            std::path::Path::new("."),
            sandport_builtins::catalog(),
        )
        .expect("a valid entry");
        runtime.register(config).await.expect("registered");
        let entry = runtime.entry("c").expect("the entry");
        (runtime, entry)
    }

    #[tokio::test]
    async fn a_scheduled_check_far_from_the_next_holds_no_connection_after_it() {
        let server = KeepAliveServer::start().await;
        let (runtime, entry) = http_connector(&server, "30s").await;

        // A live check (an API's) keeps its connection for the next one.
        run_check(&runtime.inner, &entry, None).await;
        assert_eq!(entry.health().status, HealthStatus::Healthy);
        assert!(entry.egress.holds_client());
        assert_eq!(server.closed(), 0);

        // A scheduled one, 30 s from the next, lets it go.
        run_check(&runtime.inner, &entry, Some(Instant::now())).await;
        assert_eq!(entry.health().status, HealthStatus::Healthy);
        assert!(!entry.egress.holds_client());
        server.wait_closed(1).await;
        assert_eq!(server.accepted(), 1, "the scheduled check reused it first");
        runtime.shutdown().await;
    }

    /// The resident pages of the connector's fiber stack.
    async fn stack_pages(entry: &Entry) -> Option<usize> {
        entry
            .instance
            .lock()
            .await
            .as_ref()
            .and_then(Guest::stack_resident_pages)
    }

    #[tokio::test]
    async fn a_scheduled_check_far_from_the_next_gives_its_stack_pages_back() {
        let server = KeepAliveServer::start().await;
        let (runtime, entry) = http_connector(&server, "30s").await;
        run_check(&runtime.inner, &entry, None).await;
        assert!(
            stack_pages(&entry).await.is_some_and(|pages| pages > 0),
            "a live check leaves its stack pages for the next call"
        );
        run_check(&runtime.inner, &entry, Some(Instant::now())).await;
        assert_eq!(entry.health().status, HealthStatus::Healthy);
        assert_eq!(stack_pages(&entry).await, Some(0));
        runtime.shutdown().await;
    }

    #[tokio::test]
    async fn a_scheduled_check_close_to_the_next_keeps_its_stack_pages() {
        let server = KeepAliveServer::start().await;
        let (runtime, entry) = http_connector(&server, "5s").await;
        run_check(&runtime.inner, &entry, Some(Instant::now())).await;
        assert!(stack_pages(&entry).await.is_some_and(|pages| pages > 0));
        runtime.shutdown().await;
    }

    #[tokio::test]
    async fn a_scheduled_check_close_to_the_next_keeps_its_connection() {
        let server = KeepAliveServer::start().await;
        let (runtime, entry) = http_connector(&server, "5s").await;
        run_check(&runtime.inner, &entry, Some(Instant::now())).await;
        run_check(&runtime.inner, &entry, Some(Instant::now())).await;
        assert_eq!(entry.health().status, HealthStatus::Healthy);
        assert!(entry.egress.holds_client());
        assert_eq!((server.accepted(), server.closed()), (1, 0));
        runtime.shutdown().await;
    }

    #[test]
    fn a_checks_future_leaves_the_rare_restart_boxed() {
        // Every scheduled connector's task holds one, and check_all moves
        // one per connector: 8.4 KB with the restart inline, 2.8 KB without.
        let size = future_size(run_check);
        assert!(size <= 4096, "run_check's future takes {size} bytes");
    }
}
