//! What the runtime counts for `/metrics`, and how it is written out.
//!
//! Counting is a few relaxed atomic adds per check into counters each
//! connector's entry owns ([`ConnectorCounters`]); no label is built and no
//! map is looked up on the check path. Labels are made only when scraped,
//! from the registry itself ([`RuntimeCollector`]), so a removed connector's
//! series go with it and cardinality is bounded by the registry: `id` and
//! `type`, plus a status or failure kind from a fixed list, never a URL or a
//! message.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::health::{CheckOutcome, FailureKind, HealthStatus};

/// Upper bounds of `sandport_check_duration_seconds`: a loopback check
/// takes well under 5 ms, a slow endpoint up to the 10 s default timeout.
pub const CHECK_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of `sandport_schedule_lateness_seconds`: on time is well
/// under a millisecond; a second late means the node is short of CPU or of
/// check permits.
pub const LATENESS_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// A histogram of plain atomics: per-bucket counts (not cumulative), the
/// count and the sum in nanoseconds.
pub struct AtomicHistogram<const N: usize> {
    bounds: &'static [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl<const N: usize> AtomicHistogram<N> {
    pub const fn new(bounds: &'static [f64; N]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(bucket) = self.bounds.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: [(f64, u64); N] =
            std::array::from_fn(|i| (self.bounds[i], self.buckets[i].load(Ordering::Relaxed)));
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count(), &buckets, None)
    }
}

const STATUSES: [HealthStatus; 5] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Unhealthy,
    HealthStatus::Unavailable,
    HealthStatus::Unknown,
];

fn status_index(status: HealthStatus) -> usize {
    match status {
        HealthStatus::Healthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Unhealthy => 2,
        HealthStatus::Unavailable => 3,
        HealthStatus::Unknown => 4,
    }
}

const FAILURES: [FailureKind; 7] = [
    FailureKind::Deadline,
    FailureKind::OutOfMemory,
    FailureKind::Trap,
    FailureKind::GuestError,
    FailureKind::Instantiate,
    FailureKind::EgressDenied,
    FailureKind::Quarantined,
];

fn failure_index(kind: &FailureKind) -> usize {
    match kind {
        FailureKind::Deadline => 0,
        FailureKind::OutOfMemory => 1,
        FailureKind::Trap => 2,
        FailureKind::GuestError => 3,
        FailureKind::Instantiate => 4,
        FailureKind::EgressDenied => 5,
        FailureKind::Quarantined => 6,
    }
}

/// One connector's counts, owned by its registry entry.
pub(crate) struct ConnectorCounters {
    checks: [AtomicU64; STATUSES.len()],
    failures: [AtomicU64; FAILURES.len()],
    duration: AtomicHistogram<{ CHECK_DURATION_BUCKETS.len() }>,
    egress_requests: AtomicU64,
    egress_bytes: AtomicU64,
    /// Linear memory after the last call; 0 while there is no instance.
    memory: AtomicU64,
}

impl Default for ConnectorCounters {
    fn default() -> Self {
        ConnectorCounters {
            checks: Default::default(),
            failures: Default::default(),
            duration: AtomicHistogram::new(&CHECK_DURATION_BUCKETS),
            egress_requests: AtomicU64::new(0),
            egress_bytes: AtomicU64::new(0),
            memory: AtomicU64::new(0),
        }
    }
}

