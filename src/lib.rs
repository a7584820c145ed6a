//! behavd: a closed-loop behavior daemon for Miniscope rigs.
//!
//! The data plane (capture → pools/rings → recorder) runs on plain OS threads; see
//! `docs/architecture.md` for the map of modules.

#![warn(missing_docs)]

pub mod bench;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod frame;
pub mod fsutil;
pub mod heartbeat;
pub mod infer;
pub mod logging;
pub mod pipeline;
pub mod realtime;
pub mod record;
pub mod reply;
pub mod rules;
pub mod source;
pub mod stats;
pub mod stim;
pub mod telemetry;
#[cfg(test)]
mod test_alloc;
pub mod usbip;
