//! The in-memory summary the writer keeps so that uptime and the daily bars
//! of every connector are answered without touching the file: per
//! connector, passing/total checks for its last 25 hours and 92 UTC days,
//! its reported status and since when.
//!
//! About 1 KB per connector (10 MB for 10,000). It is rebuilt from the
//! `hourly`, `daily` and `connector` tables when the file is opened and
//! updated after each commit, so it never shows a check that is not in the
//! file.

use std::collections::HashMap;
use std::sync::Arc;

use crate::tallies::{Passed, Tallies};
use crate::types::{Status, Uptime, day_of, from_ms, hour_of};

/// Hours kept: the 24 of the `day` window plus the one before, so a window
/// that starts late in the oldest hour is still whole.
pub(crate) const HOURS: usize = 25;
/// Days kept: a 90-day bar, today and one spare.
pub(crate) const DAYS: usize = 92;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub passing: u32,
    pub total: u32,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.passing = self.passing.saturating_add(other.passing);
        self.total = self.total.saturating_add(other.total);
    }

    fn counts(self) -> Passed {
        Passed {
            passing: u64::from(self.passing),
            total: u64::from(self.total),
        }
    }
}

/// The tallies of the `N` most recent periods (hours or days) up to the
/// newest one seen; older periods fall off as newer ones arrive.
#[derive(Debug, Clone)]
struct Ring<const N: usize> {
    newest: i64,
    slots: [Tally; N],
}

impl<const N: usize> Ring<N> {
    fn new() -> Self {
        Ring {
            newest: i64::MIN,
            slots: [Tally::default(); N],
        }
    }

    fn slot(period: i64) -> usize {
        period.rem_euclid(N as i64) as usize
    }

    fn oldest(&self) -> i64 {
        self.newest.saturating_sub(N as i64 - 1)
    }

    fn add(&mut self, period: i64, tally: Tally) {
        if self.newest == i64::MIN || period > self.newest {
            let clear_from = if self.newest == i64::MIN {
                period.saturating_sub(N as i64 - 1)
            } else {
                (self.newest + 1).max(period.saturating_sub(N as i64 - 1))
            };
            for p in clear_from..=period {
                self.slots[Self::slot(p)] = Tally::default();
            }
            self.newest = period;
        }
        if period < self.oldest() {
            return;
        }
        self.slots[Self::slot(period)].add(tally);
    }

    fn get(&self, period: i64) -> Tally {
        if self.newest == i64::MIN || period > self.newest || period < self.oldest() {
            return Tally::default();
        }
        self.slots[Self::slot(period)]
    }

    /// The sum over `from..=to`, counting only the periods still held.
    fn sum(&self, from: i64, to: i64) -> Tally {
        let mut t = Tally::default();
        if self.newest == i64::MIN {
            return t;
        }
        for p in from.max(self.oldest())..=to.min(self.newest) {
            t.add(self.slots[Self::slot(p)]);
        }
        t
    }
}

#[derive(Debug, Clone)]
struct Connector {
    hours: Ring<HOURS>,
    days: Ring<DAYS>,
    status: Option<Status>,
    since_ms: Option<i64>,
}

impl Connector {
    fn new() -> Self {
        Connector {
            hours: Ring::new(),
            days: Ring::new(),
            status: None,
            since_ms: None,
        }
    }

    fn uptime(&self, now_ms: i64) -> Uptime {
        Uptime {
            since: self.since_ms.map(from_ms),
            status: self.status,
            ..self.tallies(0, now_ms).uptime()
        }
    }

    fn tallies(&self, days: u32, now_ms: i64) -> Tallies {
        let hour = hour_of(now_ms);
        let today = day_of(now_ms);
        Tallies {
            day: self.hours.sum(hour - 23, hour).counts(),
            week: self.days.sum(today - 6, today).counts(),
            month: self.days.sum(today - 29, today).counts(),
            daily: (0..i64::from(days))
                .rev()
                .map(|back| self.days.get(today - back).counts())
                .collect(),
        }
    }

    fn daily(&self, days: u32, now_ms: i64) -> Vec<Option<f64>> {
        self.tallies(days, now_ms).daily()
    }

    /// Whether the connector had a check in the periods the summary holds
    /// relative to `now`; a connector gone for longer drops out of the
    /// `*_all` answers.
    fn recent(&self, now_ms: i64) -> bool {
        self.days.newest != i64::MIN && self.days.newest > day_of(now_ms) - DAYS as i64
    }
}

