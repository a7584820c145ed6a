//! The rules thread: takes every model's and signal group's outputs, keeps the newest value of
//! every rule variable, evaluates the rules clocked by each new output, and sends trigger
//! decisions towards the stimulator link. Scores triggers against simulator ground truth.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::gate::{Crossing, RuleArming, SessionGate};
use super::outputs::TriggerOutlet;
use super::workers::Waker;
use crate::clock::monotonic_ns;
use crate::frame::Behavior;
use crate::heartbeat::Heartbeat;
use crate::record::loop_records::{OutputRecord, TriggerRecord};
use crate::rules::{RuleCounters, RuleSet, TriggerCommand};

/// One producer's ring into the rules thread.
pub struct RuleInput {
    /// The producer's group in the variable table.
    pub group: usize,
    /// Its slots in the variable table.
    pub slots: Range<usize>,
    /// Its outputs.
    pub ring: rtrb::Consumer<OutputRecord>,
}

/// Ground-truth scoring of one rule.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RuleScore {
    /// Triggers whose frame showed the expected behavior.
    pub true_positives: u64,
    /// Triggers whose frame showed another behavior.
    pub false_positives: u64,
    /// Triggers on frames without ground truth.
    pub unscored: u64,
    /// Bouts of the expected behavior seen by the rule's clock.
    pub bouts: u64,
    /// Bouts with at least one trigger.
    pub bouts_triggered: u64,
    #[serde(skip)]
    in_bout: bool,
    #[serde(skip)]
    bout_hit: bool,
}

impl RuleScore {
    /// Fraction of scored triggers that hit the expected behavior.
    pub fn precision(&self) -> Option<f64> {
        let n = self.true_positives + self.false_positives;
        (n > 0).then(|| self.true_positives as f64 / n as f64)
    }

    /// Fraction of bouts of the expected behavior that got a trigger.
    pub fn recall(&self) -> Option<f64> {
        (self.bouts > 0).then(|| self.bouts_triggered as f64 / self.bouts as f64)
    }
}

/// What the rules thread reports when it ends.
pub struct RulesReport {
    /// Per rule: name, counters, score (when the rule has `expect`).
    pub rules: Vec<(String, RuleCounters, Option<RuleScore>)>,
    /// Frame capture → decision, for every trigger (ns).
    pub capture_to_decision: Histogram<u64>,
    /// The daemon's own share: preprocessing + (decision − inference end) (ns).
    pub overhead: Histogram<u64>,
    /// Triggers that did not fit in the ring to the stimulator link.
    pub triggers_lost: u64,
    /// Per rule: fires while the rule was disarmed (nothing sent, nothing recorded).
    pub disarmed: Vec<u64>,
}

/// The rules thread.
pub struct RulesWorker {
    /// The compiled rules.
    pub rules: RuleSet,
    /// One ring per producer.
    pub inputs: Vec<RuleInput>,
    /// Total variable slots.
    pub slot_count: usize,
    /// Towards each output, indexed by the trigger's output id.
    pub outputs: Vec<TriggerOutlet>,
    /// This thread's waker (producers wake it).
    pub waker: Arc<Waker>,
    /// Set to stop (after the producers have stopped: the rings are drained first).
    pub stop: Arc<AtomicBool>,
    /// Which rules may send triggers.
    pub arming: Arc<RuleArming>,
    /// Where the session starts: counters, distributions and scores restart at its first
    /// output (by capture time), so the report covers the session only.
    pub gate: Arc<SessionGate>,
    /// This thread's progress mark.
    pub heartbeat: Arc<Heartbeat>,
    /// Live firings per rule and capture → decision.
    pub telemetry: Arc<crate::telemetry::RulesTelemetry>,
}

/// The trigger row of a fire: the command, the frame's times and the decision time (sent and
/// acknowledged later by the link).
fn trigger_record(c: &TriggerCommand, record: &OutputRecord, decision_ns: u64) -> TriggerRecord {
    TriggerRecord {
        rule: c.rule,
        output: c.output.min(u8::MAX as u16) as u8,
        channel: c.channel,
        pulse_width_ns: c.pulse_width_ns,
        pulses: c.pulses,
        period_ns: c.period_ns,
        frame_index: record.frame_index,
        capture_ns: record.capture_ns,
        infer_start_ns: record.start_ns,
        infer_end_ns: record.end_ns,
        decision_ns,
        truth: record.truth,
        ..TriggerRecord::default()
    }
}

fn counters_sub(a: RuleCounters, b: RuleCounters) -> RuleCounters {
    RuleCounters {
        evaluations: a.evaluations.saturating_sub(b.evaluations),
        activations: a.activations.saturating_sub(b.activations),
        fires: a.fires.saturating_sub(b.fires),
        suppressed_refractory: a
            .suppressed_refractory
            .saturating_sub(b.suppressed_refractory),
        suppressed_rate: a.suppressed_rate.saturating_sub(b.suppressed_rate),
    }
}

fn counters_add(a: RuleCounters, b: RuleCounters) -> RuleCounters {
    RuleCounters {
        evaluations: a.evaluations + b.evaluations,
        activations: a.activations + b.activations,
        fires: a.fires + b.fires,
        suppressed_refractory: a.suppressed_refractory + b.suppressed_refractory,
        suppressed_rate: a.suppressed_rate + b.suppressed_rate,
    }
}

