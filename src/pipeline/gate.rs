//! The session boundary as the data-plane threads see it, and the rules' arm switches.
//!
//! An engine records at most one session. Until it begins, [`SessionGate::start_ns`] is
//! `u64::MAX`; `begin` sets it to the session clock's start. Each thread decides with one
//! atomic load per record whether that record belongs to the session (stamped at or after the
//! start), and at the first one that does ([`Crossing::crossed`]) it resets its thread-local
//! histograms and marks the baseline of its counters, so the session's figures cover the
//! session only — decided on the same timestamps the recorder uses to keep or drop records.

use std::sync::Arc;

use crate::heartbeat::Heartbeat;
pub use crate::rules::RuleArming;

pub use crate::clock::SessionGate;

/// What every data-plane thread is started with: the session gate, and a heartbeat of its
/// own with the configured deadline (registered here, so the engine can list them all).
#[derive(Debug, Clone)]
pub struct ThreadWatch {
    /// The session boundary.
    pub gate: Arc<SessionGate>,
    /// The longest a thread may go without beating.
    pub deadline: std::time::Duration,
    beats: Arc<std::sync::Mutex<Vec<Arc<Heartbeat>>>>,
}

impl ThreadWatch {
    /// A watch over `gate` with `deadline` per thread.
    pub fn new(gate: Arc<SessionGate>, deadline: std::time::Duration) -> Self {
        Self {
            gate,
            deadline,
            beats: Arc::default(),
        }
    }

    /// A new heartbeat for the thread `name` (set-up only, never on the data plane).
    pub fn heartbeat(&self, name: &str) -> Arc<Heartbeat> {
        let beat = Heartbeat::new(name, self.deadline);
        self.beats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&beat));
        beat
    }

    /// Every heartbeat made so far, in creation order.
    pub fn heartbeats(&self) -> Vec<Arc<Heartbeat>> {
        self.beats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One thread's view of the boundary: reports the first record of the session once.
#[derive(Debug, Default)]
pub struct Crossing {
    /// The gate's epoch this thread has crossed (0: none).
    seen: u64,
}

impl Crossing {
    /// True exactly once per opening of the gate: for the first record stamped at or after
    /// the session start.
    pub fn crossed(&mut self, gate: &SessionGate, stamp_ns: u64) -> bool {
        let epoch = gate.epoch();
        if self.seen == epoch || !gate.admits(stamp_ns) {
            return false;
        }
        self.seen = epoch;
        true
    }

    /// Whether this thread is inside an open session (crossed it, and it is still open).
    pub fn is_done(&self, gate: &SessionGate) -> bool {
        self.seen != 0 && self.seen == gate.epoch() && gate.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_from_the_start_and_the_crossing_reports_once() {
        let gate = SessionGate::new();
        let mut c = Crossing::default();
        assert!(!gate.is_open());
        assert!(!c.crossed(&gate, 1_000));
        gate.open_at(2_000);
        assert!(!c.crossed(&gate, 1_999), "before the start");
        assert!(c.crossed(&gate, 2_000));
        assert!(!c.crossed(&gate, 3_000), "only once");
        assert!(c.is_done(&gate));
        gate.close();
        assert!(!c.is_done(&gate));
        gate.open_at(5_000);
        assert!(c.crossed(&gate, 5_000), "a new opening is crossed again");
    }

    #[test]
    fn arming_switches_one_rule_and_counts_fires() {
        let arming = RuleArming::new(2, false);
        assert!(!arming.is_armed(0));
        arming.set(1, true);
        assert!(arming.is_armed(1) && !arming.is_armed(0));
        arming.set(7, true);
        assert!(!arming.is_armed(7));
        arming.note_fire(1);
        assert_eq!((arming.fired(0), arming.fired(1)), (0, 1));
    }
}
