//! The synthetic overhead behavior camera: the open field filmed from above with the
//! simulated mouse in it, plus per-frame ground truth (behavior and keypoints in pixels).

use super::animal::Animal;
use super::arena_view::{CameraModel, render_arena};
use super::faults::FrameSchedule;
use super::mouse::draw_mouse;
use super::noise::{ByteNoise, hash3};
use super::sprite::Canvas;
use crate::config::source::SyntheticBehaviorConfig;
use crate::frame::{CaptureStamp, FrameGeometry, GroundTruth, PixelFormat};
use crate::source::{Source, SourceError, StreamInfo, StreamKind};

/// Standard deviation of the sensor noise, DN.
const SENSOR_NOISE_DN: f32 = 2.0;

/// A simulated top-down camera over a 40 cm open field (see [`crate::source::synthetic`]).
///
/// Each frame is the pre-rendered empty arena with the mouse drawn in its current posture and
/// sensor noise added. Stamps carry a 32-bit frame sequence number and [`GroundTruth`].
pub struct SyntheticBehaviorCamera {
    info: StreamInfo,
    schedule: FrameSchedule,
    animal: Animal,
    camera: CameraModel,
    background: Vec<u8>,
    noise: ByteNoise,
    seed: u64,
}

impl SyntheticBehaviorCamera {
    /// Renders the arena and builds the animal from `cfg` (allocates everything frames
    /// need; `next_frame` allocates nothing).
    ///
    /// # Panics
    /// If the frame size or the frame rate is zero.
    pub fn new(cfg: &SyntheticBehaviorConfig) -> Self {
        assert!(
            cfg.width > 0 && cfg.height > 0,
            "behavior camera frame size must be non-zero"
        );
        let format_name = match cfg.pixel_format {
            PixelFormat::Gray8 => "8-bit grey",
            PixelFormat::Rgb8 => "8-bit RGB",
        };
        let info = StreamInfo {
            name: cfg.name.clone(),
            kind: StreamKind::BehaviorCamera,
            geometry: FrameGeometry {
                width: cfg.width,
                height: cfg.height,
                format: cfg.pixel_format,
            },
            nominal_fps: cfg.fps,
            counter_bits: 32,
            device_description: format!(
                "Synthetic overhead behavior camera (simulated), {}x{} {format_name}, 40 cm open field",
                cfg.width, cfg.height
            ),
        };
        Self {
            schedule: FrameSchedule::new(&cfg.name, cfg.fps, cfg.pacing, &cfg.faults),
            info,
            animal: Animal::new(cfg.seed),
            camera: CameraModel::fit(cfg.width, cfg.height),
            background: render_arena(cfg.width, cfg.height, cfg.pixel_format, cfg.seed),
            noise: ByteNoise::new(cfg.seed ^ 0xCA3E7A, SENSOR_NOISE_DN),
            seed: cfg.seed,
        }
    }

    /// This source's copy of the animal, at the time of the last frame rendered.
    pub fn animal(&self) -> &Animal {
        &self.animal
    }

    /// Pixel position (x right, y down) of an arena point `[x, y, z]` in centimetres.
    pub fn project(&self, arena_point: [f32; 3]) -> [f32; 2] {
        self.camera.project(arena_point)
    }

    /// Renders device frame `frame` at nominal time `t_ns` into `pixels`.
    fn render(&mut self, frame: u64, t_ns: u64, pixels: &mut [u8]) -> GroundTruth {
        self.animal.advance_to_ns(t_ns);
        pixels.copy_from_slice(&self.background);
        let g = self.info.geometry;
        let rgb = g.format == PixelFormat::Rgb8;
        let mut canvas = Canvas::new(pixels, g.width as usize, g.height as usize, rgb);
        let keypoints = draw_mouse(&mut canvas, &self.camera, &self.animal);
        self.noise.add_to(pixels, hash3(self.seed, frame, 0xF4A3E));
        GroundTruth {
            behavior: self.animal.behavior(),
            keypoints,
        }
    }
}

impl Source for SyntheticBehaviorCamera {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        crate::source::check_frame_buffer(&self.info, pixels)?;
        let slot = self.schedule.next_slot()?;
        let t_ns = self.schedule.offset_ns(slot.frame);
        let truth = self.render(slot.frame, t_ns, pixels);
        Ok(CaptureStamp {
            raw_counter: slot.frame & 0xFFFF_FFFF,
            device_time_ns: slot.capture_ns,
            host_time_ns: self.schedule.host_time_ns(&slot),
            head_orientation: None,
            ground_truth: Some(truth),
        })
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        self.schedule.reconnect()
    }

    fn watch_stop(&mut self, stop: crate::source::CaptureStop) {
        self.schedule.watch_stop(stop);
    }
}
