//! The atomics each data-plane thread owns a share of: a stream's frame rate and ring fill
//! (capture thread), the rules' firing counts and decision latency (rules thread), and the
//! recorder's flushes (recorder thread). Each is written by one thread with relaxed atomics
//! and read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

use super::AtomicHistogram;

/// Frames counted before the capture thread refreshes its rate, at most once a second.
const FPS_WINDOW_NS: u64 = 1_000_000_000;

/// A stream's frame rate over the last second and how full its recorder ring is; written by
/// its capture thread once per frame (a few relaxed stores, nothing else).
#[derive(Debug, Default)]
pub struct StreamLive {
    ring_used: AtomicU64,
    ring_capacity: AtomicU64,
    window_start_ns: AtomicU64,
    window_frames: AtomicU64,
    fps_milli: AtomicU64,
    last_frame_ns: AtomicU64,
}

impl StreamLive {
    /// Counts a captured frame at `now_ns` with the recorder ring holding `ring_used` of
    /// `ring_capacity` frames.
    #[inline]
    pub fn frame(&self, now_ns: u64, ring_used: usize, ring_capacity: usize) {
        let r = Ordering::Relaxed;
        self.ring_used.store(ring_used as u64, r);
        self.ring_capacity.store(ring_capacity as u64, r);
        self.last_frame_ns.store(now_ns, r);
        let start = self.window_start_ns.load(r);
        let frames = self.window_frames.load(r) + 1;
        if start == 0 {
            self.window_start_ns.store(now_ns, r);
            self.window_frames.store(0, r);
        } else if now_ns.saturating_sub(start) >= FPS_WINDOW_NS {
            let fps_milli = frames as u128 * 1_000_000_000_000 / (now_ns - start) as u128;
            self.fps_milli.store(fps_milli as u64, r);
            self.window_start_ns.store(now_ns, r);
            self.window_frames.store(0, r);
        } else {
            self.window_frames.store(frames, r);
        }
    }

    /// Frames per second over the last full window; 0 once no frame came for two windows.
    pub fn fps(&self, now_ns: u64) -> f64 {
        let last = self.last_frame_ns.load(Ordering::Relaxed);
        if last == 0 || now_ns.saturating_sub(last) > 2 * FPS_WINDOW_NS {
            return 0.0;
        }
        self.fps_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// (frames in the recorder ring, its capacity) at the last frame.
    pub fn ring(&self) -> (u64, u64) {
        (
            self.ring_used.load(Ordering::Relaxed),
            self.ring_capacity.load(Ordering::Relaxed),
        )
    }
}

/// The rules thread's counters: firings per rule and frame capture → decision.
#[derive(Debug)]
pub struct RulesTelemetry {
    /// Rule names, in rule order.
    pub names: Vec<String>,
    fired: Vec<AtomicU64>,
    /// Frame capture → trigger decision, for every firing.
    pub capture_to_decision: AtomicHistogram,
    /// Triggers that did not fit in the ring to their output.
    pub triggers_lost: AtomicU64,
}

impl RulesTelemetry {
    /// Counters for these rules.
    pub fn new(names: Vec<String>) -> Self {
        Self {
            fired: names.iter().map(|_| AtomicU64::new(0)).collect(),
            names,
            capture_to_decision: AtomicHistogram::default(),
            triggers_lost: AtomicU64::new(0),
        }
    }

    /// Counts a firing of rule `rule` decided `latency_ns` after its frame was captured.
    #[inline]
    pub fn fired(&self, rule: usize, latency_ns: u64) {
        if let Some(f) = self.fired.get(rule) {
            f.fetch_add(1, Ordering::Relaxed);
        }
        self.capture_to_decision.record(latency_ns);
    }

    /// Firings of each rule so far, in rule order.
    pub fn fired_counts(&self) -> Vec<u64> {
        self.fired
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .collect()
    }
}

/// The recorder's flushes: when the last one succeeded and how long each took.
#[derive(Debug, Default)]
pub struct RecorderTelemetry {
    last_flush_ns: AtomicU64,
    flushes: AtomicU64,
    /// Duration of each flush (rows written + HDF5 flush).
    pub flush: AtomicHistogram,
}

impl RecorderTelemetry {
    /// Counts a successful flush that started at `start_ns` and ended at `end_ns`.
    pub fn flushed(&self, start_ns: u64, end_ns: u64) {
        self.flush.record(end_ns.saturating_sub(start_ns));
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.last_flush_ns.store(end_ns, Ordering::Relaxed);
    }

    /// Successful flushes so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// When the last successful flush ended (monotonic ns), if any did.
    pub fn last_flush_ns(&self) -> Option<u64> {
        Some(self.last_flush_ns.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_is_the_rate_over_the_last_window_and_zero_when_frames_stop() {
        let live = StreamLive::default();
        let s = 1_000_000_000u64;
        // 30 frames a second for three seconds.
        for i in 0..=90u64 {
            live.frame(10 * s + i * s / 30, 3, 120);
        }
        let fps = live.fps(13 * s);
        assert!((fps - 30.0).abs() < 1.5, "{fps}");
        assert_eq!(live.ring(), (3, 120));
        assert_eq!(live.fps(16 * s), 0.0, "no frame for three seconds");
    }

    #[test]
    fn rules_count_firings_per_rule() {
        let r = RulesTelemetry::new(vec!["a".into(), "b".into()]);
        r.fired(1, 5_000_000);
        r.fired(1, 6_000_000);
        r.fired(7, 1_000_000); // out of range: timed, not counted against a rule
        assert_eq!(r.fired_counts(), vec![0, 2]);
        assert_eq!(r.capture_to_decision.snapshot().count, 3);
    }

    #[test]
    fn recorder_flush_lag_starts_unknown() {
        let r = RecorderTelemetry::default();
        assert_eq!(r.last_flush_ns(), None);
        r.flushed(100, 2_000_100);
        assert_eq!((r.flushes(), r.last_flush_ns()), (1, Some(2_000_100)));
        assert_eq!(r.flush.snapshot().max_ns, 2_000_000);
    }
}
