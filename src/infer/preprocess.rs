//! Frame → network input: crop, colour conversion, resize (nearest / bilinear / area), scale and
//! normalisation, then layout (NCHW / NHWC) with an optional temporal stack of the last frames.
//!
//! Resizing is separable: per output column and row a short list of (source index, weight)
//! taps is computed once, so a frame costs one horizontal and one vertical pass and allocates
//! nothing. The exact formulas (documented in `docs/models.md`) are re-implemented in numpy by
//! the parity test.

use crate::config::model::{ColorMode, InputSpec, Interpolation, Layout, StackAxis};
use crate::frame::{FrameGeometry, PixelFormat};

use super::InferError;

/// Per-axis resize taps: for output index `i`, `taps[ranges[i].0 .. ranges[i].0 + ranges[i].1]`.
#[derive(Debug, Clone)]
struct Taps {
    taps: Vec<(u32, f32)>,
    ranges: Vec<(u32, u32)>,
}

impl Taps {
    /// Taps mapping `src` samples onto `dst` samples.
    fn new(src: u32, dst: u32, interpolation: Interpolation) -> Self {
        let scale = src as f64 / dst as f64;
        let mut taps = Vec::new();
        let mut ranges = Vec::with_capacity(dst as usize);
        let last = (src - 1) as f64;
        for i in 0..dst {
            let start = taps.len() as u32;
            match interpolation {
                Interpolation::Nearest => {
                    let s = (((i as f64 + 0.5) * scale).floor()).min(last) as u32;
                    taps.push((s, 1.0));
                }
                Interpolation::Area if scale > 1.0 => {
                    let lo = i as f64 * scale;
                    let hi = (i as f64 + 1.0) * scale;
                    let mut j = lo.floor() as u32;
                    while (j as f64) < hi && j < src {
                        let overlap = (hi.min(j as f64 + 1.0) - lo.max(j as f64)).max(0.0);
                        if overlap > 0.0 {
                            taps.push((j, (overlap / scale) as f32));
                        }
                        j += 1;
                    }
                }
                // Bilinear, and area when upsampling (as OpenCV does).
                _ => {
                    let s = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, last);
                    let x0 = s.floor();
                    let f = (s - x0) as f32;
                    let x0 = x0 as u32;
                    let x1 = (x0 + 1).min(src - 1);
                    taps.push((x0, 1.0 - f));
                    if f > 0.0 {
                        taps.push((x1, f));
                    }
                }
            }
            ranges.push((start, taps.len() as u32 - start));
        }
        Self { taps, ranges }
    }

    fn of(&self, i: usize) -> &[(u32, f32)] {
        let (start, len) = self.ranges[i];
        &self.taps[start as usize..(start + len) as usize]
    }
}

/// Turns one frame into one normalised CHW image of the network's size.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    geometry: FrameGeometry,
    crop: [u32; 4],
    out_width: usize,
    out_height: usize,
    channels: usize,
    x_taps: Taps,
    y_taps: Taps,
    /// Horizontal pass result: crop rows × out_width × channels.
    row_pass: Vec<f32>,
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
    round_to_u8: bool,
}

