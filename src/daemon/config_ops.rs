//! Config get / validate / load: the same checks as `behavd check` (parse, validate, frame-pool
//! memory, closed-loop plan without loading models), every error located file:line:column:key.

use std::path::Path;

use serde_json::{Value, json};

use crate::config::memory::PoolBudget;
use crate::config::{ConfigError, ConfigWarning, LoadedConfig, Review};
use crate::pipeline::closed_loop::ClosedLoopPlan;

use super::requests::ConfigSource;

/// What checking a config found.
pub struct Checked {
    /// The config, when it has no error.
    pub loaded: Option<LoadedConfig>,
    /// Its errors.
    pub errors: Vec<ConfigError>,
    /// Its warnings.
    pub warnings: Vec<ConfigWarning>,
    /// Where it came from.
    pub origin: String,
}

impl Checked {
    /// The report as JSON, in the shape of `behavd check --json`'s first fields.
    pub fn report(&self) -> Value {
        json!({
            "ok": self.errors.is_empty(),
            "file": self.origin,
            "errors": self.errors.iter().map(error_json).collect::<Vec<_>>(),
            "warnings": self.warnings,
        })
    }

    /// The first error in the words of `behavd check` (`file:line:column: key `k`: why`).
    pub fn first_error(&self) -> Option<(String, Option<String>)> {
        self.errors
            .first()
            .map(|e| (e.to_string(), e.key().map(str::to_string)))
    }
}

/// Checks a config from `source`.
pub fn check(source: ConfigSource) -> Checked {
    match source {
        ConfigSource::Path(path) => {
            check_review(LoadedConfig::review_file(&path), path.display().to_string())
        }
        ConfigSource::Text(text) => check_review(
            LoadedConfig::review_str(&text, "<request>"),
            "<request>".into(),
        ),
    }
}

/// Checks a config file (what `serve` does at its start).
pub fn check_file(path: &Path) -> Checked {
    check(ConfigSource::Path(path.to_path_buf()))
}

/// Adds the frame-pool and closed-loop checks to a review.
pub fn check_review(review: Review, origin: String) -> Checked {
    let mut errors = review.errors;
    let warnings = review.warnings;
    if let Some(loaded) = &review.loaded {
        if let Err(e) = PoolBudget::of(&loaded.config).check() {
            errors.push(loaded.invalid("recording.ring_seconds", e.to_string()));
        }
        if let Err(e) = ClosedLoopPlan::prepare(loaded, false) {
            errors.push(loaded.invalid(&e.key, e.message));
        }
    }
    Checked {
        loaded: review.loaded.filter(|_| errors.is_empty()),
        errors,
        warnings,
        origin,
    }
}

fn error_json(e: &ConfigError) -> Value {
    let (line, column) = e.position().unzip();
    json!({
        "file": e.file(),
        "line": line,
        "column": column,
        "key": e.key(),
        "message": e.reason(),
        "text": e.to_string(),
    })
}

/// `GET /v1/config`: where the config came from, its text and what it parsed to.
pub fn describe(loaded: &LoadedConfig) -> Value {
    json!({
        "file": loaded.origin,
        "text": loaded.text,
        "config": loaded.config,
    })
}
