//! Progress heartbeats of the data-plane threads, read by the service watchdog.
//!
//! Every data-plane thread (each capture, the recorder, each inference worker, the rules, each
//! stimulator link) owns one [`Heartbeat`] and calls [`Heartbeat::beat`] each time round its loop
//! — also while idle, since its waits have timeouts shorter than its deadline. The control plane
//! reads them (one relaxed atomic load each) and tells systemd the process is alive only while
//! every thread has beaten within its deadline; a wedged thread gets the service restarted.
//!
//! Fault injection for the watchdog tests: `BEHAVD_FAULT_WEDGE=<thread name>` (read once, when
//! the heartbeat is created) makes that thread stop for good at its first beat after
//! `BEHAVD_FAULT_WEDGE_AFTER_S` seconds (default 0) — exactly what a deadlock looks like from
//! outside. Nothing sets these variables but a test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::monotonic_ns;

/// Environment variable naming the thread to wedge (fault injection for the watchdog tests).
pub const FAULT_WEDGE_ENV: &str = "BEHAVD_FAULT_WEDGE";
/// Seconds after the heartbeat's creation at which the named thread wedges.
pub const FAULT_WEDGE_AFTER_ENV: &str = "BEHAVD_FAULT_WEDGE_AFTER_S";

/// The progress mark of one data-plane thread.
#[derive(Debug)]
pub struct Heartbeat {
    name: String,
    deadline: Duration,
    last_ns: AtomicU64,
    /// Monotonic time from which the thread wedges (fault injection), `u64::MAX` if never.
    wedge_at_ns: u64,
}

impl Heartbeat {
    /// A heartbeat for the thread `name` that must beat at least once per `deadline`; it counts
    /// as having beaten now.
    pub fn new(name: impl Into<String>, deadline: Duration) -> Arc<Self> {
        let name = name.into();
        let now = monotonic_ns();
        let wedge_at_ns = match std::env::var(FAULT_WEDGE_ENV) {
            Ok(target) if target == name => {
                let after_s = std::env::var(FAULT_WEDGE_AFTER_ENV)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .max(0.0);
                now + (after_s * 1e9) as u64
            }
            _ => u64::MAX,
        };
        Arc::new(Self {
            name,
            deadline,
            last_ns: AtomicU64::new(now),
            wedge_at_ns,
        })
    }

    /// Marks progress (one clock read and one relaxed store; never allocates).
    pub fn beat(&self) {
        let now = monotonic_ns();
        if now >= self.wedge_at_ns {
            self.wedge();
        }
        self.last_ns.store(now, Ordering::Relaxed);
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The longest the thread may go without beating.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Monotonic nanoseconds of the last beat.
    pub fn last_ns(&self) -> u64 {
        self.last_ns.load(Ordering::Relaxed)
    }

    /// How long the thread has been silent at `now_ns`, if that is past its deadline.
    pub fn overdue(&self, now_ns: u64) -> Option<Duration> {
        let silent = Duration::from_nanos(now_ns.saturating_sub(self.last_ns()));
        (silent > self.deadline).then_some(silent)
    }

    #[cold]
    fn wedge(&self) -> ! {
        tracing::error!(thread = %self.name, "fault injection: this thread is wedged on purpose ({FAULT_WEDGE_ENV})");
        loop {
            std::thread::park();
        }
    }
}

/// The first heartbeat past its deadline at `now_ns`, with how long it has been silent.
pub fn first_overdue(beats: &[Arc<Heartbeat>], now_ns: u64) -> Option<(&Heartbeat, Duration)> {
    beats
        .iter()
        .find_map(|b| b.overdue(now_ns).map(|silent| (b.as_ref(), silent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_heartbeat_is_not_overdue_and_a_silent_one_is() {
        let beat = Heartbeat::new("capture-test", Duration::from_millis(100));
        let t0 = beat.last_ns();
        assert_eq!(beat.overdue(t0 + 50_000_000), None);
        let silent = beat.overdue(t0 + 250_000_000).expect("past the deadline");
        assert_eq!(silent, Duration::from_millis(250));
        let beats = vec![Arc::clone(&beat)];
        assert_eq!(
            first_overdue(&beats, t0 + 250_000_000).map(|(b, _)| b.name()),
            Some("capture-test")
        );
    }

    #[test]
    fn beating_moves_the_mark_forward() {
        let beat = Heartbeat::new("rules", Duration::from_secs(1));
        let before = beat.last_ns();
        while monotonic_ns() == before {}
        beat.beat();
        assert!(beat.last_ns() > before);
    }
}