impl Preprocessor {
    /// Checks `spec` against the frame geometry and precomputes the resize taps.
    pub fn new(
        spec: &InputSpec,
        geometry: FrameGeometry,
        round_to_u8: bool,
    ) -> Result<Self, InferError> {
        let crop = spec.crop.unwrap_or([0, 0, geometry.width, geometry.height]);
        let [cx, cy, cw, ch] = crop;
        if cw == 0 || ch == 0 || cx + cw > geometry.width || cy + ch > geometry.height {
            return Err(InferError::spec_text(
                "input.crop",
                format!(
                    "input.crop [{cx}, {cy}, {cw}, {ch}] does not fit in the {}x{} frame",
                    geometry.width, geometry.height
                ),
            ));
        }
        let [out_w, out_h] = spec.resize.unwrap_or([cw, ch]);
        if out_w == 0 || out_h == 0 || out_w > 8192 || out_h > 8192 {
            return Err(InferError::spec_text(
                "input.resize",
                format!("input.resize [{out_w}, {out_h}] is not a size between 1x1 and 8192x8192"),
            ));
        }
        let channels = match spec.color {
            ColorMode::Gray => 1,
            ColorMode::Rgb => 3,
        };
        let per_channel = |v: &[f32], default: f32, key: &str| -> Result<Vec<f32>, InferError> {
            match v.len() {
                0 => Ok(vec![default; channels]),
                1 => Ok(vec![v[0]; channels]),
                n if n == channels => Ok(v.to_vec()),
                n => Err(InferError::spec_text(
                    format!("input.{key}"),
                    format!("input.{key} has {n} values; give 1 or one per channel ({channels})"),
                )),
            }
        };
        let mean = per_channel(&spec.mean, 0.0, "mean")?;
        let std = per_channel(&spec.std, 1.0, "std")?;
        if std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(InferError::spec_text(
                "input.std",
                "input.std must be finite and non-zero",
            ));
        }
        Ok(Self {
            geometry,
            crop,
            out_width: out_w as usize,
            out_height: out_h as usize,
            channels,
            x_taps: Taps::new(cw, out_w, spec.interpolation),
            y_taps: Taps::new(ch, out_h, spec.interpolation),
            row_pass: vec![0.0; ch as usize * out_w as usize * channels],
            scale: spec.scale,
            mean,
            std,
            round_to_u8,
        })
    }

    /// Number of values of one preprocessed frame (channels × height × width).
    pub fn frame_len(&self) -> usize {
        self.channels * self.out_height * self.out_width
    }

    /// Channels, height and width of one preprocessed frame.
    pub fn chw(&self) -> (usize, usize, usize) {
        (self.channels, self.out_height, self.out_width)
    }

    /// Preprocesses `pixels` (the whole frame) into `out` (CHW, `frame_len()` values).
    ///
    /// With `round_to_u8` the resized pixel values are rounded to integers (for `uint8` inputs)
    /// and `scale`/`mean`/`std` are not applied.
    pub fn run(&mut self, pixels: &[u8], out: &mut [f32]) {
        debug_assert_eq!(pixels.len(), self.geometry.frame_bytes());
        debug_assert_eq!(out.len(), self.frame_len());
        let [cx, cy, _, ch] = self.crop;
        let (c_out, ow, oh) = (self.channels, self.out_width, self.out_height);
        let width = self.geometry.width as usize;
        let bpp = self.geometry.format.bytes_per_pixel();
        let rgb_in = self.geometry.format == PixelFormat::Rgb8;
        // Horizontal pass: each crop row → out_width samples per channel.
        for y in 0..ch as usize {
            let row_start = ((cy as usize + y) * width + cx as usize) * bpp;
            let row = &pixels[row_start..];
            let dst = &mut self.row_pass[y * ow * c_out..(y + 1) * ow * c_out];
            for x in 0..ow {
                let taps = self.x_taps.of(x);
                if rgb_in {
                    let (mut r, mut g, mut b) = (0.0f32, 0.0f32, 0.0f32);
                    for &(s, w) in taps {
                        let p = &row[s as usize * 3..s as usize * 3 + 3];
                        r += w * p[0] as f32;
                        g += w * p[1] as f32;
                        b += w * p[2] as f32;
                    }
                    if c_out == 3 {
                        dst[x * 3] = r;
                        dst[x * 3 + 1] = g;
                        dst[x * 3 + 2] = b;
                    } else {
                        dst[x] = 0.299 * r + 0.587 * g + 0.114 * b;
                    }
                } else {
                    let mut v = 0.0f32;
                    for &(s, w) in taps {
                        v += w * row[s as usize] as f32;
                    }
                    for c in 0..c_out {
                        dst[x * c_out + c] = v;
                    }
                }
            }
        }
        // Vertical pass, then scale / normalise into CHW.
        let plane = oh * ow;
        for y in 0..oh {
            let taps = self.y_taps.of(y);
            for x in 0..ow {
                for c in 0..c_out {
                    let mut v = 0.0f32;
                    for &(s, w) in taps {
                        v += w * self.row_pass[(s as usize * ow + x) * c_out + c];
                    }
                    out[c * plane + y * ow + x] = if self.round_to_u8 {
                        v.round().clamp(0.0, 255.0)
                    } else {
                        (v * self.scale - self.mean[c]) / self.std[c]
                    };
                }
            }
        }
    }
}

/// The last `frames` preprocessed frames and how they are laid out in the input tensor.
#[derive(Debug, Clone)]
pub struct TemporalStack {
    frames: Vec<Vec<f32>>,
    newest: usize,
    filled: bool,
    chw: (usize, usize, usize),
    layout: Layout,
    axis: StackAxis,
}

