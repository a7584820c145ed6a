//! The imaged neurons: placement, spatial footprints, behavior tuning, Poisson spiking and
//! calcium-indicator kinetics.
//!
//! Spiking advances in the animal's fixed ticks, so the activity at a frame depends only on
//! the seed and the frame time. Each neuron is tuned to one behavior (fires at a few Hz while
//! the animal performs it, rarely otherwise) or untuned.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::animal::TICK_NS;
use super::noise::stream_rng;
use super::tissue::Tissue;
use crate::frame::Behavior;

const DT: f32 = TICK_NS as f32 * 1e-9;
/// Calcium level (in single-spike units) at which the indicator is half saturated.
const HALF_SATURATION: f32 = 3.0;
/// Rise time constant of a transient, seconds.
const RISE_S: f32 = 0.05;

/// Where one neuron's footprint lies on the padded canvas and in `weights`.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Padded-canvas index of the window's top-left pixel.
    origin: usize,
    width: usize,
    height: usize,
    /// Index of the window's first weight.
    start: usize,
}

/// The neuron population of one Miniscope.
pub(crate) struct Neurons {
    centers: Vec<[f32; 2]>,
    tuning: Vec<Option<Behavior>>,
    windows: Vec<Window>,
    weights: Vec<f32>,
    stride: usize,
    /// Spike probability per tick in each behavior.
    spike_p: Vec<[f32; 4]>,
    /// Fast (rise) and slow (decay) calcium components; the signal is `slow − fast`.
    fast: Vec<f32>,
    slow: Vec<f32>,
    decay_keep: Vec<f32>,
    resting_dn: Vec<f32>,
    max_df_dn: Vec<f32>,
    rng: Xoshiro256PlusPlus,
}

impl Neurons {
    /// Places `count` neurons in the `width`×`height` frame whose padded canvas is `tissue`.
    pub(crate) fn new(
        count: usize,
        width: usize,
        height: usize,
        pad: usize,
        tissue: &Tissue,
        seed: u64,
    ) -> Self {
        let mut rng = stream_rng(seed, 0xCE11);
        let mut centers: Vec<[f32; 2]> = Vec::with_capacity(count);
        let mut radii: Vec<f32> = Vec::with_capacity(count);
        let margin = 8.0f32.min(width.min(height) as f32 * 0.25);
        let mut attempts = 0usize;
        while centers.len() < count {
            attempts += 1;
            let c = [
                rng.random_range(margin..(width as f32 - margin).max(margin + 1.0)),
                rng.random_range(margin..(height as f32 - margin).max(margin + 1.0)),
            ];
            let r: f32 = rng.random_range(5.0..8.0);
            let strict = attempts < 200 * count.max(1);
            let idx = (c[1] as usize + pad) * tissue.width + c[0] as usize + pad;
            if strict && tissue.vessel[idx] < 0.85 {
                continue; // cells do not sit on top of large vessels
            }
            let overlap = centers
                .iter()
                .zip(&radii)
                .any(|(o, &ro)| (o[0] - c[0]).hypot(o[1] - c[1]) < 0.9 * (r + ro));
            if strict && overlap {
                continue;
            }
            centers.push(c);
            radii.push(r);
        }
        let mut windows = Vec::with_capacity(count);
        let mut weights = Vec::new();
        for (c, &r) in centers.iter().zip(&radii) {
            windows.push(footprint(&mut weights, *c, r, pad, tissue, &mut rng));
        }
        let tuning: Vec<Option<Behavior>> = (0..count)
            .map(|_| match rng.random_range(0..10) {
                0..=2 => None,
                k => Some(Behavior::ALL[(k - 3) % 4]),
            })
            .collect();
        let spike_p = tuning
            .iter()
            .map(|t| {
                let base: f32 = rng.random_range(0.05..0.4);
                let peak: f32 = rng.random_range(2.0..6.0);
                let untuned: f32 = rng.random_range(0.3..1.2);
                Behavior::ALL.map(|b| match t {
                    None => untuned * DT,
                    Some(p) if *p == b => peak * DT,
                    Some(_) => base * DT,
                })
            })
            .collect();
        let decay_keep = (0..count)
            .map(|_| (-DT / rng.random_range(0.5f32..1.0)).exp())
            .collect();
        let resting_dn = (0..count).map(|_| rng.random_range(6.0..16.0)).collect();
        let max_df_dn = (0..count).map(|_| rng.random_range(70.0..120.0)).collect();
        Self {
            centers,
            tuning,
            windows,
            weights,
            stride: tissue.width,
            spike_p,
            fast: vec![0.0; count],
            slow: vec![0.0; count],
            decay_keep,
            resting_dn,
            max_df_dn,
            rng,
        }
    }

