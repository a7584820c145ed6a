//! Frames: pixel formats, per-frame metadata and the preallocated per-stream [`FramePool`].

mod pool;

pub use pool::{Frame, FrameMut, FramePool};

/// How the bytes of one frame are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// 8-bit luminance, one byte per pixel (V4L2 `GREY`).
    Gray8,
    /// 8-bit RGB, three interleaved bytes per pixel.
    Rgb8,
}

impl PixelFormat {
    /// Bytes one pixel takes.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb8 => 3,
        }
    }
}

/// Size and pixel format of every frame of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameGeometry {
    /// Pixels per row.
    pub width: u32,
    /// Rows per frame.
    pub height: u32,
    /// Pixel layout.
    pub format: PixelFormat,
}

impl FrameGeometry {
    /// Bytes of one frame buffer (rows × columns × bytes per pixel, no padding).
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.format.bytes_per_pixel()
    }
}

/// The behaviors the synthetic animal (and the bundled models) know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Behavior {
    /// Walking around and sniffing.
    Explore = 0,
    /// Self-grooming: stationary, compact, rhythmic head and forepaw movement.
    Grooming = 1,
    /// Rearing on the hind legs away from the walls.
    MidRearing = 2,
    /// Rearing against an arena wall.
    WallRearing = 3,
}

impl Behavior {
    /// All behaviors in code order.
    pub const ALL: [Behavior; 4] = [
        Behavior::Explore,
        Behavior::Grooming,
        Behavior::MidRearing,
        Behavior::WallRearing,
    ];

    /// Stable label used in files and configs.
    pub fn label(self) -> &'static str {
        match self {
            Behavior::Explore => "explore",
            Behavior::Grooming => "grooming",
            Behavior::MidRearing => "mid_rearing",
            Behavior::WallRearing => "wall_rearing",
        }
    }
}

/// Names of the ground-truth keypoints, in the order of [`GroundTruth::keypoints`].
pub const KEYPOINT_NAMES: [&str; 4] = ["nose", "left_ear", "right_ear", "tail_base"];

/// What a simulated camera knows about the animal in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundTruth {
    /// The behavior being performed.
    pub behavior: Behavior,
    /// Pixel positions (x right, y down) of [`KEYPOINT_NAMES`] in this frame.
    pub keypoints: [[f32; 2]; 4],
}

/// What a source reports about one frame it delivered.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CaptureStamp {
    /// The device's own frame counter as read (may wrap; width given by the source).
    pub raw_counter: u64,
    /// Driver/kernel timestamp of the frame, CLOCK_MONOTONIC nanoseconds.
    pub device_time_ns: u64,
    /// Host time the frame was dequeued, CLOCK_MONOTONIC nanoseconds.
    pub host_time_ns: u64,
    /// Head orientation quaternion `[w, x, y, z]` where the device reports one.
    pub head_orientation: Option<[f32; 4]>,
    /// Simulator ground truth where the source is synthetic.
    pub ground_truth: Option<GroundTruth>,
}

/// Metadata of a captured frame: the source's stamp plus what the capture thread derived.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameMeta {
    /// Strictly increasing index of this frame within its stream (0-based, counts delivered frames).
    pub index: u64,
    /// Device counter unwrapped to 64 bits.
    pub device_counter: u64,
    /// What the source reported.
    pub stamp: CaptureStamp,
}
