//! Recorder throughput (uncompressed MB/s in) per compression setting, through the real
//! recorder thread, SWMR file and flush policy, with Miniscope-like 608×608 frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use behavd::clock::SessionClock;
use behavd::config::source::{FaultPlan, Pacing, SyntheticMiniscopeConfig};
use behavd::config::{Compression, LoadedConfig};
use behavd::frame::{FrameMeta, FramePool};
use behavd::record::{Recorder, RecorderSetup, StreamSetup};
use behavd::source::Source;
use behavd::source::synthetic::SyntheticMiniscope;
use behavd::stats::StreamStats;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FRAMES: usize = 150;

fn rendered_frames() -> (behavd::source::StreamInfo, Vec<Vec<u8>>) {
    let config = SyntheticMiniscopeConfig {
        name: "Miniscope".into(),
        fps: 30.0,
        width: 608,
        height: 608,
        neurons: 120,
        seed: 1,
        counter_start: 0,
        pacing: Pacing::Fast,
        compression: None,
        faults: FaultPlan::default(),
    };
    let mut source = SyntheticMiniscope::new(&config);
    let info = source.info().clone();
    let frames = (0..32)
        .map(|_| {
            let mut buf = vec![0; info.geometry.frame_bytes()];
            source.next_frame(&mut buf).expect("synthetic frames");
            buf
        })
        .collect();
    (info, frames)
}

fn record_once(
    info: &behavd::source::StreamInfo,
    frames: &[Vec<u8>],
    compression: Compression,
    threads: usize,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let pool = FramePool::new(FRAMES + 32, info.geometry.frame_bytes());
    let (mut tx, rx) = rtrb::RingBuffer::new(FRAMES + 1);
    let (gaps_tx, gaps_rx) = rtrb::RingBuffer::new(4);
    let recorder = Recorder::start(RecorderSetup {
        path: dir.path().join("bench.nwb"),
        session_name: "bench".into(),
        clock: SessionClock::start_now(),
        session: LoadedConfig::demo().config.session,
        config_text: String::new(),
        streams: vec![StreamSetup {
            info: info.clone(),
            compression,
            ground_truth: false,
            frames: rx,
            gaps: gaps_rx,
            stats: Arc::new(StreamStats::default()),
        }],
        flush_interval: Duration::from_secs(1),
        compress_threads: threads,
    })
    .unwrap();
    let start = Instant::now();
    for i in 0..FRAMES {
        let mut slot = pool.try_acquire().unwrap();
        slot.pixels_mut().copy_from_slice(&frames[i % frames.len()]);
        let frame = slot.freeze(FrameMeta {
            index: i as u64,
            device_counter: i as u64,
            ..FrameMeta::default()
        });
        assert!(tx.push(frame).is_ok());
    }
    drop(tx);
    drop(gaps_tx);
    recorder.join().unwrap();
    start.elapsed()
}

fn recorder_throughput(c: &mut Criterion) {
    let (info, frames) = rendered_frames();
    let mut group = c.benchmark_group("recorder_608x608");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(
        (FRAMES * info.geometry.frame_bytes()) as u64,
    ));
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
                    .map(|_| record_once(&info, &frames, compression, threads))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, recorder_throughput);
criterion_main!(benches);