impl ConnectorCounters {
    pub(crate) fn record(&self, outcome: &CheckOutcome) {
        self.checks[status_index(outcome.status)].fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = &outcome.failure {
            self.failures[failure_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
        self.duration.observe(outcome.latency);
    }

    /// What one guest call sent out and read back, and the memory the
    /// instance holds after it (`None`: the instance was dropped).
    pub(crate) fn record_call(&self, requests: u32, bytes: u64, memory: Option<u64>) {
        if requests > 0 {
            self.egress_requests
                .fetch_add(u64::from(requests), Ordering::Relaxed);
            self.egress_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        self.memory.store(memory.unwrap_or(0), Ordering::Relaxed);
    }
}

/// The node's own counts.
pub(crate) struct NodeCounters {
    pub(crate) lateness: AtomicHistogram<{ LATENESS_BUCKETS.len() }>,
}

impl Default for NodeCounters {
    fn default() -> Self {
        NodeCounters {
            lateness: AtomicHistogram::new(&LATENESS_BUCKETS),
        }
    }
}

/// One connector as the collector sees it.
pub(crate) struct ConnectorView<'a> {
    pub id: &'a str,
    pub connector_type: &'a str,
    pub status: HealthStatus,
    pub enabled: bool,
    pub counters: &'a ConnectorCounters,
}

/// What the registry hands the collector at each scrape.
pub(crate) trait Source: Send + Sync {
    fn with_connectors(
        &self,
        f: &mut dyn FnMut(&[ConnectorView<'_>]) -> std::fmt::Result,
    ) -> std::fmt::Result;
    fn node(&self) -> &NodeCounters;
    /// Components loaded from the compiled cache, and compiled.
    fn compile_cache(&self) -> (u64, u64);
}

/// The runtime's metrics, read at each scrape; register it with a
/// `prometheus_client` registry. Holds the runtime weakly: scraping a
/// runtime that is gone yields nothing.
pub struct RuntimeCollector {
    pub(crate) source: Weak<dyn Source>,
}

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn labels<'a>(view: &ConnectorView<'a>) -> Labels<'a, 2> {
    [("id", view.id), ("type", view.connector_type)]
}

fn counter(encoder: &mut MetricEncoder<'_>, value: u64) -> std::fmt::Result {
    encoder.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(source) = self.source.upgrade() else {
            return Ok(());
        };
        source.with_connectors(&mut |views| encode_connectors(&mut encoder, views))?;
        let node = source.node();
        node.lateness.encode(encoder.encode_descriptor(
            "sandport_schedule_lateness_seconds",
            "How long after its scheduled time a check started (waiting for the timer and for a check permit)",
            None,
            MetricType::Histogram,
        )?)?;
        let (hits, misses) = source.compile_cache();
        counter(
            &mut encoder.encode_descriptor(
                "sandport_compile_cache_hits",
                "Components loaded from the compiled-component cache instead of compiled",
                None,
                MetricType::Counter,
            )?,
            hits,
        )?;
        counter(
            &mut encoder.encode_descriptor(
                "sandport_compile_cache_misses",
                "Components compiled because the cache did not hold them",
                None,
                MetricType::Counter,
            )?,
            misses,
        )
    }
}

fn encode_connectors(
    encoder: &mut DescriptorEncoder,
    views: &[ConnectorView<'_>],
) -> std::fmt::Result {
    let mut by_status = [0u64; STATUSES.len()];
    for view in views {
        by_status[status_index(view.status)] += 1;
    }
    let mut family = encoder.encode_descriptor(
        "sandport_connectors",
        "Registered connectors by their last status",
        None,
        MetricType::Gauge,
    )?;
    for (status, count) in STATUSES.iter().zip(by_status) {
        family
            .encode_family(&[("status", status.as_str())])?
            .encode_gauge(&count)?;
    }

    let mut family = encoder.encode_descriptor(
        "sandport_connector_up",
        "1 when the connector's last status is healthy or degraded, else 0 (disabled connectors are left out)",
        None,
        MetricType::Gauge,
    )?;
    for view in views.iter().filter(|v| v.enabled) {
        let up = u64::from(matches!(
            view.status,
            HealthStatus::Healthy | HealthStatus::Degraded
        ));
        family.encode_family(&labels(view))?.encode_gauge(&up)?;
    }

    let mut family = encoder.encode_descriptor(
        "sandport_check_duration_seconds",
        "How long each check took, from its start to its report",
        None,
        MetricType::Histogram,
    )?;
    for view in views {
        view.counters
            .duration
            .encode(family.encode_family(&labels(view))?)?;
    }

    // Statuses and kinds a connector never had are left out: most
    // connectors only ever have one or two.
    let mut family = encoder.encode_descriptor(
        "sandport_checks",
        "Checks run, by the status they reported",
        None,
        MetricType::Counter,
    )?;
    for view in views {
        for (status, count) in STATUSES.iter().zip(&view.counters.checks) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let [id, kind] = labels(view);
                counter(
                    &mut family.encode_family(&[id, kind, ("status", status.as_str())])?,
                    count,
                )?;
            }
        }
    }

    let mut family = encoder.encode_descriptor(
        "sandport_check_failures",
        "Checks that failed for a reason of the sandbox, by kind",
        None,
        MetricType::Counter,
    )?;
    for view in views {
        for (kind, count) in FAILURES.iter().zip(&view.counters.failures) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let [id, ty] = labels(view);
                counter(
                    &mut family.encode_family(&[id, ty, ("kind", kind.as_str())])?,
                    count,
                )?;
            }
        }
    }

    type Read = fn(&ConnectorCounters) -> &AtomicU64;
    let plain: [(&str, &str, MetricType, Read); 3] = [
        (
            "sandport_egress_requests",
            "HTTP requests the connector sent through the host",
            MetricType::Counter,
            |c| &c.egress_requests,
        ),
        (
            "sandport_egress_received_bytes",
            "Response body bytes the host read for the connector",
            MetricType::Counter,
            |c| &c.egress_bytes,
        ),
        (
            "sandport_instance_memory_bytes",
            "Linear memory the connector's instance held after its last call (0: no instance)",
            MetricType::Gauge,
            |c| &c.memory,
        ),
    ];
    for (name, help, metric_type, read) in plain {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for view in views {
            let value = read(view.counters).load(Ordering::Relaxed);
            let labels = labels(view);
            let mut metric = family.encode_family(&labels)?;
            match metric_type {
                MetricType::Counter => counter(&mut metric, value)?,
                _ => metric.encode_gauge(&value)?,
            }
        }
    }
    Ok(())
}
