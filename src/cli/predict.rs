//! `behavd predict`: re-run a configured model over the frames of a recorded session, exactly as
//! it runs live (same preprocessing, state carried frame to frame), and write its raw and
//! decoded outputs as JSON. Used to score a new model on old sessions and by the parity test.

use std::path::Path;

use anyhow::{Context, Result, bail};
use behavd::config::LoadedConfig;
use behavd::infer::{ModelFeed, ModelRunner};
use behavd::record::replay::RecordedFrames;

/// Runs model `name` of `config` over the first `frames` frames of `session`.
pub fn predict(
    config: &Path,
    name: &str,
    session: &Path,
    frames: Option<usize>,
    out: Option<&Path>,
) -> Result<()> {
    let loaded = LoadedConfig::from_file(config)?;
    let models = &loaded.config.model;
    // The chain of models from the one reading frames to `name` (two-stage models).
    let mut chain = Vec::new();
    let mut current = name.to_string();
    loop {
        let Some(m) = models.iter().find(|m| m.name == current) else {
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            bail!(
                "{}: no [[model]] named `{current}` (have: {})",
                loaded.origin,
                names.join(", ")
            );
        };
        chain.push(m.clone());
        match m.source.strip_prefix("model:") {
            Some(upstream) if chain.len() < 8 => current = upstream.to_string(),
            Some(_) => bail!("model chain of `{name}` is too long"),
            None => break,
        }
    }
    chain.reverse();
    let stream = chain[0].source.clone();
    let recorded = RecordedFrames::open(session, &stream)?;
    let onnxruntime = loaded
        .config
        .inference
        .onnxruntime
        .as_ref()
        .map(|p| loaded.base_dir.join(p).display().to_string());
    let onnxruntime = onnxruntime.as_deref();
    let mut runners = Vec::new();
    let mut width = 0;
    for (i, m) in chain.iter().enumerate() {
        let feed = if i == 0 {
            ModelFeed::Frames(recorded.geometry)
        } else {
            ModelFeed::Vector(width)
        };
        let runner = ModelRunner::load(m, &loaded.base_dir, feed, onnxruntime)
            .map_err(|e| anyhow::anyhow!("model `{}`: {e}", m.name))?;
        width = runner.value_names().len();
        runners.push(runner);
    }
    let n = frames.unwrap_or(recorded.count).min(recorded.count);
    let mut pixels = vec![0u8; recorded.geometry.frame_bytes()];
    let mut raw_rows = Vec::with_capacity(n);
    let mut value_rows = Vec::with_capacity(n);
    for index in 0..n {
        recorded.read(index, &mut pixels)?;
        let mut carried: Vec<f32> = Vec::new();
        for (i, runner) in runners.iter_mut().enumerate() {
            if i == 0 {
                runner.load_frame(&pixels);
            } else {
                runner.load_vector(&carried);
            }
            runner.execute().with_context(|| format!("frame {index}"))?;
            carried = runner.decode().to_vec();
        }
        let last = runners.last().expect("at least one model");
        raw_rows.push(last.raw_output().to_vec());
        value_rows.push(carried);
    }
    let last = runners.last().expect("at least one model");
    let result = serde_json::json!({
        "model": name,
        "chain": chain.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "stream": stream,
        "session": session.display().to_string(),
        "frames": (0..n).collect::<Vec<_>>(),
        "value_names": last.value_names(),
        "raw": raw_rows,
        "values": value_rows,
    });
    let text = serde_json::to_string(&result)?;
    match out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}
