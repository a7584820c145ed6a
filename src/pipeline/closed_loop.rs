//! Builds the closed loop from the config (models, ROI signals, rules), checks it as a whole
//! before anything runs, then starts its threads and stops them in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::decide::{RuleInput, RulesReport, RulesWorker};
use super::mailbox::Mailbox;
use super::outputs::{OutputReport, OutputThreads, start_outputs};
use super::workers::{
    ModelWorker, Outlet, SignalWorker, Waker, WorkerInput, WorkerOutlets, WorkerStats,
    WorkerTimings,
};
use crate::config::LoadedConfig;
use crate::config::model::OutputSpec;
use crate::frame::FramePool;
use crate::infer::signals::RoiSignals;
use crate::infer::{ModelFeed, ModelRunner};
use crate::record::TriggerSetup;
use crate::record::loop_records::{OutputKind, OutputSetup, RuleRow};
use crate::rules::{RuleSet, VariableTable};

/// Records a producer may queue towards one consumer.
const OUTPUT_RING: usize = 512;
/// Device frames lost in a row after which ROI baselines restart.
const SIGNAL_RESET_GAP_FRAMES: u64 = 15;

/// A problem with the closed-loop part of a config, with the key it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    /// Dotted key path, e.g. `model[1].input.resize`, for locating it in the file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// What feeds a planned producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Frames of this stream.
    Stream(String),
    /// Outputs of the model at this index.
    Model(usize),
}

enum Engine {
    Model(Box<ModelRunner>, u64),
    Signals(RoiSignals),
}

/// One model or signal group, loaded and checked.
pub struct Producer {
    /// Its name (the rule variable group).
    pub name: String,
    /// What feeds it.
    pub feed: Feed,
    /// The stream its frames come from (through the first stage, for a second stage).
    pub stream: String,
    /// What its values are.
    pub kind: OutputKind,
    /// Model file and provider, for the file's descriptions.
    pub description: String,
    engine: Engine,
}

/// The closed loop of a config, loaded and checked but not running.
pub struct ClosedLoopPlan {
    /// Models first (config order), then signal groups.
    pub producers: Vec<Producer>,
    variables: VariableTable,
    rules: Option<RuleSet>,
    outputs: Vec<crate::config::OutputConfig>,
}

fn plan_err(key: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        key: key.into(),
        message: message.into(),
    }
}

impl ClosedLoopPlan {
    /// Loads every model (checking its shapes against the config), the ROI signals and the
    /// rules. Models are warmed up when `warm_up` is set.
    pub fn prepare(loaded: &LoadedConfig, warm_up: bool) -> Result<Self, PlanError> {
        Self::prepare_cancellable(loaded, warm_up, &AtomicBool::new(false))
    }

