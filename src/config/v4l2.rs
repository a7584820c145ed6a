//! `kind = "v4l2"`: a real camera through Video4Linux2.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::frame::PixelFormat;

/// `kind = "v4l2"`: a V4L2 capture device (USB/UVC webcam, machine-vision camera, vivid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V4l2Config {
    /// Stream name (NWB object name). Default `BehaviorCam0`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Which device: `/dev/videoN`, a `/dev/v4l/by-id/...` or `/dev/v4l/by-path/...` link,
    /// `card:<card name>` or `usb:<USB serial number>` (resolved through sysfs at every
    /// (re)connection, so the camera is found again after it moves to another node).
    pub device: String,
    /// Pixel format asked of the device. Default `grey`.
    #[serde(default)]
    pub format: V4l2Format,
    /// Pixel format stored: `gray8` (from any device format) or `rgb8` (from `yuyv`/`mjpeg`).
    /// Default `gray8`.
    #[serde(default = "default_pixel_format")]
    pub pixel_format: PixelFormat,
    /// Frame width in pixels. Default 640.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Frame height in pixels. Default 480.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second asked of the device (`VIDIOC_S_PARM`); devices whose rate comes from
    /// elsewhere (HDMI timings) keep theirs, and the rate the device reports is the nominal one.
    /// Default 30.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// Kernel buffers of the mmap stream (2–32). Default 4.
    #[serde(default = "default_buffers")]
    pub buffers: u32,
    /// Bytes per row to ask for (padded rows); default: what the driver chooses.
    #[serde(default)]
    pub bytesperline: Option<u32>,
    /// The stream counts as stalled (and is reopened) when no frame came for this many frame
    /// periods (never less than 0.5 s, nor 3 s for the first frame after opening). Default 30.
    #[serde(default = "default_stall_periods")]
    pub stall_periods: u32,
    /// Camera controls set after opening, by their V4L2 name as `v4l2-ctl -l` prints it
    /// (e.g. `exposure_time_absolute = 100`, `gain = 10`; booleans as 0/1, menus by index).
    #[serde(default)]
    pub controls: BTreeMap<String, i64>,
    /// Compression override for this stream (else `[recording].compression`).
    #[serde(default)]
    pub compression: Option<super::Compression>,
}

/// A pixel format a V4L2 device delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum V4l2Format {
    /// `GREY`: 8-bit luminance.
    #[default]
    Grey,
    /// `YUYV`: packed 4:2:2 (luma of every pixel, chroma shared by pairs).
    Yuyv,
    /// `MJPG`: motion JPEG, decoded off the capture thread.
    Mjpeg,
}

impl V4l2Format {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            V4l2Format::Grey => *b"GREY",
            V4l2Format::Yuyv => *b"YUYV",
            V4l2Format::Mjpeg => *b"MJPG",
        }
    }

    /// Bytes per pixel in the device's rows (0 for compressed formats).
    pub fn bytes_per_pixel(self) -> u32 {
        match self {
            V4l2Format::Grey => 1,
            V4l2Format::Yuyv => 2,
            V4l2Format::Mjpeg => 0,
        }
    }
}

impl V4l2Config {
    /// What is wrong with this entry, as (key under the source, reason).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.device.trim().is_empty() {
            return Some((
                "device",
                "is empty: give /dev/videoN, a /dev/v4l/by-id path, card:<name> or usb:<serial>"
                    .into(),
            ));
        }
        if self.format == V4l2Format::Grey && self.pixel_format != PixelFormat::Gray8 {
            return Some((
                "pixel_format",
                "a `grey` device stream can only be stored as `gray8`".into(),
            ));
        }
        if !(2..=32).contains(&self.buffers) {
            return Some(("buffers", format!("{} is not 2–32", self.buffers)));
        }
        if let Some(bpl) = self.bytesperline {
            let min = self.width * self.format.bytes_per_pixel();
            if self.format == V4l2Format::Mjpeg || bpl < min {
                return Some((
                    "bytesperline",
                    format!("{bpl} is below one row ({min} bytes) or the format is compressed"),
                ));
            }
        }
        if self.stall_periods == 0 {
            return Some(("stall_periods", "must be at least 1".into()));
        }
        None
    }
}

fn default_name() -> String {
    "BehaviorCam0".into()
}
fn default_pixel_format() -> PixelFormat {
    PixelFormat::Gray8
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> f64 {
    30.0
}
fn default_buffers() -> u32 {
    4
}
fn default_stall_periods() -> u32 {
    30
}
