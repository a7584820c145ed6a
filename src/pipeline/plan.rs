//! The closed loop's plan: every model, ROI signal group and rule of a config loaded, checked
//! against each other and ordered (first stages before the models they feed), before any
//! thread runs. `behavd check` uses it without warm-up, `behavd run` with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::LoadedConfig;
use crate::config::model::OutputSpec;
use crate::infer::signals::RoiSignals;
use crate::infer::{ModelFeed, ModelRunner};
use crate::record::loop_records::OutputKind;
use crate::rules::{RuleSet, VariableTable};

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

/// What computes a producer's values: a model (with its gap-reset threshold) or ROI signals.
pub(super) enum Engine {
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
    pub(super) engine: Engine,
}

/// The closed loop of a config, loaded and checked but not running.
pub struct ClosedLoopPlan {
    /// Models first (config order), then signal groups.
    pub producers: Vec<Producer>,
    pub(super) variables: VariableTable,
    pub(super) rules: Option<RuleSet>,
    pub(super) outputs: Vec<crate::config::OutputConfig>,
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
