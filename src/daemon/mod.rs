//! The control plane: `behavd serve` and what it exposes.

pub mod metrics;
