//! Quarantine for guests that keep running past their deadline.
//!
//! Each overrun burns a full timeout of CPU. After [`Quarantine::AFTER`]
//! overruns in a row, the connector is not called for a backoff that doubles
//! with each further overrun (1s, 2s, 4s ... capped at 5 min); its status
//! says so. The first check after a backoff is a probe: if it overruns
//! again the backoff grows, if it finishes in time (healthy or not) the
//! quarantine ends.

use std::time::Duration;

use tokio::time::Instant;

use crate::health::FailureKind;

#[derive(Debug, Default)]
pub struct Quarantine {
    overruns: u32,
    until: Option<Instant>,
}

impl Quarantine {
    /// Overruns in a row before checks are skipped.
    pub const AFTER: u32 = 3;
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(300);

    /// Whether checks are skipped at `now`.
    pub fn blocks(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// Folds in a finished check; returns the backoff if it starts one.
    pub fn observe(
        &mut self,
        failure: Option<&FailureKind>,
        now: Instant,
    ) -> Option<(Duration, u32)> {
        if failure != Some(&FailureKind::Deadline) {
            self.overruns = 0;
            self.until = None;
            return None;
        }
        self.overruns += 1;
        if self.overruns < Self::AFTER {
            return None;
        }
        let doublings = (self.overruns - Self::AFTER).min(16);
        let backoff = Self::FIRST
            .saturating_mul(1 << doublings)
            .min(Self::LONGEST);
        self.until = Some(now + backoff);
        Some((backoff, self.overruns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_overruns_start_a_backoff_that_doubles_and_is_capped() {
        let mut q = Quarantine::default();
        let now = Instant::now();
        let deadline = Some(&FailureKind::Deadline);
        assert_eq!(q.observe(deadline, now), None);
        assert_eq!(q.observe(deadline, now), None);
        assert_eq!(q.observe(deadline, now), Some((Duration::from_secs(1), 3)));
        assert!(q.blocks(now));
        assert!(!q.blocks(now + Duration::from_secs(1)));
        assert_eq!(q.observe(deadline, now), Some((Duration::from_secs(2), 4)));
        assert_eq!(q.observe(deadline, now), Some((Duration::from_secs(4), 5)));
        for _ in 0..20 {
            q.observe(deadline, now);
        }
        assert_eq!(
            q.observe(deadline, now).map(|(d, _)| d),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn a_check_that_ends_in_time_lifts_the_quarantine() {
        let mut q = Quarantine::default();
        let now = Instant::now();
        for _ in 0..3 {
            q.observe(Some(&FailureKind::Deadline), now);
        }
        assert!(q.blocks(now));
        assert_eq!(q.observe(Some(&FailureKind::Trap), now), None);
        assert!(!q.blocks(now));
        assert_eq!(
            q.observe(Some(&FailureKind::Deadline), now),
            None,
            "the count starts over"
        );
    }
}
