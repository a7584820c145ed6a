//! A lock-free latency histogram for the data plane: fixed log-spaced buckets, one `AtomicU64`
//! per bucket plus a sum, a count and a maximum. Recording is a bucket search over a constant
//! table and four relaxed atomic operations: no allocation, no lock, safe from any thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (inclusive, nanoseconds) of the buckets: 1, 1.5, 2, 3, 5, 7 × each decade from
/// 10 µs to 70 s. Values above the last bound land in the overflow bucket (`+Inf`).
pub const BOUNDS_NS: [u64; 42] = bounds();

/// Buckets, the overflow one included.
pub const BUCKETS: usize = BOUNDS_NS.len() + 1;

const fn bounds() -> [u64; 42] {
    let steps = [10u64, 15, 20, 30, 50, 70];
    let mut out = [0u64; 42];
    let mut decade = 0;
    let mut scale = 1_000u64; // 10 × 1000 ns = 10 µs
    while decade < 7 {
        let mut s = 0;
        while s < 6 {
            out[decade * 6 + s] = steps[s] * scale;
            s += 1;
        }
        scale *= 10;
        decade += 1;
    }
    out
}

/// A histogram of durations in nanoseconds.
#[derive(Debug)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    count: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// The index of the bucket `ns` falls in.
fn bucket_of(ns: u64) -> usize {
    BOUNDS_NS.partition_point(|&b| b < ns)
}

impl AtomicHistogram {
    /// Records one duration.
    #[inline]
    pub fn record(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// A copy of the counts (each atomic read on its own: a recording racing the copy may be
    /// in the count and not yet in its bucket, which readers tolerate).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = buckets.iter().sum();
        HistogramSnapshot {
            p50_ns: quantile(&buckets, count, 0.50),
            p99_ns: quantile(&buckets, count, 0.99),
            max_ns: self.max_ns.load(Ordering::Relaxed),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            count,
            buckets,
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HistogramSnapshot {
    /// Per bucket (not cumulative), in the order of [`BOUNDS_NS`], the overflow bucket last.
    pub buckets: Vec<u64>,
    /// Sum of every recorded duration, ns.
    pub sum_ns: u64,
    /// Durations recorded (the sum of `buckets`).
    pub count: u64,
    /// Largest duration recorded, ns.
    pub max_ns: u64,
    /// Median estimated from the buckets (linear within a bucket), ns; None when empty.
    pub p50_ns: Option<f64>,
    /// 99th percentile estimated the same way, ns; None when empty.
    pub p99_ns: Option<f64>,
}

impl HistogramSnapshot {
    /// `(upper bound in ns or None for +Inf, cumulative count)` per bucket, for exposition.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut total = 0;
        self.buckets.iter().enumerate().map(move |(i, c)| {
            total += c;
            (BOUNDS_NS.get(i).copied(), total)
        })
    }
}

/// The `q` quantile of bucketed counts, interpolated linearly inside its bucket; the overflow
/// bucket answers its lower bound.
fn quantile(buckets: &[u64], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut below = 0u64;
    for (i, &c) in buckets.iter().enumerate() {
        if c > 0 && (below + c) as f64 >= rank {
            let lo = if i == 0 { 0 } else { BOUNDS_NS[i - 1] } as f64;
            let Some(&hi) = BOUNDS_NS.get(i) else {
                return Some(lo);
            };
            let within = ((rank - below as f64) / c as f64).clamp(0.0, 1.0);
            return Some(lo + within * (hi as f64 - lo));
        }
        below += c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_log_spaced_and_increasing() {
        assert_eq!(BOUNDS_NS[0], 10_000);
        assert_eq!(BOUNDS_NS[6], 100_000);
        assert_eq!(*BOUNDS_NS.last().unwrap(), 70_000_000_000);
        assert!(BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn values_land_in_the_bucket_whose_bound_covers_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(10_000), 0, "bounds are inclusive");
        assert_eq!(bucket_of(10_001), 1);
        assert_eq!(bucket_of(1_000_000), 12);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn snapshot_counts_sum_max_and_quantiles() {
        let h = AtomicHistogram::default();
        for _ in 0..99 {
            h.record(1_200_000); // 1.2 ms: the (1 ms, 1.5 ms] bucket
        }
        h.record(40_000_000); // 40 ms: (30 ms, 50 ms]
        let s = h.snapshot();
        assert_eq!(s.count, 100);
        assert_eq!(s.sum_ns, 99 * 1_200_000 + 40_000_000);
        assert_eq!(s.max_ns, 40_000_000);
        let p50 = s.p50_ns.unwrap();
        assert!((1_000_000.0..=1_500_000.0).contains(&p50), "{p50}");
        let p99 = s.p99_ns.unwrap();
        assert!((1_000_000.0..=1_500_000.0).contains(&p99), "{p99}");
        let cumulative: Vec<_> = s.cumulative().collect();
        assert_eq!(cumulative.last(), Some(&(None, 100)));
        assert_eq!(cumulative[13], (Some(1_500_000), 99));
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let s = AtomicHistogram::default().snapshot();
        assert_eq!((s.count, s.p50_ns, s.p99_ns), (0, None, None));
    }

    #[test]
    fn recording_from_many_threads_loses_nothing() {
        let h = std::sync::Arc::new(AtomicHistogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.record((t + 1) * 1_000 * i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        assert_eq!(s.buckets.iter().sum::<u64>(), 40_000);
    }

    #[test]
    fn recording_allocates_nothing() {
        let h = AtomicHistogram::default();
        let before = crate::test_alloc::allocations();
        for i in 0..1000u64 {
            h.record(i * 7919);
        }
        assert_eq!(crate::test_alloc::allocations(), before);
    }
}
