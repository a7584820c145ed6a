//! What `behavd devices` shows about V4L2 cameras: every capture node with its identity and
//! the formats, sizes and frame rates it offers.

use std::path::Path;

use serde::Serialize;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

use super::select;

/// One V4L2 capture node.
#[derive(Debug, Clone, Serialize)]
pub struct CameraInfo {
    /// `/dev/videoN`.
    pub path: String,
    /// Card name (`VIDIOC_QUERYCAP`); `card:<this>` selects it in the config.
    pub card: String,
    /// Driver, e.g. `uvcvideo`, `vivid`.
    pub driver: String,
    /// Bus, e.g. `usb-0000:00:14.0-1`, `platform:vivid-000`.
    pub bus: String,
    /// USB serial number, when it is a USB device that has one (`usb:<this>` in the config).
    pub usb_serial: Option<String>,
    /// Stable links to the node under `/dev/v4l/by-id` and `/dev/v4l/by-path`.
    pub links: Vec<String>,
    /// Formats offered.
    pub formats: Vec<FormatInfo>,
}

/// One pixel format of a camera.
#[derive(Debug, Clone, Serialize)]
pub struct FormatInfo {
    /// Four-character code, e.g. `GREY`, `YUYV`, `MJPG`.
    pub fourcc: String,
    /// The driver's description.
    pub description: String,
    /// Frame sizes with their rates.
    pub sizes: Vec<SizeInfo>,
}

/// One frame size (or range of sizes) of a format.
#[derive(Debug, Clone, Serialize)]
pub struct SizeInfo {
    /// `WxH`, or `WxH-WxH/step WxH` for a range.
    pub size: String,
    /// Frame rates at that size (at the largest size of a range); for a continuous range of
    /// rates, the slowest and the fastest.
    pub fps: Vec<f64>,
}

/// Every V4L2 capture node present, in node order (nodes that cannot be opened are skipped).
pub fn list_cameras() -> Vec<CameraInfo> {
    let links = stable_links();
    select::video_nodes()
        .iter()
        .filter_map(|node| describe(node, &links))
        .collect()
}

fn stable_links() -> Vec<(std::path::PathBuf, String)> {
    ["/dev/v4l/by-id", "/dev/v4l/by-path"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter_map(|e| {
            Some((
                e.path().canonicalize().ok()?,
                e.path().display().to_string(),
            ))
        })
        .collect()
}

fn describe(node: &Path, links: &[(std::path::PathBuf, String)]) -> Option<CameraInfo> {
    let caps = select::query(node).ok().filter(|c| c.capture)?;
    let dev = v4l::Device::with_path(node).ok()?;
    let formats = dev
        .enum_formats()
        .unwrap_or_default()
        .into_iter()
        .map(|f| FormatInfo {
            fourcc: f.fourcc.to_string(),
            description: f.description.clone(),
            sizes: sizes(&dev, f.fourcc),
        })
        .collect();
    Some(CameraInfo {
        path: node.display().to_string(),
        usb_serial: select::usb_serial(node),
        links: links
            .iter()
            .filter(|(target, _)| target == node)
            .map(|(_, l)| l.clone())
            .collect(),
        card: caps.card,
        driver: caps.driver,
        bus: caps.bus,
        formats,
    })
}

fn sizes(dev: &v4l::Device, fourcc: v4l::FourCC) -> Vec<SizeInfo> {
    let Ok(sizes) = dev.enum_framesizes(fourcc) else {
        return Vec::new();
    };
    sizes
        .into_iter()
        .map(|s| {
            let (label, (w, h)) = match s.size {
                FrameSizeEnum::Discrete(d) => {
                    (format!("{}x{}", d.width, d.height), (d.width, d.height))
                }
                FrameSizeEnum::Stepwise(s) => (
                    format!(
                        "{}x{}-{}x{}/step {}x{}",
                        s.min_width,
                        s.min_height,
                        s.max_width,
                        s.max_height,
                        s.step_width,
                        s.step_height
                    ),
                    (s.max_width, s.max_height),
                ),
            };
            SizeInfo {
                size: label,
                fps: rates(dev, fourcc, w, h),
            }
        })
        .collect()
}

fn rates(dev: &v4l::Device, fourcc: v4l::FourCC, w: u32, h: u32) -> Vec<f64> {
    let fps = |f: v4l::Fraction| {
        if f.numerator == 0 {
            0.0
        } else {
            (f64::from(f.denominator) / f64::from(f.numerator) * 1000.0).round() / 1000.0
        }
    };
    dev.enum_frameintervals(fourcc, w, h)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| match i.interval {
            FrameIntervalEnum::Discrete(f) => vec![fps(f)],
            FrameIntervalEnum::Stepwise(s) => vec![fps(s.max), fps(s.min)],
        })
        .collect()
}
