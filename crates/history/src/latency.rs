//! Latency figures: exact nearest-rank percentiles over one hour's checks,
//! and the small log-scale histogram kept per hour so that several hours
//! can be merged into one bucket without keeping every check.
//!
//! The histogram has exact buckets below 16 µs and then 8 buckets per power
//! of two, so a value read from it (the middle of its bucket) is within
//! 1/16 (about 6 %) of any value in that bucket. Stored, it is a list of
//! LEB128 varint pairs (bucket - previous bucket, count): a typical hour
//! fits in 10-30 bytes.

use std::collections::BTreeMap;

/// p50, p95 and max of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub p50: i64,
    pub p95: i64,
    pub max: i64,
}

/// Exact figures; sorts `latencies`. `None` for an empty set.
pub(crate) fn exact(latencies: &mut [i64]) -> Option<Figures> {
    latencies.sort_unstable();
    Some(Figures {
        p50: nearest_rank(latencies, 50)?,
        p95: nearest_rank(latencies, 95)?,
        max: *latencies.last()?,
    })
}

/// The smallest value with at least `p` % of the set at or below it.
fn nearest_rank(sorted: &[i64], p: u64) -> Option<i64> {
    let rank = rank_of(sorted.len() as u64, p)?;
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// 1-based nearest rank of percentile `p` among `n` values.
fn rank_of(n: u64, p: u64) -> Option<u64> {
    (n > 0).then(|| (n * p).div_ceil(100).max(1))
}

/// Counts of latencies per log-scale bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Histogram {
    counts: BTreeMap<u16, u64>,
}

impl Histogram {
    pub fn add(&mut self, micros: i64) {
        *self.counts.entry(bucket(micros)).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&b, &n) in &other.counts {
            *self.counts.entry(b).or_insert(0) += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The percentile `p` as the middle of the bucket holding its nearest
    /// rank; `None` when empty.
    pub fn percentile(&self, p: u64) -> Option<i64> {
        let rank = rank_of(self.total(), p)?;
        let mut seen = 0;
        for (&b, &n) in &self.counts {
            seen += n;
            if seen >= rank {
                return Some(middle(b));
            }
        }
        None
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 3);
        let mut previous = 0u64;
        for (&b, &n) in &self.counts {
            put_varint(&mut out, u64::from(b) - previous);
            put_varint(&mut out, n);
            previous = u64::from(b);
        }
        out
    }

    /// `None` for bytes this build did not write (the figures of that hour
    /// are then left out of merged buckets rather than guessed).
    pub fn decode(mut bytes: &[u8]) -> Option<Histogram> {
        let mut counts = BTreeMap::new();
        let mut bucket = 0u64;
        while !bytes.is_empty() {
            bucket = bucket.checked_add(get_varint(&mut bytes)?)?;
            let n = get_varint(&mut bytes)?;
            counts.insert(u16::try_from(bucket).ok()?, n);
        }
        Some(Histogram { counts })
    }
}

fn bucket(micros: i64) -> u16 {
    let v = u64::try_from(micros).unwrap_or(0);
    if v < 16 {
        return v as u16;
    }
    let exp = 63 - v.leading_zeros() as u64; // >= 4
    let sub = (v >> (exp - 3)) & 7;
    (16 + (exp - 4) * 8 + sub) as u16
}

fn middle(bucket: u16) -> i64 {
    let b = u64::from(bucket);
    if b < 16 {
        return b as i64;
    }
    let exp = (b - 16) / 8 + 4;
    let sub = (b - 16) % 8;
    let width = 1u64 << (exp - 3);
    let low = (8 + sub) << (exp - 3);
    i64::try_from(low + (width - 1) / 2).unwrap_or(i64::MAX)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_percentiles_use_the_nearest_rank() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        let f = exact(&mut v).unwrap();
        assert_eq!(
            f,
            Figures {
                p50: 50,
                p95: 95,
                max: 100
            }
        );
        let mut one = vec![7];
        assert_eq!(
            exact(&mut one).unwrap(),
            Figures {
                p50: 7,
                p95: 7,
                max: 7
            }
        );
        let mut three = vec![30, 10, 20];
        // ranks: p50 -> ceil(1.5) = 2, p95 -> ceil(2.85) = 3
        assert_eq!(
            exact(&mut three).unwrap(),
            Figures {
                p50: 20,
                p95: 30,
                max: 30
            }
        );
        assert_eq!(exact(&mut []), None);
    }

    #[test]
    fn every_value_reads_back_within_a_sixteenth() {
        for v in (0..20_000i64).chain([1_000_000, 123_456_789, 3_600_000_000]) {
            let m = middle(bucket(v));
            assert!((m - v).abs() * 16 <= v.max(1), "{v} read back as {m}");
            assert!(bucket(v) <= bucket(v + 1), "buckets are monotonic at {v}");
        }
    }

    #[test]
    fn histogram_round_trips_and_merges() {
        let mut a = Histogram::default();
        for v in [100, 100, 2_000, 50_000, 1] {
            a.add(v);
        }
        let back = Histogram::decode(&a.encode()).unwrap();
        assert_eq!(back, a);
        let mut b = Histogram::default();
        b.add(2_000);
        b.merge(&a);
        assert_eq!(b.total(), 6);
        assert_eq!(Histogram::decode(&[0x80]), None, "a cut varint is refused");
    }

    #[test]
    fn histogram_percentile_is_close_to_the_exact_one() {
        let mut h = Histogram::default();
        let mut raw: Vec<i64> = (0..1000).map(|i| 1_000 + i * 37).collect();
        for &v in &raw {
            h.add(v);
        }
        let f = exact(&mut raw).unwrap();
        for (p, want) in [(50, f.p50), (95, f.p95)] {
            let got = h.percentile(p).unwrap();
            assert!((got - want).abs() * 16 <= want, "p{p}: {got} vs {want}");
        }
        assert_eq!(Histogram::default().percentile(50), None);
    }
}
