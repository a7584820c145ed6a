//! A stimulator link's timing: decision → command written, ping round trips and the device
//! clock fit's residual; written by the link thread, read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

use super::AtomicHistogram;

/// The timing side of a link's live counters (`LinkStats::telemetry`).
#[derive(Debug)]
pub struct LinkTelemetry {
    /// Rule decision → command written to the port.
    pub decision_to_write: AtomicHistogram,
    /// PING written → PONG read (clock-sync round trips).
    pub round_trip: AtomicHistogram,
    /// RMS residual of the device clock fit, µs, as `f64` bits (NaN: not fitted).
    residual_us_bits: AtomicU64,
}

impl Default for LinkTelemetry {
    fn default() -> Self {
        Self {
            decision_to_write: AtomicHistogram::default(),
            round_trip: AtomicHistogram::default(),
            residual_us_bits: AtomicU64::new(f64::NAN.to_bits()),
        }
    }
}

impl LinkTelemetry {
    /// Stores the clock fit's residual (µs; NaN when the fit has too few samples).
    pub fn set_residual_us(&self, residual_us: f64) {
        self.residual_us_bits
            .store(residual_us.to_bits(), Ordering::Relaxed);
    }

    /// The clock fit's residual, µs, when the device clock is fitted.
    pub fn residual_us(&self) -> Option<f64> {
        Some(f64::from_bits(
            self.residual_us_bits.load(Ordering::Relaxed),
        ))
        .filter(|r| r.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_is_unknown_until_fitted() {
        let t = LinkTelemetry::default();
        assert_eq!(t.residual_us(), None);
        t.set_residual_us(12.5);
        assert_eq!(t.residual_us(), Some(12.5));
        t.set_residual_us(f64::NAN);
        assert_eq!(t.residual_us(), None);
    }
}