impl TemporalStack {
    /// A stack of `frames` images of shape `chw`.
    pub fn new(frames: usize, chw: (usize, usize, usize), layout: Layout, axis: StackAxis) -> Self {
        let len = chw.0 * chw.1 * chw.2;
        Self {
            frames: vec![vec![0.0; len]; frames.max(1)],
            newest: 0,
            filled: false,
            chw,
            layout,
            axis,
        }
    }

    /// The tensor shape (batch 1) for this stack.
    pub fn shape(&self) -> Vec<i64> {
        let (c, h, w) = self.chw;
        let t = self.frames.len();
        let (c, h, w, t) = (c as i64, h as i64, w as i64, t as i64);
        match (self.axis, self.layout) {
            (StackAxis::Channel, Layout::Nchw) => vec![1, t * c, h, w],
            (StackAxis::Channel, Layout::Nhwc) => vec![1, h, w, t * c],
            (StackAxis::Time, Layout::Nchw) => vec![1, t, c, h, w],
            (StackAxis::Time, Layout::Nhwc) => vec![1, t, h, w, c],
        }
    }

    /// The slot the next frame should be preprocessed into.
    pub fn next_slot(&mut self) -> &mut [f32] {
        let next = (self.newest + 1) % self.frames.len();
        &mut self.frames[next]
    }

    /// Makes the slot returned by [`Self::next_slot`] the newest frame. After [`Self::reset`]
    /// (start, gap) the first frame fills the whole stack.
    pub fn commit(&mut self) {
        let n = self.frames.len();
        self.newest = (self.newest + 1) % n;
        if !self.filled {
            let (first, rest) = self.frames.split_at_mut(self.newest);
            let (newest, after) = rest.split_first_mut().expect("newest exists");
            for other in first.iter_mut().chain(after.iter_mut()) {
                other.copy_from_slice(newest);
            }
            self.filled = true;
        }
    }

    /// Forgets the history (the next frame is replicated into every slot).
    pub fn reset(&mut self) {
        self.filled = false;
    }

