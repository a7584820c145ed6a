//! Frame sources: the [`Source`] trait and its backends.

pub mod live;
pub mod miniscope;
#[cfg(feature = "nokhwa")]
pub mod nokhwa_camera;
pub mod stop;
pub mod synthetic;
pub mod v4l2;

use crate::frame::{CaptureStamp, FrameGeometry};

pub use stop::CaptureStop;

/// Static description of the stream a source produces.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Stream name, unique in the rig (also the NWB object name, e.g. `Miniscope`, `BehaviorCam0`).
    pub name: String,
    /// What kind of device this is.
    pub kind: StreamKind,
    /// Frame size and pixel format.
    pub geometry: FrameGeometry,
    /// Nominal frame rate in frames per second.
    pub nominal_fps: f64,
    /// Width in bits of the device frame counter (it wraps at `2^counter_bits`).
    pub counter_bits: u32,
    /// Human-readable device description for the file (model, sensor, lens).
    pub device_description: String,
}

/// Broad class of a stream, which decides how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A calcium-imaging Miniscope (stored as an NWB `OnePhotonSeries`).
    Miniscope,
    /// A behavior camera (stored as an NWB `ImageSeries`).
    BehaviorCamera,
}

/// Why a source could not deliver a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The device went away (unplugged, reset); [`Source::reconnect`] may bring it back.
    #[error("device {device} disconnected: {reason}")]
    Disconnected {
        /// Device name or path.
        device: String,
        /// What happened.
        reason: String,
    },
    /// The source was asked to stop while waiting for a frame.
    #[error("source stopped")]
    Stopped,
    /// An error that reconnecting cannot fix.
    #[error("device {device}: {reason}")]
    Fatal {
        /// Device name or path.
        device: String,
        /// What happened.
        reason: String,
    },
}

/// A device that delivers frames. Owned by exactly one capture thread.
///
/// `next_frame` blocks like a camera's dequeue until the next frame is ready; it must not
/// allocate, and however long the device takes (a stall, a very low frame rate, a camera that
/// stopped delivering) it must return [`SourceError::Stopped`] within
/// [`stop::STOP_POLL_NS`] of the stop handed to [`Source::watch_stop`] being set.
pub trait Source: Send {
    /// What this source produces.
    fn info(&self) -> &StreamInfo;

    /// The stop every blocking wait of this source must watch (see [`CaptureStop`]). Called
    /// once by the capture thread before its first frame.
    fn watch_stop(&mut self, stop: CaptureStop);

    /// Fills `pixels` (exactly `info().geometry.frame_bytes()` long, rows top to bottom)
    /// with the next frame and returns its stamp.
    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError>;

    /// Tries once to reopen a disconnected device. `Ok(())` means frames flow again.
    fn reconnect(&mut self) -> Result<(), SourceError>;

    /// The session is ending: leave the device safe (e.g. a Miniscope's LEDs off). Called
    /// once by the capture thread after its last frame; the default does nothing.
    fn shutdown(&mut self) {}

    /// The controls this stream can change while it runs (LED, EWL, gain, frame rate, ...),
    /// as the device's catalog allows them. The default: none.
    fn live_controls(&self) -> Vec<live::LiveControl> {
        Vec::new()
    }

    /// Applies `value` to control `control` (an index into [`Source::live_controls`]; the
    /// value is already checked against it). Called by the capture thread between two frames;
    /// must not block for long. The default: this stream has no live controls.
    fn apply_control(&mut self, control: usize, value: f64) -> Result<(), String> {
        let _ = value;
        Err(format!(
            "stream {} has no live controls (control #{control})",
            self.info().name
        ))
    }
}

/// The error every source returns when handed a buffer of the wrong size for its frames.
pub fn check_frame_buffer(info: &StreamInfo, pixels: &[u8]) -> Result<(), SourceError> {
    let expected = info.geometry.frame_bytes();
    if pixels.len() == expected {
        return Ok(());
    }
    Err(SourceError::Fatal {
        device: info.name.clone(),
        reason: format!(
            "frame buffer is {} bytes, expected {expected}",
            pixels.len()
        ),
    })
}
