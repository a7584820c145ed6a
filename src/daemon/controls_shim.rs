//! TEMPORARY stand-in for `pipeline::controls::LiveControls` until the live controls are on
//! main: every control (stream controls, arm/disarm, test pulses, notes) answers "not
//! available" (HTTP 501). Deleted when the daemon switches to the real controls.

use serde::Serialize;

/// Why a live control was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// This build has no live controls.
    #[error("live controls are not available in this build yet ({0})")]
    NotAvailable(&'static str),
}

/// A control that was applied.
#[derive(Debug, Clone, Serialize)]
pub struct ControlApplied {
    /// What was done, in words.
    pub applied: String,
}

/// Cheap handle to the (absent) live controls.
#[derive(Clone, Default)]
pub struct LiveControls;

impl LiveControls {
    /// Controls that are all unavailable.
    pub fn unavailable() -> Self {
        Self
    }
    /// Sets a stream control.
    pub fn set(&self, _: &str, _: &str, _: f64, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("stream controls"))
    }
    /// Arms or disarms a rule.
    pub fn arm(&self, _: &str, _: bool, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("arming rules"))
    }
    /// A manual pulse.
    pub fn pulse(&self, _: &str, _: f64, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("manual pulses"))
    }
    /// A note.
    pub fn note(&self, _: &str, _: &str) -> Result<ControlApplied, ControlError> {
        Err(ControlError::NotAvailable("notes during a session"))
    }
}
