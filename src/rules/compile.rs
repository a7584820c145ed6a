//! Checks one `[[rule]]` table and compiles it into a [`Gate`].

use crate::config::rule::RuleConfig;

use super::error::{RuleError, RuleProblem};
use super::expr::{ExprError, Program, nearest};
use super::gate::{Debounce, Gate};
use super::trigger::{self, s_to_ns};
use super::variables::{GroupId, VariableTable};

/// Ground-truth labels `expect` may name.
pub const EXPECT_LABELS: [&str; 4] = ["explore", "grooming", "mid_rearing", "wall_rearing"];

/// One compiled rule, before it joins a [`RuleSet`](super::RuleSet).
pub(super) struct Compiled {
    pub gate: Gate,
    pub clock: GroupId,
    pub definition: String,
}

/// Where errors about rule `index` point.
pub(super) struct At<'a> {
    pub index: usize,
    pub name: &'a str,
}

impl At<'_> {
    pub fn invalid(&self, key: &'static str, problem: RuleProblem) -> RuleError {
        RuleError::Invalid {
            rule: self.label(),
            key_path: self.path(key),
            key,
            problem,
        }
    }

    fn expression(&self, key: &'static str, source: ExprError) -> RuleError {
        RuleError::Expression {
            rule: self.label(),
            key_path: self.path(key),
            key,
            source,
        }
    }

    fn label(&self) -> String {
        format!("rule[{}] {:?}", self.index, self.name)
    }

    fn path(&self, key: &str) -> String {
        format!("rule[{}].{key}", self.index)
    }
}

/// Whether `name` is a valid rule name (non-empty; ASCII letters, digits, `_`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles rule `at.index`; `output` is the id already assigned to its trigger's output.
pub(super) fn compile(
    at: &At,
    rule: &RuleConfig,
    variables: &VariableTable,
    output: u16,
) -> Result<Compiled, RuleError> {
    let known: Vec<&str> = variables.names().collect();
    let resolve = |name: &str| variables.slot(name);
    let when = Program::compile_condition(&rule.when, &resolve, &known)
        .map_err(|e| at.expression("when", e))?;
    let release = match &rule.release {
        Some(text) => Some(
            Program::compile_condition(text, &resolve, &known)
                .map_err(|e| at.expression("release", e))?,
        ),
        None => None,
    };
    let debounce = match (rule.for_frames, rule.for_s) {
        (Some(_), Some(_)) => return Err(at.invalid("for_s", RuleProblem::ForFramesAndForS)),
        (Some(0), None) => return Err(at.invalid("for_frames", out_of_range(0, "at least 1"))),
        (Some(n), None) => Debounce::Frames(n),
        (None, Some(s)) if !(s.is_finite() && s >= 0.0) => {
            return Err(at.invalid("for_s", out_of_range(s, "a number >= 0")));
        }
        (None, Some(s)) => Debounce::Duration(s_to_ns(s)),
        (None, None) => Debounce::Frames(1),
    };
    let refractory = rule.refractory_s;
    if !(refractory.is_finite() && refractory >= 0.0) {
        return Err(at.invalid("refractory_s", out_of_range(refractory, "a number >= 0")));
    }
    if rule.max_per_minute == Some(0) {
        return Err(at.invalid("max_per_minute", out_of_range(0, "at least 1")));
    }
    let clock = match &rule.clock {
        Some(name) => variables.group(name).ok_or_else(|| {
            at.invalid(
                "clock",
                RuleProblem::UnknownClock {
                    name: name.clone(),
                    suggestion: nearest(name, variables.group_names()),
                },
            )
        })?,
        None => when
            .slots_read()
            .next()
            .and_then(|slot| variables.group_of_slot(slot))
            .ok_or_else(|| at.invalid("clock", RuleProblem::NoClock))?,
    };
    if let Some(label) = &rule.expect
        && !EXPECT_LABELS.contains(&label.as_str())
    {
        return Err(at.invalid("expect", RuleProblem::UnknownExpect(label.clone())));
    }
    let rule_id = u32::try_from(at.index).expect("rule count fits u32");
    let command = trigger::command(&rule.trigger, rule_id, output)
        .map_err(|(key, problem)| at.invalid(key, problem))?;
    let definition = definition(rule, debounce, variables.group_name(clock));
    let gate = Gate::new(
        at.index,
        when,
        release,
        debounce,
        s_to_ns(refractory),
        rule.max_per_minute,
        command,
    );
    Ok(Compiled {
        gate,
        clock,
        definition,
    })
}

fn out_of_range(value: impl ToString, need: &'static str) -> RuleProblem {
    RuleProblem::OutOfRange {
        value: value.to_string(),
        need,
    }
}

/// Canonical one-line text of a rule, e.g.
/// `when=behavior.wall_rearing > 0.8; for_frames=3; refractory_s=2; clock=behavior;
/// trigger.output=stim; trigger.channel=0; trigger.pulse_width_ms=5; trigger.pulses=1`.
/// Expressions keep their text with runs of whitespace collapsed; resolved defaults
/// (`for_frames`, `clock`) are spelled out; unset options are left out.
fn definition(rule: &RuleConfig, debounce: Debounce, clock: &str) -> String {
    let mut parts = vec![format!("when={}", one_line(&rule.when))];
    if let Some(release) = &rule.release {
        parts.push(format!("release={}", one_line(release)));
    }
    parts.push(match (debounce, rule.for_s) {
        (Debounce::Duration(_), Some(s)) => format!("for_s={s}"),
        (Debounce::Frames(n), _) => format!("for_frames={n}"),
        (Debounce::Duration(ns), None) => format!("for_s={}", ns as f64 / 1e9),
    });
    parts.push(format!("refractory_s={}", rule.refractory_s));
    if let Some(max) = rule.max_per_minute {
        parts.push(format!("max_per_minute={max}"));
    }
    parts.push(format!("clock={clock}"));
    if let Some(expect) = &rule.expect {
        parts.push(format!("expect={expect}"));
    }
    let t = &rule.trigger;
    parts.push(format!("trigger.output={}", t.output));
    parts.push(format!("trigger.channel={}", t.channel));
    parts.push(format!("trigger.pulse_width_ms={}", t.pulse_width_ms));
    parts.push(format!("trigger.pulses={}", t.pulses));
    if let Some(period) = t.period_ms {
        parts.push(format!("trigger.period_ms={period}"));
    }
    parts.join("; ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
