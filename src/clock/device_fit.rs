//! Fitting a device's microsecond clock onto the host's monotonic clock from ping/pong samples.
//!
//! Each sample is the device time read while handling a PING, and the host send/receive times
//! around it. The midpoint of send and receive is the best host estimate of the device reading,
//! with half the round trip as its uncertainty. Samples whose round trip is long (a scheduler
//! delay, a USB hiccup) are rejected: above the median of the recent round trips, or above an
//! absolute limit. `host = a · device + b` is fitted by least squares over a sliding window of
//! accepted samples (at most 64), refitted without outliers; the residual is the RMS of the
//! samples kept around the fit.
//! Nothing allocates after construction.

/// One PING/PONG exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncSample {
    /// Device time in the PONG, µs.
    pub device_us: u64,
    /// Host monotonic time the PING was written, ns.
    pub host_send_ns: u64,
    /// Host monotonic time the PONG was read, ns.
    pub host_recv_ns: u64,
}

impl SyncSample {
    /// Round trip in ns.
    pub fn round_trip_ns(&self) -> u64 {
        self.host_recv_ns.saturating_sub(self.host_send_ns)
    }

    /// Midpoint of send and receive, ns.
    pub fn host_mid_ns(&self) -> u64 {
        self.host_send_ns + self.round_trip_ns() / 2
    }
}

/// The current fit and its quality.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FitQuality {
    /// Host ns per device µs (1000 for a perfect crystal).
    pub slope: f64,
    /// RMS of accepted samples around the fit, µs.
    pub residual_us: f64,
    /// Samples in the fit.
    pub samples: usize,
    /// Samples offered so far.
    pub offered: u64,
    /// Samples rejected for a long round trip.
    pub rejected: u64,
}

/// A sliding-window least-squares fit of device time onto host time (window of 2–64 samples).
#[derive(Debug, Clone)]
pub struct DeviceClockFit {
    window: Vec<(f64, f64)>,
    keep: Vec<bool>,
    abs_residual: Vec<f64>,
    next: usize,
    len: usize,
    recent_rtt: Vec<u64>,
    rtt_next: usize,
    rtt_len: usize,
    scratch: Vec<u64>,
    max_rtt_ns: u64,
    /// host_ns ≈ a · (device_us − origin_us) + b
    a: f64,
    b: f64,
    origin_us: u64,
    fitted: bool,
    offered: u64,
    rejected: u64,
    residual_us: f64,
}

impl DeviceClockFit {
    /// A fit over the last `window` accepted samples, rejecting round trips above `max_rtt_ns`.
    pub fn new(window: usize, max_rtt_ns: u64) -> Self {
        let window = window.clamp(2, 64);
        Self {
            window: vec![(0.0, 0.0); window],
            keep: vec![true; window],
            abs_residual: vec![0.0; window],
            next: 0,
            len: 0,
            recent_rtt: vec![0; 32],
            rtt_next: 0,
            rtt_len: 0,
            scratch: vec![0; 32],
            max_rtt_ns,
            a: 1000.0,
            b: 0.0,
            origin_us: 0,
            fitted: false,
            offered: 0,
            rejected: 0,
            residual_us: f64::NAN,
        }
    }

    /// Forgets every sample (the device was reset or replaced).
    pub fn reset(&mut self) {
        self.len = 0;
        self.next = 0;
        self.rtt_len = 0;
        self.rtt_next = 0;
        self.fitted = false;
        self.residual_us = f64::NAN;
    }

    /// The median of the recent round trips (all offered samples).
    fn rtt_threshold(&mut self) -> u64 {
        let n = self.rtt_len;
        self.scratch[..n].copy_from_slice(&self.recent_rtt[..n]);
        self.scratch[..n].sort_unstable();
        self.scratch[n / 2]
    }

    /// Offers a sample; returns whether it was accepted into the fit.
    pub fn add(&mut self, s: SyncSample) -> bool {
        self.offered += 1;
        let rtt = s.round_trip_ns();
        self.recent_rtt[self.rtt_next] = rtt;
        self.rtt_next = (self.rtt_next + 1) % self.recent_rtt.len();
        self.rtt_len = (self.rtt_len + 1).min(self.recent_rtt.len());
        let long = rtt > self.max_rtt_ns || (self.rtt_len >= 8 && rtt > self.rtt_threshold());
        if long {
            self.rejected += 1;
            return false;
        }
        if self.len == 0 {
            self.origin_us = s.device_us;
        }
        let x = s.device_us.wrapping_sub(self.origin_us) as i64 as f64;
        let y = s.host_mid_ns() as f64;
        self.window[self.next] = (x, y);
        self.next = (self.next + 1) % self.window.len();
        self.len = (self.len + 1).min(self.window.len());
        self.refit();
        true
    }

