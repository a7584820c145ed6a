//! The Miniscope's static field of view, built once: lens vignetting, tissue texture,
//! out-of-focus cells and the shadows of blood vessels.
//!
//! Everything is computed on a padded canvas (the frame plus `pad` pixels on every side) so
//! the renderer can shift the whole field of view by a pixel or two to imitate brain motion.

use std::f32::consts::TAU;

use rand::Rng;

use super::noise::{normal, stream_rng, value_noise};

/// Mean background fluorescence at the centre of the field, DN.
const BACKGROUND_DN: f32 = 85.0;

/// The static layers of the field of view, one value per padded pixel.
pub(crate) struct Tissue {
    /// Padded width.
    pub width: usize,
    /// Padded height.
    pub height: usize,
    /// Background fluorescence (DN) with vignetting and vessel shadows applied.
    pub background: Vec<f32>,
    /// Fraction of a cell's light that reaches the sensor (vignetting × vessel shadow).
    pub transmission: Vec<f32>,
    /// Vessel shadow alone (1 = no vessel).
    pub vessel: Vec<f32>,
}

impl Tissue {
    /// Builds the field for a `width`×`height` frame padded by `pad` pixels on every side.
    pub(crate) fn new(width: usize, height: usize, pad: usize, seed: u64) -> Self {
        let (pw, ph) = (width + 2 * pad, height + 2 * pad);
        let mut rng = stream_rng(seed, 0x7155);
        let coarse = value_noise(pw, ph, 56.0, &mut rng);
        let fine = value_noise(pw, ph, 7.0, &mut rng);
        let (cx, cy) = (pw as f32 * 0.5, ph as f32 * 0.5);
        let r0 = 0.75 * 0.5 * (width as f32).hypot(height as f32);
        let vignette: Vec<f32> = (0..pw * ph)
            .map(|i| {
                let (x, y) = ((i % pw) as f32 - cx, (i / pw) as f32 - cy);
                let r = (x * x + y * y).sqrt() / r0;
                0.15 + 0.85 / (1.0 + r.powi(4))
            })
            .collect();
        let mut haze: Vec<f32> = coarse
            .iter()
            .zip(&fine)
            .map(|(c, f)| BACKGROUND_DN * (1.0 + 0.10 * c + 0.05 * f))
            .collect();
        add_out_of_focus_cells(&mut haze, pw, ph, &mut rng);
        let vessel = vessel_shadows(pw, ph, &mut rng);
        let transmission: Vec<f32> = vignette.iter().zip(&vessel).map(|(v, s)| v * s).collect();
        let background = haze.iter().zip(&transmission).map(|(h, t)| h * t).collect();
        Self {
            width: pw,
            height: ph,
            background,
            transmission,
            vessel,
        }
    }
}

/// Adds faint blurred blobs: cells above and below the focal plane.
fn add_out_of_focus_cells(haze: &mut [f32], pw: usize, ph: usize, rng: &mut impl Rng) {
    let count = pw * ph / 1200;
    for _ in 0..count {
        let (x0, y0) = (
            rng.random_range(0.0..pw as f32),
            rng.random_range(0.0..ph as f32),
        );
        let sigma: f32 = rng.random_range(5.0..11.0);
        let amp: f32 = rng.random_range(1.5..5.0);
        let reach = (3.0 * sigma) as i64;
        for y in (y0 as i64 - reach).max(0)..(y0 as i64 + reach).min(ph as i64) {
            for x in (x0 as i64 - reach).max(0)..(x0 as i64 + reach).min(pw as i64) {
                let d2 = (x as f32 - x0).powi(2) + (y as f32 - y0).powi(2);
                haze[y as usize * pw + x as usize] += amp * (-d2 / (2.0 * sigma * sigma)).exp();
            }
        }
    }
}

/// A vessel being traced: position, direction, width (px) and shadow depth.
struct Vessel {
    x: f32,
    y: f32,
    heading: f32,
    /// The general direction the vessel keeps to.
    course: f32,
    width: f32,
    depth: f32,
}

