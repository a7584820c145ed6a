//! Runs the closed loop a [`ClosedLoopPlan`] describes: starts its threads (outputs first, then
//! the models, signal groups and the rules thread) and stops them in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::decide::{RuleInput, RulesReport, RulesWorker};
use super::gate::{RuleArming, ThreadWatch};
use super::mailbox::Mailbox;
use super::outputs::{OutputReport, OutputThreads, start_outputs};
use super::workers::{
    ModelWorker, Outlet, SignalWorker, Waker, WorkerInput, WorkerOutlets, WorkerStats,
    WorkerTimings,
};
use crate::frame::FramePool;
use crate::record::TriggerSetup;
use crate::record::loop_records::{MANUAL_RULE, MANUAL_RULE_DEFINITION, OutputSetup, RuleRow};

/// Records a producer may queue towards one consumer.
const OUTPUT_RING: usize = 512;
/// Device frames lost in a row after which ROI baselines restart.
const SIGNAL_RESET_GAP_FRAMES: u64 = 15;

use super::plan::Engine;
pub use super::plan::{ClosedLoopPlan, Feed, PlanError, Producer};

/// Live counters of one producer.
pub struct ProducerStats {
    /// Producer name.
    pub name: String,
    /// The stream its frames come from.
    pub stream: String,
    /// "model" or "signal".
    pub kind: &'static str,
    /// Counters.
    pub stats: Arc<WorkerStats>,
    /// Records the recorder could not take.
    pub lost_to_recorder: Arc<AtomicU64>,
}

/// The running closed loop.
pub struct ClosedLoop {
    stop_workers: Arc<AtomicBool>,
    stop_rules: Arc<AtomicBool>,
    workers: Vec<(String, JoinHandle<WorkerTimings>)>,
    rules: Option<JoinHandle<RulesReport>>,
    outputs: Option<OutputThreads>,
    /// Per producer, in plan order.
    pub stats: Vec<ProducerStats>,
    mailboxes: Vec<Option<Arc<Mailbox>>>,
    /// The rules' arm switches (empty without rules).
    pub arming: Arc<RuleArming>,
    /// Rule names, in rule order.
    pub rule_names: Vec<String>,
    /// The link counters and the triggers sent when the session began.
    session_base: Option<(Vec<Option<crate::stim::link::LinkStats>>, u64)>,
    rules_telemetry: Option<Arc<crate::telemetry::RulesTelemetry>>,
}

/// What the closed loop hands the recorder.
pub struct LoopRecording {
    /// One per producer.
    pub outputs: Vec<OutputSetup>,
    /// The rules and triggers.
    pub triggers: Option<TriggerSetup>,
}

/// The closed loop's outcome.
pub struct LoopReport {
    /// Per producer: name, counters, timings, mailbox skips.
    pub producers: Vec<(String, Arc<WorkerStats>, WorkerTimings)>,
    /// The rules thread's report.
    pub rules: Option<RulesReport>,
    /// Triggers handed to the stimulator link.
    pub triggers_sent: u64,
    /// Per output: link counters, clock fit, latencies.
    pub outputs: Vec<OutputReport>,
}

