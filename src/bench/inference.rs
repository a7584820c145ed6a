//! Inference measurements: per model, preprocessing cost, behavd's bound run (+ decode) against
//! a raw `Session::run` on the same tensor, and the overhead ratio.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use super::Latency;
use crate::clock::monotonic_ns;
use crate::config::LoadedConfig;
use crate::infer::{ModelFeed, ModelRunner};

/// One model's numbers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelBench {
    /// Model name.
    pub name: String,
    /// Execution provider.
    pub provider: &'static str,
    /// Frame → input tensor (crop, resize, normalise, stack).
    pub preprocess: Latency,
    /// behavd's run on bound tensors, plus decoding.
    pub behavd_run: Latency,
    /// `Session::run` on the same tensor.
    pub session_run: Latency,
    /// behavd p50 / session.run p50.
    pub overhead_ratio_p50: f64,
}

fn latency(samples: &[u64]) -> Latency {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    for &s in samples {
        let _ = h.record(s.max(1));
    }
    Latency::from_ns(&h)
}

/// Measures every model of `loaded` on one frame of its stream (rendered once).
pub fn model_overhead(loaded: &LoadedConfig, iterations: usize) -> Result<Vec<ModelBench>> {
    let config = &loaded.config;
    let mut results = Vec::new();
    let mut widths = std::collections::HashMap::new();
    for m in &config.model {
        let (feed, pixels) = match m.source.strip_prefix("model:") {
            Some(up) => (
                ModelFeed::Vector(*widths.get(up).context("first stage measured first")?),
                None,
            ),
            None => {
                let source_config = config
                    .source
                    .iter()
                    .find(|s| s.name() == m.source)
                    .with_context(|| {
                        format!("model `{}` reads unknown source `{}`", m.name, m.source)
                    })?;
                let mut source = crate::pipeline::build_source(source_config)
                    .map_err(|e| anyhow::anyhow!("source `{}`: {e}", source_config.name()))?;
                let mut pixels = vec![0u8; source.info().geometry.frame_bytes()];
                source
                    .next_frame(&mut pixels)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                (ModelFeed::Frames(source.info().geometry), Some(pixels))
            }
        };
        let mut runner = ModelRunner::load(
            m,
            &loaded.base_dir,
            feed,
            config.inference.onnxruntime.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("model `{}`: {e}", m.name))?;
        widths.insert(m.name.clone(), runner.value_names().len());
        runner
            .warm_up(m.warmup_runs.max(3))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut pre = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t0 = monotonic_ns();
            match &pixels {
                Some(p) => runner.load_frame(p),
                None => runner.load_vector(&vec![
                    0.0;
                    match feed {
                        ModelFeed::Vector(n) => n,
                        ModelFeed::Frames(_) => 0,
                    }
                ]),
            }
            pre.push(monotonic_ns() - t0);
        }
        let (bound, raw) = runner
            .time_against_session_run(iterations)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (b, r) = (latency(&bound), latency(&raw));
        results.push(ModelBench {
            name: m.name.clone(),
            provider: runner.provider(),
            preprocess: latency(&pre),
            behavd_run: b,
            session_run: r,
            overhead_ratio_p50: b.p50_us / r.p50_us.max(1e-9),
        });
    }
    Ok(results)
}