/// Traces a few winding, branching blood vessels across the field and returns the fraction
/// of light each pixel keeps under their shadow.
fn vessel_shadows(pw: usize, ph: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut shade = vec![1.0f32; pw * ph];
    let mut todo: Vec<Vessel> = (0..rng.random_range(3..=5))
        .map(|_| {
            // Enter from a random edge, heading roughly inwards.
            let edge = rng.random_range(0..4);
            let t: f32 = rng.random_range(0.1..0.9);
            let (x, y, inward) = match edge {
                0 => (t * pw as f32, 0.0, TAU / 4.0),
                1 => (t * pw as f32, ph as f32 - 1.0, -TAU / 4.0),
                2 => (0.0, t * ph as f32, 0.0),
                _ => (pw as f32 - 1.0, t * ph as f32, TAU / 2.0),
            };
            let heading = inward + rng.random_range(-0.6..0.6);
            Vessel {
                x,
                y,
                heading,
                course: heading,
                width: rng.random_range(5.0..12.0),
                depth: rng.random_range(0.35..0.6),
            }
        })
        .collect();
    while let Some(mut v) = todo.pop() {
        let mut bend = 0.0f32;
        for _ in 0..4 * (pw + ph) {
            if v.x < -1.0 || v.y < -1.0 || v.x > pw as f32 || v.y > ph as f32 || v.width < 1.5 {
                break;
            }
            stamp_disc(&mut shade, pw, ph, &v);
            // Gently meandering around its course.
            bend = 0.98 * bend + 0.003 * normal(rng);
            v.heading += bend + 0.02 * (v.course - v.heading);
            v.x += v.heading.cos();
            v.y += v.heading.sin();
            v.width *= 0.9993;
            if v.width > 4.0 && rng.random::<f32>() < 0.0012 {
                let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
                let heading = v.heading + side * rng.random_range(0.5..1.2);
                todo.push(Vessel {
                    heading,
                    course: heading,
                    width: v.width * rng.random_range(0.45..0.7),
                    depth: v.depth * 0.85,
                    ..v
                });
            }
        }
    }
    shade
}

/// Darkens the pixels under one step of a vessel (soft-edged disc of the vessel's width).
fn stamp_disc(shade: &mut [f32], pw: usize, ph: usize, v: &Vessel) {
    let r = v.width * 0.5;
    let reach = (r + 2.0).ceil() as i64;
    let (xc, yc) = (v.x.round() as i64, v.y.round() as i64);
    for y in (yc - reach).max(0)..(yc + reach + 1).min(ph as i64) {
        for x in (xc - reach).max(0)..(xc + reach + 1).min(pw as i64) {
            let d = ((x as f32 - v.x).powi(2) + (y as f32 - v.y).powi(2)).sqrt();
            let cover = ((r + 0.75 - d) / 1.5).clamp(0.0, 1.0);
            // Thicker vessels absorb more at their centre line.
            let core = 1.0 - (d / r.max(1.0)).min(1.0).powi(2) * 0.3;
            let keep = 1.0 - v.depth * cover * core;
            let i = y as usize * pw + x as usize;
            shade[i] = shade[i].min(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_is_vignetted_and_has_vessels() {
        let t = Tissue::new(200, 200, 3, 5);
        let at = |x: usize, y: usize| t.transmission[y * t.width + x];
        assert!(at(103, 103) > 0.6, "centre transmission {}", at(103, 103));
        // Corners are dimmer than the centre (lens vignetting).
        let corner_vessel = t.vessel[t.width + 1];
        assert!(at(1, 1) / corner_vessel < 0.5 * at(103, 103) / t.vessel[103 * t.width + 103]);
        let shadowed = t.vessel.iter().filter(|&&s| s < 0.8).count();
        let frac = shadowed as f64 / t.vessel.len() as f64;
        assert!((0.01..0.35).contains(&frac), "vessel cover {frac}");
        assert!(t.background.iter().all(|&b| (5.0..150.0).contains(&b)));
    }
}
