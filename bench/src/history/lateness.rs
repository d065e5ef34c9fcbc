//! The schedule's lateness, read from the runtime's metrics: the
//! `sandport_schedule_lateness_seconds` histogram is only written out with
//! the whole exposition, so it is parsed back from that text.

use std::sync::Arc;
use std::time::Duration;

/// The `sandport_schedule_lateness_seconds` histogram as the runtime's
/// metrics write it.
pub struct Lateness {
    sum: f64,
    pub count: f64,
    /// Upper bound in seconds and cumulative count, in order.
    buckets: Vec<(f64, f64)>,
}

impl Lateness {
    const NAME: &'static str = "sandport_schedule_lateness_seconds";

    /// Writes the whole exposition (the histogram has no other way out),
    /// off the runtime's workers so that the checks do not wait behind it.
    pub async fn read(metrics: &Arc<sandport_server::metrics::Metrics>) -> Option<Lateness> {
        let metrics = metrics.clone();
        let (_, text) = tokio::task::spawn_blocking(move || metrics.render(false))
            .await
            .ok()?
            .ok()?;
        Lateness::parse(&text)
    }

    fn parse(text: &str) -> Option<Lateness> {
        let mut sum = None;
        let mut count = None;
        let mut buckets = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(Lateness::NAME) else {
                continue;
            };
            let Some((key, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if key == "_sum" {
                sum = Some(value);
            } else if key == "_count" {
                count = Some(value);
            } else if let Some(le) = key
                .strip_prefix("_bucket{le=\"")
                .and_then(|k| k.strip_suffix("\"}"))
                .and_then(|le| le.parse::<f64>().ok())
            {
                buckets.push((le, value));
            }
        }
        Some(Lateness {
            sum: sum?,
            count: count?,
            buckets,
        })
    }

    /// What was observed after `earlier`.
    pub fn since(&self, earlier: &Lateness) -> Lateness {
        Lateness {
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(&(le, b), &(_, a))| (le, b - a))
                .collect(),
        }
    }

    pub fn mean(&self) -> Duration {
        Duration::try_from_secs_f64(self.sum / self.count.max(1.0)).unwrap_or_default()
    }

    /// The share of checks that started within `seconds` of their time
    /// (`seconds` one of the bucket bounds).
    pub fn share_within(&self, seconds: f64) -> f64 {
        self.buckets
            .iter()
            .find(|(le, _)| (le - seconds).abs() < 1e-9)
            .map_or(0.0, |(_, n)| n / self.count.max(1.0))
    }

    /// The smallest bucket bound that `q` of the checks fall within.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        self.buckets
            .iter()
            .find(|(le, n)| le.is_finite() && *n >= q * self.count)
            .and_then(|(le, _)| Duration::try_from_secs_f64(*le).ok())
    }
}