    /// [`prepare`](Self::prepare) that gives up before each model load and each warm-up run
    /// once `cancel` is set (a signal during set-up), with an error naming where it stopped.
    pub fn prepare_cancellable(
        loaded: &LoadedConfig,
        warm_up: bool,
        cancel: &AtomicBool,
    ) -> Result<Self, PlanError> {
        let cancelled = |at: &str| plan_err(at, format!("{at}: set-up interrupted"));
        let config = &loaded.config;
        let geometry: HashMap<&str, _> = config
            .source
            .iter()
            .map(|s| (s.name(), s.geometry()))
            .collect();
        let mut producers: Vec<Producer> = Vec::new();
        // A relative library path is relative to the config file, like model paths.
        let onnxruntime = config
            .inference
            .onnxruntime
            .as_ref()
            .map(|p| loaded.base_dir.join(p).display().to_string());
        let onnxruntime = onnxruntime.as_deref();
        for (i, m) in config.model.iter().enumerate() {
            let at = format!("model[{i}]");
            let valid = !m.name.is_empty()
                && m.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(plan_err(
                    format!("{at}.name"),
                    format!("{at}: name `{}` must be letters, digits or `_`", m.name),
                ));
            }
            if let Some(j) = producers.iter().position(|p| p.name == m.name) {
                return Err(plan_err(
                    format!("{at}.name"),
                    format!("{at}: name `{}` is already model[{j}]", m.name),
                ));
            }
            let (feed, stream, model_feed) = match m.source.strip_prefix("model:") {
                Some(upstream) => {
                    let Some(j) = producers.iter().position(|p| p.name == upstream) else {
                        return Err(plan_err(
                            format!("{at}.source"),
                            format!(
                                "{at} \"{}\": source `model:{upstream}` must name a model declared above it",
                                m.name
                            ),
                        ));
                    };
                    if !matches!(config.model[j].output, OutputSpec::Vector { .. }) {
                        return Err(plan_err(
                            format!("{at}.source"),
                            format!(
                                "{at} \"{}\": model `{upstream}` feeds a second stage, so its output must be kind = \"vector\"",
                                m.name
                            ),
                        ));
                    }
                    let width = producers[j].kind.width();
                    (
                        Feed::Model(j),
                        producers[j].stream.clone(),
                        ModelFeed::Vector(width),
                    )
                }
                None => {
                    let Some(g) = geometry.get(m.source.as_str()) else {
                        let names: Vec<&str> = geometry.keys().copied().collect();
                        return Err(plan_err(
                            format!("{at}.source"),
                            format!(
                                "{at} \"{}\": source `{}` is not a [[source]] name (have: {}) nor `model:<name>`",
                                m.name,
                                m.source,
                                names.join(", ")
                            ),
                        ));
                    };
                    (
                        Feed::Stream(m.source.clone()),
                        m.source.clone(),
                        ModelFeed::Frames(*g),
                    )
                }
            };
            if cancel.load(Ordering::Relaxed) {
                return Err(cancelled(&at));
            }
            let mut runner = ModelRunner::load(m, &loaded.base_dir, model_feed, onnxruntime)
                .map_err(|e| {
                    // The error's key is relative to the entry; its section (`input`,
                    // `output`, `path`, `state`) is a key the config file has.
                    let section = e
                        .spec_key()
                        .and_then(|k| k.split(['.', '[', ' ']).next())
                        .filter(|s| ["input", "output", "path", "state"].contains(s));
                    let key = section.map_or_else(|| at.clone(), |s| format!("{at}.{s}"));
                    plan_err(key, format!("{at} \"{}\" ({}): {e}", m.name, m.path))
                })?;
            if warm_up && m.warmup_runs > 0 {
                tracing::info!(model = %m.name, runs = m.warmup_runs, "warming up");
            }
            for _ in 0..if warm_up { m.warmup_runs } else { 0 } {
                if cancel.load(Ordering::Relaxed) {
                    return Err(cancelled(&at));
                }
                runner.warm_up(1).map_err(|e| {
                    plan_err(
                        at.clone(),
                        format!("{at} \"{}\": warm-up failed: {e}", m.name),
                    )
                })?;
            }
            let kind = match &m.output {
                OutputSpec::Classes { labels, .. } => OutputKind::Classes(labels.clone()),
                OutputSpec::Keypoints { names, .. } => OutputKind::Keypoints(names.clone()),
                OutputSpec::Vector { .. } => OutputKind::Vector(runner.value_names().len()),
            };
            producers.push(Producer {
                name: m.name.clone(),
                feed,
                stream,
                kind,
                description: format!("{} on {}", m.path, runner.provider()),
                engine: Engine::Model(Box::new(runner), m.reset_after_gap_frames),
            });
        }
        for (i, s) in config.signal.iter().enumerate() {
            let at = format!("signal[{i}]");
            if producers.iter().any(|p| p.name == s.name) {
                return Err(plan_err(
                    format!("{at}.name"),
                    format!(
                        "{at}: name `{}` is already used by a model or signal group",
                        s.name
                    ),
                ));
            }
            let Some(g) = geometry.get(s.source.as_str()) else {
                return Err(plan_err(
                    format!("{at}.source"),
                    format!(
                        "{at} \"{}\": source `{}` is not a [[source]] name",
                        s.name, s.source
                    ),
                ));
            };
            let signals = RoiSignals::new(s, *g)
                .map_err(|e| plan_err(at.clone(), format!("{at} \"{}\": {e}", s.name)))?;
            producers.push(Producer {
                name: s.name.clone(),
                feed: Feed::Stream(s.source.clone()),
                stream: s.source.clone(),
                kind: OutputKind::Signals(signals.names().to_vec()),
                description: format!("{} ROIs, baseline {} s", s.roi.len(), s.baseline_s),
                engine: Engine::Signals(signals),
            });
        }
        let mut variables = VariableTable::new();
        for (i, p) in producers.iter().enumerate() {
            let names: Vec<String> = match (&p.engine, &p.kind) {
                (Engine::Model(r, _), _) => r.value_names().to_vec(),
                (_, OutputKind::Signals(rois)) => rois.clone(),
                _ => Vec::new(),
            };
            variables
                .add_group(&p.name, &names)
                .map_err(|e| plan_err(format!("producer[{i}]"), format!("`{}`: {e}", p.name)))?;
        }
        let rules = if config.rule.is_empty() {
            None
        } else {
            Some(
                RuleSet::compile(&config.rule, &variables)
                    .map_err(|e| plan_err(e.key_path().to_string(), e.to_string()))?,
            )
        };
        for (i, o) in config.output.iter().enumerate() {
            let at = format!("output[{i}]");
            if config.output[..i].iter().any(|p| p.name == o.name) {
                return Err(plan_err(
                    format!("{at}.name"),
                    format!("{at}: name `{}` is used twice", o.name),
                ));
            }
            if o.protocol == crate::config::output::OutputProtocol::Firmata {
                if o.pins.is_empty() {
                    return Err(plan_err(
                        format!("{at}.pins"),
                        format!(
                            "{at} \"{}\": a Firmata output needs the Arduino pin of each channel, e.g. pins = [9, 10]",
                            o.name
                        ),
                    ));
                }
                if let Some(p) = o.pins.iter().find(|&&p| !(2..=127).contains(&p)) {
                    return Err(plan_err(
                        format!("{at}.pins"),
                        format!(
                            "{at} \"{}\": pin {p} cannot be a Firmata output (0 and 1 are the board's serial port; Firmata pins go up to 127)",
                            o.name
                        ),
                    ));
                }
            }
            let l = &o.limits;
            if !(l.max_on_ms > 0.0
                && l.max_duty > 0.0
                && l.max_duty <= 1.0
                && l.duty_window_s > 0.0
                && l.refractory_s >= 0.0)
            {
                return Err(plan_err(
                    format!("{at}.limits"),
                    format!(
                        "{at} \"{}\": limits need max_on_ms > 0, 0 < max_duty ≤ 1, duty_window_s > 0, refractory_s ≥ 0",
                        o.name
                    ),
                ));
            }
        }
        Ok(Self {
            producers,
            variables,
            rules,
            outputs: config.output.clone(),
        })
    }

    /// How many producers read frames of `stream` directly (each needs a mailbox).
    pub fn frame_consumers(&self, stream: &str) -> usize {
        self.producers
            .iter()
            .filter(|p| p.feed == Feed::Stream(stream.to_string()))
            .count()
    }

    /// Whether there is anything to run.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

