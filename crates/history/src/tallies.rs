//! Uptime as counts that add up: what one node recorded of a connector,
//! in a form that merges with what other nodes recorded of it.
//!
//! [`Uptime`] holds percentages, which do not add: a connector checked by
//! two nodes in one day (its owner changed) has the day's uptime of the
//! checks of both. [`Tallies`] keeps the passing and total checks of each
//! window and each day instead; [`Tallies::merge`] adds another node's,
//! and [`Tallies::uptime`] and [`Tallies::daily`] give the figures.

use crate::types::{Uptime, percent};

/// Passing and total checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passed {
    pub passing: u64,
    pub total: u64,
}

impl Passed {
    fn add(&mut self, other: Passed) {
        self.passing = self.passing.saturating_add(other.passing);
        self.total = self.total.saturating_add(other.total);
    }

    /// Percent passing; `None` without checks.
    pub fn percent(self) -> Option<f64> {
        percent(self.passing, self.total)
    }
}

/// One connector's checks over the windows of [`Uptime`] and per UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tallies {
    /// The `day` window of [`Uptime`] (the current hour and the 23 before).
    pub day: Passed,
    /// The `week` window (the current UTC day and the 6 before).
    pub week: Passed,
    /// The `month` window (the current UTC day and the 29 before).
    pub month: Passed,
    /// Per UTC day, oldest first, ending with the day the tallies were
    /// taken in.
    pub daily: Vec<Passed>,
}

impl Tallies {
    /// Adds another node's tallies of the same connector, taken at the same
    /// time. Daily lists of different lengths are aligned on their last
    /// day (today).
    pub fn merge(&mut self, other: &Tallies) {
        self.day.add(other.day);
        self.week.add(other.week);
        self.month.add(other.month);
        if other.daily.len() > self.daily.len() {
            let missing = other.daily.len() - self.daily.len();
            self.daily
                .splice(0..0, std::iter::repeat_n(Passed::default(), missing));
        }
        let offset = self.daily.len() - other.daily.len();
        for (mine, theirs) in self.daily[offset..].iter_mut().zip(&other.daily) {
            mine.add(*theirs);
        }
    }

    /// The uptime figures (no status or since: tallies do not hold them).
    pub fn uptime(&self) -> Uptime {
        Uptime {
            day: self.day.percent(),
            week: self.week.percent(),
            month: self.month.percent(),
            since: None,
            status: None,
        }
    }

    /// Percent passing per day, oldest first; `None` for a day without
    /// checks.
    pub fn daily(&self) -> Vec<Option<f64>> {
        self.daily.iter().map(|d| d.percent()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(passing: u64, total: u64) -> Passed {
        Passed { passing, total }
    }

    #[test]
    fn two_nodes_counts_add_before_they_become_percentages() {
        // The old owner saw 1 of 4 pass, the new one 10 of 10: 11 of 14,
        // not the mean of 25 % and 100 %.
        let mut a = Tallies {
            day: p(1, 4),
            week: p(1, 4),
            month: p(1, 4),
            daily: vec![p(0, 0), p(1, 4)],
        };
        let b = Tallies {
            day: p(10, 10),
            week: p(20, 20),
            month: p(20, 20),
            daily: vec![p(10, 10), p(10, 10)],
        };
        a.merge(&b);
        let uptime = a.uptime();
        assert_eq!(uptime.day, Some(11.0 * 100.0 / 14.0));
        assert_eq!(uptime.week, Some(21.0 * 100.0 / 24.0));
        assert_eq!(a.daily(), vec![Some(100.0), Some(11.0 * 100.0 / 14.0)]);
    }

    #[test]
    fn daily_lists_of_different_lengths_line_up_on_today() {
        let mut short = Tallies {
            daily: vec![p(1, 1)],
            ..Tallies::default()
        };
        let long = Tallies {
            daily: vec![p(0, 2), p(0, 0), p(0, 1)],
            ..Tallies::default()
        };
        short.merge(&long);
        assert_eq!(short.daily, vec![p(0, 2), p(0, 0), p(1, 2)]);
        let mut empty = Tallies::default();
        empty.merge(&Tallies::default());
        assert_eq!(empty.uptime().day, None, "no checks: no figure");
        assert!(empty.daily().is_empty());
    }
}
