//! `[[rule]]`: closed-loop rules that turn model outputs and neural signals into trigger commands.

use serde::{Deserialize, Serialize};

/// One closed-loop rule: a condition over model outputs and signals, its timing gates and the
/// trigger it fires.
///
/// Variables in `when` / `release` are `<model>.<output label>` (e.g. `behavior.wall_rearing`,
/// `pose.nose_x`) or `<signal group>.<roi>` (e.g. `miniscope.roi3`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule name (letters, digits, `_`); names the rule in the file and the summary.
    pub name: String,
    /// The condition that arms the rule, e.g. `behavior.wall_rearing > 0.8 && miniscope.roi3 > 2.0`.
    pub when: String,
    /// Optional release condition (hysteresis): once active, the rule stays active until this
    /// holds. Default: the rule releases as soon as `when` is false.
    #[serde(default)]
    pub release: Option<String>,
    /// `when` must hold on this many consecutive evaluations before the rule activates. Default 1.
    #[serde(default)]
    pub for_frames: Option<u32>,
    /// `when` must hold continuously for this many seconds (on the clock of the evaluated
    /// frames) before the rule activates. Exclusive with `for_frames`.
    #[serde(default)]
    pub for_s: Option<f64>,
    /// After a trigger, no other trigger from this rule for this many seconds. Default 0.
    /// Measured from the last trigger actually sent; an activation inside it is suppressed
    /// (counted) and does not fire later while the rule stays active.
    #[serde(default)]
    pub refractory_s: f64,
    /// At most this many triggers from this rule in any 60 s window (≥ 1). Default: no limit.
    #[serde(default)]
    pub max_per_minute: Option<u32>,
    /// The model (or signal group) whose every new output evaluates the rule. Default: the first
    /// model or signal group named in `when`.
    #[serde(default)]
    pub clock: Option<String>,
    /// Ground-truth behavior label this rule is meant to catch (`grooming`, `mid_rearing`,
    /// `wall_rearing`, `explore`); used only to score precision/recall on synthetic rigs.
    #[serde(default)]
    pub expect: Option<String>,
    /// What to send when the rule fires.
    pub trigger: TriggerConfig,
}

/// `[rule.trigger]`: the stimulator command a rule sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Stimulator output name (an `[[output]]`; the demo's emulated stimulator is `stim`).
    #[serde(default = "default_output")]
    pub output: String,
    /// Channel on that output (0-based).
    #[serde(default)]
    pub channel: u8,
    /// Width of each pulse in milliseconds.
    pub pulse_width_ms: f64,
    /// Number of pulses in the train. Default 1.
    #[serde(default = "default_pulses")]
    pub pulses: u16,
    /// Period of the train (rising edge to rising edge) in milliseconds; needed when `pulses > 1`,
    /// and greater than `pulse_width_ms` when given.
    #[serde(default)]
    pub period_ms: Option<f64>,
}

fn default_output() -> String {
    "stim".into()
}
fn default_pulses() -> u16 {
    1
}
