//! One rule's timing state machine: debounce, hysteresis, fire-once on activation, refractory
//! period and rate limit. Evaluated on every new output of the rule's clock; never allocates
//! after construction.
//!
//! States: *idle* → (`when` held for the debounce) → *active*, firing once on that edge unless
//! the refractory period or the rate limit suppresses it → (`release` holds, or `when` is
//! false when there is no `release`) → *idle*. The frame that releases does not count towards
//! the next debounce. Missing inputs (`NaN`) make comparisons false: an idle rule does not
//! arm on them, and an active rule without `release` releases on them (with a `release`
//! condition it stays active until that condition is positively true).

use super::expr::Program;
use super::trigger::TriggerCommand;

/// How long `when` must hold before the rule activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debounce {
    /// On this many consecutive evaluations (≥ 1).
    Frames(u32),
    /// Continuously for this long: from the capture time of the first true frame to that of
    /// the current one, nanoseconds.
    Duration(u64),
}

/// What a rule has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounters {
    /// Evaluations (new outputs of the rule's clock).
    pub evaluations: u64,
    /// Idle → active transitions (fired or suppressed).
    pub activations: u64,
    /// Activations that fired a trigger.
    pub fires: u64,
    /// Activations suppressed because the refractory period had not passed.
    pub suppressed_refractory: u64,
    /// Activations suppressed by `max_per_minute`.
    pub suppressed_rate: u64,
}

/// A trigger decision: the rule fired on the frame captured at `t_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    /// Index of the rule in its [`RuleSet`](super::RuleSet).
    pub rule: usize,
    /// Capture time of the frame whose evaluation fired, nanoseconds.
    pub t_ns: u64,
    /// What to send.
    pub command: TriggerCommand,
}

const MINUTE_NS: u64 = 60_000_000_000;

/// The last `max` fire times, to enforce at most `max` fires in any 60 s window.
#[derive(Debug, Clone)]
struct RateLimit {
    times: Box<[u64]>,
    /// Next write position (the oldest entry once full).
    next: usize,
    len: usize,
}

impl RateLimit {
    fn new(max: u32) -> Self {
        RateLimit {
            times: vec![0; max as usize].into_boxed_slice(),
            next: 0,
            len: 0,
        }
    }

    /// Whether a fire at `t` would make more than `max` fires within 60 s.
    fn full_at(&self, t: u64) -> bool {
        self.len == self.times.len() && t.saturating_sub(self.times[self.next]) < MINUTE_NS
    }

    fn record(&mut self, t: u64) {
        self.times[self.next] = t;
        self.next = (self.next + 1) % self.times.len();
        self.len = (self.len + 1).min(self.times.len());
    }
}

/// The compiled state machine of one rule.
#[derive(Debug, Clone)]
pub struct Gate {
    when: Program,
    release: Option<Program>,
    debounce: Debounce,
    refractory_ns: u64,
    rate: Option<RateLimit>,
    command: TriggerCommand,
    rule: usize,
    active: bool,
    /// Consecutive true evaluations of `when` while idle.
    streak: u32,
    /// Capture time of the first frame of the current streak.
    streak_start_ns: u64,
    last_fire_ns: Option<u64>,
    counters: RuleCounters,
}

impl Gate {
    /// A gate for rule `rule`. `when` and `release` must be conditions; `max_per_minute` ≥ 1.
    pub fn new(
        rule: usize,
        when: Program,
        release: Option<Program>,
        debounce: Debounce,
        refractory_ns: u64,
        max_per_minute: Option<u32>,
        command: TriggerCommand,
    ) -> Self {
        Gate {
            when,
            release,
            debounce,
            refractory_ns,
            rate: max_per_minute.map(|max| RateLimit::new(max.max(1))),
            command,
            rule,
            active: false,
            streak: 0,
            streak_start_ns: 0,
            last_fire_ns: None,
            counters: RuleCounters::default(),
        }
    }

    /// Evaluates the rule on a new output of its clock captured at `t_ns` (non-decreasing from
    /// call to call); returns the trigger when it fires. Never allocates.
    pub fn update(&mut self, slots: &[f64], t_ns: u64) -> Option<Fire> {
        self.counters.evaluations += 1;
        if self.active {
            let released = match &self.release {
                Some(release) => release.eval_bool(slots),
                None => !self.when.eval_bool(slots),
            };
            if released {
                self.active = false;
                self.streak = 0;
            }
            return None;
        }
        if !self.when.eval_bool(slots) {
            self.streak = 0;
            return None;
        }
        if self.streak == 0 {
            self.streak_start_ns = t_ns;
        }
        self.streak = self.streak.saturating_add(1);
        let held = match self.debounce {
            Debounce::Frames(n) => self.streak >= n,
            Debounce::Duration(d) => t_ns.saturating_sub(self.streak_start_ns) >= d,
        };
        if !held {
            return None;
        }
        self.active = true;
        self.counters.activations += 1;
        if let Some(last) = self.last_fire_ns
            && t_ns.saturating_sub(last) < self.refractory_ns
        {
            self.counters.suppressed_refractory += 1;
            return None;
        }
        if let Some(rate) = &mut self.rate {
            if rate.full_at(t_ns) {
                self.counters.suppressed_rate += 1;
                return None;
            }
            rate.record(t_ns);
        }
        self.last_fire_ns = Some(t_ns);
        self.counters.fires += 1;
        Some(Fire {
            rule: self.rule,
            t_ns,
            command: self.command,
        })
    }

    /// Whether the rule is active (armed and not yet released).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Counters so far.
    pub fn counters(&self) -> RuleCounters {
        self.counters
    }

    /// The command this rule sends.
    pub fn command(&self) -> TriggerCommand {
        self.command
    }

    /// The compiled `when` condition.
    pub fn when(&self) -> &Program {
        &self.when
    }
}
