//! The overhead behavior camera's geometry and the static picture of the empty arena.
//!
//! A pinhole camera hangs [`CAMERA_HEIGHT_CM`] above the arena centre looking straight down.
//! Floor points map linearly to pixels; a point `z` cm above the floor is magnified by
//! `H / (H − z)` about the image centre, so a rearing animal's head looks larger and the
//! inner faces of the walls show as bands around the floor.

use rand::Rng;

use super::animal::ARENA_CM;
use super::noise::{stream_rng, value_noise};
use crate::frame::PixelFormat;

/// Height of the camera above the floor, cm.
pub(crate) const CAMERA_HEIGHT_CM: f32 = 70.0;
/// Height of the arena walls, cm.
pub(crate) const WALL_HEIGHT_CM: f32 = 15.0;

const FLOOR_RGB: [f32; 3] = [206.0, 203.0, 195.0];
const WALL_RGB: [f32; 3] = [138.0, 145.0, 156.0];
const RIM_RGB: [f32; 3] = [178.0, 180.0, 184.0];
const BENCH_RGB: [f32; 3] = [72.0, 66.0, 60.0];

/// Maps arena points (cm) to pixels of one camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CameraModel {
    /// Image centre, pixels.
    pub cx: f32,
    /// Image centre, pixels.
    pub cy: f32,
    /// Pixels per centimetre on the floor.
    pub scale: f32,
}

impl CameraModel {
    /// Fits the whole arena, walls included, into a `width`×`height` image.
    pub(crate) fn fit(width: u32, height: u32) -> Self {
        let half_view = 0.5 * ARENA_CM * magnification(WALL_HEIGHT_CM) + 1.0;
        Self {
            cx: (width as f32 - 1.0) * 0.5,
            cy: (height as f32 - 1.0) * 0.5,
            scale: 0.48 * width.min(height) as f32 / half_view,
        }
    }

    /// Pixel position (x right, y down) of an arena point `[x, y, z]` (cm).
    pub(crate) fn project(&self, p: [f32; 3]) -> [f32; 2] {
        let k = self.scale * magnification(p[2]);
        let half = 0.5 * ARENA_CM;
        [self.cx + (p[0] - half) * k, self.cy + (p[1] - half) * k]
    }

    /// Floor point (cm) seen at a pixel if nothing stood in the way.
    pub(crate) fn floor_point(&self, px: f32, py: f32) -> [f32; 2] {
        let half = 0.5 * ARENA_CM;
        [
            half + (px - self.cx) / self.scale,
            half + (py - self.cy) / self.scale,
        ]
    }
}

/// Apparent magnification of an object `z` cm above the floor.
pub(crate) fn magnification(z: f32) -> f32 {
    CAMERA_HEIGHT_CM / (CAMERA_HEIGHT_CM - z)
}

/// Renders the empty arena (textured floor, wall faces, rim, bench around it, vignetting)
/// in `format`, rows top to bottom.
pub(crate) fn render_arena(width: u32, height: u32, format: PixelFormat, seed: u64) -> Vec<u8> {
    let cam = CameraModel::fit(width, height);
    let (w, h) = (width as usize, height as usize);
    let mut rng = stream_rng(seed, 0xA4E4);
    let coarse = value_noise(w, h, 9.0 * cam.scale, &mut rng);
    let fine = value_noise(w, h, 0.5 * cam.scale, &mut rng);
    let tint: [f32; 3] = std::array::from_fn(|_| rng.random_range(-0.02..0.02));
    let half = 0.5 * ARENA_CM;
    let wall_top = magnification(WALL_HEIGHT_CM);
    let rim_end = wall_top + 1.2 / half;
    let r_max = (cam.cx * cam.cx + cam.cy * cam.cy).sqrt().max(1.0);
    let mut out = Vec::with_capacity(w * h * format.bytes_per_pixel());
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let [fx, fy] = cam.floor_point(x as f32, y as f32);
            // Chebyshev "radius": 1 at the foot of the walls, `wall_top` at their top edge.
            let e = (fx - half).abs().max((fy - half).abs()) / half;
            let (rgb, texture) = if e <= 1.0 {
                let to_wall = (1.0 - e) * half;
                let occlusion = 1.0 - 0.18 * (-to_wall / 1.2).exp();
                (
                    FLOOR_RGB.map(|c| c * occlusion),
                    0.035 * coarse[i] + 0.03 * fine[i],
                )
            } else if e <= wall_top {
                let z = CAMERA_HEIGHT_CM * (1.0 - 1.0 / e);
                // Side walls catch a little more light than the top and bottom ones.
                let side = if (fx - half).abs() > (fy - half).abs() {
                    1.0
                } else {
                    0.93
                };
                let shade = side * (0.82 + 0.18 * z / WALL_HEIGHT_CM);
                (WALL_RGB.map(|c| c * shade), 0.02 * coarse[i])
            } else if e <= rim_end {
                (RIM_RGB, 0.01 * fine[i])
            } else {
                (BENCH_RGB, 0.06 * coarse[i] + 0.04 * fine[i])
            };
            let r = ((x as f32 - cam.cx).powi(2) + (y as f32 - cam.cy).powi(2)).sqrt() / r_max;
            let light = (1.0 - 0.22 * r * r) * (1.0 + texture);
            let px: [f32; 3] = std::array::from_fn(|c| rgb[c] * light * (1.0 + tint[c]));
            match format {
                PixelFormat::Gray8 => out.push(luma(px).round().clamp(0.0, 255.0) as u8),
                PixelFormat::Rgb8 => out.extend(px.map(|v| v.round().clamp(0.0, 255.0) as u8)),
            }
        }
    }
    out
}

/// Rec. 601 luma of an RGB colour.
pub(crate) fn luma(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_fits_the_frame_and_floor_is_bright() {
        let cam = CameraModel::fit(640, 480);
        for corner in [
            [0.0, 0.0, 0.0],
            [40.0, 40.0, 0.0],
            [0.0, 40.0, WALL_HEIGHT_CM],
        ] {
            let [x, y] = cam.project(corner);
            assert!(
                (0.0..640.0).contains(&x) && (0.0..480.0).contains(&y),
                "{corner:?} at {x},{y}"
            );
        }
        let bg = render_arena(640, 480, PixelFormat::Gray8, 1);
        assert_eq!(bg.len(), 640 * 480);
        let [cx, cy] = cam.project([20.0, 20.0, 0.0]).map(|v| v.round() as usize);
        let [wx, wy] = cam.project([-1.0, 20.0, 0.0]).map(|v| v.round() as usize);
        let (floor, wall) = (bg[cy * 640 + cx], bg[wy * 640 + wx]);
        assert!(
            floor > 180 && wall + 30 < floor,
            "floor {floor}, wall {wall}"
        );
        let rgb = render_arena(64, 48, PixelFormat::Rgb8, 1);
        assert_eq!(rgb.len(), 64 * 48 * 3);
    }

    #[test]
    fn raised_points_are_magnified_away_from_the_centre() {
        let cam = CameraModel::fit(640, 480);
        let low = cam.project([30.0, 20.0, 0.0]);
        let high = cam.project([30.0, 20.0, 8.0]);
        assert!(high[0] > low[0] + 5.0);
        let back = cam.floor_point(low[0], low[1]);
        assert!((back[0] - 30.0).abs() < 1e-3 && (back[1] - 20.0).abs() < 1e-3);
    }
}
