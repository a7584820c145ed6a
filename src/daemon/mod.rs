//! The control plane of `behavd serve`: what runs beside the data plane and never inside it.
//! The data plane (src/pipeline, src/source, src/infer, src/rules, src/stim, src/record) never
//! imports this module.

pub mod metrics;
pub mod systemd;
pub mod systemd_hooks;
pub mod watchdog;