/// Live counters of one producer.
pub struct ProducerStats {
    /// Producer name.
    pub name: String,
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
    pub fn start(
        plan: ClosedLoopPlan,
        mailboxes: Vec<(usize, Arc<Mailbox>)>,
        cancel: &AtomicBool,
    ) -> Result<(Self, LoopRecording)> {
        // The outputs first: a required stimulator that does not connect fails the session
        // before any inference thread runs.
        let mut started_outputs = match &plan.rules {
            Some(rules) => Some(start_outputs(rules.output_names(), &plan.outputs, cancel)?),
            None => None,
        };
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
        if let Some(rules) = plan.rules {
            let rule_rows = (0..rules.len())
                .map(|r| RuleRow {
                    name: rules.name(r).to_string(),
                    definition: rules.definition(r).to_string(),
                })
                .collect();
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
            let worker = RulesWorker {
                slot_count: plan.variables.slot_count(),
                rules,
                inputs: rule_inputs,
                outputs: outlets,
                waker: rules_waker,
                stop: Arc::clone(&stop_rules),
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
            },
            LoopRecording { outputs, triggers },
        ))
    }

    /// Triggers handed to an output so far.
    pub fn triggers_sent(&self) -> u64 {
        self.outputs
            .as_ref()
            .map_or(0, |o| o.sent.load(Ordering::Relaxed))
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
        let (triggers_sent, outputs) = match self.outputs {
            Some(o) => {
                let sent = o.sent.load(Ordering::Relaxed);
                (sent, o.stop())
            }
            None => (0, Vec::new()),
        };
        LoopReport {
            producers,
            rules,
            triggers_sent,
            outputs,
        }
    }
}
