//! `[[signal]]`: live ΔF/F of regions of interest on a Miniscope stream, usable in rules as
//! `<signal name>.<roi name>`.

use serde::{Deserialize, Serialize};

/// One group of ROI signals on one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// Group name (letters, digits, `_`), e.g. `miniscope`; rules read `miniscope.roi3`.
    pub name: String,
    /// The stream the ROIs are on (usually the Miniscope).
    pub source: String,
    /// Time constant of the running baseline F0, in seconds. Default 10.
    #[serde(default = "default_baseline")]
    pub baseline_s: f64,
    /// The regions.
    pub roi: Vec<RoiConfig>,
}

/// `[[signal.roi]]`: a disc of pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoiConfig {
    /// ROI name (letters, digits, `_`).
    pub name: String,
    /// Centre x in frame pixels.
    pub x: f32,
    /// Centre y in frame pixels.
    pub y: f32,
    /// Radius in pixels.
    pub radius: f32,
}

fn default_baseline() -> f64 {
    10.0
}
