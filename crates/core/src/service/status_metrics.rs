//! The history's and the alerts' counters as Prometheus metrics, read from
//! their own counters at each scrape.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::Service;

/// The collector of one service's history and alerts.
#[derive(Debug)]
pub struct StatusCollector {
    service: Weak<Service>,
}

impl Service {
    pub fn status_collector(self: &Arc<Self>) -> StatusCollector {
        StatusCollector {
            service: Arc::downgrade(self),
        }
    }
}

fn one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, u64>(&value, None),
        _ => metric.encode_gauge(&value),
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(service) = self.service.upgrade() else {
            return Ok(());
        };
        use MetricType::{Counter, Gauge};
        let history = service.history().ok();
        one(
            &mut encoder,
            "sandport_history_available",
            "1 when the check history is open and recording",
            Gauge,
            u64::from(history.is_some()),
        )?;
        if let Some(history) = history {
            let sandport_history::HistoryStats {
                queued,
                dropped,
                written,
                write_errors,
                last_error,
                file_bytes,
            } = history.stats();
            for (name, help, kind, value) in [
                (
                    "sandport_history_points_written",
                    "Checks committed to the history",
                    Counter,
                    written,
                ),
                (
                    "sandport_history_points_dropped",
                    "Checks the history dropped (queue full while writes failed)",
                    Counter,
                    dropped,
                ),
                (
                    "sandport_history_write_errors",
                    "Batches whose commit failed (each is retried)",
                    Counter,
                    write_errors,
                ),
                (
                    "sandport_history_queued",
                    "Checks recorded but not committed yet",
                    Gauge,
                    queued,
                ),
                (
                    "sandport_history_file_bytes",
                    "Bytes of the history file and its write-ahead log",
                    Gauge,
                    file_bytes,
                ),
                (
                    "sandport_history_last_write_ok",
                    "1 unless the last write of the history failed",
                    Gauge,
                    u64::from(last_error.is_none()),
                ),
            ] {
                one(&mut encoder, name, help, kind, value)?;
            }
        }
        if let Some(alerts) = service.alerts() {
            let sandport_alerts::AlertStats {
                pending,
                sent,
                retries,
                failed,
                dropped,
                open_incidents,
            } = alerts.stats();
            for (name, help, kind, value) in [
                (
                    "sandport_alerts_sent",
                    "Alert messages a provider accepted",
                    Counter,
                    sent,
                ),
                (
                    "sandport_alerts_retries",
                    "Alert deliveries that failed and were scheduled again",
                    Counter,
                    retries,
                ),
                (
                    "sandport_alerts_failed",
                    "Alert messages given up (refused, or undeliverable for 24 hours)",
                    Counter,
                    failed,
                ),
                (
                    "sandport_alerts_dropped",
                    "Status changes alerting dropped (its queue was full)",
                    Counter,
                    dropped,
                ),
                (
                    "sandport_alerts_pending",
                    "Alert messages in the outbox, not delivered yet",
                    Gauge,
                    pending,
                ),
                (
                    "sandport_alerts_open_incidents",
                    "Incidents open now, over all routes",
                    Gauge,
                    open_incidents,
                ),
            ] {
                one(&mut encoder, name, help, kind, value)?;
            }
        }
        Ok(())
    }
}
