//! The session clock: CLOCK_MONOTONIC nanoseconds and the wall-clock anchor of a session, and
//! fits of device clocks (stimulator microcontrollers) onto it.

pub mod device_fit;
mod gate;
pub use gate::SessionGate;

/// Current CLOCK_MONOTONIC time in nanoseconds (the clock V4L2 buffer timestamps use).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until the monotonic clock reaches `deadline_ns` (returns at once if it has passed).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = monotonic_ns();
    if deadline_ns > now {
        std::thread::sleep(std::time::Duration::from_nanos(deadline_ns - now));
    }
}

/// The instant a session starts, on both clocks, so monotonic stamps convert to session seconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    /// CLOCK_MONOTONIC at session start.
    pub start_mono_ns: u64,
    /// Wall-clock time of the same instant.
    pub start_wall: chrono::DateTime<chrono::Local>,
}

impl SessionClock {
    /// Anchors a session at the current instant.
    pub fn start_now() -> Self {
        let start_wall = chrono::Local::now();
        let start_mono_ns = monotonic_ns();
        Self {
            start_mono_ns,
            start_wall,
        }
    }

    /// Seconds from session start of a monotonic stamp (negative if before the start).
    pub fn seconds(&self, mono_ns: u64) -> f64 {
        (mono_ns as i128 - self.start_mono_ns as i128) as f64 * 1e-9
    }

    /// ISO 8601 session start time with UTC offset and milliseconds, as NWB wants it.
    pub fn start_iso8601(&self) -> String {
        self.start_wall
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    }
}
