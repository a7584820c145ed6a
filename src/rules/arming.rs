//! Which rules may send their triggers: one atomic flag per rule, set by the control plane
//! (arm/disarm) and read by the rules thread on every decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Per rule: whether its triggers may go to the stimulators, and how often it fired.
///
/// A disarmed rule still evaluates (its gate, refractory period and rate limit run as usual)
/// and its fires are counted as `disarmed`, but nothing is sent to an output and no row is
/// written to the trigger table. The rules thread reads one flag per fire.
#[derive(Debug)]
pub struct RuleArming {
    armed: Box<[AtomicBool]>,
    fired: Box<[AtomicU64]>,
}

impl RuleArming {
    /// Switches for `rules` rules, all armed or all disarmed.
    pub fn new(rules: usize, armed: bool) -> Arc<Self> {
        Arc::new(Self {
            armed: (0..rules).map(|_| AtomicBool::new(armed)).collect(),
            fired: (0..rules).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Arms or disarms rule `rule` (out of range: nothing happens).
    pub fn set(&self, rule: usize, armed: bool) {
        if let Some(a) = self.armed.get(rule) {
            a.store(armed, Ordering::Release);
        }
    }

    /// Arms or disarms every rule.
    pub fn set_all(&self, armed: bool) {
        for a in self.armed.iter() {
            a.store(armed, Ordering::Release);
        }
    }

    /// Whether rule `rule` is armed (false out of range).
    pub fn is_armed(&self, rule: usize) -> bool {
        self.armed
            .get(rule)
            .is_some_and(|a| a.load(Ordering::Acquire))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Counts a fire of rule `rule` (armed or not); the rules thread calls it.
    pub fn note_fire(&self, rule: usize) {
        if let Some(f) = self.fired.get(rule) {
            f.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Fires of rule `rule` since the engine opened.
    pub fn fired(&self, rule: usize) -> u64 {
        self.fired
            .get(rule)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_per_rule_and_shared_by_clones() {
        let a = RuleArming::new(3, true);
        let b = Arc::clone(&a);
        b.set(1, false);
        assert!(a.is_armed(0) && !a.is_armed(1) && a.is_armed(2));
        a.set(1, true);
        assert!(b.is_armed(1));
        b.set(7, true);
        assert!(!a.is_armed(7), "no such rule: never armed");
        assert_eq!(a.len(), 3);
    }
}
