//! A link's live counters, what it learnt about its device, and the rate-limited warning about
//! unacknowledged trains.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters of a link.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Commands written to the port.
    pub sent: AtomicU64,
    /// Trains fully acknowledged.
    pub acked: AtomicU64,
    /// Commands refused by the device.
    pub nacked: AtomicU64,
    /// Commands refused by the daemon-side limits.
    pub blocked: AtomicU64,
    /// Commands that arrived while the link was down.
    pub link_down: AtomicU64,
    /// Successful (re)connections.
    pub connects: AtomicU64,
    /// Frames from the device dropped for framing/CRC errors.
    pub frames_bad: AtomicU64,
    /// Faults reported by the device.
    pub faults: AtomicU64,
    /// Ping/pong samples accepted into the clock fit.
    pub sync_samples: AtomicU64,
    /// Times the link cleared a tripped device watchdog.
    pub rearms: AtomicU64,
    /// Link events the recorder could not take.
    pub events_lost: AtomicU64,
    /// Commands not written within the output's maximum trigger age (stale; never sent).
    pub stale: AtomicU64,
    /// Commands that arrived after the session stop had turned the outputs off (not sent).
    pub stopping: AtomicU64,
    /// Sent trains whose acknowledgement never (fully) came.
    pub unacked: AtomicU64,
    /// Refusals that matched no outstanding command.
    pub stray_nacks: AtomicU64,
    /// Refusals by reason code (index = NACK reason, 0 = out of range).
    pub nack_reasons: [AtomicU64; 8],
    /// Times the link went down after being up.
    pub disconnects: AtomicU64,
    /// Pulses cut short by the session stop (Firmata: the stop's all-low wrote their fall).
    pub cut_by_stop: AtomicU64,
    /// Whether the link is connected now.
    pub up: AtomicBool,
    /// Live timing: decision → write, ping round trips, clock residual.
    pub telemetry: crate::telemetry::LinkTelemetry,
    /// What the link knows about its device; written only when connecting (never per command).
    pub info: std::sync::Mutex<LinkInfo>,
}

/// What a link learnt about its device while connecting.
#[derive(Debug, Default, Clone)]
pub struct LinkInfo {
    /// Why the last connection attempt failed (empty once connected).
    pub last_error: String,
    /// The device's own description of itself (firmware name and version, board, channels).
    pub firmware: String,
}

impl LinkStats {
    /// Records a failed connection attempt's reason.
    pub fn connect_failed(&self, why: &str) {
        let mut info = self.info.lock().unwrap_or_else(|e| e.into_inner());
        if info.last_error != why {
            info.last_error = why.to_string();
        }
    }

    /// Records a connection and what the device said about itself.
    pub fn connected(&self, firmware: String) {
        {
            let mut info = self.info.lock().unwrap_or_else(|e| e.into_inner());
            info.last_error.clear();
            info.firmware = firmware;
        }
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.up.store(true, Ordering::Release);
    }

    /// A copy of what the link knows about its device.
    pub fn info(&self) -> LinkInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A copy of the counters now (the connection state and device info left empty): the
    /// session's baseline, which the summary subtracts.
    pub fn copy_counters(&self) -> LinkStats {
        let c = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        LinkStats {
            sent: c(&self.sent),
            acked: c(&self.acked),
            nacked: c(&self.nacked),
            blocked: c(&self.blocked),
            link_down: c(&self.link_down),
            connects: c(&self.connects),
            frames_bad: c(&self.frames_bad),
            faults: c(&self.faults),
            sync_samples: c(&self.sync_samples),
            rearms: c(&self.rearms),
            events_lost: c(&self.events_lost),
            stale: c(&self.stale),
            stopping: c(&self.stopping),
            unacked: c(&self.unacked),
            stray_nacks: c(&self.stray_nacks),
            nack_reasons: std::array::from_fn(|i| c(&self.nack_reasons[i])),
            disconnects: c(&self.disconnects),
            cut_by_stop: c(&self.cut_by_stop),
            telemetry: Default::default(),
            up: AtomicBool::new(false),
            info: std::sync::Mutex::default(),
        }
    }

    /// Counts a refusal by reason.
    pub fn count_nack(&self, reason: u8) {
        self.nacked.fetch_add(1, Ordering::Relaxed);
        let i = if (reason as usize) < self.nack_reasons.len() {
            reason as usize
        } else {
            0
        };
        self.nack_reasons[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// A warning about unacknowledged trains, at most once per [`RateLimitedWarn::PERIOD_NS`],
/// with the count since the previous one.
#[derive(Default)]
pub(super) struct RateLimitedWarn {
    last_ns: u64,
    since_last: u64,
}

impl RateLimitedWarn {
    const PERIOD_NS: u64 = 5_000_000_000;

    /// Counts one unacknowledged train; warns (returning true) unless a warning went out less
    /// than [`Self::PERIOD_NS`] ago.
    pub(super) fn note(&mut self, output: &str, now_ns: u64) -> bool {
        self.since_last += 1;
        if self.last_ns == 0 || now_ns >= self.last_ns + Self::PERIOD_NS {
            self.last_ns = now_ns.max(1);
            return self.flush(output);
        }
        false
    }

    /// Warns about the trains counted since the last warning, if any.
    pub(super) fn flush(&mut self, output: &str) -> bool {
        if self.since_last == 0 {
            return false;
        }
        tracing::warn!(
            output,
            trains = self.since_last,
            "stimulator did not acknowledge sent trigger(s) (noise on the line, or the device reset?)"
        );
        self.since_last = 0;
        true
    }
}

#[cfg(test)]
mod warn_tests {
    use super::RateLimitedWarn;

    /// The first unacknowledged train warns at once; the next ones within 5 s are counted and
    /// warned about together once the period has passed (or at the end).
    #[test]
    fn unacknowledged_warnings_are_rate_limited_and_counted() {
        let mut w = RateLimitedWarn::default();
        let s = 1_000_000_000u64;
        assert!(w.note("stim", 10 * s));
        assert!(!w.note("stim", 11 * s));
        assert!(!w.note("stim", 14 * s));
        assert_eq!(w.since_last, 2);
        assert!(w.note("stim", 15 * s));
        assert_eq!(w.since_last, 0);
        assert!(!w.flush("stim"), "nothing left to say");
        assert!(!w.note("stim", 16 * s));
        assert!(w.flush("stim"), "the end of the link says the rest");
    }
}
