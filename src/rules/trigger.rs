//! The stimulator command a rule sends when it fires.

use crate::config::rule::TriggerConfig;

use super::error::RuleProblem;

/// What to send when a rule fires: plain numbers, `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerCommand {
    /// Index of the rule in its [`RuleSet`](super::RuleSet).
    pub rule: u32,
    /// Output id: index into [`RuleSet::output_names`](super::RuleSet::output_names).
    pub output: u16,
    /// Channel on that output (0-based).
    pub channel: u8,
    /// Width of each pulse, nanoseconds (> 0).
    pub pulse_width_ns: u64,
    /// Number of pulses in the train (≥ 1).
    pub pulses: u16,
    /// Rising edge to rising edge, nanoseconds; greater than `pulse_width_ns` when given, and
    /// 0 for a single pulse without `period_ms`.
    pub period_ns: u64,
}

/// A command's output is resolved by the caller; this checks and converts the rest.
/// Errors come with the key (`trigger.…`) they concern.
pub(super) fn command(
    config: &TriggerConfig,
    rule: u32,
    output: u16,
) -> Result<TriggerCommand, (&'static str, RuleProblem)> {
    let width = config.pulse_width_ms;
    let pulse_width_ns = ms_to_ns(width);
    if !(width.is_finite() && width > 0.0 && pulse_width_ns > 0) {
        return Err((
            "trigger.pulse_width_ms",
            RuleProblem::OutOfRange {
                value: width.to_string(),
                need: "a number > 0 (at least 1 ns)",
            },
        ));
    }
    if config.pulses < 1 {
        return Err((
            "trigger.pulses",
            RuleProblem::OutOfRange {
                value: config.pulses.to_string(),
                need: "at least 1",
            },
        ));
    }
    let period_ns = match config.period_ms {
        None if config.pulses > 1 => {
            return Err(("trigger.period_ms", RuleProblem::PeriodRequired));
        }
        None => 0,
        Some(period) => {
            let ns = ms_to_ns(period);
            if !(period.is_finite() && ns > pulse_width_ns) {
                return Err((
                    "trigger.period_ms",
                    RuleProblem::OutOfRange {
                        value: period.to_string(),
                        need: "greater than `pulse_width_ms`",
                    },
                ));
            }
            ns
        }
    };
    Ok(TriggerCommand {
        rule,
        output,
        channel: config.channel,
        pulse_width_ns,
        pulses: config.pulses,
        period_ns,
    })
}

/// Milliseconds to whole nanoseconds (rounded; saturating; NaN → 0).
fn ms_to_ns(ms: f64) -> u64 {
    (ms * 1e6).round() as u64
}

/// Seconds to whole nanoseconds (rounded; saturating; NaN → 0).
pub(super) fn s_to_ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}
