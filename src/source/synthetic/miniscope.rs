//! The synthetic UCLA Miniscope V4: one-photon calcium imaging of behavior-tuned neurons,
//! with a 16-bit DAQ frame counter and a head-mounted IMU.

use std::f32::consts::TAU;

use rand::Rng;

use super::animal::{Animal, TICK_NS};
use super::faults::FrameSchedule;
use super::neurons::Neurons;
use super::noise::{GaussTable, hash3, stream_rng};
use super::tissue::Tissue;
use crate::config::source::SyntheticMiniscopeConfig;
use crate::frame::{Behavior, CaptureStamp, FrameGeometry, PixelFormat};
use crate::source::{Source, SourceError, StreamInfo, StreamKind};

/// Padding (px) around the frame on the internal canvas; bounds the motion shift.
const PAD: usize = 3;
/// Largest brain-motion shift, pixels.
const MAX_SHIFT: f32 = 2.0;

/// A simulated UCLA Miniscope V4 imaging neurons whose activity follows the simulated
/// animal's behavior (see the module docs of [`crate::source::synthetic`]).
///
/// Frames are 8-bit grey: a vignetted tissue background with blood vessels, neurons with
/// calcium transients, slow brightness drift, shot noise and small motion shifts. Stamps
/// carry the 16-bit DAQ frame counter and the head orientation quaternion.
pub struct SyntheticMiniscope {
    info: StreamInfo,
    /// The synthetic LED (live control `led0`, 0..=100 %): scales the brightness, 100 % being
    /// the rendering without it.
    led: f32,
    schedule: FrameSchedule,
    animal: Animal,
    neurons: Neurons,
    background: Vec<f32>,
    canvas: Vec<f32>,
    noise: GaussTable,
    sigma_lut: [f32; 256],
    counter_start: u16,
    seed: u64,
    phases: [f32; 8],
}

impl SyntheticMiniscope {
    /// Builds the field of view, the neurons and the animal from `cfg` (allocates everything
    /// frames need; `next_frame` allocates nothing).
    ///
    /// # Panics
    /// If the frame size or the frame rate is zero.
    pub fn new(cfg: &SyntheticMiniscopeConfig) -> Self {
        assert!(
            cfg.width > 0 && cfg.height > 0,
            "Miniscope frame size must be non-zero"
        );
        let (w, h) = (cfg.width as usize, cfg.height as usize);
        let tissue = Tissue::new(w, h, PAD, cfg.seed);
        let neurons = Neurons::new(cfg.neurons as usize, w, h, PAD, &tissue, cfg.seed);
        let mut rng = stream_rng(cfg.seed, 0x0D81);
        let phases = std::array::from_fn(|_| rng.random_range(0.0..TAU));
        let info = StreamInfo {
            name: cfg.name.clone(),
            kind: StreamKind::Miniscope,
            geometry: FrameGeometry {
                width: cfg.width,
                height: cfg.height,
                format: PixelFormat::Gray8,
            },
            nominal_fps: cfg.fps,
            counter_bits: 16,
            device_description: format!(
                "UCLA Miniscope V4 (synthetic), {}x{} CMOS, BNO055 IMU",
                cfg.width, cfg.height
            ),
        };
        Self {
            schedule: FrameSchedule::new(&cfg.name, cfg.fps, cfg.pacing, &cfg.faults),
            info,
            led: 1.0,
            animal: Animal::new(cfg.seed),
            neurons,
            canvas: vec![0.0; tissue.background.len()],
            background: tissue.background,
            noise: GaussTable::new(cfg.seed ^ 0x5C09E),
            sigma_lut: std::array::from_fn(|i| (0.35 * i as f32 + 1.2).sqrt()),
            counter_start: cfg.counter_start,
            seed: cfg.seed,
            phases,
        }
    }

    /// Centres of the simulated neurons in pixel coordinates (x right, y down), before
    /// motion shifts.
    pub fn neuron_centers(&self) -> &[[f32; 2]] {
        self.neurons.centers()
    }

    /// The behavior each neuron is tuned to, in the order of [`Self::neuron_centers`]
    /// (`None`: untuned).
    pub fn neuron_tuning(&self) -> &[Option<Behavior>] {
        self.neurons.tuning()
    }

    /// This source's copy of the animal, at the time of the last frame rendered.
    pub fn animal(&self) -> &Animal {
        &self.animal
    }

    /// Steps the animal and the neurons together up to `t_ns`.
    fn advance(&mut self, t_ns: u64) {
        while self.animal.time_ns() + TICK_NS <= t_ns {
            self.animal.step();
            self.neurons.step(self.animal.behavior());
        }
    }

    /// Overall brightness factor: slow LED/focus drift, photobleaching and neuropil glow.
    fn gain(&self, t: f32) -> f32 {
        let p = &self.phases;
        let drift =
            1.0 + 0.04 * (TAU * t / 97.0 + p[0]).sin() + 0.025 * (TAU * t / 23.0 + p[1]).sin();
        let bleach = 0.9 + 0.1 * (-t / 600.0).exp();
        drift * bleach * (1.0 + 0.004 * self.neurons.mean_delta_f())
    }

