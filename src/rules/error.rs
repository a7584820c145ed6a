//! Errors from compiling `[[rule]]` tables.

use thiserror::Error;

use super::expr::ExprError;

/// Why a `[[rule]]` table was rejected. Every message names the rule (`rule[2] "wall_stim"`)
/// and the key; [`RuleError::key_path`] gives the dotted path (`rule[2].when`) for locating
/// the key in the config file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleError {
    /// `when` or `release` does not compile.
    #[error("{rule}: `{key}`: {source}")]
    Expression {
        /// The rule, as `rule[i] "name"`.
        rule: String,
        /// Dotted path of the key, e.g. `rule[2].when`.
        key_path: String,
        /// The key within the rule table (`when` or `release`).
        key: &'static str,
        /// What is wrong with the expression.
        source: ExprError,
    },
    /// Any other key holds a value the rule cannot use.
    #[error("{rule}: `{key}`: {problem}")]
    Invalid {
        /// The rule, as `rule[i] "name"`.
        rule: String,
        /// Dotted path of the key, e.g. `rule[2].trigger.period_ms`.
        key_path: String,
        /// The key within the rule table, e.g. `for_s` or `trigger.period_ms`.
        key: &'static str,
        /// What is wrong.
        problem: RuleProblem,
    },
}

impl RuleError {
    /// Dotted path of the offending key, e.g. `rule[2].when`.
    pub fn key_path(&self) -> &str {
        match self {
            RuleError::Expression { key_path, .. } | RuleError::Invalid { key_path, .. } => {
                key_path
            }
        }
    }

    /// The offending key within the rule table, e.g. `when` or `trigger.pulses`.
    pub fn key(&self) -> &'static str {
        match self {
            RuleError::Expression { key, .. } | RuleError::Invalid { key, .. } => key,
        }
    }
}

/// What is wrong with a rule's value (other than its expressions).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleProblem {
    /// The name is empty or has characters other than letters, digits and `_`.
    #[error("`{0}` is not a valid rule name (letters, digits and `_` only)")]
    BadName(String),
    /// Another rule has the same name.
    #[error("the name is already used by rule[{first}]")]
    DuplicateName {
        /// Index of the first rule with this name.
        first: usize,
    },
    /// Both `for_frames` and `for_s` are set.
    #[error("`for_frames` and `for_s` are exclusive; set one of them")]
    ForFramesAndForS,
    /// A number outside its allowed range.
    #[error("is {value}, must be {need}")]
    OutOfRange {
        /// The value as given.
        value: String,
        /// The allowed range, in words.
        need: &'static str,
    },
    /// `trigger.period_ms` is missing for a pulse train.
    #[error("is required when `pulses` > 1")]
    PeriodRequired,
    /// `clock` names no model or signal group.
    #[error("`{name}` is not a model or signal group{}", match .suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    })]
    UnknownClock {
        /// The name as given.
        name: String,
        /// The closest group name, if one is close.
        suggestion: Option<String>,
    },
    /// `clock` is unset and `when` reads no variable to take it from.
    #[error("must be set: `when` reads no variable to take the clock from")]
    NoClock,
    /// `expect` is not a ground-truth behavior label.
    #[error("`{0}` is not a behavior label (explore, grooming, mid_rearing, wall_rearing)")]
    UnknownExpect(String),
}
