//! Deterministic randomness for the renderers: counter-based hashing, Gaussian samples,
//! precomputed noise tables (so frames need no per-pixel random numbers) and smooth value
//! noise for textures.

use std::f64::consts::TAU;

use rand::{Rng, RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64 finaliser: a well-mixed 64-bit function of `x`.
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of three words, used to derive per-frame and per-row noise offsets from the seed.
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix64(mix64(mix64(a) ^ b) ^ c)
}

/// A seeded generator for one named random stream (`stream` keeps streams independent).
pub(crate) fn stream_rng(seed: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(hash3(seed, stream, 0x5EED))
}

/// One standard normal sample (Box–Muller, no caching so the stream stays simple).
pub(crate) fn normal<R: RngCore>(rng: &mut R) -> f32 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    let r = (-2.0 * (1.0 - u1).ln()).sqrt();
    (r * (TAU * u2).cos()) as f32
}

/// Length of the noise tables: long enough that windows taken at random offsets do not
/// show a visible repeating pattern.
const TABLE_LEN: usize = 1 << 17;

/// A table of standard normal samples read through windows at hashed offsets.
pub(crate) struct GaussTable {
    values: Vec<f32>,
}

impl GaussTable {
    /// Fills the table from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, 0x6A05);
        let values = (0..TABLE_LEN).map(|_| normal(&mut rng)).collect();
        Self { values }
    }

    /// `n` consecutive samples starting at an offset chosen by `key` (`n` ≤ half the table).
    pub(crate) fn window(&self, key: u64, n: usize) -> &[f32] {
        let span = self.values.len() - n;
        let start = (mix64(key) % span as u64) as usize;
        &self.values[start..start + n]
    }
}

/// Additive sensor noise for 8-bit pixels: Gaussian samples of a fixed sigma, stored as `i8`.
pub(crate) struct ByteNoise {
    values: Vec<i8>,
}

/// Pixels per window of [`ByteNoise::add_to`]; each window starts at its own hashed offset.
const BYTE_CHUNK: usize = 4096;

impl ByteNoise {
    /// Noise of standard deviation `sigma` DN (clipped at ±127).
    pub(crate) fn new(seed: u64, sigma: f32) -> Self {
        let mut rng = stream_rng(seed, 0xB17E);
        let values = (0..TABLE_LEN)
            .map(|_| (normal(&mut rng) * sigma).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Self { values }
    }

    /// Adds noise to every byte of `pixels` (saturating); `key` selects the pattern.
    pub(crate) fn add_to(&self, pixels: &mut [u8], key: u64) {
        let span = (self.values.len() - BYTE_CHUNK) as u64;
        for (i, chunk) in pixels.chunks_mut(BYTE_CHUNK).enumerate() {
            let start = (hash3(key, i as u64, 0xC4) % span) as usize;
            let noise = &self.values[start..start + chunk.len()];
            for (p, &n) in chunk.iter_mut().zip(noise) {
                *p = (*p as i16 + n as i16).clamp(0, 255) as u8;
            }
        }
    }
}

/// Smooth value noise in about [-1, 1] over a `w`×`h` grid, with features `cell` pixels apart
/// (random lattice values, smoothstep-interpolated). Used only when building backgrounds.
pub(crate) fn value_noise(w: usize, h: usize, cell: f32, rng: &mut Xoshiro256PlusPlus) -> Vec<f32> {
    let gw = (w as f32 / cell).ceil() as usize + 2;
    let gh = (h as f32 / cell).ceil() as usize + 2;
    let lattice: Vec<f32> = (0..gw * gh)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let fy = y as f32 / cell;
        let (iy, ty) = (fy as usize, smooth(fy.fract()));
        for x in 0..w {
            let fx = x as f32 / cell;
            let (ix, tx) = (fx as usize, smooth(fx.fract()));
            let at = |i: usize, j: usize| lattice[j * gw + i];
            let top = at(ix, iy) + (at(ix + 1, iy) - at(ix, iy)) * tx;
            let bottom = at(ix, iy + 1) + (at(ix + 1, iy + 1) - at(ix, iy + 1)) * tx;
            out.push(top + (bottom - top) * ty);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_table_is_standard_normal() {
        let t = GaussTable::new(3);
        let n = t.values.len() as f64;
        let mean = t.values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = t
            .values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }

    #[test]
    fn byte_noise_has_requested_sigma_and_saturates() {
        let noise = ByteNoise::new(9, 2.0);
        let mut px = vec![128u8; 100_000];
        noise.add_to(&mut px, 1);
        let n = px.len() as f64;
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = px.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 128.0).abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.15, "sigma {}", var.sqrt());
        let mut dark = vec![0u8; 10_000];
        noise.add_to(&mut dark, 2);
        assert!(dark.iter().any(|&v| v > 0));
        let mut other = vec![128u8; 100_000];
        noise.add_to(&mut other, 2);
        assert_ne!(px, other, "different keys must give different noise");
    }
}
