//! Raw model outputs → decoded values: class probabilities, or keypoints in frame pixels.

use crate::config::model::Activation;

/// Applies `activation` to `raw`, writing `out` (same length).
pub fn activate(activation: Activation, raw: &[f32], out: &mut [f32]) {
    match activation {
        Activation::None => out.copy_from_slice(raw),
        Activation::Sigmoid => {
            for (o, &v) in out.iter_mut().zip(raw) {
                *o = sigmoid(v);
            }
        }
        Activation::Softmax => {
            let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (o, &v) in out.iter_mut().zip(raw) {
                *o = (v - max).exp();
                sum += *o;
            }
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
    }
}

/// The logistic function.
pub fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// How network-input pixels map back to frame pixels (crop offset and resize factors).
///
/// Pixel centres are at integer coordinates; pixel `i` covers `[i - 0.5, i + 0.5)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputToFrame {
    /// Crop origin x in frame pixels.
    pub crop_x: f32,
    /// Crop origin y in frame pixels.
    pub crop_y: f32,
    /// Frame pixels per input pixel, horizontally (crop width / input width).
    pub scale_x: f32,
    /// Frame pixels per input pixel, vertically.
    pub scale_y: f32,
}

impl InputToFrame {
    /// Maps an input-pixel position to frame pixels.
    pub fn map(&self, u: f32, v: f32) -> (f32, f32) {
        (
            (u + 0.5) * self.scale_x - 0.5 + self.crop_x,
            (v + 0.5) * self.scale_y - 0.5 + self.crop_y,
        )
    }
}

/// Decodes `K` heatmaps (`[K, h, w]` row-major) of an input `input_w × input_h` into
/// `(x, y, confidence)` triples in frame pixels, written to `out` (`3K` values).
///
/// Per heatmap: the first maximum in row-major order; a sub-pixel offset from a parabola through
/// the peak and its two neighbours, separately in x and y (clamped to ±0.5, skipped at the
/// border or when the peak is not strictly concave); heatmap cell → input pixel with the stride
/// `input / heatmap`; confidence = `activation` of the peak value.
#[allow(clippy::too_many_arguments)]
pub fn heatmap_keypoints(
    heatmaps: &[f32],
    k: usize,
    h: usize,
    w: usize,
    input_w: usize,
    input_h: usize,
    mapping: InputToFrame,
    activation: Activation,
    out: &mut [f32],
) {
    let plane = h * w;
    let stride_x = input_w as f32 / w as f32;
    let stride_y = input_h as f32 / h as f32;
    for i in 0..k {
        let map = &heatmaps[i * plane..(i + 1) * plane];
        let mut best = 0;
        for (j, &v) in map.iter().enumerate() {
            if v > map[best] {
                best = j;
            }
        }
        let (py, px) = (best / w, best % w);
        let peak = map[best];
        let dx = if px > 0 && px + 1 < w {
            parabola_offset(map[best - 1], peak, map[best + 1])
        } else {
            0.0
        };
        let dy = if py > 0 && py + 1 < h {
            parabola_offset(map[best - w], peak, map[best + w])
        } else {
            0.0
        };
        let u = (px as f32 + dx + 0.5) * stride_x - 0.5;
        let v = (py as f32 + dy + 0.5) * stride_y - 0.5;
        let (x, y) = mapping.map(u, v);
        out[3 * i] = x;
        out[3 * i + 1] = y;
        out[3 * i + 2] = match activation {
            Activation::Sigmoid => sigmoid(peak),
            _ => peak,
        };
    }
}

/// Vertex offset of the parabola through `(-1, l), (0, c), (1, r)`; 0 unless concave.
fn parabola_offset(l: f32, c: f32, r: f32) -> f32 {
    let denominator = l - 2.0 * c + r;
    if denominator >= 0.0 {
        return 0.0;
    }
    (0.5 * (l - r) / denominator).clamp(-0.5, 0.5)
}

