//! Whether memory levelled off: RSS sampled through the run, the lowest of
//! its last third against the lowest of the third before it. Floors rather
//! than single samples or peaks, because hostile guests' allocations (up to
//! their memory limit each) and large responses come and go between two
//! samples, and how many of them overlap at a sample is chance; what a leak
//! adds stays, so it raises the floor.

use std::time::Duration;

#[derive(Default)]
pub struct Samples(Vec<(Duration, u64)>);

pub struct Growth {
    pub from: u64,
    pub to: u64,
    pub percent: f64,
}

impl Samples {
    pub fn push(&mut self, at: Duration, rss_kib: u64) {
        self.0.push((at, rss_kib));
    }

    /// `None` until there are samples in both thirds.
    pub fn late_growth(&self) -> Option<Growth> {
        let end = self.0.last()?.0;
        let third = end / 3;
        let floor = |from: Duration, to: Duration| {
            self.0
                .iter()
                .filter(|(at, _)| *at >= from && *at < to)
                .map(|(_, rss)| *rss)
                .min()
        };
        let from = floor(third, third * 2)?;
        let to = floor(third * 2, end + Duration::from_nanos(1))?;
        let percent = (to as f64 - from as f64) * 100.0 / from.max(1) as f64;
        Some(Growth { from, to, percent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(points: &[u64]) -> Option<f64> {
        let mut samples = Samples::default();
        for (i, rss) in points.iter().enumerate() {
            samples.push(Duration::from_secs(i as u64), *rss);
        }
        samples.late_growth().map(|g| g.percent)
    }

    #[test]
    fn a_steady_climb_shows_as_growth() {
        let climbing: Vec<u64> = (0..30).map(|i| 100_000 + i * 2_000).collect();
        assert!(run(&climbing).is_some_and(|p| p > 5.0));
    }

    #[test]
    fn spikes_that_come_and_go_are_not_growth() {
        let spiky: Vec<u64> = (0..30)
            .map(|i| match i % 7 {
                3 => 180_000,
                5 => 400_000,
                _ => 100_000,
            })
            .collect();
        assert!(run(&spiky).is_some_and(|p| p.abs() < 1.0));
    }

    #[test]
    fn a_run_too_short_is_not_judged() {
        assert_eq!(run(&[100]), None);
    }
}