    /// Writes the stack, oldest frame first, into `out` in the tensor's layout.
    pub fn write<T: Copy>(&self, out: &mut [T], convert: impl Fn(f32) -> T) {
        let (c, h, w) = self.chw;
        let t = self.frames.len();
        let plane = h * w;
        for k in 0..t {
            let frame = &self.frames[(self.newest + 1 + k) % t];
            for ci in 0..c {
                for i in 0..plane {
                    let v = convert(frame[ci * plane + i]);
                    let index = match self.layout {
                        // Channel-stacked NCHW and time-stacked NCHW share one order: (k, c, y, x).
                        Layout::Nchw => (k * c + ci) * plane + i,
                        Layout::Nhwc => match self.axis {
                            StackAxis::Channel => i * (t * c) + k * c + ci,
                            StackAxis::Time => k * plane * c + i * c + ci,
                        },
                    };
                    out[index] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InputSpec {
        toml::from_str("name = \"x\"").unwrap()
    }

    fn gray(width: u32, height: u32) -> FrameGeometry {
        FrameGeometry {
            width,
            height,
            format: PixelFormat::Gray8,
        }
    }

    #[test]
    fn area_by_an_integer_factor_is_the_block_mean() {
        let mut s = spec();
        s.resize = Some([2, 2]);
        s.scale = 1.0;
        let pixels: Vec<u8> = (0..16).map(|i| (i * 10) as u8).collect();
        let mut p = Preprocessor::new(&s, gray(4, 4), false).unwrap();
        let mut out = vec![0.0; 4];
        p.run(&pixels, &mut out);
        let block = |x0: usize, y0: usize| {
            let mut sum = 0.0;
            for y in y0..y0 + 2 {
                for x in x0..x0 + 2 {
                    sum += pixels[y * 4 + x] as f32;
                }
            }
            sum / 4.0
        };
        assert_eq!(
            out,
            vec![block(0, 0), block(2, 0), block(0, 2), block(2, 2)]
        );
    }

    #[test]
    fn area_with_a_fractional_factor_weights_partial_pixels() {
        let taps = Taps::new(3, 2, Interpolation::Area);
        assert_eq!(taps.of(0), &[(0, 1.0 / 1.5), (1, 0.5 / 1.5)]);
        assert_eq!(taps.of(1), &[(1, 0.5 / 1.5), (2, 1.0 / 1.5)]);
    }

    #[test]
    fn bilinear_and_nearest_keep_an_unscaled_image() {
        for interpolation in [
            Interpolation::Bilinear,
            Interpolation::Nearest,
            Interpolation::Area,
        ] {
            let mut s = spec();
            s.interpolation = interpolation;
            s.scale = 1.0;
            let pixels: Vec<u8> = (0..12).map(|i| (i * 7) as u8).collect();
            let mut p = Preprocessor::new(&s, gray(4, 3), false).unwrap();
            let mut out = vec![0.0; 12];
            p.run(&pixels, &mut out);
            let expected: Vec<f32> = pixels.iter().map(|&v| v as f32).collect();
            assert_eq!(out, expected, "{interpolation:?}");
        }
    }

    #[test]
    fn bilinear_upsampling_interpolates_between_pixels() {
        let taps = Taps::new(2, 4, Interpolation::Bilinear);
        // Output centres map to -0.25, 0.25, 0.75, 1.25 → clamped to 0, 0.25, 0.75, 1.
        assert_eq!(taps.of(0), &[(0, 1.0)]);
        assert_eq!(taps.of(1), &[(0, 0.75), (1, 0.25)]);
        assert_eq!(taps.of(2), &[(0, 0.25), (1, 0.75)]);
        assert_eq!(taps.of(3), &[(1, 1.0)]);
    }

    #[test]
    fn crop_rgb_to_gray_and_normalisation() {
        let mut s = spec();
        s.crop = Some([1, 0, 1, 1]);
        s.mean = vec![0.5];
        s.std = vec![0.25];
        let geometry = FrameGeometry {
            width: 2,
            height: 1,
            format: PixelFormat::Rgb8,
        };
        let mut p = Preprocessor::new(&s, geometry, false).unwrap();
        let mut out = vec![0.0; 1];
        p.run(&[0, 0, 0, 255, 0, 0], &mut out);
        let luma = 0.299 * 255.0;
        assert!((out[0] - (luma / 255.0 - 0.5) / 0.25).abs() < 1e-6);
    }

    #[test]
    fn bad_crop_and_mean_are_rejected_with_the_key() {
        let mut s = spec();
        s.crop = Some([600, 0, 100, 10]);
        let e = Preprocessor::new(&s, gray(640, 480), false).unwrap_err();
        assert!(e.to_string().contains("input.crop"), "{e}");
        let mut s = spec();
        s.color = ColorMode::Rgb;
        s.mean = vec![0.1, 0.2];
        let e = Preprocessor::new(&s, gray(64, 48), false).unwrap_err();
        assert!(e.to_string().contains("input.mean has 2 values"), "{e}");
    }

    #[test]
    fn temporal_stack_is_oldest_first_and_replicates_after_reset() {
        let mut stack = TemporalStack::new(3, (1, 1, 2), Layout::Nchw, StackAxis::Channel);
        assert_eq!(stack.shape(), vec![1, 3, 1, 2]);
        let mut out = vec![0.0f32; 6];
        stack.next_slot().copy_from_slice(&[1.0, 1.5]);
        stack.commit();
        stack.write(&mut out, |v| v);
        assert_eq!(out, vec![1.0, 1.5, 1.0, 1.5, 1.0, 1.5]);
        stack.next_slot().copy_from_slice(&[2.0, 2.5]);
        stack.commit();
        stack.next_slot().copy_from_slice(&[3.0, 3.5]);
        stack.commit();
        stack.next_slot().copy_from_slice(&[4.0, 4.5]);
        stack.commit();
        stack.write(&mut out, |v| v);
        assert_eq!(out, vec![2.0, 2.5, 3.0, 3.5, 4.0, 4.5]);
        stack.reset();
        stack.next_slot().copy_from_slice(&[9.0, 9.5]);
        stack.commit();
        stack.write(&mut out, |v| v);
        assert_eq!(out, vec![9.0, 9.5, 9.0, 9.5, 9.0, 9.5]);
    }

    #[test]
    fn nhwc_channel_stack_interleaves_frames_per_pixel() {
        let mut stack = TemporalStack::new(2, (1, 1, 2), Layout::Nhwc, StackAxis::Channel);
        assert_eq!(stack.shape(), vec![1, 1, 2, 2]);
        stack.next_slot().copy_from_slice(&[1.0, 2.0]);
        stack.commit();
        stack.next_slot().copy_from_slice(&[3.0, 4.0]);
        stack.commit();
        let mut out = vec![0.0f32; 4];
        stack.write(&mut out, |v| v);
        // pixel 0: (old, new) = (1, 3); pixel 1: (2, 4).
        assert_eq!(out, vec![1.0, 3.0, 2.0, 4.0]);
    }
}
