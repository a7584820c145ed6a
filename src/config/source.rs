//! `[[source]]` entries of the rig config.

use serde::{Deserialize, Serialize};

use crate::frame::PixelFormat;

pub use super::miniscope::{ControlSetting, MiniscopeConfig, TriggerSetting};
pub use super::v4l2::{V4l2Config, V4l2Format};

/// One frame source of the rig, selected by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A simulated UCLA Miniscope V4 (calcium imaging of neurons tuned to behavior).
    SyntheticMiniscope(SyntheticMiniscopeConfig),
    /// A simulated top-down behavior camera filming the same simulated animal.
    SyntheticBehavior(SyntheticBehaviorConfig),
    /// A real camera through Video4Linux2.
    V4l2(V4l2Config),
    /// A UCLA Miniscope through its DAQ (V4L2 frames + I²C over UVC controls).
    Miniscope(MiniscopeConfig),
    /// A camera through nokhwa (macOS/Windows; needs the `nokhwa` build feature; untested).
    Nokhwa(NokhwaConfig),
}

/// `kind = "nokhwa"`: a camera through the nokhwa crate, for rigs that are not Linux. Only
/// in builds with the `nokhwa` feature; untested on hardware (docs/cameras.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NokhwaConfig {
    /// Stream name (NWB object name).
    pub name: String,
    /// Camera index (`"0"`) or the name nokhwa lists. Default `"0"`.
    #[serde(default = "default_nokhwa_device")]
    pub device: String,
    /// Frame width. Default 640.
    #[serde(default = "default_nokhwa_width")]
    pub width: u32,
    /// Frame height. Default 480.
    #[serde(default = "default_nokhwa_height")]
    pub height: u32,
    /// Frames per second asked (closest the camera offers). Default 30.
    #[serde(default = "default_nokhwa_fps")]
    pub fps: f64,
    /// Stored pixel format. Default `gray8`.
    #[serde(default = "default_gray")]
    pub pixel_format: PixelFormat,
    /// Compression override for this stream.
    #[serde(default)]
    pub compression: Option<super::Compression>,
}

fn default_nokhwa_device() -> String {
    "0".into()
}
fn default_nokhwa_width() -> u32 {
    640
}
fn default_nokhwa_height() -> u32 {
    480
}
fn default_nokhwa_fps() -> f64 {
    30.0
}
fn default_gray() -> PixelFormat {
    PixelFormat::Gray8
}

impl SourceConfig {
    /// The stream name of this source.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::SyntheticMiniscope(c) => &c.name,
            SourceConfig::SyntheticBehavior(c) => &c.name,
            SourceConfig::V4l2(c) => &c.name,
            SourceConfig::Miniscope(c) => &c.name,
            SourceConfig::Nokhwa(c) => &c.name,
        }
    }

    /// The nominal frame rate.
    pub fn fps(&self) -> f64 {
        match self {
            SourceConfig::SyntheticMiniscope(c) => c.fps,
            SourceConfig::SyntheticBehavior(c) => c.fps,
            SourceConfig::V4l2(c) => c.fps,
            SourceConfig::Miniscope(c) => c.fps(),
            SourceConfig::Nokhwa(c) => c.fps,
        }
    }

    /// Frame width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            SourceConfig::SyntheticMiniscope(c) => (c.width, c.height),
            SourceConfig::SyntheticBehavior(c) => (c.width, c.height),
            SourceConfig::V4l2(c) => (c.width, c.height),
            SourceConfig::Miniscope(c) => c.size(),
            SourceConfig::Nokhwa(c) => (c.width, c.height),
        }
    }

    /// The frame geometry the source delivers.
    pub fn geometry(&self) -> crate::frame::FrameGeometry {
        let (width, height) = self.size();
        let format = match self {
            SourceConfig::SyntheticMiniscope(_) => PixelFormat::Gray8,
            SourceConfig::SyntheticBehavior(c) => c.pixel_format,
            SourceConfig::V4l2(c) => c.pixel_format,
            SourceConfig::Miniscope(_) => PixelFormat::Gray8,
            SourceConfig::Nokhwa(c) => c.pixel_format,
        };
        crate::frame::FrameGeometry {
            width,
            height,
            format,
        }
    }

    /// The per-stream compression override, if any.
    pub fn compression(&self) -> Option<&super::Compression> {
        match self {
            SourceConfig::SyntheticMiniscope(c) => c.compression.as_ref(),
            SourceConfig::SyntheticBehavior(c) => c.compression.as_ref(),
            SourceConfig::V4l2(c) => c.compression.as_ref(),
            SourceConfig::Miniscope(c) => c.compression.as_ref(),
            SourceConfig::Nokhwa(c) => c.compression.as_ref(),
        }
    }
}

