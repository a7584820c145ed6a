//! Live ΔF/F of disc-shaped ROIs: F = mean pixel value in the disc, F0 = exponential running
//! baseline with time constant `baseline_s` (initialised to the first F, and again after
//! [`RoiSignals::reset`]), ΔF/F = (F − F0) / F0.

use crate::config::SignalConfig;
use crate::frame::{FrameGeometry, PixelFormat};

use super::InferError;

/// The ROIs of one signal group, with their pixel lists and baselines.
#[derive(Debug, Clone)]
pub struct RoiSignals {
    /// Pixel byte offsets per ROI, concatenated; `ranges[i]` = (start, len).
    pixels: Vec<u32>,
    ranges: Vec<(u32, u32)>,
    baseline: Vec<f64>,
    tau_ns: f64,
    last_ns: Option<u64>,
    names: Vec<String>,
}

impl RoiSignals {
    /// Precomputes the pixels of each disc; errors name the ROI that does not fit.
    pub fn new(config: &SignalConfig, geometry: FrameGeometry) -> Result<Self, InferError> {
        if geometry.format != PixelFormat::Gray8 {
            return Err(InferError::spec(
                "source",
                format!("ROI signals need a gray stream; `{}` is RGB", config.source),
            ));
        }
        if config.baseline_s.is_nan() || config.baseline_s <= 0.0 {
            return Err(InferError::spec_text(
                "baseline_s",
                "baseline_s must be positive",
            ));
        }
        let mut pixels = Vec::new();
        let mut ranges = Vec::new();
        for (i, roi) in config.roi.iter().enumerate() {
            let start = pixels.len() as u32;
            let (w, h) = (geometry.width as i64, geometry.height as i64);
            let r = roi.radius;
            // Only the part of the disc's box inside the frame is scanned, so the cost is
            // bounded by the frame whatever the radius.
            let ys = ((roi.y - r).floor() as i64).max(0)..=((roi.y + r).ceil() as i64).min(h - 1);
            let xs = ((roi.x - r).floor() as i64).max(0)..=((roi.x + r).ceil() as i64).min(w - 1);
            for y in ys {
                for x in xs.clone() {
                    let inside = (x as f32 - roi.x).powi(2) + (y as f32 - roi.y).powi(2) <= r * r;
                    if inside && (0..w).contains(&x) && (0..h).contains(&y) {
                        pixels.push((y * w + x) as u32);
                    }
                }
            }
            let len = pixels.len() as u32 - start;
            if len == 0 || r.is_nan() || r <= 0.0 {
                return Err(InferError::spec_text(
                    format!("roi[{i}]"),
                    format!(
                        "roi[{i}] `{}`: the disc at ({}, {}) radius {} has no pixel inside the {}x{} frame",
                        roi.name, roi.x, roi.y, r, geometry.width, geometry.height
                    ),
                ));
            }
            ranges.push((start, len));
        }
        Ok(Self {
            pixels,
            ranges,
            baseline: vec![f64::NAN; config.roi.len()],
            tau_ns: config.baseline_s * 1e9,
            last_ns: None,
            names: config.roi.iter().map(|r| r.name.clone()).collect(),
        })
    }

    /// ROI names in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Restarts the baselines (after a gap in the stream).
    pub fn reset(&mut self) {
        self.baseline.fill(f64::NAN);
        self.last_ns = None;
    }

    /// Updates with a frame taken at `t_ns` and writes ΔF/F per ROI into `out`.
    pub fn update(&mut self, frame: &[u8], t_ns: u64, out: &mut [f32]) {
        let alpha = match self.last_ns {
            Some(last) if t_ns > last => 1.0 - (-((t_ns - last) as f64) / self.tau_ns).exp(),
            _ => 0.0,
        };
        self.last_ns = Some(t_ns);
        for (i, &(start, len)) in self.ranges.iter().enumerate() {
            let sum: u64 = self.pixels[start as usize..(start + len) as usize]
                .iter()
                .map(|&p| frame[p as usize] as u64)
                .sum();
            let f = sum as f64 / len as f64;
            let f0 = &mut self.baseline[i];
            if f0.is_nan() {
                *f0 = f;
            } else {
                *f0 += alpha * (f - *f0);
            }
            out[i] = if *f0 > 0.0 {
                ((f - *f0) / *f0) as f32
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(x: f32, y: f32, radius: f32) -> SignalConfig {
        toml::from_str(&format!(
            "name = \"m\"\nsource = \"s\"\nbaseline_s = 1.0\n[[roi]]\nname = \"a\"\nx = {x}\ny = {y}\nradius = {radius}\n"
        ))
        .unwrap()
    }

    const G: FrameGeometry = FrameGeometry {
        width: 20,
        height: 10,
        format: PixelFormat::Gray8,
    };

    #[test]
    fn a_huge_disc_costs_no_more_than_the_frame() {
        // Before the scan was clipped to the frame, this disc meant ~4e18 pixel tests (a hang).
        let s = RoiSignals::new(&config(5.0, 5.0, 1e9), G).unwrap();
        assert_eq!(
            s.ranges[0].1, 200,
            "every pixel of the 20x10 frame is inside"
        );
    }

    #[test]
    fn a_step_in_brightness_shows_as_dff_that_decays_as_the_baseline_follows() {
        let mut s = RoiSignals::new(&config(5.0, 5.0, 2.0), G).unwrap();
        let mut out = [0.0f32];
        let dark = vec![100u8; 200];
        s.update(&dark, 0, &mut out);
        assert_eq!(out[0], 0.0);
        let mut bright = dark.clone();
        for y in 3..=7 {
            for x in 3..=7 {
                bright[y * 20 + x] = 200;
            }
        }
        s.update(&bright, 10_000_000, &mut out);
        let first = out[0];
        assert!(
            first > 0.9 && first < 1.0,
            "ΔF/F just after a doubling: {first}"
        );
        for k in 2..300 {
            s.update(&bright, k * 10_000_000, &mut out);
        }
        assert!(
            out[0] < 0.1 * first,
            "baseline caught up after 3 time constants: {}",
            out[0]
        );
        s.reset();
        s.update(&dark, 4_000_000_000, &mut out);
        assert_eq!(out[0], 0.0);
    }

    #[test]
    fn a_roi_outside_the_frame_is_an_error_naming_it() {
        let e = RoiSignals::new(&config(50.0, 5.0, 2.0), G).unwrap_err();
        assert!(e.to_string().contains("roi[0] `a`"), "{e}");
    }
}
