//! Cost of one synthetic frame: the Miniscope at 608×608 and the behavior camera at
//! 640×480 grey and 1280×720 RGB (fast pacing, so only rendering is measured).

use std::hint::black_box;

use behavd::bench::{behavior_source as behavior, miniscope_source as miniscope};
use behavd::frame::PixelFormat;
use behavd::source::Source;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Benchmarks `next_frame` of `source` under `name`.
fn frame_cost(c: &mut Criterion, name: &str, mut source: impl Source) {
    let mut pixels = vec![0u8; source.info().geometry.frame_bytes()];
    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Bytes(pixels.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| black_box(source.next_frame(black_box(&mut pixels)).expect("frame")))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    frame_cost(c, "miniscope_608x608_gray", miniscope());
    frame_cost(
        c,
        "behavior_640x480_gray",
        behavior(640, 480, PixelFormat::Gray8),
    );
    frame_cost(
        c,
        "behavior_1280x720_rgb",
        behavior(1280, 720, PixelFormat::Rgb8),
    );
}

criterion_group!(synthetic, benches);
criterion_main!(synthetic);
