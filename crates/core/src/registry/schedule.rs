//! The schedule: each enabled connector checked on its own interval,
//! the first check spread by its id so that a large load does not fire at
//! once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::check::run_check;
use super::{Entry, Inner, Runtime, lock};

impl Runtime {
    pub(super) fn start_schedule(&self, entry: &Arc<Entry>) {
        if self.inner.options.schedule && entry.config.enabled && entry.config.health_check.enabled
        {
            let handle = spawn_schedule(Arc::downgrade(&self.inner), Arc::downgrade(entry));
            *lock(&entry.schedule) = Some(handle);
        }
    }
}

/// Checks `entry` every interval until it is removed. The first check comes
/// after a delay derived from the id, so that many connectors loaded at once
/// do not all fire in the same instant.
fn spawn_schedule(inner: Weak<Inner>, entry: Weak<Entry>) -> AbortHandle {
    let Some(first) = entry.upgrade() else {
        return tokio::spawn(async {}).abort_handle();
    };
    let interval = first.config.health_check.interval;
    let spread = interval.min(Duration::from_secs(2));
    let offset = spread.mul_f64(fraction_of(&first.config.id));
    drop(first);
    tokio::spawn(run_schedule(inner, entry, offset, interval)).abort_handle()
}

/// The task of one connector's schedule: every scheduled connector holds
/// one for as long as it lives.
async fn run_schedule(
    inner: Weak<Inner>,
    entry: Weak<Entry>,
    offset: Duration,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let scheduled = ticker.tick().await;
        let (Some(inner), Some(entry)) = (inner.upgrade(), entry.upgrade()) else {
            break;
        };
        // Boxed: the check's future (about 2.8 KB) held inline would make
        // every connector's task that large between checks too.
        Box::pin(run_check(&inner, &entry, Some(scheduled))).await;
    }
}

/// A stable number in [0, 1) from a string (FNV-1a).
fn fraction_of(text: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
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
            Duration::ZERO,
            Duration::from_secs(1),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 512, "a schedule's future takes {size} bytes");
    }
}
