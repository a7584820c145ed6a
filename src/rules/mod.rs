//! Closed-loop rules: compiled conditions over model outputs and neural signals, with
//! debounce, hysteresis, refractory periods and rate limits, turned into trigger commands.
//!
//! Setup (not on the hot path): the pipeline builds a [`VariableTable`] (one group per model
//! or signal group, one slot per output label / ROI), then [`RuleSet::compile`] checks the
//! `[[rule]]` tables against it. Running: the pipeline keeps one `f64` slot array (missing
//! values are `NaN`), writes a group's slots when that model or signal group produces an
//! output, and calls [`RuleSet::update_clock`] for that group with the frame's capture time.
//! Evaluation allocates nothing. The expression language is documented in [`expr`].

pub mod arming;
mod compile;
pub mod error;
pub mod expr;
pub mod gate;
mod set;
pub mod trigger;
pub mod variables;

pub use arming::RuleArming;
pub use compile::{EXPECT_LABELS, valid_name};
pub use error::{RuleError, RuleProblem};
pub use expr::{ExprError, ExprType, Program};
pub use gate::{Debounce, Fire, Gate, RuleCounters};
pub use set::RuleSet;
pub use trigger::TriggerCommand;
pub use variables::{GroupId, VariableError, VariableTable};

#[cfg(test)]
mod tests_expr;
#[cfg(test)]
mod tests_gate;
#[cfg(test)]
mod tests_set;
