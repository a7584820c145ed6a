//! Recorder throughput (uncompressed MB/s in) per compression setting, through the real
//! recorder thread, SWMR file and flush policy, with synthetic Miniscope 608×608 frames.

use std::time::Duration;

use behavd::bench::{miniscope_source, recorder_throughput};
use behavd::config::Compression;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FRAMES: usize = 150;

fn recorder(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("recorder_608x608");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((FRAMES * 608 * 608) as u64));
    for (label, compression, threads) in [
        ("none", Compression::None, 0),
        ("gzip1_filter_on_writer", Compression::Gzip { level: 1 }, 0),
        ("gzip1_1_worker", Compression::Gzip { level: 1 }, 1),
        ("gzip1_2_workers", Compression::Gzip { level: 1 }, 2),
        ("gzip4_2_workers", Compression::Gzip { level: 4 }, 2),
    ] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let run = recorder_throughput(
                            &mut miniscope_source(),
                            FRAMES,
                            compression,
                            threads,
                            dir.path(),
                        )
                        .expect("recording succeeds");
                        Duration::from_secs_f64(run.seconds)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, recorder);
criterion_main!(benches);