#[derive(Debug, Default)]
pub(crate) struct Summary {
    connectors: HashMap<Arc<str>, Connector>,
}

impl Summary {
    fn entry(&mut self, name: &Arc<str>) -> &mut Connector {
        self.connectors
            .entry(name.clone())
            .or_insert_with(Connector::new)
    }

    /// One committed check.
    pub fn add_check(&mut self, name: &Arc<str>, at_ms: i64, passing: bool) {
        let t = Tally {
            passing: u32::from(passing),
            total: 1,
        };
        let c = self.entry(name);
        c.hours.add(hour_of(at_ms), t);
        c.days.add(day_of(at_ms), t);
    }

    /// Tallies read back from the file when it is opened.
    pub fn add_hour(&mut self, name: &Arc<str>, hour: i64, tally: Tally) {
        self.entry(name).hours.add(hour, tally);
    }

    pub fn add_day(&mut self, name: &Arc<str>, day: i64, tally: Tally) {
        self.entry(name).days.add(day, tally);
    }

    pub fn set_status(&mut self, name: &Arc<str>, status: Status, since_ms: i64) {
        let c = self.entry(name);
        c.status = Some(status);
        c.since_ms = Some(since_ms);
    }

    pub fn uptime(&self, name: &str, now_ms: i64) -> Uptime {
        match self.connectors.get(name) {
            Some(c) => c.uptime(now_ms),
            None => Uptime {
                day: None,
                week: None,
                month: None,
                since: None,
                status: None,
            },
        }
    }

    pub fn uptime_all(&self, now_ms: i64) -> HashMap<String, Uptime> {
        let mut out = HashMap::with_capacity(self.connectors.len());
        for (name, c) in &self.connectors {
            if c.recent(now_ms) {
                out.insert(name.to_string(), c.uptime(now_ms));
            }
        }
        out
    }

    pub fn tallies(&self, name: &str, days: u32, now_ms: i64) -> Tallies {
        match self.connectors.get(name) {
            Some(c) => c.tallies(days, now_ms),
            None => Tallies {
                daily: vec![Passed::default(); days as usize],
                ..Tallies::default()
            },
        }
    }

    pub fn tallies_all(&self, days: u32, now_ms: i64) -> HashMap<String, Tallies> {
        self.connectors
            .iter()
            .filter(|(_, c)| c.recent(now_ms))
            .map(|(name, c)| (name.to_string(), c.tallies(days, now_ms)))
            .collect()
    }

    pub fn daily(&self, name: &str, days: u32, now_ms: i64) -> Vec<Option<f64>> {
        match self.connectors.get(name) {
            Some(c) => c.daily(days, now_ms),
            None => vec![None; days as usize],
        }
    }

    pub fn daily_all(&self, days: u32, now_ms: i64) -> HashMap<String, Vec<Option<f64>>> {
        let mut out = HashMap::with_capacity(self.connectors.len());
        for (name, c) in &self.connectors {
            if c.recent(now_ms) {
                out.insert(name.to_string(), c.daily(days, now_ms));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(passing: u32, total: u32) -> Tally {
        Tally { passing, total }
    }

    #[test]
    fn a_ring_keeps_the_newest_periods_only() {
        let mut r: Ring<3> = Ring::new();
        r.add(10, t(1, 1));
        r.add(8, t(0, 1));
        r.add(7, t(1, 1)); // older than the window: ignored
        assert_eq!(r.sum(0, 100), t(1, 2));
        r.add(12, t(1, 2)); // 10..=12 now; 8 falls off
        assert_eq!(r.get(8), Tally::default());
        assert_eq!(r.get(10), t(1, 1));
        assert_eq!(r.sum(10, 12), t(2, 3));
        r.add(100, t(1, 1)); // a jump clears everything
        assert_eq!(r.sum(0, 99), Tally::default());
        assert_eq!(r.get(100), t(1, 1));
    }

    #[test]
    fn a_ring_slot_is_not_reused_with_stale_counts() {
        let mut r: Ring<3> = Ring::new();
        r.add(0, t(5, 5));
        r.add(3, t(1, 1)); // same slot as 0
        assert_eq!(r.get(3), t(1, 1));
        assert_eq!(r.get(0), Tally::default());
    }
}
