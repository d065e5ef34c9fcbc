//! The simulated day: the size a connector's history takes per day once
//! its one-off rows (id, first message) are amortised and its hours rolled
//! up, which a run of a minute or two cannot show.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use sandport_history::{History, Point, Status};

use super::{SECONDS_PER_DAY, file_bytes, open};
use crate::report::{human, thousands};

/// Connectors in the simulated day: enough for the B-trees to be several
/// levels deep, few enough to write a day of points in seconds.
const DAY_CONNECTORS: usize = 100;

/// A simulated day's store.
pub struct Day {
    pub per_connector: f64,
}

/// Feeds a fresh store yesterday's checks (UTC) of [`DAY_CONNECTORS`]
/// connectors at `interval`, all healthy with loopback-like latencies, rolls
/// up every hour, closes it and divides the file by the connectors.
pub async fn simulated_day(dir: &Path, interval: Duration) -> anyhow::Result<Day> {
    let history = open(&dir.join("day.db")).await?;
    let per_connector = (SECONDS_PER_DAY / interval.as_secs_f64()).floor() as u64;
    let started = Instant::now();
    let feeding = history.clone();
    let (written, dropped, bytes) = tokio::task::spawn_blocking(move || {
        feed_day(&feeding, interval, per_connector)?;
        let stats = feeding.stats();
        feeding.close();
        anyhow::Ok((stats.written, stats.dropped, file_bytes(feeding.path())))
    })
    .await
    .context("the simulated day's task failed")??;
    let per_day = bytes as f64 / DAY_CONNECTORS as f64;
    println!(
        "simulated day: {DAY_CONNECTORS} connectors × {} checks (yesterday, UTC, every {}, healthy, 150-650 µs) recorded, rolled up and closed in {}: {} written, {} dropped; file {} bytes / {DAY_CONNECTORS} connectors = {} bytes ({:.1} KiB) per connector per day, {:.1} bytes per point",
        thousands(per_connector),
        human(interval),
        human(started.elapsed()),
        thousands(written),
        thousands(dropped),
        thousands(bytes),
        thousands(per_day.round() as u64),
        per_day / 1024.0,
        bytes as f64 / written.max(1) as f64
    );
    Ok(Day {
        per_connector: per_day,
    })
}

fn feed_day(history: &History, interval: Duration, per_connector: u64) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let today = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs()
        / 86_400;
    let yesterday = SystemTime::UNIX_EPOCH + Duration::from_secs(today.saturating_sub(1) * 86_400);
    let ids: Vec<Arc<str>> = (0..DAY_CONNECTORS)
        .map(|i| Arc::from(format!("c{i:05}")))
        .collect();
    // A small linear congruential generator: varied latencies, the same
    // every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for k in 0..per_connector {
        for (i, id) in ids.iter().enumerate() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let offset = interval.mul_f64(i as f64 / DAY_CONNECTORS as f64);
            history.record(Point {
                connector: Arc::clone(id),
                at: yesterday + interval * u32::try_from(k)? + offset,
                status: Status::Healthy,
                reported: Status::Healthy,
                latency: Duration::from_micros(150 + (seed >> 33) % 500),
                failure: None,
                message: (k == 0).then(|| "Healthy.".to_string()),
            });
        }
        // Stay well inside the queue, which drops the oldest when full.
        if (k + 1) % 500 == 0 {
            history.flush().context("flush the simulated day")?;
        }
    }
    history.flush().context("flush the simulated day")?;
    history
        .maintain_now_for_test(now)
        .context("roll up the simulated day")?;
    Ok(())
}
