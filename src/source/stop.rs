//! The session's request that capture end, as a source's blocking waits see it.
//!
//! A source blocks in `next_frame` until the device delivers (a synthetic source's pacing
//! sleep, a V4L2 `poll`, a channel from a camera thread). A device that stalls or runs very
//! slowly would hold the capture thread, and with it the whole stop, for as long as it stalls.
//! So every such wait is cut into slices of at most [`STOP_POLL_NS`] and looks at the stop
//! flag between them (and a sleeping source wakes at once when the session unparks its
//! capture thread): whatever the device does, `next_frame` returns
//! [`SourceError::Stopped`](super::SourceError::Stopped) within one slice of the stop.
//! Checking is one relaxed atomic load; nothing allocates or locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::monotonic_ns;

/// Longest a source blocks before looking at the stop flag again (50 ms).
pub const STOP_POLL_NS: u64 = 50_000_000;

/// A stop flag a source waits on: set by the session, or by itself once a deadline passes.
/// The default is never set (a source used outside a session).
#[derive(Debug, Clone)]
pub struct CaptureStop {
    flag: Arc<AtomicBool>,
    /// Monotonic time at which the stop counts as set on its own (`u64::MAX`: never).
    deadline_ns: u64,
}

/// A wait that ended because the stop was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl Default for CaptureStop {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl CaptureStop {
    /// Watches `flag` (the session's stop flag).
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        Self {
            flag,
            deadline_ns: u64::MAX,
        }
    }

    /// A stop that is set by nobody and counts as set from `deadline_ns` on: bounds a
    /// shutdown ritual (a Miniscope's LEDs-off frames) that still needs frames after the
    /// session's stop.
    pub fn at_deadline(deadline_ns: u64) -> Self {
        Self {
            flag: Arc::default(),
            deadline_ns,
        }
    }

    /// Whether the wait should end now.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
            || (self.deadline_ns != u64::MAX && monotonic_ns() >= self.deadline_ns)
    }

    /// Sleeps until `deadline_ns` (monotonic), or less when the stop is set first (noticed
    /// within [`STOP_POLL_NS`], at once when the thread is unparked).
    pub fn sleep_until_ns(&self, deadline_ns: u64) -> Result<(), Stopped> {
        loop {
            if self.is_set() {
                return Err(Stopped);
            }
            let now = monotonic_ns();
            if now >= deadline_ns {
                return Ok(());
            }
            std::thread::park_timeout(Duration::from_nanos((deadline_ns - now).min(STOP_POLL_NS)));
        }
    }

    /// The slice of a wait that ends at `deadline_ns`, for a `poll`-style timeout: at most
    /// [`STOP_POLL_NS`], at least 1 ms, in milliseconds.
    pub fn slice_ms(deadline_ns: u64) -> i32 {
        let left = deadline_ns.saturating_sub(monotonic_ns()).min(STOP_POLL_NS);
        (left / 1_000_000).max(1) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_sleep_ends_when_the_flag_is_set() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = CaptureStop::new(Arc::clone(&flag));
        let sleeper =
            std::thread::spawn(move || stop.sleep_until_ns(monotonic_ns() + 3_600e9 as u64));
        flag.store(true, Ordering::Relaxed);
        sleeper.thread().unpark();
        assert_eq!(sleeper.join().unwrap(), Err(Stopped));
    }

    #[test]
    fn a_sleep_to_a_past_deadline_returns_and_a_deadline_stop_sets_itself() {
        let stop = CaptureStop::default();
        assert_eq!(stop.sleep_until_ns(0), Ok(()));
        assert!(!stop.is_set());
        let bounded = CaptureStop::at_deadline(monotonic_ns());
        assert!(bounded.is_set());
        assert_eq!(
            bounded.sleep_until_ns(monotonic_ns() + 3_600e9 as u64),
            Err(Stopped)
        );
        assert!(!CaptureStop::at_deadline(u64::MAX - 1).is_set());
    }

    #[test]
    fn poll_slices_are_bounded() {
        assert_eq!(CaptureStop::slice_ms(0), 1);
        assert_eq!(
            CaptureStop::slice_ms(monotonic_ns() + 3_600e9 as u64),
            (STOP_POLL_NS / 1_000_000) as i32
        );
    }
}
