//! All rules of a rig, compiled, grouped by the clock that evaluates them.

use crate::config::rule::RuleConfig;

use super::compile::{At, compile, valid_name};
use super::error::{RuleError, RuleProblem};
use super::gate::{Fire, Gate, RuleCounters};
use super::trigger::TriggerCommand;
use super::variables::{GroupId, VariableTable};

/// The compiled `[[rule]]` tables. Rule `i` is the config's `rule[i]`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    gates: Vec<Gate>,
    names: Vec<String>,
    definitions: Vec<String>,
    expects: Vec<Option<String>>,
    clocks: Vec<GroupId>,
    /// Per group of the variable table: the rules it clocks, in rule order.
    by_clock: Vec<Vec<usize>>,
    outputs: Vec<String>,
}

impl RuleSet {
    /// Checks and compiles `rules` against the variables the rig provides. Stops at the first
    /// problem.
    pub fn compile(rules: &[RuleConfig], variables: &VariableTable) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet {
            gates: Vec::with_capacity(rules.len()),
            names: Vec::with_capacity(rules.len()),
            definitions: Vec::with_capacity(rules.len()),
            expects: Vec::with_capacity(rules.len()),
            clocks: Vec::with_capacity(rules.len()),
            by_clock: vec![Vec::new(); variables.group_count()],
            outputs: Vec::new(),
        };
        for (index, rule) in rules.iter().enumerate() {
            let at = At {
                index,
                name: &rule.name,
            };
            if !valid_name(&rule.name) {
                return Err(at.invalid("name", RuleProblem::BadName(rule.name.clone())));
            }
            if let Some(first) = set.names.iter().position(|n| *n == rule.name) {
                return Err(at.invalid("name", RuleProblem::DuplicateName { first }));
            }
            let output = match set.outputs.iter().position(|o| *o == rule.trigger.output) {
                Some(id) => id,
                None => {
                    set.outputs.push(rule.trigger.output.clone());
                    set.outputs.len() - 1
                }
            };
            let output = u16::try_from(output).expect("fewer than 65536 outputs");
            let compiled = compile(&at, rule, variables, output)?;
            set.by_clock[compiled.clock].push(index);
            set.clocks.push(compiled.clock);
            set.gates.push(compiled.gate);
            set.definitions.push(compiled.definition);
            set.names.push(rule.name.clone());
            set.expects.push(rule.expect.clone());
        }
        Ok(set)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// The rules evaluated on each new output of `group` (empty for an unknown group).
    pub fn rules_for_clock(&self, group: GroupId) -> &[usize] {
        self.by_clock.get(group).map_or(&[], Vec::as_slice)
    }

    /// The group whose outputs evaluate rule `rule`.
    pub fn clock(&self, rule: usize) -> GroupId {
        self.clocks[rule]
    }

    /// Evaluates rule `rule` on a new output of its clock captured at `t_ns`; returns the
    /// trigger when it fires. Never allocates.
    pub fn update(&mut self, rule: usize, slots: &[f64], t_ns: u64) -> Option<Fire> {
        self.gates[rule].update(slots, t_ns)
    }

    /// Evaluates every rule clocked by `group` (in rule order) and hands each fire to
    /// `on_fire`. Never allocates.
    pub fn update_clock(
        &mut self,
        group: GroupId,
        slots: &[f64],
        t_ns: u64,
        mut on_fire: impl FnMut(Fire),
    ) {
        let Some(rules) = self.by_clock.get(group) else {
            return;
        };
        for &rule in rules {
            if let Some(fire) = self.gates[rule].update(slots, t_ns) {
                on_fire(fire);
            }
        }
    }

    /// Rule `rule`'s counters.
    pub fn counters(&self, rule: usize) -> RuleCounters {
        self.gates[rule].counters()
    }

    /// Whether rule `rule` is active (armed, not yet released).
    pub fn is_active(&self, rule: usize) -> bool {
        self.gates[rule].is_active()
    }

    /// Rule `rule`'s name.
    pub fn name(&self, rule: usize) -> &str {
        &self.names[rule]
    }

    /// Rule `rule`'s canonical definition text (`when=...; for_frames=3; refractory_s=2; ...`),
    /// for the session file's rules table.
    pub fn definition(&self, rule: usize) -> &str {
        &self.definitions[rule]
    }

    /// The ground-truth label rule `rule` is meant to catch, if set.
    pub fn expect(&self, rule: usize) -> Option<&str> {
        self.expects[rule].as_deref()
    }

    /// The command rule `rule` sends.
    pub fn command(&self, rule: usize) -> TriggerCommand {
        self.gates[rule].command()
    }

    /// Output names; [`TriggerCommand::output`] indexes this list.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
