//! The schedule: each enabled connector checked on its own interval, at a
//! phase of that interval derived from its id, so that a node's checks are
//! spread evenly over the interval (as Prometheus spreads its scrapes)
//! rather than fired in a burst; the first check comes within 2 s of
//! registering, whatever the interval. Only connectors that run here
//! (owned by this node, see `ownership`) have a schedule.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::check::run_check;
use super::{Entry, Inner, Runtime, lock};

/// Scheduled checks at most this far apart keep warm between them: the
/// connector's pooled connection, and its instance's stack pages. Further
/// apart, holding them costs more than making them anew: a connection holds
/// about 30 KiB of buffers in the host (and a socket on both sides) for the
/// whole interval to save one TCP (or TLS) handshake per check, and many
/// servers close an idle keep-alive connection within 5 to 75 s anyway; the
/// stack's 16 KiB save a few page faults.
pub(super) const KEEP_WARM_UP_TO: Duration = Duration::from_secs(10);

/// Whether a connector checked every `interval` keeps warm between checks.
pub(super) fn keeps_warm(interval: Duration) -> bool {
    interval <= KEEP_WARM_UP_TO
}

/// Whether a connector runs on this node, and the task of its schedule.
/// One lock for both, so that a schedule is started only while the
/// connector runs here and stopped with the flag (see `ownership`).
#[derive(Default)]
pub(super) struct Duty {
    /// Owned by this node and admitted within its budgets: it holds the
    /// connector's instance and checks it on schedule.
    runs_here: bool,
    task: Option<AbortHandle>,
}

impl Runtime {
    /// Starts the connector's schedule if it runs here, should be checked
    /// on schedule, and has none yet.
    pub(super) fn start_schedule(&self, entry: &Arc<Entry>) {
        let mut duty = lock(&entry.duty);
        if duty.runs_here
            && duty.task.is_none()
            && self.inner.options.schedule
            && entry.config.enabled
            && entry.config.health_check.enabled
        {
            let handle = spawn_schedule(Arc::downgrade(&self.inner), Arc::downgrade(entry));
            duty.task = Some(handle);
        }
    }
}

impl Entry {
    /// Whether this node holds the connector's instance and checks it on
    /// schedule.
    pub(super) fn runs_here(&self) -> bool {
        lock(&self.duty).runs_here
    }

    /// Marks the connector as run here; [`Runtime::start_schedule`] then
    /// starts its schedule.
    pub(super) fn set_runs_here(&self) {
        lock(&self.duty).runs_here = true;
    }

    /// Stops the schedule, and with it any check the schedule has in
    /// flight; the connector no longer runs here.
    pub(super) fn stop_schedule(&self) {
        let mut duty = lock(&self.duty);
        duty.runs_here = false;
        if let Some(task) = duty.task.take() {
            task.abort();
        }
    }
}

/// Checks `entry` every interval until it is removed.
fn spawn_schedule(inner: Weak<Inner>, entry: Weak<Entry>) -> AbortHandle {
    let Some(first) = entry.upgrade() else {
        return tokio::spawn(async {}).abort_handle();
    };
    let timing = Timing::of(&first.config.id, first.config.health_check.interval);
    drop(first);
    tokio::spawn(run_schedule(inner, entry, timing)).abort_handle()
}

/// When a connector's checks come, counted from when its schedule starts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timing {
    /// The first check: within 2 s, so that a new connector has a status
    /// soon, spread by id so that thousands loaded at once do not all fire
    /// in the same instant.
    first: Duration,
    /// The second; every later one an interval after the one before.
    second: Duration,
    interval: Duration,
}

impl Timing {
    fn of(id: &str, interval: Duration) -> Timing {
        let fraction = fraction_of(id);
        let first = interval.min(Duration::from_secs(2)).mul_f64(fraction);
        // The connector's own phase of the interval. With every check in a
        // burst, the host's heap had to hold the burst's connections and
        // buffers at once and kept them (after a check far from the next,
        // about 4 KiB a connector at 10,000); spread, checks overlap little.
        let phase = interval.mul_f64(fraction);
        // At least half an interval after the first, at most one and a half.
        let second = if phase >= first + interval / 2 {
            phase
        } else {
            phase + interval
        };
        Timing {
            first,
            second,
            interval,
        }
    }
}

/// The task of one connector's schedule: every scheduled connector holds
/// one for as long as it lives.
async fn run_schedule(inner: Weak<Inner>, entry: Weak<Entry>, timing: Timing) {
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start + timing.second, timing.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = Some(start + timing.first);
    loop {
        let scheduled = match first.take() {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                at
            }
            None => ticker.tick().await,
        };
        let (Some(inner), Some(entry)) = (inner.upgrade(), entry.upgrade()) else {
            break;
        };
        // Boxed: the check's future (about 2.8 KB) held inline would make
        // every connector's task that large between checks too.
        Box::pin(run_check(&inner, &entry, Some(scheduled))).await;
    }
}

/// A stable number in [0, 1) from a string: FNV-1a, then MurmurHash3's
/// finaliser, without which ids that differ in their last characters
/// (`web-01`, `web-02`) differ only in the hash's low bits and would land
/// in a few clusters.
fn fraction_of(text: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedules_task_holds_no_check_between_checks() {
        // Every scheduled connector's task holds one for as long as it
        // lives: about 3 KB with the check's future inline.
        let task = run_schedule(
            Weak::new(),
            Weak::new(),
            Timing::of("c", Duration::from_secs(1)),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 512, "a schedule's future takes {size} bytes");
    }

    fn timings(interval: Duration) -> Vec<Timing> {
        (0..1000)
            .map(|i| Timing::of(&format!("c{i:05}"), interval))
            .collect()
    }

    #[test]
    fn first_checks_come_within_two_seconds_whatever_the_interval() {
        for interval in [1, 30, 300, 3600].map(Duration::from_secs) {
            for t in timings(interval) {
                assert!(t.first < Duration::from_secs(2).min(interval), "{t:?}");
            }
        }
    }

    #[test]
    fn the_second_check_is_half_to_one_and_a_half_intervals_after_the_first() {
        for interval in [1, 5, 30, 300].map(Duration::from_secs) {
            for t in timings(interval) {
                let gap = t.second - t.first;
                assert!(gap >= interval / 2 && gap < interval * 3 / 2, "{t:?}");
                assert_eq!(t.interval, interval);
            }
        }
    }

    #[test]
    fn later_checks_are_spread_over_the_whole_interval() {
        // Where in a 30 s interval each of 1,000 connectors' checks fall,
        // in 30 one-second buckets: none may hold more than twice its
        // share (the ids' hash is not perfectly even).
        let interval = Duration::from_secs(30);
        let mut buckets = [0usize; 30];
        for t in timings(interval) {
            let at = t.second.as_secs_f64() % interval.as_secs_f64();
            buckets[at as usize % 30] += 1;
        }
        let share = 1000 / 30;
        assert!(
            buckets.iter().all(|&n| n > 0 && n <= 2 * share),
            "{buckets:?}"
        );
    }

    #[test]
    fn only_checks_far_apart_let_their_connections_go() {
        assert!(keeps_warm(Duration::from_secs(1)));
        assert!(keeps_warm(KEEP_WARM_UP_TO));
        assert!(!keeps_warm(KEEP_WARM_UP_TO + Duration::from_millis(1)));
        assert!(!keeps_warm(Duration::from_secs(30)));
    }
}