/// Decodes `[K, 3]` direct regressions (x, y in input pixels, confidence) into frame pixels.
pub fn direct_keypoints(
    raw: &[f32],
    k: usize,
    mapping: InputToFrame,
    activation: Activation,
    out: &mut [f32],
) {
    for i in 0..k {
        let (x, y) = mapping.map(raw[3 * i], raw[3 * i + 1]);
        out[3 * i] = x;
        out[3 * i + 1] = y;
        out[3 * i + 2] = match activation {
            Activation::Sigmoid => sigmoid(raw[3 * i + 2]),
            _ => raw[3 * i + 2],
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: InputToFrame = InputToFrame {
        crop_x: 0.0,
        crop_y: 0.0,
        scale_x: 1.0,
        scale_y: 1.0,
    };

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut out = [0.0; 4];
        activate(Activation::Softmax, &[1.0, 3.0, 2.0, 1000.0], &mut out);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(out[3] > 0.999);
        activate(Activation::Softmax, &[1.0, 3.0, 2.0, -1.0], &mut out);
        assert!(out[1] > out[2] && out[2] > out[0] && out[0] > out[3]);
        activate(Activation::Sigmoid, &[0.0, 100.0, -100.0, 2.0], &mut out);
        assert_eq!(&out[..3], &[0.5, 1.0, 0.0]);
    }

    /// A Gaussian blob centred at a sub-pixel position is found there (within the parabola's
    /// accuracy), and the mapping to frame pixels applies stride, resize and crop.
    #[test]
    fn heatmap_peak_is_refined_to_sub_pixel_and_mapped_to_the_frame() {
        let (h, w) = (30, 40);
        let (cx, cy) = (12.3f32, 7.8f32);
        let mut map = vec![0.0f32; h * w * 2];
        for y in 0..h {
            for x in 0..w {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                map[y * w + x] = 4.0 * (-d2 / (2.0 * 1.5 * 1.5)).exp() - 2.0;
            }
        }
        // Second keypoint: a single hot cell on the border, no refinement possible.
        map[h * w + (h - 1) * w] = 5.0;
        let mut out = [0.0f32; 6];
        heatmap_keypoints(
            &map,
            2,
            h,
            w,
            40,
            30,
            IDENTITY,
            Activation::Sigmoid,
            &mut out,
        );
        assert!((out[0] - cx).abs() < 0.15, "x {}", out[0]);
        assert!((out[1] - cy).abs() < 0.15, "y {}", out[1]);
        assert!((out[2] - sigmoid(map[8 * w + 12])).abs() < 1e-6);
        assert_eq!(&out[3..], &[0.0, (h - 1) as f32, sigmoid(5.0)]);

        // Stride 4 in the input, input 4× smaller than the frame, crop offset (100, 50).
        let mapping = InputToFrame {
            crop_x: 100.0,
            crop_y: 50.0,
            scale_x: 4.0,
            scale_y: 4.0,
        };
        heatmap_keypoints(&map, 2, h, w, 160, 120, mapping, Activation::None, &mut out);
        let u = (cx + 0.5) * 4.0 - 0.5;
        let x = (u + 0.5) * 4.0 - 0.5 + 100.0;
        assert!((out[0] - x).abs() < 0.15 * 16.0, "{} vs {x}", out[0]);
        assert_eq!(out[3], (0.5 * 4.0 - 0.5 + 0.5) * 4.0 - 0.5 + 100.0);
    }

    #[test]
    fn direct_keypoints_map_input_pixels_to_the_frame() {
        let mapping = InputToFrame {
            crop_x: 10.0,
            crop_y: 0.0,
            scale_x: 2.0,
            scale_y: 0.5,
        };
        let mut out = [0.0f32; 3];
        direct_keypoints(&[3.0, 4.0, 0.0], 1, mapping, Activation::Sigmoid, &mut out);
        assert_eq!(out, [3.5 * 2.0 - 0.5 + 10.0, 4.5 * 0.5 - 0.5, 0.5]);
    }
}
