//! Inference: preprocessing a camera frame into the network input (area / bilinear resize,
//! normalisation, temporal stack), and the demo models' bound run (+ decode) against ort's
//! safe `Session::run` on the same tensor. The model part needs libonnxruntime and the shipped
//! models (scripts/setup.sh); it is skipped with a message otherwise.

use std::hint::black_box;
use std::time::Duration;

use behavd::config::LoadedConfig;
use behavd::config::model::{InputSpec, Interpolation};
use behavd::frame::{FrameGeometry, PixelFormat};
use behavd::infer::preprocess::{Preprocessor, TemporalStack};
use behavd::infer::{ModelFeed, ModelRunner};
use criterion::{Criterion, criterion_group, criterion_main};

fn preprocess(c: &mut Criterion) {
    let mut group = c.benchmark_group("preprocess");
    group.measurement_time(Duration::from_secs(4));
    for (label, w, h, out, interpolation, frames) in [
        (
            "640x480_to_160x120_area",
            640,
            480,
            [160, 120],
            Interpolation::Area,
            1,
        ),
        (
            "640x480_to_160x120_bilinear",
            640,
            480,
            [160, 120],
            Interpolation::Bilinear,
            1,
        ),
        (
            "608x608_to_152x152_area_stack4",
            608,
            608,
            [152, 152],
            Interpolation::Area,
            4,
        ),
    ] {
        let mut spec: InputSpec = toml::from_str("name = \"x\"").unwrap();
        spec.resize = Some(out);
        spec.interpolation = interpolation;
        spec.frames = frames;
        let geometry = FrameGeometry {
            width: w,
            height: h,
            format: PixelFormat::Gray8,
        };
        let mut pre = Preprocessor::new(&spec, geometry, false).unwrap();
        let mut stack = TemporalStack::new(frames, pre.chw(), spec.layout, spec.stack);
        let pixels: Vec<u8> = (0..geometry.frame_bytes())
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut tensor = vec![0.0f32; pre.frame_len() * frames];
        group.bench_function(label, |b| {
            b.iter(|| {
                pre.run(black_box(&pixels), stack.next_slot());
                stack.commit();
                stack.write(&mut tensor, |v| v);
                black_box(&tensor);
            })
        });
    }
    group.finish();
}

fn models(c: &mut Criterion) {
    let loaded = LoadedConfig::demo();
    let mut group = c.benchmark_group("model");
    group.measurement_time(Duration::from_secs(4));
    for m in loaded
        .config
        .model
        .iter()
        .filter(|m| !m.source.starts_with("model:"))
    {
        let source = loaded
            .config
            .source
            .iter()
            .find(|s| s.name() == m.source)
            .unwrap();
        let geometry = source.geometry();
        let mut runner =
            match ModelRunner::load(m, &loaded.base_dir, ModelFeed::Frames(geometry), None) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("skipping model benches: {e}");
                    return;
                }
            };
        let pixels: Vec<u8> = (0..geometry.frame_bytes())
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        runner.load_frame(&pixels);
        group.bench_function(format!("{}_behavd_run_and_decode", m.name), |b| {
            b.iter(|| {
                runner.execute().unwrap();
                black_box(runner.decode());
            })
        });
        group.bench_function(format!("{}_session_run", m.name), |b| {
            b.iter_custom(|iters| {
                let (_, raw) = runner.time_against_session_run(iters as usize).unwrap();
                Duration::from_nanos(raw.iter().sum())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, preprocess, models);
criterion_main!(benches);