    /// Whole-field shift (brain motion), larger while the animal grooms or rears.
    fn shift(&self, t: f32) -> (usize, usize) {
        let amp = match self.animal.behavior() {
            Behavior::Explore => 0.5,
            Behavior::Grooming => 1.4,
            Behavior::MidRearing | Behavior::WallRearing => 1.1,
        };
        let p = &self.phases;
        let axis = |a: f32, b: f32, c: f32| {
            let s = amp * (0.6 * (TAU * 0.37 * t + a).sin() + 0.4 * (TAU * 1.7 * t + b).sin())
                + 0.3 * (TAU * 4.3 * t + c).sin();
            (s.round().clamp(-MAX_SHIFT, MAX_SHIFT) + PAD as f32) as usize
        };
        (axis(p[2], p[3], p[4]), axis(p[5], p[6], p[7]))
    }

    fn render(&mut self, frame: u64, t_ns: u64, pixels: &mut [u8]) {
        let t = t_ns as f32 * 1e-9;
        let (w, h) = (
            self.info.geometry.width as usize,
            self.info.geometry.height as usize,
        );
        let pw = w + 2 * PAD;
        self.canvas.copy_from_slice(&self.background);
        self.neurons.splat(&mut self.canvas);
        let gain = self.gain(t) * self.led;
        let (sx, sy) = self.shift(t);
        for (y, out) in pixels.chunks_exact_mut(w).take(h).enumerate() {
            let src = &self.canvas[(y + sy) * pw + sx..][..w];
            let noise = self.noise.window(hash3(self.seed, frame, y as u64), w);
            for ((o, &s), &n) in out.iter_mut().zip(src).zip(noise) {
                let v = s * gain;
                let sigma = self.sigma_lut[(v as usize).min(255)];
                // `as u8` saturates, which clips to the 8-bit range.
                *o = (v + sigma * n + 0.5) as u8;
            }
        }
    }
}

impl Source for SyntheticMiniscope {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_frame(&mut self, pixels: &mut [u8]) -> Result<CaptureStamp, SourceError> {
        crate::source::check_frame_buffer(&self.info, pixels)?;
        let slot = self.schedule.next_slot()?;
        let t_ns = self.schedule.offset_ns(slot.frame);
        self.advance(t_ns);
        self.render(slot.frame, t_ns, pixels);
        Ok(CaptureStamp {
            raw_counter: (self.counter_start as u64 + slot.frame) & 0xFFFF,
            device_time_ns: slot.capture_ns,
            host_time_ns: self.schedule.host_time_ns(&slot),
            head_orientation: Some(self.animal.head_quaternion()),
            ground_truth: None,
        })
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        self.schedule.reconnect()
    }

    fn watch_stop(&mut self, stop: crate::source::CaptureStop) {
        self.schedule.watch_stop(stop);
    }

    fn live_controls(&self) -> Vec<crate::source::live::LiveControl> {
        vec![crate::source::live::LiveControl {
            name: "led0".into(),
            kind: crate::source::live::LiveControlKind::Range {
                min: 0.0,
                max: 100.0,
            },
        }]
    }

    fn apply_control(&mut self, control: usize, value: f64) -> Result<(), String> {
        match control {
            0 => {
                self.led = (value / 100.0) as f32;
                Ok(())
            }
            _ => Err(format!("{}: no control #{control}", self.info.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{FaultPlan, Pacing};

    /// Residual noise grows like the square root of the signal (shot noise).
    #[test]
    fn noise_grows_with_the_square_root_of_brightness() {
        let mut scope = SyntheticMiniscope::new(&SyntheticMiniscopeConfig {
            name: "Miniscope".into(),
            fps: 30.0,
            width: 400,
            height: 400,
            neurons: 40,
            seed: 2,
            counter_start: 0,
            pacing: Pacing::Fast,
            compression: None,
            faults: FaultPlan::default(),
        });
        let mut px = vec![0u8; 400 * 400];
        let stamp = scope.next_frame(&mut px).unwrap();
        let t = scope.schedule.offset_ns(stamp.raw_counter) as f32 * 1e-9;
        let (gain, (sx, sy)) = (scope.gain(t), scope.shift(t));
        // (sum of squared residuals, count) for dim (25–45 DN) and bright (75–110 DN) pixels.
        let mut bins = [(0.0f64, 0u32); 2];
        for y in 0..400 {
            for x in 0..400 {
                let clean = scope.canvas[(y + sy) * (400 + 2 * PAD) + x + sx] * gain;
                let bin = match clean {
                    25.0..45.0 => 0,
                    75.0..110.0 => 1,
                    _ => continue,
                };
                let r = px[y * 400 + x] as f64 - clean as f64;
                bins[bin].0 += r * r;
                bins[bin].1 += 1;
            }
        }
        let sigma = bins.map(|(s, n)| {
            assert!(n > 1000, "only {n} pixels in a bin");
            (s / n as f64).sqrt()
        });
        let ratio = sigma[1] / sigma[0];
        // Expected about sqrt((0.35·90 + 1.2) / (0.35·35 + 1.2)) ≈ 1.56.
        assert!((1.3..1.9).contains(&ratio), "sigmas {sigma:?}");
        assert!((2.5..5.0).contains(&sigma[0]), "sigmas {sigma:?}");
    }
}