    /// Centres of the neurons in frame pixel coordinates (x right, y down).
    pub(crate) fn centers(&self) -> &[[f32; 2]] {
        &self.centers
    }

    /// The behavior each neuron is tuned to (`None`: untuned).
    pub(crate) fn tuning(&self) -> &[Option<Behavior>] {
        &self.tuning
    }

    /// Advances spiking and calcium by one tick while the animal performs `behavior`.
    pub(crate) fn step(&mut self, behavior: Behavior) {
        let rise_keep = (-DT / RISE_S).exp();
        for i in 0..self.fast.len() {
            self.fast[i] *= rise_keep;
            self.slow[i] *= self.decay_keep[i];
            if self.rng.random::<f32>() < self.spike_p[i][behavior as usize] {
                self.fast[i] += 1.0;
                self.slow[i] += 1.0;
            }
        }
    }

    /// Fluorescence change of neuron `i` above rest, DN (saturating indicator).
    pub(crate) fn delta_f(&self, i: usize) -> f32 {
        let c = (self.slow[i] - self.fast[i]).max(0.0);
        self.max_df_dn[i] * c / (c + HALF_SATURATION)
    }

    /// Mean `delta_f` over the population (drives the diffuse neuropil glow).
    pub(crate) fn mean_delta_f(&self) -> f32 {
        let n = self.fast.len().max(1) as f32;
        (0..self.fast.len()).map(|i| self.delta_f(i)).sum::<f32>() / n
    }

    /// Adds every neuron's current fluorescence × footprint onto the padded canvas.
    pub(crate) fn splat(&self, canvas: &mut [f32]) {
        for (i, w) in self.windows.iter().enumerate() {
            let f = self.resting_dn[i] + self.delta_f(i);
            for row in 0..w.height {
                let dst = &mut canvas[w.origin + row * self.stride..][..w.width];
                let src = &self.weights[w.start + row * w.width..][..w.width];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += f * s;
                }
            }
        }
    }
}

/// Precomputes one soma footprint: a slightly elliptic soft disc with a dimmer nucleus
/// (the indicator is cytosolic), dimmed by vignetting and vessel shadow; appends its weights.
fn footprint(
    weights: &mut Vec<f32>,
    c: [f32; 2],
    r: f32,
    pad: usize,
    tissue: &Tissue,
    rng: &mut impl Rng,
) -> Window {
    let (cx, cy) = (c[0] + pad as f32, c[1] + pad as f32);
    let reach = (1.4 * r + 2.0).ceil();
    let x0 = (cx - reach).max(0.0) as usize;
    let y0 = (cy - reach).max(0.0) as usize;
    let x1 = ((cx + reach) as usize + 1).min(tissue.width);
    let y1 = ((cy + reach) as usize + 1).min(tissue.height);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
    let squash: f32 = rng.random_range(0.8..1.0);
    let (sa, ca) = angle.sin_cos();
    let start = weights.len();
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let u = (dx * ca + dy * sa) / r;
            let v = (-dx * sa + dy * ca) / (r * squash);
            let rho = (u * u + v * v).sqrt();
            let soma = 1.0 / (1.0 + ((rho - 1.0) * r / 1.2).exp());
            let nucleus = 1.0 - 0.35 * (-(rho / 0.45).powi(2)).exp();
            weights.push(soma * nucleus * tissue.transmission[y * tissue.width + x]);
        }
    }
    Window {
        origin: y0 * tissue.width + x0,
        width: x1 - x0,
        height: y1 - y0,
        start,
    }
}
