//! Wires a rig config into running threads: one capture thread per source, a recorder, the
//! rings between them, and the shutdown order (stop sources → drain rings → close file).

mod capture;
pub mod closed_loop;
mod counter;
pub mod decide;
pub mod mailbox;
pub mod outputs;
mod session;
pub mod summary;
pub mod trigger_sink;
pub mod workers;

pub use capture::{CaptureEnd, CaptureLoop};
pub use counter::CounterUnwrapper;
pub use session::{RunOptions, RunningSession, SessionSummary, StreamSummary};

use crate::config::SourceConfig;
use crate::source::Source;
use crate::source::synthetic::{SyntheticBehaviorCamera, SyntheticMiniscope};

/// Builds the source a `[[source]]` entry describes.
pub fn build_source(config: &SourceConfig) -> Box<dyn Source> {
    match config {
        SourceConfig::SyntheticMiniscope(c) => Box::new(SyntheticMiniscope::new(c)),
        SourceConfig::SyntheticBehavior(c) => Box::new(SyntheticBehaviorCamera::new(c)),
    }
}

/// Whether the source's frames carry simulator ground truth worth recording.
pub fn has_ground_truth(config: &SourceConfig) -> bool {
    matches!(config, SourceConfig::SyntheticBehavior(_))
}