impl ClosedLoop {
    /// Creates the mailboxes for `stream`'s frame consumers (call before starting its capture).
    pub fn mailboxes_for(
        plan: &ClosedLoopPlan,
        stream: &str,
        pool: &FramePool,
    ) -> Vec<(usize, Arc<Mailbox>)> {
        plan.producers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.feed == Feed::Stream(stream.to_string()))
            .map(|(i, _)| (i, Arc::new(Mailbox::new(pool.clone()))))
            .collect()
    }

    /// Starts every producer thread, the rules thread and the outputs; waiting for the outputs
    /// to connect ends early with an error once `cancel` is set.
    /// Every thread gets a heartbeat from `watch` and the session gate; the rules start
    /// `armed` or disarmed.
    pub fn start(
        plan: ClosedLoopPlan,
        mailboxes: Vec<(usize, Arc<Mailbox>)>,
        cancel: &AtomicBool,
        watch: &ThreadWatch,
        armed: bool,
    ) -> Result<(Self, LoopRecording)> {
        // The outputs first: a required stimulator that does not connect fails the session
        // before any inference thread runs.
        let mut started_outputs = match &plan.rules {
            Some(rules) => Some(start_outputs(
                rules.output_names(),
                &plan.outputs,
                cancel,
                watch,
            )?),
            None => None,
        };
        let rule_names: Vec<String> = plan.rules.as_ref().map_or_else(Vec::new, |r| {
            (0..r.len()).map(|i| r.name(i).to_string()).collect()
        });
        let arming = RuleArming::new(rule_names.len(), armed);
        let stop_workers = Arc::new(AtomicBool::new(false));
        let stop_rules = Arc::new(AtomicBool::new(false));
        let n = plan.producers.len();
        let mut by_index: Vec<Option<Arc<Mailbox>>> = vec![None; n];
        for (i, m) in mailboxes {
            by_index[i] = Some(m);
        }
        let rules_waker = Arc::new(Waker::default());
        let mut rule_inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut outlets: Vec<WorkerOutlets> = Vec::new();
        let mut stats = Vec::new();
        for p in &plan.producers {
            let (tx, rx) = rtrb::RingBuffer::new(OUTPUT_RING);
            outputs.push(OutputSetup {
                name: p.name.clone(),
                stream: p.stream.clone(),
                description: p.description.clone(),
                kind: p.kind.clone(),
                records: rx,
            });
            let lost = Arc::new(AtomicU64::new(0));
            let worker_stats = Arc::new(WorkerStats::default());
            let mut others = Vec::new();
            if let Some(rules) = &plan.rules {
                let group = plan
                    .variables
                    .group(&p.name)
                    .expect("every producer is a group");
                {
                    let _ = rules;
                    let (rtx, rrx) = rtrb::RingBuffer::new(OUTPUT_RING);
                    others.push(Outlet {
                        ring: rtx,
                        waker: Arc::clone(&rules_waker),
                        lost: Arc::new(AtomicU64::new(0)),
                    });
                    rule_inputs.push(RuleInput {
                        group,
                        slots: plan.variables.group_slots(group),
                        ring: rrx,
                    });
                }
            }
            stats.push(ProducerStats {
                name: p.name.clone(),
                stream: p.stream.clone(),
                kind: match p.engine {
                    Engine::Model(..) => "model",
                    Engine::Signals(_) => "signal",
                },
                stats: Arc::clone(&worker_stats),
                lost_to_recorder: Arc::clone(&lost),
            });
            outlets.push(WorkerOutlets {
                recorder: Outlet {
                    ring: tx,
                    waker: Arc::new(Waker::default()),
                    lost,
                },
                others,
                stop: Arc::clone(&stop_workers),
                stats: worker_stats,
                gate: Arc::clone(&watch.gate),
                heartbeat: watch.heartbeat(&match p.engine {
                    Engine::Model(..) => format!("infer-{}", p.name),
                    Engine::Signals(_) => format!("signal-{}", p.name),
                }),
            });
        }
        // Second stages: a ring from each first stage.
        let mut upstream_inputs: Vec<Option<WorkerInput>> = (0..n).map(|_| None).collect();
        for (i, p) in plan.producers.iter().enumerate() {
            if let Feed::Model(j) = p.feed {
                let (tx, rx) = rtrb::RingBuffer::new(OUTPUT_RING);
                let waker = Arc::new(Waker::default());
                outlets[j].others.push(Outlet {
                    ring: tx,
                    waker: Arc::clone(&waker),
                    lost: Arc::new(AtomicU64::new(0)),
                });
                upstream_inputs[i] = Some(WorkerInput::Upstream(rx, waker));
            }
        }
        let mut workers = Vec::new();
        for ((i, p), out) in plan.producers.into_iter().enumerate().zip(outlets) {
            let name = p.name.clone();
            let handle = match p.engine {
                Engine::Model(runner, reset_after_gap_frames) => {
                    let input = match upstream_inputs[i].take() {
                        Some(input) => input,
                        None => WorkerInput::Frames(
                            by_index[i]
                                .clone()
                                .context("a frame-fed model has a mailbox")?,
                        ),
                    };
                    let worker = ModelWorker {
                        runner: *runner,
                        input,
                        out,
                        reset_after_gap_frames,
                    };
                    std::thread::Builder::new()
                        .name(format!("infer-{name}"))
                        .spawn(move || worker.run())
                }
                Engine::Signals(signals) => {
                    let worker = SignalWorker {
                        signals,
                        reset_after_gap_frames: SIGNAL_RESET_GAP_FRAMES,
                        mailbox: by_index[i]
                            .clone()
                            .context("a signal group has a mailbox")?,
                        out,
                    };
                    std::thread::Builder::new()
                        .name(format!("signal-{name}"))
                        .spawn(move || worker.run())
                }
            }
            .context("cannot start an inference thread")?;
            workers.push((name, handle));
        }
        let (mut rules_handle, mut output_threads, mut triggers) = (None, None, None);
        let mut rules_telemetry = None;
        if let Some(rules) = plan.rules {
            let mut rule_rows: Vec<RuleRow> = (0..rules.len())
                .map(|r| RuleRow {
                    name: rules.name(r).to_string(),
                    definition: rules.definition(r).to_string(),
                })
                .collect();
            // Manual test pulses name the row after the rules.
            rule_rows.push(RuleRow {
                name: MANUAL_RULE.into(),
                definition: MANUAL_RULE_DEFINITION.into(),
            });
            let output_names = rules.output_names().to_vec();
            let started = started_outputs
                .take()
                .context("the outputs start with the rules")?;
            let (outlets, records, events) = (started.outlets, started.records, started.events);
            output_threads = Some(started.threads);
            triggers = Some(TriggerSetup {
                rules: rule_rows,
                outputs: output_names,
                records,
                events,
                devices: started.devices,
            });
            let telemetry = Arc::new(crate::telemetry::RulesTelemetry::new(
                (0..rules.len())
                    .map(|r| rules.name(r).to_string())
                    .collect(),
            ));
            rules_telemetry = Some(Arc::clone(&telemetry));
            let worker = RulesWorker {
                telemetry,
                slot_count: plan.variables.slot_count(),
                rules,
                inputs: rule_inputs,
                outputs: outlets,
                waker: rules_waker,
                stop: Arc::clone(&stop_rules),
                arming: Arc::clone(&arming),
                gate: Arc::clone(&watch.gate),
                heartbeat: watch.heartbeat("rules"),
            };
            rules_handle = Some(
                std::thread::Builder::new()
                    .name("rules".into())
                    .spawn(move || worker.run())
                    .context("cannot start the rules thread")?,
            );
        }
        Ok((
            Self {
                stop_workers,
                stop_rules,
                workers,
                rules: rules_handle,
                outputs: output_threads,
                stats,
                mailboxes: by_index,
                arming,
                rule_names,
                session_base: None,
                rules_telemetry,
            },
            LoopRecording { outputs, triggers },
        ))
    }

    /// Where manual test pulses go, indexed by output id (empty without rules).
    pub fn pulse_targets(&self) -> Vec<super::controls::PulseTarget> {
        self.outputs
            .as_ref()
            .map_or_else(Vec::new, |o| o.pulses.clone())
    }

    /// Adds the producers', the rules' and the outputs' live counters to `telemetry`.
    pub fn register_telemetry(&self, telemetry: &mut crate::telemetry::Telemetry) {
        for p in &self.stats {
            telemetry.add_producer(&p.name, &p.stream, p.kind, &p.stats);
        }
        if let Some(r) = &self.rules_telemetry {
            telemetry.set_rules(r);
        }
        if let Some(o) = &self.outputs {
            o.register_telemetry(telemetry);
        }
    }

    /// Triggers handed to an output so far.
    pub fn triggers_sent(&self) -> u64 {
        self.outputs
            .as_ref()
            .map_or(0, |o| o.sent.load(Ordering::Relaxed))
    }

    /// The outputs: name, port, live link counters (None for the logging sink).
    pub fn links(&self) -> Vec<(&str, &str, Option<&Arc<crate::stim::link::LinkStats>>)> {
        self.outputs
            .as_ref()
            .map_or_else(Vec::new, |o| o.links().collect())
    }

    /// Remembers the link counters and the triggers sent now: the session's figures count
    /// from here.
    pub fn mark_session_start(&mut self) {
        let links = self
            .links()
            .iter()
            .map(|(_, _, s)| {
                s.map(|s| {
                    let copy = s.copy_counters();
                    copy.up
                        .store(s.up.load(Ordering::Acquire), Ordering::Relaxed);
                    copy
                })
            })
            .collect();
        self.session_base = Some((links, self.triggers_sent()));
    }

    /// Turns every stimulator output off at once and has the links send nothing more (the
    /// session is stopping); call first when stopping, before waiting on anything else.
    pub fn halt_outputs(&self) {
        if let Some(o) = &self.outputs {
            o.halt();
        }
    }

    /// Stops the producers, then the rules (after draining), then the outputs; returns the report.
    /// Call after the capture threads have stopped.
    pub fn stop(self) -> LoopReport {
        self.stop_workers.store(true, Ordering::Release);
        let mut producers = Vec::new();
        for ((name, handle), s) in self.workers.into_iter().zip(&self.stats) {
            match handle.join() {
                Ok(timings) => producers.push((name, Arc::clone(&s.stats), timings)),
                Err(_) => tracing::error!(producer = %name, "inference thread panicked"),
            }
        }
        for (p, m) in producers.iter().zip(&self.mailboxes) {
            if let Some(m) = m {
                tracing::debug!(producer = %p.0, skipped = m.skipped(), "mailbox");
            }
        }
        self.stop_rules.store(true, Ordering::Release);
        let rules = self.rules.and_then(|h| h.join().ok());
        let (mut triggers_sent, mut outputs) = match self.outputs {
            Some(o) => {
                let sent = o.sent.load(Ordering::Relaxed);
                (sent, o.stop())
            }
            None => (0, Vec::new()),
        };
        if let Some((links, sent)) = self.session_base {
            triggers_sent = triggers_sent.saturating_sub(sent);
            for (o, base) in outputs.iter_mut().zip(links) {
                // Down when the session began: the `up` flag of the copy holds that.
                if let Some(b) = &base {
                    o.down_at_start = !b.up.load(Ordering::Relaxed);
                }
                o.baseline = base;
            }
        }
        LoopReport {
            producers,
            rules,
            triggers_sent,
            outputs,
        }
    }
}
