//! The session boundary on the monotonic clock, shared by every data-plane thread.
//!
//! Until a session begins the start is `u64::MAX`; `begin` sets it to the session clock's
//! start, and each thread decides with one atomic load per record whether that record belongs
//! to the session (stamped at or after the start).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the session starts on the monotonic clock (`u64::MAX` until one begins).
#[derive(Debug)]
pub struct SessionGate {
    start_ns: AtomicU64,
    /// Bumped at each opening, so a begin that failed and is tried again is crossed again.
    epoch: AtomicU64,
}

impl Default for SessionGate {
    fn default() -> Self {
        Self {
            start_ns: AtomicU64::new(u64::MAX),
            epoch: AtomicU64::new(0),
        }
    }
}

impl SessionGate {
    /// A closed gate (no session).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Opens the session at `start_ns` (CLOCK_MONOTONIC): records stamped from then on are
    /// the session's.
    pub fn open_at(&self, start_ns: u64) {
        self.start_ns.store(start_ns, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Closes the gate again (the session file could not be created): nothing is the
    /// session's; a later [`open_at`](Self::open_at) is crossed afresh.
    pub fn close(&self) {
        self.start_ns.store(u64::MAX, Ordering::Release);
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The session's start, or `u64::MAX` while none has begun.
    pub fn start_ns(&self) -> u64 {
        self.start_ns.load(Ordering::Acquire)
    }

    /// Whether a session has begun.
    pub fn is_open(&self) -> bool {
        self.start_ns() != u64::MAX
    }

    /// Whether a record stamped at `stamp_ns` belongs to the session.
    pub fn admits(&self, stamp_ns: u64) -> bool {
        stamp_ns >= self.start_ns()
    }
}
