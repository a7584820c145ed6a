//! Wires a rig config into running threads: one capture thread per source, a recorder, the
//! rings between them, and the shutdown order (stop sources → drain rings → close file).

mod capture;
pub mod closed_loop;
pub mod controls;
mod counter;
pub mod decide;
pub mod engine;
pub mod gate;
pub mod mailbox;
pub mod outputs;
mod plan;
mod session;
pub mod summary;
pub mod trigger_sink;
pub mod workers;

pub use capture::{CaptureEnd, CaptureLoop};
pub use counter::CounterUnwrapper;
pub use session::{RunOptions, RunningSession, SessionSummary, SetupInterrupted, StreamSummary};

use crate::config::SourceConfig;
use crate::source::miniscope::source::MiniscopeSource;
use crate::source::synthetic::{SyntheticBehaviorCamera, SyntheticMiniscope};
use crate::source::v4l2::V4l2Source;
use crate::source::{Source, SourceError};

/// Builds the source a `[[source]]` entry describes (opening real devices: this fails when a
/// camera is missing or cannot do what the entry asks).
pub fn build_source(config: &SourceConfig) -> Result<Box<dyn Source>, SourceError> {
    Ok(match config {
        SourceConfig::SyntheticMiniscope(c) => Box::new(SyntheticMiniscope::new(c)),
        SourceConfig::SyntheticBehavior(c) => Box::new(SyntheticBehaviorCamera::new(c)),
        SourceConfig::V4l2(c) => Box::new(V4l2Source::new(c).map_err(|e| SourceError::Fatal {
            device: c.device.clone(),
            reason: e.to_string(),
        })?),
        SourceConfig::Miniscope(c) => Box::new(MiniscopeSource::open(c)?),
        #[cfg(feature = "nokhwa")]
        SourceConfig::Nokhwa(c) => Box::new(crate::source::nokhwa_camera::NokhwaCamera::open(
            &c.device,
            crate::source::nokhwa_camera::stream_info(
                &c.name,
                c.width,
                c.height,
                c.fps,
                c.pixel_format,
            ),
        )?),
        #[cfg(not(feature = "nokhwa"))]
        SourceConfig::Nokhwa(c) => {
            return Err(SourceError::Fatal {
                device: c.device.clone(),
                reason: "this behavd was built without the `nokhwa` feature (cargo build --features nokhwa)".into(),
            });
        }
    })
}

/// Whether the source's frames carry simulator ground truth worth recording.
pub fn has_ground_truth(config: &SourceConfig) -> bool {
    matches!(config, SourceConfig::SyntheticBehavior(_))
}