    /// Least squares over the points with `keep`, returning (a, b).
    fn least_squares(pts: &[(f64, f64)], keep: &[bool]) -> Option<(f64, f64)> {
        let n = keep.iter().filter(|k| **k).count() as f64;
        if n < 1.0 {
            return None;
        }
        let kept = || pts.iter().zip(keep).filter(|(_, k)| **k).map(|(p, _)| *p);
        let (mx, my) = kept().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x / n, sy + y / n));
        let (sxx, sxy) = kept().fold((0.0, 0.0), |(sxx, sxy), (x, y)| {
            (sxx + (x - mx) * (x - mx), sxy + (x - mx) * (y - my))
        });
        let a = if n >= 2.0 && sxx > 0.0 {
            sxy / sxx
        } else {
            1000.0
        };
        Some((a, my - a * mx))
    }

    /// Fits all points, then refits without the outliers (residual above 3 × the median
    /// absolute residual + 20 µs): a sample delayed on one leg only survives the round-trip
    /// filter but not this one. The residual is the RMS over the points kept.
    fn refit(&mut self) {
        let len = self.len;
        let pts = &self.window[..len];
        let keep = &mut self.keep[..len];
        keep.fill(true);
        let Some((a, b)) = Self::least_squares(pts, keep) else {
            return;
        };
        let (mut a, mut b) = (a, b);
        if len >= 8 {
            let abs = &mut self.abs_residual[..len];
            for (r, (x, y)) in abs.iter_mut().zip(pts) {
                *r = (y - (a * x + b)).abs();
            }
            let mut sorted = [0.0f64; 64];
            let sorted = &mut sorted[..len.min(64)];
            sorted.copy_from_slice(&abs[..sorted.len()]);
            sorted.sort_unstable_by(f64::total_cmp);
            let limit = 3.0 * sorted[sorted.len() / 2] + 20_000.0;
            for (k, r) in keep.iter_mut().zip(abs.iter()) {
                *k = *r <= limit;
            }
            if let Some((a2, b2)) = Self::least_squares(pts, keep) {
                (a, b) = (a2, b2);
            }
        }
        self.a = a;
        self.b = b;
        let (sq, n) = pts.iter().zip(keep.iter()).filter(|(_, k)| **k).fold(
            (0.0, 0.0),
            |(sq, n), ((x, y), _)| {
                let r = (y - (a * x + b)) / 1000.0;
                (sq + r * r, n + 1.0)
            },
        );
        self.residual_us = (sq / n).sqrt();
        self.fitted = true;
    }

    /// Whether at least one sample was accepted.
    pub fn is_fitted(&self) -> bool {
        self.fitted
    }

    /// Host monotonic ns of device time `device_us`, through the current fit.
    pub fn to_host_ns(&self, device_us: u64) -> Option<u64> {
        if !self.fitted {
            return None;
        }
        let x = device_us.wrapping_sub(self.origin_us) as i64 as f64;
        let y = self.a * x + self.b;
        (y >= 0.0).then_some(y.round() as u64)
    }

    /// The fit's slope, residual and counts.
    pub fn quality(&self) -> FitQuality {
        FitQuality {
            slope: self.a,
            residual_us: self.residual_us,
            samples: self.len,
            offered: self.offered,
            rejected: self.rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A device clock 50 ppm fast with an offset; symmetric jitter plus occasional long
    /// round trips with asymmetric delay. The fit recovers the mapping to within a few µs and
    /// rejects the long trips.
    #[test]
    fn recovers_offset_and_drift_and_rejects_long_round_trips() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let mut fit = DeviceClockFit::new(64, 5_000_000);
        let offset_ns = 7_000_000_000u64;
        let device_of = |host_ns: u64| ((host_ns - offset_ns) as f64 * 1.00005 / 1000.0) as u64;
        let mut host = offset_ns + 1_000_000;
        let mut accepted_long = 0;
        for i in 0..400 {
            host += 250_000_000;
            let one_way = 200_000 + rng.random_range(0..40_000u64);
            let long = i % 10 == 7;
            let back = if long { 3_000_000 } else { one_way };
            let s = SyncSample {
                host_send_ns: host,
                device_us: device_of(host + one_way),
                host_recv_ns: host + one_way + back,
            };
            if fit.add(s) && long && i > 20 {
                accepted_long += 1;
            }
        }
        assert_eq!(accepted_long, 0, "long round trips must be rejected");
        let q = fit.quality();
        assert!(q.rejected >= 30, "{q:?}");
        assert!(q.residual_us < 20.0, "{q:?}");
        assert!((q.slope - 1000.0 / 1.00005).abs() < 0.01, "{q:?}");
        let probe_host = host + 100_000_000;
        let mapped = fit.to_host_ns(device_of(probe_host)).unwrap();
        let err_us = (mapped as f64 - probe_host as f64).abs() / 1000.0;
        assert!(err_us < 30.0, "mapping error {err_us} µs");
    }

    #[test]
    fn nothing_is_mapped_before_a_sample_and_after_a_reset() {
        let mut fit = DeviceClockFit::new(8, 5_000_000);
        assert_eq!(fit.to_host_ns(5), None);
        fit.add(SyncSample {
            device_us: 1_000,
            host_send_ns: 10_000_000,
            host_recv_ns: 10_200_000,
        });
        assert_eq!(fit.to_host_ns(2_000), Some(11_100_000));
        fit.reset();
        assert!(!fit.is_fitted());
    }
}