/// How a synthetic source paces its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// One frame per 1/fps on the monotonic clock, like a camera.
    #[default]
    Realtime,
    /// As fast as the machine can make frames (benchmarks); timestamps are still nominal-rate based.
    Fast,
}

/// `kind = "synthetic-miniscope"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticMiniscopeConfig {
    /// Stream name (NWB object name). Default `Miniscope`.
    #[serde(default = "default_miniscope_name")]
    pub name: String,
    /// Frames per second. Default 30.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// Frame width in pixels. Default 608.
    #[serde(default = "default_miniscope_side")]
    pub width: u32,
    /// Frame height in pixels. Default 608.
    #[serde(default = "default_miniscope_side")]
    pub height: u32,
    /// Number of simulated neurons (50–200 is realistic). Default 120.
    #[serde(default = "default_neurons")]
    pub neurons: u32,
    /// Random seed; the same seed gives the same frames and behavior. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// First value of the 16-bit DAQ frame counter (it wraps at 65536). Default 0.
    #[serde(default)]
    pub counter_start: u16,
    /// Frame pacing. Default `realtime`.
    #[serde(default)]
    pub pacing: Pacing,
    /// Compression override for this stream (else `[recording].compression`).
    #[serde(default)]
    pub compression: Option<super::Compression>,
    /// Fault injection for tests.
    #[serde(default)]
    pub faults: FaultPlan,
}

/// `kind = "synthetic-behavior"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticBehaviorConfig {
    /// Stream name (NWB object name). Default `BehaviorCam0`.
    #[serde(default = "default_behavior_name")]
    pub name: String,
    /// Frames per second. Default 30.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// Frame width in pixels. Default 640.
    #[serde(default = "default_behavior_width")]
    pub width: u32,
    /// Frame height in pixels. Default 480.
    #[serde(default = "default_behavior_height")]
    pub height: u32,
    /// Pixel format: `gray8` or `rgb8`. Default `gray8`.
    #[serde(default = "default_pixel_format")]
    pub pixel_format: PixelFormat,
    /// Random seed of the simulated animal; give it the same seed as the Miniscope so both
    /// film the same animal. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Frame pacing. Default `realtime`.
    #[serde(default)]
    pub pacing: Pacing,
    /// Compression override for this stream (else `[recording].compression`).
    #[serde(default)]
    pub compression: Option<super::Compression>,
    /// Fault injection for tests.
    #[serde(default)]
    pub faults: FaultPlan,
}

/// Faults a synthetic source injects, at given device frame numbers (0-based, before wrapping).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Device frames the camera skips: their counter values are never delivered.
    #[serde(default)]
    pub drop_frames: Vec<u64>,
    /// Delivery stalls: frames falling due during the stall are lost by the device.
    #[serde(default)]
    pub stall: Vec<TimedFault>,
    /// Disconnections: `next_frame` reports `Disconnected`, `reconnect` fails until `ms` have passed.
    #[serde(default)]
    pub disconnect: Vec<TimedFault>,
}

/// A fault that starts at a device frame and lasts a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    /// Device frame number at which the fault starts.
    pub at_frame: u64,
    /// How long it lasts, in milliseconds.
    pub ms: u64,
}

fn default_miniscope_name() -> String {
    "Miniscope".into()
}
fn default_behavior_name() -> String {
    "BehaviorCam0".into()
}
fn default_fps() -> f64 {
    30.0
}
fn default_miniscope_side() -> u32 {
    608
}
fn default_neurons() -> u32 {
    120
}
fn default_seed() -> u64 {
    1
}
fn default_behavior_width() -> u32 {
    640
}
fn default_behavior_height() -> u32 {
    480
}
fn default_pixel_format() -> PixelFormat {
    PixelFormat::Gray8
}
