//! Which rules may send their triggers: one atomic flag per rule, set by the control plane
//! (arm/disarm) and read by the rules thread on every decision. A disarmed rule is still
//! evaluated (its debounce and refractory state stay current) but what it decides is not sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Per-rule arm flags, shared (cheaply cloned) between the control plane and the rules thread.
#[derive(Debug, Clone)]
pub struct RuleArming {
    armed: Arc<[AtomicBool]>,
}

impl RuleArming {
    /// Flags for `rules` rules, all `armed` or all disarmed.
    pub fn new(rules: usize, armed: bool) -> Self {
        Self {
            armed: (0..rules).map(|_| AtomicBool::new(armed)).collect(),
        }
    }

    /// Arms or disarms rule `rule` (an index past the last rule is ignored).
    pub fn set(&self, rule: usize, armed: bool) {
        if let Some(flag) = self.armed.get(rule) {
            flag.store(armed, Ordering::Release);
        }
    }

    /// Whether rule `rule` may send its triggers (false for an index past the last rule).
    pub fn is_armed(&self, rule: usize) -> bool {
        self.armed
            .get(rule)
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_per_rule_and_shared_by_clones() {
        let a = RuleArming::new(3, true);
        let b = a.clone();
        b.set(1, false);
        assert!(a.is_armed(0) && !a.is_armed(1) && a.is_armed(2));
        a.set(1, true);
        assert!(b.is_armed(1));
        b.set(7, true);
        assert!(!a.is_armed(7), "no such rule: never armed");
        assert_eq!(a.len(), 3);
    }
}