impl RulesWorker {
    /// Runs until stopped and the rings are empty.
    pub fn run(mut self) -> RulesReport {
        crate::realtime::enter(crate::realtime::Role::Rules);
        self.waker.register();
        let h = || Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds");
        let mut report = RulesReport {
            rules: Vec::new(),
            capture_to_decision: h(),
            overhead: h(),
            triggers_lost: 0,
            disarmed: vec![0; self.rules.len()],
        };
        let expect: Vec<Option<i8>> = (0..self.rules.len())
            .map(|r| {
                self.rules.expect(r).and_then(|label| {
                    Behavior::ALL
                        .iter()
                        .find(|b| b.label() == label)
                        .map(|b| *b as i8)
                })
            })
            .collect();
        let mut scores = vec![RuleScore::default(); self.rules.len()];
        let mut slots = vec![f64::NAN; self.slot_count];
        let mut crossing = Crossing::default();
        // The counters at the session start; and a scratch copy for the outputs of frames
        // from before the start that arrive after it (another producer's), whose evaluations
        // are not the session's.
        let mut baseline = vec![RuleCounters::default(); self.rules.len()];
        let mut before = vec![RuleCounters::default(); self.rules.len()];
        loop {
            self.heartbeat.beat();
            let stopping = self.stop.load(Ordering::Acquire);
            let mut any = false;
            for input in &mut self.inputs {
                while let Ok(record) = input.ring.pop() {
                    any = true;
                    let admitted = self.gate.admits(record.capture_ns);
                    if crossing.crossed(&self.gate, record.capture_ns) {
                        for (r, b) in baseline.iter_mut().enumerate() {
                            *b = self.rules.counters(r);
                        }
                        report.capture_to_decision.reset();
                        report.overhead.reset();
                        report.triggers_lost = 0;
                        report.disarmed.iter_mut().for_each(|d| *d = 0);
                        scores.iter_mut().for_each(|s| *s = RuleScore::default());
                    }
                    // An output of a frame from before the session, after it began.
                    let outside = crossing.is_done(&self.gate) && !admitted;
                    if outside {
                        for &rule in self.rules.rules_for_clock(input.group) {
                            before[rule] = self.rules.counters(rule);
                        }
                    }
                    for (slot, v) in slots[input.slots.clone()].iter_mut().zip(record.values()) {
                        *slot = *v as f64;
                    }
                    for &rule in self.rules.rules_for_clock(input.group) {
                        if let Some(e) = expect[rule] {
                            let score = &mut scores[rule];
                            if record.truth == e {
                                if !score.in_bout {
                                    score.bouts += 1;
                                    score.in_bout = true;
                                    score.bout_hit = false;
                                }
                            } else {
                                score.in_bout = false;
                            }
                        }
                    }
                    let outputs = &mut self.outputs;
                    let report = &mut report;
                    let scores = &mut scores;
                    let expect = &expect;
                    let arming = &self.arming;
                    let telemetry = &self.telemetry;
                    self.rules
                        .update_clock(input.group, &slots, record.capture_ns, |fire| {
                            let decision_ns = monotonic_ns();
                            let c = fire.command;
                            arming.note_fire(fire.rule);
                            if !arming.is_armed(fire.rule) {
                                if !outside {
                                    report.disarmed[fire.rule] += 1;
                                }
                                return;
                            }
                            if outside {
                                // Sent (the stimulator does not wait for sessions), but its
                                // row and figures belong to no session.
                                if let Some(out) = outputs.get_mut(c.output as usize) {
                                    let _ = out.ring.push(trigger_record(&c, &record, decision_ns));
                                    out.wake.wake();
                                }
                                return;
                            }
                            let _ = report
                                .capture_to_decision
                                .record(decision_ns.saturating_sub(record.capture_ns));
                            telemetry
                                .fired(fire.rule, decision_ns.saturating_sub(record.capture_ns));
                            let _ = report.overhead.record(
                                (decision_ns.saturating_sub(record.end_ns)
                                    + (record.run_ns - record.start_ns))
                                    .max(1),
                            );
                            if let Some(e) = expect[fire.rule] {
                                let score = &mut scores[fire.rule];
                                if record.truth < 0 {
                                    score.unscored += 1;
                                } else if record.truth == e {
                                    score.true_positives += 1;
                                    if score.in_bout && !score.bout_hit {
                                        score.bout_hit = true;
                                        score.bouts_triggered += 1;
                                    }
                                } else {
                                    score.false_positives += 1;
                                }
                            }
                            let trigger = trigger_record(&c, &record, decision_ns);
                            match outputs.get_mut(trigger.output as usize) {
                                Some(out) => {
                                    if out.ring.push(trigger).is_err() {
                                        report.triggers_lost += 1;
                                        telemetry.triggers_lost.fetch_add(1, Ordering::Relaxed);
                                    }
                                    out.wake.wake();
                                }
                                None => {
                                    report.triggers_lost += 1;
                                    telemetry.triggers_lost.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    if outside {
                        for &rule in self.rules.rules_for_clock(input.group) {
                            let extra = counters_sub(self.rules.counters(rule), before[rule]);
                            baseline[rule] = counters_add(baseline[rule], extra);
                        }
                    }
                }
            }
            if stopping && !any {
                break;
            }
            if !any {
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
        report.rules = (0..self.rules.len())
            .map(|r| {
                (
                    self.rules.name(r).to_string(),
                    counters_sub(self.rules.counters(r), baseline[r]),
                    expect[r].map(|_| scores[r]),
                )
            })
            .collect();
        report
    }
}
