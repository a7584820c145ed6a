//! Anti-aliased drawing of filled shapes into an 8-bit frame (grey or RGB), touching only
//! the pixels inside each shape's bounding box.

use super::arena_view::luma;

/// How a shape is filled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    /// Fill colour (RGB, 0–255); grey frames use its luma.
    pub rgb: [f32; 3],
    /// Opacity, 0–1.
    pub alpha: f32,
    /// Relative brightening towards the middle of an ellipse (a rounded, lit look).
    pub highlight: f32,
}

impl Paint {
    /// An opaque, flat paint.
    pub(crate) const fn solid(rgb: [f32; 3]) -> Self {
        Self {
            rgb,
            alpha: 1.0,
            highlight: 0.0,
        }
    }
}

/// A frame buffer being drawn on.
pub(crate) struct Canvas<'a> {
    px: &'a mut [u8],
    width: usize,
    height: usize,
    rgb: bool,
}

impl<'a> Canvas<'a> {
    /// Wraps `px` (`width`×`height`, 1 byte per pixel, or 3 if `rgb`).
    pub(crate) fn new(px: &'a mut [u8], width: usize, height: usize, rgb: bool) -> Self {
        debug_assert_eq!(px.len(), width * height * if rgb { 3 } else { 1 });
        Self {
            px,
            width,
            height,
            rgb,
        }
    }

    /// Pixel range `[lo, hi)` covering `[c − ext, c + ext]` on an axis of `n` pixels.
    fn span(c: f32, ext: f32, n: usize) -> (usize, usize) {
        let lo = (c - ext).floor().max(0.0) as usize;
        let hi = ((c + ext).ceil() + 1.0).clamp(0.0, n as f32) as usize;
        (lo.min(hi), hi)
    }

    /// Blends `rgb` (scaled by `shade`) into pixel `(x, y)` with opacity `a`.
    #[inline]
    fn blend(&mut self, x: usize, y: usize, rgb: [f32; 3], shade: f32, a: f32) {
        let i = y * self.width + x;
        if self.rgb {
            for (c, &v) in self.px[3 * i..3 * i + 3].iter_mut().zip(&rgb) {
                let old = *c as f32;
                *c = (old + ((v * shade).min(255.0) - old) * a + 0.5) as u8;
            }
        } else {
            let old = self.px[i] as f32;
            let v = (rgb[0] * shade).min(255.0); // grey paints carry their luma in rgb[0]
            self.px[i] = (old + (v - old) * a + 0.5) as u8;
        }
    }

    fn colour(&self, paint: &Paint) -> [f32; 3] {
        if self.rgb {
            paint.rgb
        } else {
            [luma(paint.rgb); 3]
        }
    }

    /// Fills an ellipse centred at `c` with semi-axes `a` (along `angle`) and `b`, in pixels.
    pub(crate) fn ellipse(&mut self, c: [f32; 2], a: f32, b: f32, angle: f32, paint: &Paint) {
        if !(a > 0.0 && b > 0.0 && c[0].is_finite() && c[1].is_finite()) {
            return;
        }
        let rgb = self.colour(paint);
        let (sa, ca) = angle.sin_cos();
        let ext = a.max(b) + 1.0;
        let (x0, x1) = Self::span(c[0], ext, self.width);
        let (y0, y1) = Self::span(c[1], ext, self.height);
        let outer = (1.0 + 1.0 / a.min(b)).powi(2);
        for y in y0..y1 {
            let dy = y as f32 - c[1];
            for x in x0..x1 {
                let dx = x as f32 - c[0];
                let u = (dx * ca + dy * sa) / a;
                let v = (-dx * sa + dy * ca) / b;
                let rho2 = u * u + v * v;
                if rho2 >= outer {
                    continue;
                }
                let rho = rho2.sqrt();
                // Distance to the edge in pixels ≈ (1 − ρ) / |∇ρ|.
                let grad = ((u / a).powi(2) + (v / b).powi(2)).sqrt() / rho.max(1e-6);
                let cover = if rho < 1e-3 {
                    1.0
                } else {
                    ((1.0 - rho) / grad + 0.5).clamp(0.0, 1.0)
                };
                if cover > 0.0 {
                    let shade = 1.0 + paint.highlight * (1.0 - rho2).max(0.0);
                    self.blend(x, y, rgb, shade, cover * paint.alpha);
                }
            }
        }
    }

    /// Fills a disc of radius `r` pixels.
    pub(crate) fn disc(&mut self, c: [f32; 2], r: f32, paint: &Paint) {
        self.ellipse(c, r, r, 0.0, paint);
    }

    /// Fills a capsule (a thick segment with round ends) of radius `r` pixels from `p` to `q`.
    pub(crate) fn capsule(&mut self, p: [f32; 2], q: [f32; 2], r: f32, paint: &Paint) {
        if !(r > 0.0 && p.iter().chain(&q).all(|v| v.is_finite())) {
            return;
        }
        let rgb = self.colour(paint);
        let (x0, x1) = Self::span(
            0.5 * (p[0] + q[0]),
            0.5 * (p[0] - q[0]).abs() + r + 1.0,
            self.width,
        );
        let (y0, y1) = Self::span(
            0.5 * (p[1] + q[1]),
            0.5 * (p[1] - q[1]).abs() + r + 1.0,
            self.height,
        );
        let d = [q[0] - p[0], q[1] - p[1]];
        let len2 = (d[0] * d[0] + d[1] * d[1]).max(1e-6);
        for y in y0..y1 {
            for x in x0..x1 {
                let w = [x as f32 - p[0], y as f32 - p[1]];
                let t = ((w[0] * d[0] + w[1] * d[1]) / len2).clamp(0.0, 1.0);
                let dist = (w[0] - t * d[0]).hypot(w[1] - t * d[1]);
                let cover = (r - dist + 0.5).clamp(0.0, 1.0);
                if cover > 0.0 {
                    self.blend(x, y, rgb, 1.0, cover * paint.alpha);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_covers_its_area_and_respects_bounds() {
        let mut px = vec![255u8; 100 * 80];
        let mut canvas = Canvas::new(&mut px, 100, 80, false);
        canvas.ellipse([50.0, 40.0], 20.0, 10.0, 0.3, &Paint::solid([0.0; 3]));
        // Shapes partly or wholly off the frame must not panic.
        canvas.ellipse([-5.0, 79.0], 12.0, 6.0, 1.0, &Paint::solid([0.0; 3]));
        canvas.capsule([90.0, -10.0], [200.0, 300.0], 3.0, &Paint::solid([0.0; 3]));
        canvas.ellipse([1e9, 0.0], 5.0, 5.0, 0.0, &Paint::solid([0.0; 3]));
        let mut only = vec![255u8; 100 * 80];
        Canvas::new(&mut only, 100, 80, false).ellipse(
            [50.0, 40.0],
            20.0,
            10.0,
            0.3,
            &Paint::solid([0.0; 3]),
        );
        let coverage: f32 = only.iter().map(|&v| 1.0 - v as f32 / 255.0).sum();
        let area = std::f32::consts::PI * 20.0 * 10.0;
        assert!(
            (coverage - area).abs() < 0.03 * area,
            "coverage {coverage} vs area {area}"
        );
        assert_eq!(only[40 * 100 + 50], 0);
        assert_eq!(only[40 * 100 + 75], 255);
    }
}
